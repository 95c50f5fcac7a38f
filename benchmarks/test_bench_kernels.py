"""pytest-benchmark suite: `pytest benchmarks --benchmark-only`. Torch paths run everywhere; Triton rows run where
a CUDA device is present and are skipped (with the reason) elsewhere. Compare rows of the same run only."""
from __future__ import annotations

import pytest
import torch

from aezip import kernels
from aezip.kernels.dispatch import triton_unavailable_reason
from aezip.kernels.reference import encoder_forward_reference, sparse_kl_reference

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
BATCHES = [256, 4096] if DEVICE.type == "cpu" else [256, 4096, 65536]
DIMS = (784, 512, 256, 32)
ACTS = ["relu", "relu", "sigmoid"]
IMPLS = ["torch", "triton"]


def _skip_triton(impl: str) -> None:
    reason = triton_unavailable_reason(DEVICE) if impl == "triton" else None
    if reason or (impl == "triton" and DEVICE.type != "cuda"):
        pytest.skip(f"Triton timings need a GPU ({reason or 'the interpreter is not a timing target'})")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


@pytest.fixture(scope="module")
def encoder_params():
    g = torch.Generator().manual_seed(0)
    ws = [(torch.randn(o, i, generator=g) / i ** 0.5).to(DEVICE) for i, o in zip(DIMS[:-1], DIMS[1:])]
    return ws, [torch.zeros(o, device=DEVICE) for o in DIMS[1:]]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch", BATCHES)
def test_encoder_forward(benchmark, encoder_params, impl: str, batch: int) -> None:
    _skip_triton(impl)
    ws, bs = encoder_params
    x = torch.rand(batch, DIMS[0], device=DEVICE)
    benchmark.group = f"encoder forward B={batch}"
    benchmark.extra_info["tflops_per_call"] = 2 * batch * sum(i * o for i, o in zip(DIMS[:-1], DIMS[1:])) / 1e12

    def run():
        with torch.no_grad():
            out = (kernels.encoder_forward(x, ws, bs, ACTS, backend="triton") if impl == "triton"
                   else encoder_forward_reference(x, ws, bs, ACTS))
        _sync()
        return out

    out = benchmark(run)
    assert out.shape == (batch, DIMS[-1])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch", BATCHES)
def test_sparse_kl_forward_backward(benchmark, impl: str, batch: int) -> None:
    _skip_triton(impl)
    h = torch.rand(batch, 256, device=DEVICE, requires_grad=True)
    benchmark.group = f"sparse-KL fwd+bwd B={batch}"
    benchmark.extra_info["bytes_per_call"] = 2 * batch * 256 * 4

    def run():
        loss = kernels.sparse_kl(h, 0.05, backend="triton") if impl == "triton" else sparse_kl_reference(h, 0.05)
        (g,) = torch.autograd.grad(loss, h)
        _sync()
        return g

    g = benchmark(run)
    assert g.shape == h.shape
