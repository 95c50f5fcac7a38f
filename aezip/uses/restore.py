"""Restoring damaged images with the autoencoder: denoising, and filling masked pixels by searching the latent
space for the codes whose decodings best match the known pixels (images on the learned manifold; with a
convolutional model, the latents most probable under its own prior, `inpaint_conv`)."""
from __future__ import annotations

import numpy as np
import torch

from aezip.errors import ParameterError
from aezip.network.model import AutoEncoder
from aezip.files.modelcheck import BANK_MAX
from aezip.options import ESTIMATES
from aezip.tensors import to_unit


def denoise(model: AutoEncoder, images: np.ndarray, backend: str | None = None) -> np.ndarray:
    """D(E(x)) with the float latents (a model trained with --denoise maps noisy images to clean ones)."""
    with torch.no_grad():
        y = model.decode(model.encode(to_unit(images), backend))
    return _to_uint8(y, images.shape)


def _to_uint8(y: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """Intensities in [0, 1] to uint8 pixels of the given shape."""
    return torch.round(y * 255).clamp(0, 255).to(torch.uint8).numpy().reshape(shape)


def box_mask(image_shape: tuple[int, ...], spec: str) -> np.ndarray:
    """A boolean mask of one image (True = missing) from 'X,Y,W,H'."""
    try:
        x, y, w, h = (int(v) for v in spec.split(","))
    except ValueError:
        raise ParameterError("mask_box", f"{spec!r}: expected X,Y,W,H") from None
    rows, cols = image_shape[:2]
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > cols or y + h > rows:
        raise ParameterError("mask_box", f"{spec!r} does not fit images of {cols}x{rows}")
    mask = np.zeros(image_shape, bool)
    mask[y:y + h, x:x + w] = True
    return mask


def missing_pixels(images_shape: tuple[int, ...], *, mask: np.ndarray | None = None,
                   mask_box: str | None = None) -> np.ndarray:
    """Which pixels are missing (True): the box 'X,Y,W,H' in every image, or a mask of the images' shape or of one
    image's (nonzero = missing)."""
    if (mask is None) == (mask_box is None):
        raise ParameterError("mask", "and mask_box: give exactly one")
    if mask_box is not None:
        return box_mask(tuple(images_shape[1:]), mask_box)
    missing = np.asarray(mask) != 0
    if missing.shape[1:] != tuple(images_shape[1:]) or len(missing) not in (1, images_shape[0]):
        raise ParameterError("mask", f"of shape {missing.shape} does not fit images {tuple(images_shape)}")
    return missing


def code_bank(train_codes: np.ndarray, levels: int) -> np.ndarray:
    """The codes of (an evenly spaced subset of at most BANK_MAX of) the training images, in the narrowest int."""
    keep = np.linspace(0, len(train_codes) - 1, min(len(train_codes), BANK_MAX)).round().astype(int)  # distinct
    return train_codes[keep].astype(np.uint8 if levels <= 256 else np.uint16)


def inpaint(model: AutoEncoder, images: np.ndarray, missing: np.ndarray, bank: np.ndarray | None, *,
            candidates: int = 20, steps: int = 25, lr: float = 0.05, temperature: float = 1.0,
            estimate: str = "mean", batch: int = 256, backend: str | None = None) -> np.ndarray:
    """Keep the known pixels; fill the missing ones from the decodings of the latent codes that best match them.

    Start codes: the encoder's code of the image with its missing pixels set to 0, and the `candidates` bank codes
    whose decodings are nearest on the known pixels. Each is refined by `steps` Adam steps on its logit (z stays in
    (0, 1)) against the squared error on the known pixels. "nearest" fills from the best-matching refined code (a
    single image on the learned manifold); "mean" from the average of all of them with weights proportional to
    exp(-err / temperature), err summed over the known pixels with intensities in [0, 1] — an estimate
    of the posterior mean, which is what minimizes the expected squared error."""
    if estimate not in ESTIMATES:
        raise ParameterError("estimate", f"{estimate!r} is not one of {', '.join(ESTIMATES)}")
    for name, value in (("candidates", candidates), ("steps", steps)):
        if value < 0:
            raise ParameterError(name, f"must not be negative, got {value}")
    if temperature <= 0:
        raise ParameterError("temperature", f"must be positive, got {temperature}")
    missing = np.broadcast_to(missing, images.shape).reshape(len(images), -1)
    bank_z = bank_y = None
    if bank is not None and candidates > 0 and len(bank):
        with torch.no_grad():
            bank_z = model.dequantize(torch.from_numpy(bank.astype(np.int64)))
            bank_y = model.decode(bank_z)
    out = np.empty((len(images), missing.shape[1]), np.uint8)
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for i in range(0, len(images), batch):
            x = to_unit(images[i:i + batch])
            known = torch.from_numpy(~missing[i:i + batch]).float()
            y = _search(model, x, known, bank_z, bank_y, candidates, steps, lr, temperature, estimate, backend)
            out[i:i + batch] = _to_uint8(x * known + y * (1 - known), (len(x), -1))
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return out.reshape(images.shape)


def _search(model: AutoEncoder, x: torch.Tensor, known: torch.Tensor, bank_z: torch.Tensor | None,
            bank_y: torch.Tensor | None, candidates: int, steps: int, lr: float, temperature: float,
            estimate: str, backend: str | None) -> torch.Tensor:
    """The latent search for one batch: B x D decoded estimates."""
    with torch.no_grad():
        starts = [model.encode(x * known, backend)[:, None]]
        if bank_z is not None:
            # squared distance on the known pixels: sum_k x^2 - 2 (x*k) . y + k . y^2, one matmul per term
            d = ((x * known) ** 2).sum(1, keepdim=True) - 2 * (x * known) @ bank_y.T + known @ (bank_y ** 2).T
            nearest = d.topk(min(candidates, len(bank_z)), dim=1, largest=False).indices
            starts.append(bank_z[nearest])
        z0 = torch.cat(starts, 1).clamp(1e-3, 1 - 1e-3)                      # B x K x latent
    b, k = z0.shape[:2]
    logit = torch.logit(z0.reshape(b * k, -1)).requires_grad_()
    xs, ks = x.repeat_interleave(k, 0), known.repeat_interleave(k, 0)
    opt = torch.optim.Adam([logit], lr=lr)
    for step in range(steps + 1):                  # the last pass only measures the refined codes
        y = model.decode(torch.sigmoid(logit))
        err = (((y - xs) * ks) ** 2).sum(1)
        if step == steps:
            break
        opt.zero_grad()
        err.sum().backward()
        opt.step()
    with torch.no_grad():
        err, y = err.view(b, k), y.view(b, k, -1)
        if estimate == "nearest":
            return y[torch.arange(b), err.argmin(1)]
        w = torch.softmax(-err / temperature, dim=1)
        return (w[:, :, None] * y).sum(1)


CONV_ROUNDS = 3          # inpaint_conv: encode the image as filled so far, refine, fill; this many times


def inpaint_conv(mf, images: np.ndarray, missing: np.ndarray, *, steps: int = 25, rounds: int = CONV_ROUNDS,
                 batch: int = 64) -> np.ndarray:
    """Keep the known pixels; fill the missing ones from a convolutional model's top rate point (mf: a ConvModel).

    The missing pixels start at the mean of the image's known ones (per channel). Each round encodes the image as
    filled so far and refines its latents by `steps` of aezip.conv.refine on the rate point's objective with the
    squared error counted on the known pixels only: bits + lambda * MSE is, up to constants, minus the log of the
    prior the model learned for its latents and of a Gaussian likelihood of the known pixels, so the search finds
    the most probable latents that explain them (MAP). The missing pixels are then set to those latents'
    decoding (rounded as the coder rounds them)."""
    import torch.nn.functional as F

    from aezip.conv.layout import padded
    from aezip.conv.refine import refine_latents
    from aezip.network.tiles import hwc

    if steps < 0:
        raise ParameterError("steps", f"must not be negative, got {steps}")
    rate = mf.config.rates - 1
    net, lam = mf.encoder(rate), mf.config.lambdas[rate]
    h, w, c = hwc(images.shape[1:])
    ph, pw = padded(images.shape[1:])
    missing = np.broadcast_to(missing, images.shape)
    out = np.empty(images.shape, np.uint8)
    for i in range(0, len(images), batch):
        x = to_unit(images[i:i + batch]).view(-1, h, w, c).permute(0, 3, 1, 2)
        known = torch.from_numpy(~missing[i:i + batch]).reshape(len(x), h, w, c).permute(0, 3, 1, 2).float()
        fill = (x * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
        current = x * known + fill * (1 - known)
        for _ in range(rounds):
            xp = F.pad(current, (0, pw - w, 0, ph - h), mode="replicate")
            with torch.no_grad():
                y, z = net.encode(xp)
            y = refine_latents(net, xp, y, z, lam, (h, w), steps, known=F.pad(known, (0, pw - w, 0, ph - h)))
            with torch.no_grad():
                mean = net.hyper_prior(z)[0]
                decoded = net.dec(net.quantize(y, False, mean))[:, :, :h, :w] + 0.5
            current = x * known + decoded.clamp(0, 1) * (1 - known)
        out[i:i + batch] = _to_uint8(current.permute(0, 2, 3, 1), (len(x), *images.shape[1:]))
    return out
