"""Reconstruction losses and latent penalties. Every term is a mean over the batch of a per-image sum."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aezip import kernels
from aezip.options import RECONSTRUCTION_LOSSES


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


class LatentDensity(torch.nn.Module):
    """A learned density of each latent dimension on its (0, 1) scale, a mixture of logistics shared by every tile:
    the probability of a quantized latent is its mass over the quantization bin, so -log2 of it is the code's
    length under the density, the rate term R of R + lambda D training (the coder's own tables are counted after
    training; this density only shapes the latents while they are learned)."""

    def __init__(self, latent: int, components: int = 3) -> None:
        super().__init__()
        self.latent = latent
        self.weight_logits = torch.nn.Parameter(torch.zeros(latent, components))
        self.loc = torch.nn.Parameter(torch.linspace(0.25, 0.75, components).repeat(latent, 1))
        self.log_scale = torch.nn.Parameter(torch.full((latent, components), math.log(0.05)))

    def bits(self, z: torch.Tensor, step: torch.Tensor | float) -> torch.Tensor:
        """Mean over the batch of the bits of latents z (B x (rows * latent), quantized or noisy, a bin of width
        step each: a float, or B x 1 for one step per image)."""
        y = z.reshape(z.shape[0], -1, self.latent, 1)
        half = (torch.as_tensor(step, dtype=z.dtype, device=z.device) / 2).reshape(-1, 1, 1, 1)
        scale = torch.exp(self.log_scale)
        mass = torch.sigmoid((y + half - self.loc) / scale) - torch.sigmoid((y - half - self.loc) / scale)
        p = (torch.softmax(self.weight_logits, dim=1) * mass).sum(-1)
        return -torch.log2(p.clamp_min(1e-9)).sum() / z.shape[0]


class LatentDiscriminator(torch.nn.Module):
    """The adversarial autoencoder's second network: tells latent codes from samples of the prior."""

    def __init__(self, latent: int, width: int = 64) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(latent, width), torch.nn.ReLU(),
                                       torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)


def sample_prior(prior: tuple[str, float], shape: tuple[int, ...], gen: torch.Generator,
                 device: torch.device) -> torch.Tensor:
    """Samples of the prior the latents are pushed towards."""
    u = torch.rand(shape, generator=gen, device=device)
    return u if prior[0] == "uniform" else (u < prior[1]).float()


def discriminator_loss(disc: LatentDiscriminator, h: torch.Tensor, prior_sample: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss: prior samples are real, (detached) latent codes are fake."""
    ones = torch.ones(h.shape[0], device=h.device)
    return (F.binary_cross_entropy_with_logits(disc(prior_sample), ones)
            + F.binary_cross_entropy_with_logits(disc(h.detach()), torch.zeros_like(ones)))


def adversarial_penalty(disc: LatentDiscriminator, h: torch.Tensor, weight: float) -> torch.Tensor:
    """The encoder's loss for making its codes pass as prior samples."""
    return weight * F.binary_cross_entropy_with_logits(disc(h), torch.ones(h.shape[0], device=h.device))
