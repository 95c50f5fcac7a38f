"""Reconstruction losses and latent penalties. Every term is a mean over the batch of a per-image sum."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import kernels

RECONSTRUCTION_LOSSES = ("bce", "mse", "cosine")


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """bce: cross-entropy on logits; mse: squared error of sigmoid(logits); cosine: 1 - cos(sigmoid(logits), x)."""
    b = target.shape[0]
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / b
    if kind == "mse":
        return ((torch.sigmoid(logits) - target) ** 2).sum() / b
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(torch.sigmoid(logits), target, dim=1, eps=1e-8)).sum() / b
    raise ValueError(f"unknown loss {kind!r}; expected one of {RECONSTRUCTION_LOSSES}")


def sparsity_penalty(h: torch.Tensor, rho: float, beta: float, backend: str | None = None) -> torch.Tensor:
    """The sparse autoencoder's beta * sum_j KL(rho || rho_hat_j), through the fused kernel where it runs."""
    return kernels.sparse_kl(h, rho, beta, backend=backend or "auto")


def l2_penalty(h: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * mean over the batch of ||h||^2."""
    return weight * (h ** 2).sum() / h.shape[0]
