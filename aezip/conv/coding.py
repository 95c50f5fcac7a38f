"""Chunks of images through a convolutional codec's rate point, to bytes and back.

Encoding (float: Triton or torch, aezip.kernels.conv_layer): each image is padded right and bottom to multiples of STRIDE by repeating its edge pixels,
analysed to latents y and hyper-latents z = round(h(y)) by the rate point's float network; aezip.coding.hyperprior
codes z and the residuals round(y - mean) into one ANS stream for the whole chunk. The encoder may run on any device:
whatever latents it picks, the bytes say exactly what the decoder rebuilds.

Decoding (integers, numpy only): the stream gives back z and the latents, the fixed-point synthesis
(aezip.coding.intconv) their pixels, cropped to H x W; the same integers on every machine. The encoder runs the same
integer synthesis, so it knows the decoded pixels (their checksum and error go into the file)."""
from __future__ import annotations

import numpy as np

from aezip.coding import hyperprior
from aezip.errors import FormatError, ParameterError
from aezip.files.header import MAX_CHUNK_SYMBOLS
from aezip.coding.intconv import integer_synthesize
from aezip.conv.integer import RatePoint
from aezip.conv.layout import STRIDE, padded
from aezip.conv.model import ConvConfig, ConvModel
from aezip.network.tiles import hwc

SYNTH_BLOCK = 1 << 18     # padded pixels synthesized together: bounds the decoder's work arrays (~140 MB at n=64)
ENCODE_BLOCK = 64         # images analysed (and refined) together


def hyper_shape(n: int, image_shape: tuple[int, ...], z: int) -> tuple[int, int, int, int]:
    """The hyper-latents' shape of n images: N x H/16 x W/16 x Z of the padded images."""
    h, w = padded(image_shape)
    return n, h // STRIDE, w // STRIDE, z


def check_rate(quality: object, config: ConvConfig) -> int:
    """The rate point (`--quality`, 1..the model's rate points, lowest rate first; None: the highest) to code with."""
    if quality is None:
        return config.rates
    if not isinstance(quality, (int, np.integer)) or isinstance(quality, bool) or not 1 <= quality <= config.rates:
        raise ParameterError("quality", f"must be an integer in 1..{config.rates} (the model's rate points; lower is "
                                        f"smaller and coarser), got {quality!r}")
    return int(quality)


def chunk_limit(config: ConvConfig, image_shape: tuple[int, ...]) -> int:
    """The most images of this shape one chunk may hold: its latents stay within MAX_CHUNK_SYMBOLS."""
    h, w = padded(image_shape)
    return max(1, MAX_CHUNK_SYMBOLS // (h * w // 64 * config.m))


def _synthesize(point: RatePoint, latents: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """uint8 pixels n x (H * W * C) of integer latents n x h x w x M, cropped, a block of images at a time."""
    h, w, c = hwc(image_shape)
    ph, pw = padded(image_shape)
    step = max(1, SYNTH_BLOCK // (ph * pw))
    out = np.empty((len(latents), h * w * c), np.uint8)
    for i in range(0, len(latents), step):
        pixels = integer_synthesize(point.synthesis, latents[i:i + step])
        out[i:i + step] = pixels[:, :h, :w, :].reshape(len(pixels), -1)
    return out


def analyse(mf: ConvModel, rate: int, chunk: np.ndarray, device="cpu", backend: str | None = None,
            refine: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(float latents y, N x h x w x M; rounded hyper-latents z, N x h' x w' x Z), float64, of uint8 images
    n x H x W[ x C] edge-padded, at rate point `rate`, through the kernel dispatch (`backend`: aezip.kernels' choice);
    `refine` (`--effort max`) refines each image's y for the rate point's objective (aezip.conv.refine)."""
    import torch
    import torch.nn.functional as F

    from aezip.conv.refine import refine_latents
    from aezip.tensors import to_unit

    h, w, c = hwc(chunk.shape[1:])
    ph, pw = padded(chunk.shape[1:])
    net = mf.encoder(rate).to(device)
    x = to_unit(chunk).view(len(chunk), h, w, c).permute(0, 3, 1, 2).to(device)
    with torch.no_grad():
        x = F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")
        parts = []
        for i in range(0, len(x), ENCODE_BLOCK):
            y, z = net.encode(x[i:i + ENCODE_BLOCK], backend)
            if refine:
                y = refine_latents(net, x[i:i + ENCODE_BLOCK], y, z, mf.config.lambdas[rate], (h, w))
            parts.append((y, z))
        y, z = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    return y.permute(0, 2, 3, 1).double().cpu().numpy(), z.permute(0, 2, 3, 1).double().cpu().numpy()


def encode_images(mf: ConvModel, rate: int, chunk: np.ndarray, device="cpu", backend: str | None = None,
                  refine: bool = False) -> tuple[bytes, np.ndarray]:
    """(the latent stream, the decoded pixels n x H*W*C) of uint8 images n x H x W[ x C] at rate point `rate`
    (`analyse` gives the latents)."""
    data, _, pixels = encode_parts(mf, rate, chunk, [], device, backend, refine)
    return data, pixels


def encode_parts(mf: ConvModel, rate: int, images: np.ndarray, cuts: list[int], device="cpu",
                 backend: str | None = None, refine: bool = False) -> tuple[bytes, list[bytes], np.ndarray]:
    """(the latent stream of all `images` as one chunk, that of each part between consecutive `cuts`, the decoded
    pixels n x H*W*C) at rate point `rate`: the images analysed once (each image's latents and pixels do not depend
    on the chunk it is coded in), for aezip.mixed's two grains."""
    y, z = analyse(mf, rate, images, device, backend, refine)
    point = mf.points[rate]
    whole, latents = hyperprior.encode(y, z, point.hyper, point.tables)
    parts = []
    for a, b in zip(cuts, cuts[1:]):
        data, part = hyperprior.encode(y[a:b], z[a:b], point.hyper, point.tables)
        if not np.array_equal(part, latents[a:b]):
            raise AssertionError("a part's quantized latents differ from the whole's")
        parts.append(data)
    return whole, parts, _synthesize(point, latents, images.shape[1:])


def features(mf: ConvModel, rate: int, chunk: np.ndarray, quantized: bool = False, backend: str | None = None
             ) -> np.ndarray:
    """float32 features n x (h * w * M) of uint8 images n x H x W[ x C] (all of one shape) at rate point `rate`:
    the analysis' latents y, or (quantized) the rounded latents the decoder synthesizes from, mean + round(y -
    mean), in position-major order (h, w, then the M channels)."""
    y, z = analyse(mf, rate, chunk, "cpu", backend)
    if quantized:
        point = mf.points[rate]
        y = hyperprior.rounded_latents(y, z, point.hyper, point.tables) * 2.0 ** -hyperprior.MEAN_FRAC_BITS
    return y.reshape(len(chunk), -1).astype(np.float32)


def decode_images(mf: ConvModel, rate: int, data: bytes, n: int, image_shape: tuple[int, ...]) -> np.ndarray:
    """The pixels (uint8, n x H*W*C) of n images of image_shape from their latent stream at rate point `rate`."""
    point = mf.points[rate]
    if point is None:
        raise FormatError(f"{mf.path or 'the embedded model'}: its decode-side model holds no rate point {rate + 1}")
    latents = hyperprior.decode(data, hyper_shape(n, image_shape, mf.config.z), point.hyper, point.tables)
    return _synthesize(point, latents, image_shape)

