"""What makes a verdict: the rules (operator, threshold, tolerance), the statistics of bars and
intervals, the notebook's constants, the probes (layers and photos), the measurements, the random
nulls and their calibration, the structural checks, and the recorded expectations they are held to."""
