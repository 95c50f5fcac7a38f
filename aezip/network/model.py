"""The autoencoder: an MLP encoder with a sigmoid latent and an MLP decoder, and its configuration.

A tile model (config.patch > 0) runs the same two MLPs on rows of tiles (tiles.py): the encoder on each tile's
window, the decoder on each tile's neighbourhood of latents; an image's latents are then its tiles' latents in
row-major order (tiles x latent, flattened), so the rest of the codec sees one row of codes per image either way."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from aezip import kernels

from aezip.network import tiles
from aezip.network.config import AEConfig

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
        dims, rdims = config.layer_dims()
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(rdims[:-1], rdims[1:]))

    @property
    def encoder_activations(self) -> list[str]:
        return ["relu"] * len(self.config.hidden) + ["sigmoid"]

    def _encoder_params(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return [m.weight for m in self.encoder], [m.bias for m in self.encoder]

    def _rows(self, x: torch.Tensor, image_shape: tuple[int, ...] | None) -> torch.Tensor:
        """The encoder's input rows: the images themselves, or every tile's window."""
        cfg = self.config
        if not cfg.patch:
            return x
        return tiles.window_rows(x, image_shape or cfg.image_shape, cfg.patch, cfg.margin)

    def encode(self, x: torch.Tensor, backend: str | None = None,
               image_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """Latents in (0, 1) for images x (B x D, intensities in [0, 1], of image_shape: by default the
        config's), through the kernel dispatch; B x latent, or B x (tiles * latent) for a tile model."""
        w, b = self._encoder_params()
        h = kernels.encoder_forward(self._rows(x, image_shape), w, b, self.encoder_activations, backend=backend)
        return h.reshape(len(x), -1)

    def codes(self, x: torch.Tensor, backend: str | None = None,
              image_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """Integer latent codes 0..levels-1 (int32) through the fused quantize epilogue where it runs."""
        w, b = self._encoder_params()
        c = kernels.encoder_codes(self._rows(x, image_shape), w, b, self.encoder_activations, self.config.levels,
                                  backend=backend)
        return c.reshape(len(x), -1)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """The latent value a code stands for: code / (levels - 1)."""
        return codes.float() / (self.config.levels - 1)

    def decode_logits(self, z: torch.Tensor, image_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """Decoder output before the final sigmoid (B x D for images of image_shape, by default the config's)."""
        cfg = self.config
        shape = image_shape or cfg.image_shape
        h = tiles.context_rows(z, shape, cfg.patch, cfg.context) if cfg.patch else z
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = torch.relu(h)
        return tiles.fold(h, len(z), shape, cfg.patch) if cfg.patch else h

    def decode(self, z: torch.Tensor, image_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """Pixel intensities in (0, 1) for latents z: the sigmoid of the decoder's logits."""
        return torch.sigmoid(self.decode_logits(z, image_shape))

    def decoder_layers(self) -> DecoderLayers:
        return DecoderLayers([m.weight.detach() for m in self.decoder], [m.bias.detach() for m in self.decoder])
