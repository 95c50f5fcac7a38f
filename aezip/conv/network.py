"""The float convolutional codec (after Balle et al. 2017/2018): three 5x5 stride-2 convolutions with GDN down to
H/8 x W/8 x M latents, the mirror image with inverse GDN back to pixels, and a mean-scale Gaussian prior on the
latents conditioned on an H/16 x W/16 x Z hyper-latent with a factorized (logistic-mixture) prior.

G such codecs with different rate-distortion weights train as one network of grouped convolutions: one forward pass
and one set of kernel launches trains the whole rate ladder, and group g is rate point g of the model."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from aezip import kernels

LOG2 = math.log(2.0)
SCALE_FLOOR = 0.11        # the smallest scale of the latents' Gaussians (aezip.coding.hyperprior.SCALE_MIN)


class GDN(nn.Module):
    """Generalized divisive normalisation per group: y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (inverse: *)."""

    def __init__(self, channels: int, groups: int, inverse: bool = False):
        super().__init__()
        per = channels // groups
        self.groups, self.inverse = groups, inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(math.sqrt(0.1) * torch.eye(per).repeat(groups, 1).view(channels, per, 1, 1))

    def effective(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma^2 per group, C x C/G; beta^2 + 1e-6, C): the parameters the normalisation uses."""
        return self.gamma[..., 0, 0] ** 2, self.beta ** 2 + 1e-6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.effective()
        norm = F.conv2d(x * x, gamma[..., None, None], beta, groups=self.groups)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


def conv(cin: int, cout: int, groups: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin * groups, cout * groups, k, stride, k // 2, groups=groups)


def deconv(cin: int, cout: int, groups: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin * groups, cout * groups, k, stride, k // 2, output_padding=stride - 1,
                              groups=groups)


class LogisticMixture(nn.Module):
    """Factorized prior: per channel, a mixture of K logistics integrated over unit bins."""

    def __init__(self, channels: int, k: int = 3):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(channels, k))
        self.means = nn.Parameter(torch.linspace(-1, 1, k).repeat(channels, 1))
        self.log_scales = nn.Parameter(torch.zeros(channels, k))

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """P(bin around y) for y (B x C x H x W)."""
        w = torch.softmax(self.logits, -1)[None, :, None, None, :]
        mu, s = self.means[None, :, None, None, :], torch.exp(self.log_scales)[None, :, None, None, :]
        y = y.unsqueeze(-1)
        p = torch.sigmoid((y + 0.5 - mu) / s) - torch.sigmoid((y - 0.5 - mu) / s)
        return (w * p).sum(-1).clamp_min(1e-9)

    def table(self, lo: int, hi: int) -> torch.Tensor:
        """P(v) for v = lo..hi per channel: C x (hi - lo + 1)."""
        values = torch.arange(lo, hi + 1, dtype=torch.float32, device=self.logits.device)
        return self.likelihood(values.view(-1, 1, 1, 1).expand(-1, len(self.logits), 1, 1))[..., 0, 0].T


def gaussian_likelihood(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """P(unit bin around y) under N(mean, scale^2), the upper tail reflected for accuracy."""
    v = (y - mean).abs()
    upper = torch.special.ndtr((0.5 - v) / scale)
    lower = torch.special.ndtr((-0.5 - v) / scale)
    return (upper - lower).clamp_min(1e-9)


class ConvCodec(nn.Module):
    """G conv autoencoders with learned priors (`hyper`: mean-scale hyperprior; `factorized`: a per-channel mixture
    on the latents), trained as one grouped network; n hidden channels, m latent channels, z hyper-latent channels,
    all per group."""

    def __init__(self, channels: int, groups: int, prior: str = "hyper", n: int = 64, m: int = 64, z: int = 32):
        super().__init__()
        g = groups
        self.g, self.c, self.n, self.m, self.z, self.prior = g, channels, n, m, z, prior
        self.enc = nn.Sequential(conv(channels, n, g), GDN(n * g, g), conv(n, n, g), GDN(n * g, g), conv(n, m, g))
        self.dec = nn.Sequential(deconv(m, n, g), GDN(n * g, g, inverse=True), deconv(n, n, g),
                                 GDN(n * g, g, inverse=True), deconv(n, channels, g))
        if prior == "hyper":
            self.h_enc = nn.Sequential(conv(m, n, g, 3, 1), nn.ReLU(), conv(n, z, g))
            self.h_dec = nn.Sequential(deconv(z, n, g), nn.ReLU(), conv(n, 2 * m, g, 3, 1))
            self.z_prior = LogisticMixture(z * g)
        elif prior == "factorized":
            self.y_prior = LogisticMixture(m * g)
        else:
            raise ValueError(f"prior {prior!r} is not hyper or factorized")

    @staticmethod
    def quantize(y: torch.Tensor, training: bool, center: torch.Tensor | float = 0.0) -> torch.Tensor:
        """y with uniform noise in training, else rounded about `center` (center + round(y - center): the coder's
        rounding of the latents about their means)."""
        if training:
            return y + torch.empty_like(y).uniform_(-0.5, 0.5)
        return torch.round(y - center) + center

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """The latents of every group, B x G*M x H/8 x W/8, for images x (B x C x H x W in [0, 1])."""
        return self.enc(x.repeat(1, self.g, 1, 1) - 0.5)

    def encode(self, x: torch.Tensor, backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(latents y, rounded hyper-latents z) of a one-group codec (a rate point, `single`) for images x
        (B x C x H x W in [0, 1], H and W multiples of 16), each convolution with its GDN or ReLU one call of the
        kernel dispatch (aezip.kernels.conv_layer: a Triton GEMM over the unfolded windows, or the torch reference)."""
        if self.g != 1 or self.prior != "hyper":
            raise ValueError("encode runs one rate point with a hyperprior: take model.single(g) first")
        backend = backend or "auto"
        h = x - 0.5
        for i in (0, 2, 4):
            layer = self.enc[i]
            gdn = self.enc[i + 1] if i < 4 else None
            gamma, beta = gdn.effective() if gdn else (None, None)
            h = kernels.conv_layer(h, layer.weight, layer.bias, layer.stride[0], "gdn" if gdn else "identity",
                                   gamma, beta, backend=backend)
        first, _, second = self.h_enc
        z = kernels.conv_layer(h, first.weight, first.bias, first.stride[0], "relu", backend=backend)
        z = kernels.conv_layer(z, second.weight, second.bias, second.stride[0], "identity", backend=backend)
        return h, torch.round(z)

    def hyper_prior(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the latents' Gaussian means and scales, B x G*M x h x w, that the hyper-synthesis gives hyper-latents
        z_hat (rounded, or noisy in training); z_hat's bits per image and group, B x G)."""
        b = len(z_hat)
        params = self.h_dec(z_hat)
        shape = (b, self.g * self.m, *params.shape[2:])
        params = params.view(b, self.g, 2, self.m, *params.shape[2:])
        scale = F.softplus(params[:, :, 1].reshape(shape)).clamp_min(SCALE_FLOOR)
        z_bits = -torch.log(self.z_prior.likelihood(z_hat)).reshape(b, self.g, -1).sum(-1) / LOG2
        return params[:, :, 0].reshape(shape), scale, z_bits

    def latent_bits(self, y_hat: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Bits per image and group (B x G) of latents y_hat under the hyperprior's Gaussians."""
        return -torch.log(gaussian_likelihood(y_hat, mean, scale)).reshape(len(y_hat), self.g, -1).sum(-1) / LOG2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: B x C x H x W in [0, 1] -> (reconstructions B x G x C x H x W, bits per image B x G, the quantized
        latents the synthesis took, B x G*M x h x w)."""
        b = len(x)
        y = self.analysis(x)
        if self.prior == "hyper":
            z = self.h_enc(y)
            z_hat = self.quantize(z, self.training)
            mean, scale, bits = self.hyper_prior(z_hat)
            y_hat = self.quantize(y, self.training, mean)
            bits = bits + self.latent_bits(y_hat, mean, scale)
        else:
            y_hat = self.quantize(y, self.training)
            bits = -torch.log(self.y_prior.likelihood(y_hat)).view(b, self.g, -1).sum(-1) / LOG2
        x_hat = self.dec(y_hat).view(b, self.g, self.c, *x.shape[2:]) + 0.5
        return x_hat, bits, y_hat

    def single(self, g: int) -> "ConvCodec":
        """Rate point g alone: a one-group codec holding group g's parameters (every grouped parameter's first axis
        is G blocks, one per group), in eval mode."""
        one = ConvCodec(self.c, 1, self.prior, self.n, self.m, self.z)
        one.load_state_dict({k: v.detach().reshape(self.g, -1, *v.shape[1:])[g].clone()
                             for k, v in self.state_dict().items()})
        return one.eval()
