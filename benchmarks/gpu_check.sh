#!/usr/bin/env bash
# One prepared GPU check for a machine with CUDA (the device tool's `run`): kernel parity on compiled Triton
# kernels, then the kernel benchmark. Writes its logs and JSON under ${OUT:-gpu-out}.
# Tests marked `interpreter` (they need Triton's CPU interpreter) are skipped under TRITON_INTERPRET=0.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -m pip install -q -e ".[dev]" 2>&1 | tail -2
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
TRITON_INTERPRET=0 python3 -m pytest -v tests/test_kernels.py > "$out/parity.log" 2>&1
tail -3 "$out/parity.log"
# pass/fail per kernel, from the verbose log (test name prefix -> what it checks)
while read -r prefix what; do
    passed=$(grep -cE "::${prefix}[^ ]* PASSED" "$out/parity.log")
    failed=$(grep -cE "::${prefix}[^ ]* (FAILED|ERROR)" "$out/parity.log")
    verdict=$([ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && echo PASS || echo FAIL)
    echo "$verdict $what: $passed passed, $failed failed"
done <<'KERNELS' | tee "$out/kernels-verdict.txt"
test_sparse_kl_ sparse-KL forward and backward
test_encoder_forward_ encoder forward (per layer and fused)
test_encoder_gradients_ encoder backward
test_fused_quantize_ encoder with the quantize epilogue
test_every_linear_gpu_config_ GEMM+bias+activation, every GPU autotune config
test_every_fused_encoder_gpu_config_ fused 3-layer encoder, every GPU autotune config
test_every_sparse_kl_gpu_config_ sparse-KL partial sums, every GPU autotune config
test_training_step_ one training step, Triton vs torch
KERNELS
python3 -m aezip.cli.main bench kernels --batch 256,4096,65536 -o "$out/kernels.json" 2>&1 | tee "$out/bench.log"
