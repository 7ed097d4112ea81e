"""The suite's checks of itself: deliberate breaks that each claim must fail, mutants of the code
that some claim must kill, hypothesis strategies, and the sweep over torchvision's zoo."""
