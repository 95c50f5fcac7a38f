"""A chunk's pixel stream under `--max-error E`: the smallest of several coders that keep the bound, tagged.

The stream's first byte names its method:
  0  the context-adaptive coder (residual.py) at E, given the autoencoder's prediction;
  1  the same coder at E = 0: exact pixels are within E too, so E > 0 never costs more than E = 0;
  2  zstd -19 of the bins x // (2E+1), one byte each (no prediction needed);
  3  xz -9e of the same bins;
  4  the learned pixel model (pixelmodel.py) at E, given the autoencoder's prediction (models that have one);
  5  the same at E = 0 (tried for E > 0 only);
  6  the learned pixel model without latents (the model file's second pixel model, whose prediction is its base
     image) at E;
  7  the same at E = 0 (tried for E > 0 only);
  8  the gradient coder (gradient.py) at E: no model and no latents, a median predictor and contexts that adapt to
     the chunk (photographs unlike the model's training images);
  9  the mixing coder (mixing.py) at E: no model and no latents, a median or blended prediction whose residual is
     coded as binary decisions mixing fourteen adaptive contexts (the variant chosen on the chooser's sample). It is
     estimated only where the gradient coder's estimate comes within MIX_LOOK of the best, and --effort fast skips
     it (it decodes ~20x slower than the gradient coder);
 10  the mixing coder with latents (mixing.py) at E: each bin's value bit by bit, its probabilities mixing contexts
     of the autoencoder's prediction around the pixel and the decoded neighbours. Only --effort max tries it. Coder
     v6 gave its stream a head (the chunk's most frequent bin, decided first; whether the model's raster network
     is mixed in); v5 files' streams have none.
 11  the gradient coder at E = 0, 12 the mixing coder at E = 0, 13 the mixing coder with latents at E = 0 (coder
     v7; tried for E > 0 only, like 1, 5 and 7): with them every coder family has its exact form under E > 0, so
     E > 0 does not cost more than E = 0 where a family's E stream would (images of few gray levels, whose bins
     split what exact values keep regular: 17 levels, E = 1..4, were up to 26 % larger than lossless before).
The encoder does not code every model method in full: it estimates each method on every SAMPLE_STEP-th image of the
chunk (the context and gradient coders' ideal code lengths from their adaptive counts, the mixing coders' real
streams, the pixel models' ideal code length from their integer tables, best variant) and codes the whole chunk
only with those whose scaled estimate comes within CLOSE of the best, a pixel model only in its variant of least
ideal length on the whole chunk (choose_finalists; encode_pixels(exhaustive=True) codes every method and variant).
The choice is the encoder's alone: the decoder reads the method byte (and a pixel model's variant byte), so the
format is unchanged.
Methods 2, 3, 6, 7, 8 and 9 need no latents, so the chunk stores none (codec.py): the latents are kept only where they
lower the total, and a model that does not fit the data costs no more than a generic coder of its bins. The generic
coders are tried only where fast estimates on the same sample say they may win (worth_trying: zstd -3, then xz -0),
since zstd -19 and xz -9e cost far more time than they usually save.
Decompressed generic streams are bounded by the chunk's pixel count: a crafted stream cannot expand further.
"""
from __future__ import annotations

import io
import lzma
from dataclasses import dataclass
from typing import Collection

import numpy as np
import zstandard

from aezip.coding import bins
from aezip.coding.gradient import decode_gradient, encode_gradient, gradient_bits
from aezip.coding.mixing import (VARIANTS as MIXING_VARIANTS, decode_mixing, decode_mixing_latents, encode_mixing,
                                 encode_mixing_latents)
from aezip.coding.pixelcoding import VARIANTS, code_variant, decode_mlp, ideal_bytes
from aezip.coding.pixelmodel import PixelMLP, merge_classes, outside_sample, pass_classes
from aezip.coding.rasternet import RasterNet
from aezip.coding.residual import decode_residual, encode_residual, residual_bits

PIXEL_CODER = "tagged-pixel-mlp-alone-context-gradient-mixing-or-generic-v7"   # methods 0-13
PIXEL_CODER_V6 = "tagged-pixel-mlp-alone-context-gradient-mixing-or-generic-v6"   # methods 0-10; still decodes
PIXEL_CODER_V5 = "tagged-pixel-mlp-alone-context-gradient-mixing-or-generic-v5"   # method 10 unheaded; still decodes
PIXEL_CODER_V4 = "tagged-pixel-mlp-alone-context-gradient-or-generic-v4"   # methods 0-8; still decodes
PIXEL_CODER_V3 = "tagged-pixel-mlp-alone-context-or-generic-v3"   # methods 0-7; still decodes
PIXEL_CODER_V2 = "tagged-pixel-mlp-context-or-generic-v2"   # methods 0-5 only; still decodes
PIXEL_CODER_V1 = "tagged-context-or-generic-v1"   # methods 0-3 only; still decodes
(CONTEXT, CONTEXT_EXACT, ZSTD, XZ, MLP, MLP_EXACT, ALONE, ALONE_EXACT, GRADIENT, MIXING, MIXING_LATENTS, GRADIENT_EXACT,
 MIXING_EXACT, MIXING_LATENTS_EXACT) = range(14)
METHOD_NAMES = {CONTEXT: "context", CONTEXT_EXACT: "context, exact", ZSTD: "zstd -19", XZ: "xz -9e",
                MLP: "pixel-mlp", MLP_EXACT: "pixel-mlp, exact", ALONE: "pixel-mlp alone",
                ALONE_EXACT: "pixel-mlp alone, exact", GRADIENT: "gradient", MIXING: "mixing",
                MIXING_LATENTS: "mixing, latents", GRADIENT_EXACT: "gradient, exact", MIXING_EXACT: "mixing, exact",
                MIXING_LATENTS_EXACT: "mixing, latents, exact"}
# how many methods (0..k-1) each coder version knows: a stream naming a later one is refused by name
CODER_METHODS = {PIXEL_CODER: 14, PIXEL_CODER_V6: 11, PIXEL_CODER_V5: 11, PIXEL_CODER_V4: 9, PIXEL_CODER_V3: 8,
                 PIXEL_CODER_V2: 6, PIXEL_CODER_V1: 4}
NEEDS_LATENTS = (CONTEXT, CONTEXT_EXACT, MLP, MLP_EXACT, MIXING_LATENTS, MIXING_LATENTS_EXACT)
# the coders' E = 0 forms, tried under E > 0 only
EXACT_FORMS = (CONTEXT_EXACT, MLP_EXACT, ALONE_EXACT, GRADIENT_EXACT, MIXING_EXACT, MIXING_LATENTS_EXACT)
GENERIC_TRY = 1.15   # zstd -3 within this factor of the model's cost: try the generic coders
XZ_FAST_TRY = 1.2    # else xz -0 within this factor (where zstd -3 is within XZ_FAST_LOOK): try them too
XZ_FAST_LOOK = 1.6   # (xz -9e is ~1.1-1.2x smaller than xz -0 here, but up to 1.5x smaller than zstd -3 on RGB)
SAMPLE_STEP = 8      # the chooser codes every 8th image of a chunk with each model method and variant ...
SAMPLE_MIN = 64      # ... where that sample holds at least 64 images (smaller chunks: every one coded in full)
CLOSE = 1.0          # and codes in full the methods estimated within this factor of the best (then keeps the smaller)
VARIANT_CLOSE = 1.01 # a pixel model's variants within this factor of its best on the sample are costed on the chunk
MIX_LOOK = 1.3      # the mixing coder is estimated where the gradient coder's estimate is within this of the best
MIX_CLOSE = 1.08    # mixing coders are coded in full within this of the best: learning from a sample costs 4-7 %
EXACT_LOOK = 1.25   # pixel models at E = 0 are estimated under E > 0 where the context coder's E = 0 is within this
SECONDARY_THIN = 2  # ... and, like the model without latents, on every 2nd image of the sample (MLP: all of it)
FAST_METHODS = (CONTEXT, CONTEXT_EXACT, ZSTD, XZ, GRADIENT, GRADIENT_EXACT)   # --effort fast: no pixel model, no mixing
BEST_METHODS = tuple(m for m in METHOD_NAMES if m not in (MIXING_LATENTS, MIXING_LATENTS_EXACT))   # --effort best
ALL_METHODS = tuple(METHOD_NAMES)                                       # --effort max
_MIXERS = (MIXING, MIXING_LATENTS, MIXING_EXACT, MIXING_LATENTS_EXACT)
_ADAPTIVE = (CONTEXT, CONTEXT_EXACT, GRADIENT, MIXING, MIXING_LATENTS, GRADIENT_EXACT, MIXING_EXACT,
             MIXING_LATENTS_EXACT)   # no pixel model: streams estimate them
_IDEAL = (CONTEXT, CONTEXT_EXACT, GRADIENT, GRADIENT_EXACT)   # ... their ideal lengths on a sample


@dataclass
class PixelStream:
    """One chunk's coded pixels: the tagged bytes, the pixels the decoder will rebuild, and whether it needs latents."""

    data: bytes
    recon: np.ndarray

    @property
    def method(self) -> int:
        return self.data[0]

    @property
    def needs_latents(self) -> bool:
        return self.method in NEEDS_LATENTS


class _Coders:
    """A chunk's model methods, coded from a sample of its images or in full; pixel-model classes are run once
    per method and image set (pass_classes), then costed or coded per variant."""

    def __init__(self, x: np.ndarray, pred: np.ndarray | None, image_shape: tuple[int, ...], max_error: int,
                 prior: np.ndarray, mlp: PixelMLP | None, alone: PixelMLP | None, raster: RasterNet | None) -> None:
        self.x, self.pred, self.image_shape, self.max_error, self.prior = x, pred, image_shape, max_error, prior
        self.mlp, self.alone, self.raster = mlp, alone, raster
        self.cache: dict[tuple[int, int], tuple] = {}
        self.mixing_variants = {MIXING: MIXING_VARIANTS, MIXING_EXACT: MIXING_VARIANTS}

    def _error(self, method: int) -> int:
        return 0 if method in EXACT_FORMS else self.max_error

    def _classes(self, method: int, step: int) -> tuple:
        """(pixel model, pass_classes' passes, recon) of every step-th image under a pixel-model method. Each image's
        classes depend on that image alone, so the whole chunk's are the sample's merged with the other images'."""
        if (method, step) not in self.cache:
            sample = next((k for m, k in self.cache if m == method and k > 1), None) if step == 1 else None
            pick = np.arange(0, len(self.x), step) if sample is None else outside_sample(len(self.x), sample)
            model, base = ((self.mlp, self.pred[pick]) if method in (MLP, MLP_EXACT)
                           else (self.alone, self.alone.prediction(len(pick))))
            classes = pass_classes(model, self.x[pick], base, self.image_shape, self._error(method))
            if sample is not None:
                classes = merge_classes(self.cache[method, sample][1:], classes, sample, len(self.x))
            self.cache[method, step] = (model, *classes)
        return self.cache[method, step]

    def _context(self, method: int, step: int) -> PixelStream:
        """The real stream of a coder without a learned pixel model (context, gradient, mixing) on every step-th
        image."""
        if (method, -step) not in self.cache:
            x, e = self.x[::step], self._error(method)
            if method in (GRADIENT, GRADIENT_EXACT):
                data, recon = encode_gradient(x, self.image_shape, e)
            elif method in (MIXING, MIXING_EXACT):   # every variant on the sample (or a small chunk), its choice after
                data, recon = encode_mixing(x, self.image_shape, e, self.mixing_variants[method])
                self.mixing_variants[method] = self.mixing_variants[method] if not data else (data[0],)
            elif method in (MIXING_LATENTS, MIXING_LATENTS_EXACT):
                data, recon = encode_mixing_latents(x, self.pred[::step], self.image_shape, e, self.raster)
            else:
                data, recon = encode_residual(x, self.pred[::step], self.image_shape, e, self.prior)
            self.cache[method, -step] = (PixelStream(bytes([method]) + data, recon),)
        return self.cache[method, -step][0]

    def _sample_bytes(self, method: int, step: int) -> float:
        """The length of a coder's stream (no learned pixel model) on every step-th image: the context and gradient
        coders' ideal lengths where that is a sample (contextkernel.ideal_bits: within 0.07 % of the real streams
        on held-out MNIST, at a third of the time and less), else the real stream, which stream() then reuses."""
        if step == 1 or method not in _IDEAL:
            return len(self._context(method, step).data)
        x, e = self.x[::step], self._error(method)
        if method in (GRADIENT, GRADIENT_EXACT):
            return 1 + gradient_bits(x, self.image_shape, e) / 8
        return 1 + residual_bits(x, self.pred[::step], self.image_shape, e, self.prior) / 8

    def estimates(self, method: int, step: int,
                  variants: Collection[int] | None = None) -> dict[tuple[int, int], float]:
        """Bytes of each (method, variant) for every step-th image, scaled to the chunk: a coder's stream
        (_sample_bytes), the pixel models' ideal code lengths (ideal_bytes) of `variants` (default: all)."""
        scale = len(self.x) / len(self.x[::step])
        if method in _ADAPTIVE:
            return {(method, -1): self._sample_bytes(method, step) * scale}
        model, passes, _ = self._classes(method, step)
        return {(method, v): (1 + ideal_bytes(model, passes, self._error(method), v)) * scale
                for v in (range(len(VARIANTS)) if variants is None else variants)}

    def stream(self, method: int, variant: int) -> PixelStream:
        """The whole chunk's stream of one (method, variant)."""
        if method in _ADAPTIVE:
            return self._context(method, 1)
        model, passes, recon = self._classes(method, 1)
        return PixelStream(bytes([method]) + code_variant(model, passes, self._error(method), variant), recon)


def encode_pixels(x: np.ndarray, pred: np.ndarray | None, image_shape: tuple[int, ...], max_error: int,
                  prior: np.ndarray, latent_bytes: int, mlp: PixelMLP | None = None, alone: PixelMLP | None = None,
                  methods: Collection[int] | None = None, exhaustive: bool = False,
                  raster: RasterNet | None = None) -> PixelStream:
    """The smallest stream for x (n x D uint8) within max_error, among `methods` (default: BEST_METHODS) as
    chosen by choose_finalists (exhaustive: every method and variant coded in full); streams that need latents are
    charged `latent_bytes`. pred may be None where only methods without latents are allowed; the mixing coder with
    latents mixes in the model's raster network where it has one."""
    allowed = set(BEST_METHODS if methods is None else methods)
    if max_error == 0:
        allowed -= set(EXACT_FORMS)
    models = [m for m in (CONTEXT, CONTEXT_EXACT, GRADIENT, GRADIENT_EXACT, MIXING, MIXING_EXACT)
              + (MIXING_LATENTS, MIXING_LATENTS_EXACT) * (pred is not None)
              + (MLP, MLP_EXACT) * (mlp is not None)
              + (ALONE, ALONE_EXACT) * (alone is not None) if m in allowed]
    coders = _Coders(x, pred, image_shape, max_error, prior, mlp, alone, raster)
    keys = ([(m, v) for m in models for v in ((-1,) if m in _ADAPTIVE else range(len(VARIANTS)))]
            if exhaustive else choose_finalists(coders, models, latent_bytes))
    candidates = [coders.stream(m, v) for m, v in keys]
    cost = lambda s: len(s.data) + (latent_bytes if s.needs_latents else 0)   # noqa: E731
    binned = bins.to_bins(x, max_error).astype(np.uint8)
    if not allowed & {ZSTD, XZ} or candidates and not worth_trying(binned, cost(min(candidates, key=cost))):
        if not candidates:
            raise ValueError(f"none of the pixel coders {sorted(allowed)} is available")
        return min(candidates, key=cost)
    coded = binned.tobytes()
    recon = bins.values(binned, max_error).astype(np.uint8)
    if ZSTD in allowed:
        candidates.append(PixelStream(bytes([ZSTD]) + zstandard.ZstdCompressor(level=19).compress(coded), recon))
    if XZ in allowed:
        candidates.append(PixelStream(bytes([XZ]) + lzma.compress(coded, preset=9 | lzma.PRESET_EXTREME), recon))
    return min(candidates, key=cost)


def choose_finalists(coders: _Coders, models: Collection[int], latent_bytes: int) -> list[tuple[int, int]]:
    """The (method, variant)s worth coding in full. Methods: the only one, or those whose best estimate
    (_Coders.estimates on the chooser's sample, sample_step) plus the latents they need comes within CLOSE of the
    best (the mixing coder: MIX_CLOSE), the mixing coder estimated only where the gradient coder's comes within
    MIX_LOOK of the best of the others (where both are allowed). The exact forms under E > 0: the pixel models at
    E = 0 only where the context coder at E = 0 comes within EXACT_LOOK of the context coder at E (where both are
    allowed): where coding bins saves the context coder more than that, it saves the pixel models more still
    (held-out MNIST at E = 4: the context coder 1.58x, the pixel models 1.7-1.9x); the mixing coder with latents at
    E = 0 likewise by the pixel model's gain where it was estimated (else the context coder's); the mixing coder at
    E = 0 by the gradient coder's gain, and where the gradient coder at E = 0 comes within MIX_LOOK of the best of
    the others. The pixel models other than MLP (the primary one,
    whose sample the whole chunk reuses) are estimated on every SECONDARY_THIN-th image of the sample: on held-out
    MNIST the same choices, 12 % less encoding time at E = 0. A pixel model's variant: of those within
    VARIANT_CLOSE of its best on the sample, the one of least ideal length on the whole chunk (adaptation is worth
    more on a whole chunk than on a sample)."""
    step = sample_step(len(coders.x))
    thin = step * SECONDARY_THIN if step > 1 else 1   # the pixel models other than MLP: a thinner sample
    gated = (MIXING, MIXING_EXACT, MLP_EXACT, ALONE_EXACT, MIXING_LATENTS_EXACT)
    est = {m: coders.estimates(m, thin if m == ALONE else step) for m in models if m not in gated}
    context_gain, gradient_gain = _gain(est, CONTEXT, CONTEXT_EXACT), _gain(est, GRADIENT, GRADIENT_EXACT)
    for m in (MLP_EXACT, ALONE_EXACT):   # the pixel models at E = 0 only where the context coder's E bought little
        if m in models and context_gain <= EXACT_LOOK:
            est[m] = coders.estimates(m, thin)
    latent_gain = _gain(est, MLP, MLP_EXACT) if MLP_EXACT in est else context_gain   # the pixel model's, where known
    if MIXING_LATENTS_EXACT in models and latent_gain <= EXACT_LOOK:   # method 10 at E = 0: latents too
        est[MIXING_LATENTS_EXACT] = coders.estimates(MIXING_LATENTS_EXACT, step)
    cost = _costs(est, latent_bytes)   # the gradient coder stands in for its mixing kin at E and at E = 0
    for m, kin in ((MIXING, GRADIENT), (MIXING_EXACT, GRADIENT_EXACT)):
        if m in models and (kin not in cost or cost[kin] <= MIX_LOOK * min(cost.values())) \
                and (m == MIXING or gradient_gain <= EXACT_LOOK):
            est[m] = coders.estimates(m, step)
    models = list(est)
    if len(models) > 1:
        cost = _costs(est, latent_bytes)
        models = [m for m, c in cost.items()
                  if c <= (MIX_CLOSE if m in _MIXERS else CLOSE) * min(cost.values())]
    out = []
    for m in sorted(models):
        near = [k for k, v in est[m].items() if v <= VARIANT_CLOSE * min(est[m].values())]
        full = coders.estimates(m, 1, [v for _, v in near]) if len(near) > 1 else {near[0]: 0.0}
        out.append(min(full, key=full.__getitem__))
    return out


def _gain(est: dict[int, dict[tuple[int, int], float]], at_e: int, exact: int) -> float:
    """How many times smaller a coder's estimate at E is than at E = 0 (1.0 where either is not estimated)."""
    if at_e not in est or exact not in est:
        return 1.0
    return min(est[exact].values()) / max(min(est[at_e].values()), 1.0)


def _costs(est: dict[int, dict[tuple[int, int], float]], latent_bytes: int) -> dict[int, float]:
    """Each method's best estimate plus the latents it needs."""
    return {m: min(e.values()) + (latent_bytes if m in NEEDS_LATENTS else 0) for m, e in est.items()}


def sample_step(n: int) -> int:
    """The chooser's sample of a chunk of n images is every sample_step(n)-th image: SAMPLE_STEP where that sample
    holds at least SAMPLE_MIN images, else 1 (every image)."""
    return SAMPLE_STEP if n >= SAMPLE_STEP * SAMPLE_MIN else 1


def worth_trying(binned: np.ndarray, model_cost: int) -> bool:
    """Whether zstd -19 or xz -9e of a chunk's bins (n x D uint8) may beat a model stream of model_cost bytes, by
    fast estimates: zstd -3 and xz -0 of the chooser's sample of its images (sample_step), scaled to the chunk."""
    sample = binned[::sample_step(len(binned))]
    coded, scale = sample.tobytes(), len(binned) / len(sample)
    fast = len(zstandard.ZstdCompressor(level=3).compress(coded)) * scale
    if fast <= GENERIC_TRY * model_cost:
        return True
    return (fast <= XZ_FAST_LOOK * model_cost
            and len(lzma.compress(coded, preset=0)) * scale <= XZ_FAST_TRY * model_cost)


def _generic_decode(method: int, body: bytes, size: int) -> bytes:
    """The bins of a zstd or xz pixel stream, reading at most one byte more than the chunk holds, whatever the
    frame claims."""
    if method == ZSTD:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)) as reader:
            return reader.read(size + 1)
    d = lzma.LZMADecompressor()
    raw = d.decompress(body, max_length=size)
    if not d.eof:
        raise ValueError("xz pixel stream longer than its chunk")
    return raw


def decode_pixels(data: bytes, pred: np.ndarray | None, shape: tuple[int, int], image_shape: tuple[int, ...],
                  max_error: int, prior: np.ndarray, mlp: PixelMLP | None = None,
                  alone: PixelMLP | None = None, coder: str = PIXEL_CODER, raster: RasterNet | None = None) -> np.ndarray:
    """Inverse of encode_pixels: the decoded pixels (n x D uint8); pred may be None for methods without latents,
    mlp, alone and raster None when the model (or the file's coder version) has no such part; coder is the file's
    coder version (a stream naming a method it predates is refused)."""
    if not data:
        raise ValueError("empty pixel stream")
    method, body = data[0], data[1:]
    if method in METHOD_NAMES and method >= CODER_METHODS[coder]:
        raise ValueError(f"a {METHOD_NAMES[method]} pixel stream in a file whose coder ({coder}) predates it")
    e = 0 if method in EXACT_FORMS else max_error
    if method in (GRADIENT, GRADIENT_EXACT):
        return decode_gradient(body, shape, image_shape, e)
    if method in (MIXING, MIXING_EXACT):
        return decode_mixing(body, shape, image_shape, e)
    if method in (MIXING_LATENTS, MIXING_LATENTS_EXACT):
        if pred is None:
            raise ValueError("a mixing-with-latents pixel stream without latents")
        return decode_mixing_latents(body, pred, image_shape, e, raster, headed=coder != PIXEL_CODER_V5)
    if method in (ALONE, ALONE_EXACT):
        if alone is None:
            raise ValueError("a stream of the pixel model without latents, but the model has none")
        return decode_mlp(alone, body, alone.prediction(shape[0]), image_shape, e)
    if method in (MLP, MLP_EXACT):
        if mlp is None or pred is None:
            raise ValueError("a pixel-model stream, but no pixel model or no latents to go with it")
        return decode_mlp(mlp, body, pred, image_shape, e)
    if method in (CONTEXT, CONTEXT_EXACT):
        if pred is None:
            raise ValueError("a context-coded pixel stream without latents")
        return decode_residual(body, pred, image_shape, e, prior)
    size = shape[0] * shape[1]
    if method not in (ZSTD, XZ):
        raise ValueError(f"unknown pixel stream method {method}")
    try:
        raw = _generic_decode(method, body, size)
    except (lzma.LZMAError, zstandard.ZstdError) as exc:
        raise ValueError(f"damaged {METHOD_NAMES[method]} pixel stream ({exc})") from None
    if len(raw) != size:
        raise ValueError("generic pixel stream of the wrong size")
    coded = np.frombuffer(raw, np.uint8)
    if int(coded.max(initial=0)) >= bins.geometry(max_error)[1]:
        raise ValueError("generic pixel stream holds bins out of range")
    return bins.values(coded.reshape(shape), max_error).astype(np.uint8)
