"""Triton kernels against the torch reference (under TRITON_INTERPRET=1 on the CPU), and the dispatch rules."""
from __future__ import annotations

import pytest
import torch

from aezip import kernels
from aezip.kernels.dispatch import BackendError, interpreter_on, resolve_backend, rows_class
from aezip.kernels.encoder_kernel import (ENCODER3_CONFIGS, ENCODER3_INTERPRETER_CONFIG, FUSED_MAX_WIDTH,
                                          LINEAR_CONFIGS, chosen_config, encoder3_triton, linear_act_triton)
from aezip.kernels.reference import (encoder_forward_reference, quantize_reference, sparse_kl_grad_reference,
                                     sparse_kl_reference)
from aezip.kernels.sparse_kl_kernel import PARTIALS_CONFIGS, sparse_kl_forward_triton

# The one tolerance table of every kernel comparison in fp32 (the interpreter runs fp32 only, no bf16 there):
# what is compared -> (rtol, atol).
TOLERANCE = {
    "sparse_kl": (1e-5, 1e-6),           # loss value
    "sparse_kl_grad": (0.0, 1e-6),       # per-element gradient
    "encoder": (1e-5, 1e-5),             # activations and their gradients
    "training_step": (1e-5, 1e-6),       # parameters after one step with each backend
}


def assert_close_for(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """assert_close with the table's tolerance for `what`."""
    rtol, atol = TOLERANCE[what]
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


# On a GPU machine run with TRITON_INTERPRET=0 to test the compiled kernels on CUDA tensors.
DEVICE = torch.device("cuda" if torch.cuda.is_available() and not interpreter_on() else "cpu")


def _rand_h(b: int, j: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, j, generator=g).clamp(0.01, 0.99).to(DEVICE)


@pytest.mark.parametrize("b,j", [(1, 7), (7, 50), (37, 97), (130, 784), (600, 33)])
@pytest.mark.parametrize("rho", [0.01, 0.5])
def test_sparse_kl_matches_reference(b: int, j: int, rho: float) -> None:
    h = _rand_h(b, j, b * 1000 + j).requires_grad_()
    grad_out = torch.tensor(0.37, device=DEVICE)
    loss = kernels.sparse_kl(h, rho, 0.8, backend="triton")
    (g_triton,) = torch.autograd.grad(loss, h, grad_out)
    ref = sparse_kl_reference(h, rho, 0.8)
    (g_ref,) = torch.autograd.grad(ref, h, grad_out)
    assert_close_for(loss, ref, "sparse_kl")
    assert_close_for(g_triton, g_ref, "sparse_kl_grad")


def test_sparse_kl_clamped_columns_match_reference() -> None:
    h = _rand_h(9, 6, 3)
    h[:, 0] = 0.0
    h[:, 1] = 1.0
    h.requires_grad_()
    loss = kernels.sparse_kl(h, 0.05, backend="triton")
    (g,) = torch.autograd.grad(loss, h)
    ref = sparse_kl_reference(h, 0.05)
    (g_ref,) = torch.autograd.grad(ref, h)
    assert_close_for(loss, ref, "sparse_kl")
    assert_close_for(g, g_ref, "sparse_kl_grad")
    assert torch.all(g[:, :2] == 0)  # zero where the clamp is active, as documented


def test_sparse_kl_analytic_gradient_is_autograd_of_reference() -> None:
    h = _rand_h(11, 5, 7).double().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: sparse_kl_reference(t, 0.1, 2.0), (h,))
    (g,) = torch.autograd.grad(sparse_kl_reference(h, 0.1, 2.0), h)
    torch.testing.assert_close(sparse_kl_grad_reference(h, 0.1, 2.0), g)


def _encoder_params(widths: list[int], seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    ws = [(torch.randn(o, i, generator=g) / i ** 0.5).to(DEVICE) for i, o in zip(widths[:-1], widths[1:])]
    bs = [(0.1 * torch.randn(o, generator=g)).to(DEVICE) for o in widths[1:]]
    return ws, bs


@pytest.mark.parametrize("b", [1, 7, 37, 130])
@pytest.mark.parametrize("widths,acts", [
    ([50, 97, 40, 13], ["relu", "relu", "sigmoid"]),        # fused three-layer kernel
    ([97, 50, 7], ["sigmoid", "identity"]),                # per-layer kernels
    ([784, 64, 32, 16], ["relu", "relu", "sigmoid"]),
])
def test_encoder_forward_matches_reference(b: int, widths: list[int], acts: list[str]) -> None:
    ws, bs = _encoder_params(widths, b)
    x = torch.rand(b, widths[0], generator=torch.Generator().manual_seed(b)).to(DEVICE)
    out = kernels.encoder_forward(x, ws, bs, acts, backend="triton")
    assert_close_for(out, encoder_forward_reference(x, ws, bs, acts), "encoder")


@pytest.mark.parametrize("b", [7, 130])
def test_encoder_gradients_match_reference(b: int) -> None:
    widths, acts = [50, 97, 40, 13], ["relu", "sigmoid", "identity"]
    ws, bs = _encoder_params(widths, b)
    params = [p.requires_grad_() for p in (*ws, *bs)]
    x = torch.rand(b, widths[0], generator=torch.Generator().manual_seed(b)).to(DEVICE).requires_grad_()
    grad_out = torch.randn(b, widths[-1], generator=torch.Generator().manual_seed(0)).to(DEVICE)
    out = kernels.encoder_forward(x, ws, bs, acts, backend="triton")
    got = torch.autograd.grad(out, [x, *params], grad_out)
    ref = encoder_forward_reference(x, ws, bs, acts)
    want = torch.autograd.grad(ref, [x, *params], grad_out)
    for g, w in zip(got, want):
        assert_close_for(g, w, "encoder")


def test_fused_quantize_epilogue_gives_the_reference_codes() -> None:
    widths, acts = [97, 64, 50, 21], ["relu", "relu", "sigmoid"]
    ws, bs = _encoder_params(widths, 5)
    x = torch.rand(37, widths[0], generator=torch.Generator().manual_seed(5)).to(DEVICE)
    codes = kernels.encoder_codes(x, ws, bs, acts, 16, backend="triton")
    z = encoder_forward_reference(x, ws, bs, acts)
    ref = quantize_reference(z, 16)
    assert codes.dtype == torch.int32
    # A code may differ only where z * 15 sits within float rounding of a half-way point.
    near_tie = ((z * 15 - torch.floor(z * 15)) - 0.5).abs() < 1e-4
    assert torch.all((codes == ref) | near_tie)


# The interpreter runs one large-block config (fast); these run every GPU autotune candidate on odd shapes.
@pytest.mark.parametrize("i", range(len(LINEAR_CONFIGS)))
def test_every_linear_gpu_config_matches_reference(i: int) -> None:
    ws, bs = _encoder_params([97, 130], i)
    x = torch.rand(37, 97, generator=torch.Generator().manual_seed(i)).to(DEVICE)
    y = linear_act_triton(x, ws[0], bs[0], "sigmoid", config=LINEAR_CONFIGS[i])
    assert_close_for(y, encoder_forward_reference(x, ws, bs, ["sigmoid"]), "encoder")


# Layer 2 at 70 (padded to 128 on chip) and at FUSED_MAX_WIDTH, the register load of the default architecture.
@pytest.mark.parametrize("widths", [[97, 70, 40, 13], [97, 130, FUSED_MAX_WIDTH, 13]], ids=["narrow", "widest"])
@pytest.mark.parametrize("i", range(len(ENCODER3_CONFIGS)))
def test_every_fused_encoder_gpu_config_matches_reference(i: int, widths: list[int]) -> None:
    acts = ["relu", "relu", "sigmoid"]
    ws, bs = _encoder_params(widths, i)
    x = torch.rand(70, widths[0], generator=torch.Generator().manual_seed(i)).to(DEVICE)
    z = encoder3_triton(x, ws, bs, acts, config=ENCODER3_CONFIGS[i])
    assert_close_for(z, encoder_forward_reference(x, ws, bs, acts), "encoder")


def test_rows_class_buckets_row_counts_by_power_of_two_within_bounds() -> None:
    assert [rows_class(m) for m in (1, 256, 257, 4000, 4096, 65536, 10 ** 6)] == [256, 256, 512, 4096, 4096, 65536,
                                                                                  65536]


def test_chosen_config_names_the_config_the_autotuned_kernels_ran_with() -> None:
    ws, bs = _encoder_params([97, 70, 40, 13], 0)
    x = torch.rand(33, 97, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    kernels.encoder_forward(x, ws, bs, ["relu", "relu", "sigmoid"], backend="triton")
    candidates = [*ENCODER3_CONFIGS, ENCODER3_INTERPRETER_CONFIG]
    described = {f"M{c.kwargs['BLOCK_M']} N{c.kwargs['BLOCK_N1']} K{c.kwargs['BLOCK_K']} w{c.num_warps} "
                 f"s{c.num_stages}" for c in candidates}
    assert chosen_config(fused=True) in described
    linear_act_triton(x, ws[0], bs[0], "relu")
    assert chosen_config(fused=False).startswith("M")


@pytest.mark.parametrize("i", range(len(PARTIALS_CONFIGS)))
def test_every_sparse_kl_gpu_config_matches_reference(i: int) -> None:
    h = _rand_h(530, 97, i)
    loss, grad = sparse_kl_forward_triton(h, 0.05, 1.0, 1e-6, config=PARTIALS_CONFIGS[i])
    assert_close_for(loss, sparse_kl_reference(h, 0.05), "sparse_kl")
    assert_close_for(grad.expand_as(h), sparse_kl_grad_reference(h, 0.05, 1.0), "sparse_kl_grad")


def test_training_step_is_the_same_with_both_backends() -> None:
    from aezip.network.losses import sparsity_penalty
    from aezip.network.model import AEConfig, AutoEncoder
    config = AEConfig(image_shape=(7, 7), hidden=(20,), latent=5, levels=8)
    x = torch.rand(13, 49, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    results = []
    for backend in ("torch", "triton"):
        torch.manual_seed(0)
        model = AutoEncoder(config).to(DEVICE)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        h = model.encode(x, backend)
        loss = ((model.decode(h) - x) ** 2).sum() + sparsity_penalty(h, 0.1, 0.5, backend)
        loss.backward()
        opt.step()
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results):
        assert_close_for(a, b, "training_step")


def test_triton_backend_where_it_cannot_run_says_why(monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(BackendError, match="CUDA devices or on the CPU under TRITON_INTERPRET=1"):
        resolve_backend("triton", torch.device("cpu"))
    assert resolve_backend("auto", torch.device("cpu")) == "torch"


@pytest.mark.interpreter      # "triton" on CPU tensors, which only the interpreter runs
def test_env_switch_sets_the_default(monkeypatch) -> None:
    monkeypatch.setenv("AEZIP_BACKEND", "triton")
    assert resolve_backend(None, torch.device("cpu")) == "triton"
    assert resolve_backend("torch", torch.device("cpu")) == "torch"
    monkeypatch.setenv("AEZIP_BACKEND", "cuda-please")
    with pytest.raises(BackendError, match="AEZIP_BACKEND"):
        resolve_backend(None, torch.device("cpu"))
    assert kernels.available_backends("cpu") == ["triton", "torch"]


def test_dot_precision_defaults_to_tf32x3_and_refuses_unknown_values(monkeypatch) -> None:
    from aezip.kernels.dispatch import dot_precision
    monkeypatch.delenv("AEZIP_DOT_PRECISION", raising=False)
    assert dot_precision() == "tf32x3"
    monkeypatch.setenv("AEZIP_DOT_PRECISION", " IEEE ")
    assert dot_precision() == "ieee"
    monkeypatch.setenv("AEZIP_DOT_PRECISION", "fp8")
    with pytest.raises(BackendError, match="AEZIP_DOT_PRECISION='fp8' is not one of tf32x3, ieee, tf32"):
        dot_precision()
