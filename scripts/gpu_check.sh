#!/usr/bin/env bash
# Issue 16's GPU check, meant to finish in under 10 minutes on one CUDA device:
#   1. the test suite's CUDA-marked tests (engines equal on CUDA, a step synchronizes
#      exactly twice, bf16/fp16 autocast steps finite);
#   2. `adaloss speed --device cuda` for LeNet-5, ResNet-18 and WRN-16-8 at batch 128,
#      every method side by side, with the ratio table and the targets.
# Without a CUDA device (or with DEVICE=cpu) it runs only its CPU smoke: the CUDA tests
# collected and skipped, and a tiny CPU `adaloss speed` run; it says so on stderr.
#
#   PYTHON=.venv/bin/python OUT=gpu-check scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
out=${OUT:-gpu-check}
device=${DEVICE:-}
if [ -z "$device" ]; then
    if "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        device=cuda
    else
        device=cpu
    fi
fi
mkdir -p "$out"

if [ "$device" != cuda ]; then
    echo "gpu_check: no CUDA device (device=$device): skipping the CUDA tests and the CUDA" \
        "speed table; running the CPU smoke only" >&2
    "$python" -m pytest -q -p no:cacheprovider -m cuda tests/test_sync.py
    "$python" -m adaloss speed --device cpu --models lenet5 --methods plain,fixed,forward \
        --steps 1 --warmup 1 --rounds 1 --batch 4 --threads 1 --no-memory --quiet \
        --markdown --json "$out/speed-smoke.json" | tee "$out/speed-smoke.md"
    echo "gpu_check: CPU smoke passed" >&2
    exit 0
fi

"$python" -c 'import torch; print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)' \
    | tee "$out/device.txt"
nvidia-smi --query-gpu=name,memory.total,utilization.gpu --format=csv >>"$out/device.txt" 2>&1 || true
# 1. CUDA-marked tests (a few seconds each).
timeout 180 "$python" -m pytest -q -p no:cacheprovider -m cuda tests/ | tee "$out/tests.txt"
# 2. Speed: 40 timed steps per method (4 cycles of forward/10), peak memory in a fresh
#    process per (model, method) from torch.cuda.max_memory_allocated.
timeout 480 "$python" -m adaloss speed --device cuda --models lenet5,resnet18,wrn16_8 \
    --batch 128 --steps 40 --warmup 3 --markdown --json "$out/speed.json" | tee "$out/speed.md"
echo "gpu_check: done; results in $out/" >&2
