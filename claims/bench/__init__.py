"""The benchmarks: forward passes, hook overhead, occlusion sweeps and own-weights verdicts, on CPU and GPU (``pytest claims/bench --benchmark-enable``)."""
