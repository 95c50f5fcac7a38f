"""Fused encoder forward pass (Triton): GEMM + bias + activation per layer, or the whole 3-layer encoder in one kernel.

- `_linear_act_kernel`: y = act(x W^T + b) for one layer, fp32 accumulator, activation applied before the masked store.
- `_encoder3_kernel`: three layers in one launch for inference. A program owns BLOCK_M rows; it produces layer 1 in
  column blocks and feeds each block straight into layer 2's accumulator, so no activation leaves the chip until the
  latent (or, with the quantize epilogue, its integer codes) is stored. Used where layers 2 and 3 fit on chip.
- `_activation_grad_kernel`: g * act'(y), with act' taken from the layer's output (no pre-activation is kept).
- `EncoderFunction`: autograd for training; backward uses that kernel and torch matmuls for the weight gradients.
The torch reference is `reference.encoder_forward_reference` (and `reference.quantize_reference` for codes).
"""
from __future__ import annotations

from typing import Sequence

import torch
import triton
import triton.language as tl

from .dispatch import autotune_configs, dot_precision, interpreter_on, launch, rows_class
from .reference import ACTIVATIONS

ACT_CODES = {name: i for i, name in enumerate(ACTIVATIONS)}  # relu 0, sigmoid 1, identity 2
FUSED_MAX_WIDTH = 256  # layers 2 and 3 of the fused kernel are held on chip, padded to a power of two up to this


# GPU autotune candidates (the first is the one AEZIP_AUTOTUNE=0 keeps) and the one config the interpreter runs.
# The Hopper-sized ones (BLOCK_M >= 64 with whole warpgroups, deeper pipelines, shared memory under the H200's
# 227 KB: stages x (BLOCK_M + BLOCK_N) x BLOCK_K x 4 bytes, plus layer 2's weight block in the fused kernel) were
# added after the first H200 run, where the fused kernel trailed three cuBLAS calls by 1.6-2x.
LINEAR_CONFIGS = [
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32}, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=8, num_stages=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 32}, num_warps=8, num_stages=3),
]
LINEAR_INTERPRETER_CONFIG = triton.Config({"BLOCK_M": 64, "BLOCK_N": 256, "BLOCK_K": 256})
ENCODER3_CONFIGS = [
    triton.Config({"BLOCK_M": 32, "BLOCK_N1": 32, "BLOCK_K": 32}, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N1": 32, "BLOCK_K": 64}, num_warps=8),
    triton.Config({"BLOCK_M": 64, "BLOCK_N1": 64, "BLOCK_K": 32}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N1": 64, "BLOCK_K": 32}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N1": 64, "BLOCK_K": 32}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N1": 32, "BLOCK_K": 64}, num_warps=8, num_stages=2),
]
ENCODER3_INTERPRETER_CONFIG = triton.Config({"BLOCK_M": 64, "BLOCK_N1": 256, "BLOCK_K": 256})


def _input_precision(dtype: torch.dtype) -> str:
    """dot_precision() for fp32 inputs; other dtypes multiply exactly in their own precision ("ieee")."""
    return dot_precision() if dtype == torch.float32 else "ieee"


@triton.jit
def _activate(x, ACT: tl.constexpr):
    if ACT == 0:
        x = tl.maximum(x, 0.0)
    elif ACT == 1:
        x = 1.0 / (1.0 + tl.exp(-x))
    return x


@triton.jit
def _round_half_even(x):
    f = tl.floor(x)
    d = x - f
    parity = f - 2.0 * tl.floor(f * 0.5)
    return tl.where(d > 0.5, f + 1.0, tl.where(d < 0.5, f, f + parity))


@triton.autotune(configs=autotune_configs(LINEAR_CONFIGS, interpreter=LINEAR_INTERPRETER_CONFIG),
                 key=["N", "K", "ROWS_CLASS"])
@triton.jit
def _linear_act_kernel(x_ptr, w_ptr, b_ptr, y_ptr, M, N, K, ROWS_CLASS,
                       stride_xm, stride_xk, stride_wn, stride_wk, stride_ym, stride_yn,
                       ACT: tl.constexpr, PRECISION: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        a = tl.load(x_ptr + rm[:, None] * stride_xm + rk[None, :] * stride_xk,
                    mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0)
        w = tl.load(w_ptr + rn[None, :] * stride_wn + rk[:, None] * stride_wk,
                    mask=(rn[None, :] < N) & (rk[:, None] < K), other=0.0)
        acc = tl.dot(a, w, acc, input_precision=PRECISION)
    acc += tl.load(b_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)[None, :]
    y = _activate(acc, ACT)
    tl.store(y_ptr + rm[:, None] * stride_ym + rn[None, :] * stride_yn, y.to(y_ptr.dtype.element_ty),
             mask=(rm[:, None] < M) & (rn[None, :] < N))


@triton.autotune(configs=autotune_configs(ENCODER3_CONFIGS, interpreter=ENCODER3_INTERPRETER_CONFIG),
                 key=["K1", "N1", "N2", "N3", "ROWS_CLASS"])
@triton.jit
def _encoder3_kernel(x_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w3_ptr, b3_ptr, out_ptr,
                     M, K1, N1, N2, N3, ROWS_CLASS, stride_xm, stride_xk, stride_om,
                     ACT1: tl.constexpr, ACT2: tl.constexpr, ACT3: tl.constexpr, LEVELS: tl.constexpr,
                     PRECISION: tl.constexpr, N2P: tl.constexpr, N3P: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N1: tl.constexpr, BLOCK_K: tl.constexpr):
    pid = tl.program_id(0)
    rm = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    r2 = tl.arange(0, N2P)
    r3 = tl.arange(0, N3P)
    acc2 = tl.zeros((BLOCK_M, N2P), dtype=tl.float32)
    for n0 in range(0, N1, BLOCK_N1):
        rn = n0 + tl.arange(0, BLOCK_N1)
        acc1 = tl.zeros((BLOCK_M, BLOCK_N1), dtype=tl.float32)
        for k0 in range(0, K1, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            a = tl.load(x_ptr + rm[:, None] * stride_xm + rk[None, :] * stride_xk,
                        mask=(rm[:, None] < M) & (rk[None, :] < K1), other=0.0)
            w1 = tl.load(w1_ptr + rn[None, :] * K1 + rk[:, None], mask=(rn[None, :] < N1) & (rk[:, None] < K1),
                         other=0.0)
            acc1 = tl.dot(a, w1, acc1, input_precision=PRECISION)
        acc1 += tl.load(b1_ptr + rn, mask=rn < N1, other=0.0)[None, :]
        h1 = tl.where(rn[None, :] < N1, _activate(acc1, ACT1), 0.0)  # padded columns must add nothing to layer 2
        w2 = tl.load(w2_ptr + r2[None, :] * N1 + rn[:, None], mask=(r2[None, :] < N2) & (rn[:, None] < N1),
                     other=0.0)
        acc2 = tl.dot(h1.to(w2.dtype), w2, acc2, input_precision=PRECISION)
    acc2 += tl.load(b2_ptr + r2, mask=r2 < N2, other=0.0)[None, :]
    h2 = tl.where(r2[None, :] < N2, _activate(acc2, ACT2), 0.0)
    w3 = tl.load(w3_ptr + r3[None, :] * N2 + r2[:, None], mask=(r3[None, :] < N3) & (r2[:, None] < N2), other=0.0)
    acc3 = tl.dot(h2.to(w3.dtype), w3, input_precision=PRECISION)
    acc3 += tl.load(b3_ptr + r3, mask=r3 < N3, other=0.0)[None, :]
    z = _activate(acc3, ACT3)
    mask = (rm[:, None] < M) & (r3[None, :] < N3)
    if LEVELS > 0:
        codes = _round_half_even(z * (LEVELS - 1))
        codes = tl.minimum(tl.maximum(codes, 0.0), LEVELS - 1.0)
        tl.store(out_ptr + rm[:, None] * stride_om + r3[None, :], codes.to(tl.int32), mask=mask)
    else:
        tl.store(out_ptr + rm[:, None] * stride_om + r3[None, :], z.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _activation_grad_kernel(g_ptr, y_ptr, out_ptr, numel, ACT: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if ACT == 0:
        g = tl.where(y > 0.0, g, 0.0)
    elif ACT == 1:
        g = g * y * (1.0 - y)
    tl.store(out_ptr + offs, g.to(out_ptr.dtype.element_ty), mask=mask)


def linear_act_triton(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, activation: str,
                      config: triton.Config | None = None) -> torch.Tensor:
    """Launch `_linear_act_kernel` (autotuned, or with `config`): act(x @ w.T + b) for one layer."""
    M, K = x.shape
    N = w.shape[0]
    y = torch.empty((M, N), device=x.device, dtype=x.dtype)
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"]))  # noqa: E731
    launch(_linear_act_kernel, grid, config, x, w, b, y, M, N, K, rows_class(M), x.stride(0), x.stride(1),
           w.stride(0), w.stride(1), y.stride(0), y.stride(1), ACT=ACT_CODES[activation],
           PRECISION=_input_precision(x.dtype))
    return y


def fused_encoder_fits(weights: Sequence[torch.Tensor]) -> bool:
    """True when the whole-encoder kernel applies: three layers whose last two widths fit on chip."""
    return len(weights) == 3 and max(weights[1].shape[0], weights[2].shape[0]) <= FUSED_MAX_WIDTH


def encoder3_triton(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                    activations: Sequence[str], levels: int = 0, config: triton.Config | None = None) -> torch.Tensor:
    """Launch `_encoder3_kernel` (autotuned, or with `config`); levels > 0 gives int32 codes round(z * (levels-1))."""
    w1, w2, w3 = (w.contiguous() for w in weights)
    b1, b2, b3 = (b.contiguous() for b in biases)
    M, K1 = x.shape
    N1, N2, N3 = w1.shape[0], w2.shape[0], w3.shape[0]
    out = torch.empty((M, N3), device=x.device, dtype=torch.int32 if levels > 0 else x.dtype)
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]),)  # noqa: E731
    launch(_encoder3_kernel, grid, config, x, w1, b1, w2, b2, w3, b3, out, M, K1, N1, N2, N3, rows_class(M),
           x.stride(0), x.stride(1), out.stride(0), ACT1=ACT_CODES[activations[0]], ACT2=ACT_CODES[activations[1]],
           ACT3=ACT_CODES[activations[2]], LEVELS=levels, PRECISION=_input_precision(x.dtype),
           N2P=max(16, triton.next_power_of_2(N2)), N3P=max(16, triton.next_power_of_2(N3)))
    return out


def chosen_config(fused: bool) -> str | None:
    """The config the fused (or per-layer) kernel ran with at its last launch, e.g. "M64 N64 K32 w4 s3"."""
    config = getattr(_encoder3_kernel if fused else _linear_act_kernel, "best_config", None)
    if config is None:
        return None
    blocks = " ".join(f"{k.split('_')[1][0]}{v}" for k, v in config.kwargs.items())
    return f"{blocks} w{config.num_warps} s{config.num_stages}"


def activation_grad_triton(g: torch.Tensor, y: torch.Tensor, activation: str) -> torch.Tensor:
    """Launch `_activation_grad_kernel`: d loss / d pre-activation from d loss / d output and the output."""
    g, y = g.contiguous(), y.contiguous()
    out = torch.empty_like(y)
    BLOCK = 16384 if interpreter_on() else 1024  # the interpreter's cost is per program (see autotune_configs)
    _activation_grad_kernel[(triton.cdiv(y.numel(), BLOCK),)](g, y, out, y.numel(), ACT=ACT_CODES[activation],
                                                              BLOCK=BLOCK)
    return out


class EncoderFunction(torch.autograd.Function):
    """Autograd for the per-layer Triton path: saves each layer's output, never its pre-activation."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, activations: tuple[str, ...], *params: torch.Tensor):  # type: ignore[override]
        weights, biases = params[0::2], params[1::2]
        outputs = []
        h = x
        for w, b, act in zip(weights, biases, activations):
            h = linear_act_triton(h, w, b, act)
            outputs.append(h)
        ctx.activations = activations
        ctx.save_for_backward(x, *weights, *outputs)
        return h

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        n = len(ctx.activations)
        saved = ctx.saved_tensors
        x, weights, outputs = saved[0], saved[1:1 + n], saved[1 + n:]
        grads: list[torch.Tensor | None] = [None] * (2 * n)
        g = grad_out
        grad_x = None
        for i in reversed(range(n)):
            g = activation_grad_triton(g, outputs[i], ctx.activations[i])
            inputs = outputs[i - 1] if i > 0 else x
            grads[2 * i] = g.t() @ inputs
            grads[2 * i + 1] = g.sum(0)
            if i > 0 or ctx.needs_input_grad[0]:
                g = g @ weights[i]
            if i == 0:
                grad_x = g if ctx.needs_input_grad[0] else None
        return (grad_x, None, *grads)


def encoder_forward_triton(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                           activations: Sequence[str]) -> torch.Tensor:
    """Differentiable when any input needs a gradient (per-layer kernels); else the fused kernel where it fits."""
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in (*weights, *biases)))
    if not needs_grad and fused_encoder_fits(weights):
        return encoder3_triton(x, weights, biases, activations)
    params = [p for pair in zip(weights, biases) for p in pair]
    return EncoderFunction.apply(x, tuple(activations), *params)
