"""Pure-torch versions of the kernels: the fallback where Triton cannot run, and the test oracle."""
from __future__ import annotations

from typing import Sequence

import torch

ACTIVATIONS = ("relu", "sigmoid", "identity")


def apply_activation(y: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply one of the supported activations by name."""
    if activation == "relu":
        return torch.relu(y)
    if activation == "sigmoid":
        return torch.sigmoid(y)
    if activation == "identity":
        return y
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def encoder_forward_reference(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    activations: Sequence[str],
) -> torch.Tensor:
    """y = act_n(... act_1(x W_1^T + b_1) ...), weights in the nn.Linear (out x in) layout."""
    h = x
    for w, b, act in zip(weights, biases, activations, strict=True):
        h = apply_activation(torch.nn.functional.linear(h, w, b), act)
    return h


def quantize_reference(z: torch.Tensor, levels: int) -> torch.Tensor:
    """Integer codes round(z * (levels - 1)), clamped to [0, levels - 1], for z in [0, 1]."""
    return torch.clamp(torch.round(z * (levels - 1)), 0, levels - 1).to(torch.int32)


def sparse_kl_reference(h: torch.Tensor, rho: float, beta: float = 1.0, *, eps: float = 1e-6) -> torch.Tensor:
    """beta * sum_j KL(rho || rho_hat_j), rho_hat_j = clamp(mean_b h_bj, eps, 1 - eps).

    Written for autograd: where the clamp is active the gradient is zero (torch.clamp's rule).
    """
    rho_hat = torch.clamp(h.mean(0), eps, 1.0 - eps)
    kl = rho * torch.log(rho / rho_hat) + (1.0 - rho) * torch.log((1.0 - rho) / (1.0 - rho_hat))
    return beta * kl.sum()


def sparse_kl_grad_reference(h: torch.Tensor, rho: float, beta: float = 1.0, *, eps: float = 1e-6) -> torch.Tensor:
    """The analytic d loss / d h (B x J): beta/B * (-rho/rho_hat + (1-rho)/(1-rho_hat)), zero where clamped."""
    mean = h.mean(0)
    rho_hat = torch.clamp(mean, eps, 1.0 - eps)
    g = beta / h.shape[0] * (-rho / rho_hat + (1.0 - rho) / (1.0 - rho_hat))
    g = torch.where((mean >= eps) & (mean <= 1.0 - eps), g, torch.zeros_like(g))
    return g.expand_as(h)


CONV_EPILOGUES = ("identity", "relu", "gdn")


def conv_layer_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, epilogue: str,
                         gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None) -> torch.Tensor:
    """One convolution (NCHW, weight Cout x Cin x k x k, padding k // 2) with its bias, then ReLU, nothing, or GDN
    y / sqrt(beta + gamma y^2) over the channels (gamma Cout x Cout, beta Cout: the effective parameters)."""
    y = torch.nn.functional.conv2d(x, weight, bias, stride, weight.shape[-1] // 2)
    if epilogue == "relu":
        return torch.relu(y)
    if epilogue == "gdn":
        return y * torch.rsqrt(torch.nn.functional.conv2d(y * y, gamma[:, :, None, None], beta))
    if epilogue == "identity":
        return y
    raise ValueError(f"unknown epilogue {epilogue!r}; expected one of {CONV_EPILOGUES}")
