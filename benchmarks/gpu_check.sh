#!/usr/bin/env bash
# The one prepared GPU check (the device tool's `run`, or any machine with CUDA), in order of what matters most:
#   1. kernel parity: tests/test_kernels.py and tests/test_conv_kernel.py with TRITON_INTERPRET=0 on CUDA tensors (compiled kernels), with the
#      default tl.dot precision (tf32x3) and with AEZIP_DOT_PRECISION=ieee;
#   2. GPU encode -> CPU decode (benchmarks/gpu_codec_check.py), and the device/thread policy rows;
#   3. `aezip bench kernels` (Triton beside torch eager), then the same with torch.compile rows if time is left;
#   4. the default training recipe on the GPU (time, and the model's held-out figures).
# Each step has a time cap and the whole script a deadline (GPU_CHECK_SECONDS, default 560), so a slow step cannot
# take the others' results with it. Logs and JSON go under ${OUT:-gpu-out}.
# Offline machines: wheels in .whl/ (constriction, zstandard: what the GPU image lacks) are installed to /tmp/site;
# Data and models for steps 2 and 4 are read from .gpudata/ when it is there (else the shipped sample): MNIST's
# t10k-images-idx3-ubyte.gz, natural32-{gray,rgb}-heldout.npy and the photographs' default tile models gray.aezm,
# rgb.aezm (README).
# Sharing one lease with other work: GPU_CHECK_SKIP="train bench-compile" skips steps by name; GPU_POLICY_IMAGES=0
# skips the device/thread policy rows; GPU_CHECK_WAIT_FOR=FILE holds the timing steps until FILE is gone (the other
# work removes it when it ends), so they time an otherwise idle GPU.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
deadline=$(( $(date +%s) + ${GPU_CHECK_SECONDS:-560} ))

# step NAME CAP CMD...: run CMD with at most CAP seconds (less if the deadline is nearer); log under $out/NAME.log
step() {
    local name=$1 cap=$2 left
    shift 2
    if [[ " ${GPU_CHECK_SKIP:-} " == *" $name "* ]]; then echo "== $name: skipped (GPU_CHECK_SKIP)"; return; fi
    left=$(( deadline - $(date +%s) ))
    (( left < cap )) && cap=$left
    if (( cap < 10 )); then echo "== $name: skipped, the deadline is reached"; return; fi
    echo "== $name (at most ${cap} s)"
    local t0=$(date +%s)
    timeout "$cap" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    tail -n "${TAIL:-40}" "$out/$name.log"
    echo "== $name: exit $rc after $(( $(date +%s) - t0 )) s$([ $rc -eq 124 ] && echo ' (time cap reached)')"
}

if ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && export PYTHONPATH=/tmp/site
    python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
else
    python3 -m pip install -q -e ".[dev]" 2>&1 | tail -2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, triton, numba, numpy; print('torch', torch.__version__, 'triton', triton.__version__,
'numba', numba.__version__, 'numpy', numpy.__version__, 'cores', __import__('os').cpu_count())" | tee -a "$out/gpu.txt"

TAIL=3 step parity 200 env TRITON_INTERPRET=0 python3 -m pytest -v -p no:cacheprovider tests/test_kernels.py tests/test_conv_kernel.py
TAIL=1 step parity-ieee 60 env TRITON_INTERPRET=0 AEZIP_DOT_PRECISION=ieee python3 -m pytest -q -p no:cacheprovider \
    tests/test_kernels.py tests/test_conv_kernel.py
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
test_chosen_config_ the autotuned config bench kernels reports
test_conv_layer_ conv layer (GEMM over windows + bias + ReLU/GDN), forward and backward
test_every_conv_gpu_config_ conv layer, every GPU autotune config
test_a_rate_points_encoder_ a conv model's encoder through the kernel
KERNELS

sets=()
if [ -d .gpudata ]; then
    sets=(--set mnist=.gpudata/t10k-images-idx3-ubyte.gz,default,8000:10000
          --set gray=.gpudata/natural32-gray-heldout.npy,.gpudata/gray.aezm
          --set rgb=.gpudata/natural32-rgb-heldout.npy,.gpudata/rgb.aezm)
fi
step codec 120 python3 benchmarks/gpu_codec_check.py --device "${GPU_DEVICE:-cuda}" "${sets[@]}" --reps 2 --out "$out" \
    --policy-images "${GPU_POLICY_IMAGES:-20000}"
while [ -n "${GPU_CHECK_WAIT_FOR:-}" ] && [ -e "$GPU_CHECK_WAIT_FOR" ] && (( $(date +%s) < deadline - 90 )); do
    sleep 2
done
step bench 90 python3 -m aezip.cli.main bench kernels --batch 256,4096,65536 --no-compile -o "$out/kernels.json"
# the default recipe as benchmarks/train_models.py runs it (on the GPU: `aezip train` picks it), then its held-out
# lossy and lossless figures
train_default() {
    local t0=$(date +%s)
    python3 benchmarks/train_models.py default --data .gpudata/t10k-images-idx3-ubyte.gz --out /tmp/gpu-default.aezm \
        --force || return
    echo "recipe: $(( $(date +%s) - t0 )) s"
    for e in "" "--max-error 0"; do
        python3 -m aezip.cli.main encode .gpudata/t10k-images-idx3-ubyte.gz --range 8000:10000 \
            -m /tmp/gpu-default.aezm -o /tmp/held.aez --force $e || return
    done
}
export -f train_default
[ -d .gpudata ] && step train 240 bash -c train_default
step bench-compile 100 python3 -m aezip.cli.main bench kernels --batch 4096,65536 -o "$out/kernels-compile.json"
# the verdicts again at the end, where a reply that keeps only the output's tail still shows them
echo "== summary"
cat "$out/kernels-verdict.txt"
echo "parity with AEZIP_DOT_PRECISION=ieee: $(tail -n 1 "$out/parity-ieee.log")"
grep -E "PASS|FAIL" "$out/codec.log"
grep -E "^(recipe|trained|wrote|aezip encode)|bits/pixel" "$out/train.log" 2>/dev/null | tail -6
echo "== done, $(( deadline - $(date +%s) )) s before the deadline"
