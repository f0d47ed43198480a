#!/usr/bin/env bash
# The GPU checks of tinygrad_wave in one go, for a machine with an NVIDIA GPU where
# CuPy, PyTorch with CUDA and pytest are already installed (nothing is downloaded):
#
#   OUT=results bash scripts/gpu_check.sh                 # tests, bench and train
#   OUT=results bash scripts/gpu_check.sh tests bench     # only some parts
#
# tests  the gradient-check suite on device="cuda" (pytest -m cuda), against torch on the CPU
# bench  scripts/bench.py --device cuda: this engine against PyTorch eager CUDA, batch 32 to 65,536
# train  scripts/train.py --device cuda: the 200,000-step reference run of the 76K model
#
# bench and train read data/names.txt, which is in the repository, so it travels to the lent
# device machine with the working tree (nothing can be downloaded there).
#
# Seven files land flat in $OUT (default runs/gpu): logs, the benchmark table, the
# training log and loss curve (the checkpoint stays in runs/gpu-train). Where there is no GPU the CUDA tests skip and the other
# parts stop with an error that says what is missing.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/gpu}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1 || true
for part in "${@:-tests bench train}"; do
  for p in $part; do
    case $p in
      tests) python -m pytest -q -m cuda -p no:cacheprovider tests 2>&1 | tee "$out/cuda_tests.log" ;;
      bench) python scripts/bench.py --device cuda --sizes 32 128 512 2048 8192 32768 65536 --reps 3 \
               --markdown "$out/BENCHMARKS_cuda.md" 2>&1 | tee "$out/bench_cuda.log" ;;
      train) python scripts/train.py --device cuda --out runs/gpu-train --quiet 2>&1 | tee "$out/train_cuda.log" &&
               cp runs/gpu-train/log.json "$out/train_log.json" && cp runs/gpu-train/loss.png "$out/train_loss.png" ;;
      *) echo "unknown part $p (tests, bench, train)" >&2; false ;;
    esac
    status=$(( status || $? ))
  done
done
exit $status
