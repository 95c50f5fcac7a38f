#!/usr/bin/env bash
# One prepared GPU check for a machine with CUDA (the device tool's `run`): kernel parity on compiled Triton
# kernels, then the kernel benchmark. Writes its logs and JSON under ${OUT:-gpu-out}.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -m pip install -q -e ".[dev]" 2>&1 | tail -2
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
TRITON_INTERPRET=0 python3 -m pytest -q tests/test_kernels.py 2>&1 | tee "$out/parity.log" | tail -5
python3 -m aezip.cli.main bench kernels --batch 256,4096,65536 --json "$out/kernels.json" 2>&1 | tee "$out/bench.log"
