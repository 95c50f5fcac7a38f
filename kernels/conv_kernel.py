"""Convolutional encoder layers (Triton) for aezip.conv's analysis transform: a convolution as one GEMM over its
unfolded windows (torch's `unfold` gathers them, channel-major, the layout of the weight's rows), with the bias and
the layer's ReLU or GDN y / sqrt(beta + gamma y^2) fused into the epilogue. GDN mixes every channel of a position,
so a program owns BLOCK_M positions x all N output channels (N <= MAX_CHANNELS, padded to a power of two) and the
normalisation is a second on-chip product, (y * y) gamma^T, before the one store.

- `_conv_gemm_kernel`: the GEMM and its epilogue.
- `conv_layer_triton`: unfold, launch, fold the rows back to NCHW.
- `ConvLayerFunction`: autograd; the backward recomputes the torch reference (encoding needs the forward only;
  aezip.conv trains its grouped network in torch).
The torch reference is `reference.conv_layer_reference`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from .dispatch import autotune_configs, dot_precision, launch, rows_class
from .reference import CONV_EPILOGUES, conv_layer_reference

MAX_CHANNELS = 256
EPILOGUE_CODES = {name: i for i, name in enumerate(CONV_EPILOGUES)}   # identity 0, relu 1, gdn 2

CONV_CONFIGS = [
    triton.Config({"BLOCK_M": 32, "BLOCK_K": 32}, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_K": 32}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_K": 32}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_K": 64}, num_warps=8, num_stages=2),
]
CONV_INTERPRETER_CONFIG = triton.Config({"BLOCK_M": 64, "BLOCK_K": 256})


@triton.autotune(configs=autotune_configs(CONV_CONFIGS, interpreter=CONV_INTERPRETER_CONFIG),
                 key=["N", "K", "ROWS_CLASS"])
@triton.jit
def _conv_gemm_kernel(x_ptr, w_ptr, b_ptr, gamma_ptr, beta_ptr, y_ptr, M, N, K, ROWS_CLASS,
                      stride_xm, stride_xk, stride_ym,
                      EPILOGUE: tl.constexpr, PRECISION: tl.constexpr, NP: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    pid = tl.program_id(0)
    rm = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.arange(0, NP)
    acc = tl.zeros((BLOCK_M, NP), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        a = tl.load(x_ptr + rm[:, None] * stride_xm + rk[None, :] * stride_xk,
                    mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0)
        w = tl.load(w_ptr + rn[None, :] * K + rk[:, None], mask=(rn[None, :] < N) & (rk[:, None] < K), other=0.0)
        acc = tl.dot(a, w, acc, input_precision=PRECISION)
    acc += tl.load(b_ptr + rn, mask=rn < N, other=0.0)[None, :]
    if EPILOGUE == 1:
        acc = tl.maximum(acc, 0.0)
    elif EPILOGUE == 2:
        squares = tl.where(rn[None, :] < N, acc * acc, 0.0)        # padded channels add nothing to the norm
        gamma_t = tl.load(gamma_ptr + rn[None, :] * N + rn[:, None], mask=(rn[None, :] < N) & (rn[:, None] < N),
                          other=0.0)                                # [i, j] = gamma[j, i]
        norm = tl.dot(squares, gamma_t, input_precision=PRECISION)
        norm += tl.load(beta_ptr + rn, mask=rn < N, other=1.0)[None, :]
        acc = acc * tl.rsqrt(norm)
    tl.store(y_ptr + rm[:, None] * stride_ym + rn[None, :], acc.to(y_ptr.dtype.element_ty),
             mask=(rm[:, None] < M) & (rn[None, :] < N))


def conv_fits(weight: torch.Tensor) -> bool:
    """True when the kernel takes this layer: all its output channels fit one program."""
    return weight.shape[0] <= MAX_CHANNELS


def conv_layer_triton(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, epilogue: str,
                      gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None,
                      config: triton.Config | None = None) -> torch.Tensor:
    """Launch `_conv_gemm_kernel` (autotuned, or with `config`) on the unfolded windows of x (NCHW)."""
    b, _, h, w = x.shape
    n, _, k, _ = weight.shape
    pad = k // 2
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    rows = F.unfold(x, k, padding=pad, stride=stride).transpose(1, 2).reshape(b * ho * wo, -1)
    wm = weight.reshape(n, -1).contiguous()
    m, kk = rows.shape
    y = torch.empty((m, n), device=x.device, dtype=x.dtype)
    if epilogue == "gdn":
        gamma, beta = gamma.contiguous(), beta.contiguous()
    else:                                            # unread: the kernel loads them only for GDN
        gamma = beta = bias
    grid = lambda meta: (triton.cdiv(m, meta["BLOCK_M"]),)  # noqa: E731
    precision = dot_precision() if x.dtype == torch.float32 else "ieee"
    launch(_conv_gemm_kernel, grid, config, rows, wm, bias.contiguous(), gamma, beta, y, m, n, kk, rows_class(m),
           rows.stride(0), rows.stride(1), y.stride(0), EPILOGUE=EPILOGUE_CODES[epilogue], PRECISION=precision,
           NP=max(16, triton.next_power_of_2(n)))
    return y.view(b, ho, wo, n).permute(0, 3, 1, 2)


class ConvLayerFunction(torch.autograd.Function):
    """The Triton forward; the backward differentiates the torch reference, recomputed from the saved inputs."""

    @staticmethod
    def forward(ctx, x, weight, bias, gamma, beta, stride: int, epilogue: str):  # type: ignore[override]
        ctx.save_for_backward(x, weight, bias, gamma, beta)
        ctx.stride, ctx.epilogue = stride, epilogue
        return conv_layer_triton(x, weight, bias, stride, epilogue, gamma, beta)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        inputs = [t.detach().requires_grad_(t.requires_grad) if t is not None else None for t in ctx.saved_tensors]
        with torch.enable_grad():
            out = conv_layer_reference(inputs[0], inputs[1], inputs[2], ctx.stride, ctx.epilogue, inputs[3],
                                       inputs[4])
            wanted = [t for t in inputs if t is not None and t.requires_grad]
            grads = iter(torch.autograd.grad(out, wanted, grad_out)) if wanted else iter(())
        return (*(next(grads) if t is not None and t.requires_grad else None for t in inputs), None, None)


def conv_layer_forward_triton(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, epilogue: str,
                              gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None) -> torch.Tensor:
    """The layer through the kernel; differentiable."""
    return ConvLayerFunction.apply(x, weight, bias, gamma, beta, stride, epilogue)
