"""aezip.kernels: fused Triton kernels with torch references and one dispatch.

Public API: `encoder_forward`, `encoder_codes`, `conv_layer`, `sparse_kl`, `available_backends`. Triton is imported only when
the Triton backend is chosen, so this package works where Triton is absent.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .dispatch import BackendError, available_backends, resolve_backend
from .reference import (ACTIVATIONS, CONV_EPILOGUES, conv_layer_reference, encoder_forward_reference,
                        quantize_reference, sparse_kl_reference)

__all__ = ["encoder_forward", "encoder_codes", "conv_layer", "sparse_kl", "available_backends", "resolve_backend", "BackendError"]


def _check_encoder_args(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                        activations: Sequence[str]) -> None:
    if not (len(weights) == len(biases) == len(activations)) or not weights:
        raise ValueError("weights, biases and activations must be non-empty and of the same length")
    if x.dim() != 2 or x.shape[1] != weights[0].shape[1]:
        raise ValueError(f"x must be B x {weights[0].shape[1]}, got shape {tuple(x.shape)}")
    for act in activations:
        if act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r}; expected one of {ACTIVATIONS}")


def encoder_forward(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                    activations: Sequence[str], *, backend: str = "auto") -> torch.Tensor:
    """act_n(... act_1(x W_1^T + b_1) ...) with weights in nn.Linear's out x in layout; differentiable."""
    _check_encoder_args(x, weights, biases, activations)
    if resolve_backend(backend, x.device) == "torch":
        return encoder_forward_reference(x, weights, biases, activations)
    from .encoder_kernel import encoder_forward_triton
    return encoder_forward_triton(x, weights, biases, activations)


def encoder_codes(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                  activations: Sequence[str], levels: int, *, backend: str = "auto") -> torch.Tensor:
    """Integer latent codes round(z * (levels - 1)) (int32), through the fused quantize epilogue where it fits."""
    _check_encoder_args(x, weights, biases, activations)
    with torch.no_grad():
        if resolve_backend(backend, x.device) == "triton":
            from .encoder_kernel import encoder3_triton, encoder_forward_triton, fused_encoder_fits
            if fused_encoder_fits(weights):
                return encoder3_triton(x, weights, biases, activations, levels=levels)
            return quantize_reference(encoder_forward_triton(x, weights, biases, activations), levels)
        return quantize_reference(encoder_forward_reference(x, weights, biases, activations), levels)


def conv_layer(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, epilogue: str,
               gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None, *,
               backend: str = "auto") -> torch.Tensor:
    """One convolution layer of a convolutional encoder (NCHW; weight Cout x Cin x k x k, padding k // 2) with its
    bias and epilogue: "identity", "relu" or "gdn" (y / sqrt(beta + gamma y^2), gamma Cout x Cout); differentiable.
    Triton runs it as one GEMM over the unfolded windows where its output channels fit one program."""
    if epilogue not in CONV_EPILOGUES:
        raise ValueError(f"unknown epilogue {epilogue!r}; expected one of {CONV_EPILOGUES}")
    if epilogue == "gdn" and (gamma is None or beta is None):
        raise ValueError("a GDN epilogue needs gamma and beta")
    if x.dim() != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must be B x {weight.shape[1]} x H x W, got shape {tuple(x.shape)}")
    if resolve_backend(backend, x.device) == "triton":
        from .conv_kernel import conv_fits, conv_layer_forward_triton
        if conv_fits(weight):
            return conv_layer_forward_triton(x, weight, bias, stride, epilogue, gamma, beta)
    return conv_layer_reference(x, weight, bias, stride, epilogue, gamma, beta)


def sparse_kl(h: torch.Tensor, rho: float, beta: float = 1.0, *, eps: float = 1e-6,
              backend: str = "auto") -> torch.Tensor:
    """beta * sum_j KL(rho || rho_hat_j), rho_hat_j = clamp(mean_b h_bj, eps, 1-eps); a differentiable scalar."""
    if not 0.0 < rho < 1.0:
        raise ValueError(f"rho must lie in (0, 1), got {rho}")
    if resolve_backend(backend, h.device) == "torch":
        return sparse_kl_reference(h, rho, beta, eps=eps)
    from .sparse_kl_kernel import sparse_kl_triton
    return sparse_kl_triton(h, rho, beta, eps)
