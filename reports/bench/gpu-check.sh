#!/usr/bin/env bash
# The GPU check, one script for a lent GPU (sized to finish within 8 minutes on an H100/H200):
#   1. pytest claims --device cuda (every claim on the GPU; tests/test_gpu.py's sync-free hot paths),
#   2. the benchmarks, written as this machine's committed baseline:
#      reports/bench/cuda-<gpu>/benchmarks.json and summary.md (generated from the JSON),
# with the claims run's log beside them. Run from anywhere: bash reports/bench/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu-check: no CUDA device here')" || exit 2
export CNN_CLAIMS_FIXTURES="${CNN_CLAIMS_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
machine=$(python -c "from claims.bench.conftest import machine_label; print(machine_label())")
out="reports/bench/$machine"
mkdir -p "$out"
timeout 300 python -m pytest claims tests/test_gpu.py --device cuda -q -p no:cacheprovider 2>&1 | tee "$out/claims.txt"
claims=${PIPESTATUS[0]}
timeout 240 python -m pytest claims/bench --benchmark-enable --device cuda --bench-update-baseline -q -p no:cacheprovider \
    2>&1 | tee "$out/bench.txt"
bench=${PIPESTATUS[0]}
echo "gpu-check: pytest claims --device cuda exit $claims, benchmarks exit $bench; results in $out/"
exit $(( claims != 0 || bench != 0 ))
