"""The autoencoder: an MLP encoder with a sigmoid latent and an MLP decoder, and its configuration."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from . import kernels
from .config import AEConfig

__all__ = ["AEConfig", "AutoEncoder", "DecoderLayers"]


@dataclass
class DecoderLayers:
    """The decoder's float parameters in nn.Linear layout, first layer first."""

    weights: list[torch.Tensor] = field(default_factory=list)
    biases: list[torch.Tensor] = field(default_factory=list)


class AutoEncoder(nn.Module):
    """AE(x) = D(E(x)): E ends in a sigmoid (latents in (0, 1)); D ends in logits of pixel intensities."""

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        dims = [config.input_dim, *config.hidden, config.latent]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        rdims = dims[::-1]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(rdims[:-1], rdims[1:]))

    @property
    def encoder_activations(self) -> list[str]:
        return ["relu"] * len(self.config.hidden) + ["sigmoid"]

    def _encoder_params(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return [m.weight for m in self.encoder], [m.bias for m in self.encoder]

    def encode(self, x: torch.Tensor, backend: str | None = None) -> torch.Tensor:
        """Latents in (0, 1) for inputs x (B x D, intensities in [0, 1]), through the kernel dispatch."""
        w, b = self._encoder_params()
        return kernels.encoder_forward(x, w, b, self.encoder_activations, backend=backend)

    def codes(self, x: torch.Tensor, backend: str | None = None) -> torch.Tensor:
        """Integer latent codes 0..levels-1 (int32) through the fused quantize epilogue where it runs."""
        w, b = self._encoder_params()
        return kernels.encoder_codes(x, w, b, self.encoder_activations, self.config.levels, backend=backend)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """The latent value a code stands for: code / (levels - 1)."""
        return codes.float() / (self.config.levels - 1)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the final sigmoid."""
        h = z
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = torch.relu(h)
        return h

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel intensities in (0, 1) for latents z: the sigmoid of the decoder's logits."""
        return torch.sigmoid(self.decode_logits(z))

    def decoder_layers(self) -> DecoderLayers:
        return DecoderLayers([m.weight.detach() for m in self.decoder], [m.bias.detach() for m in self.decoder])
