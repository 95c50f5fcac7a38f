"""`aezip encode --psnr T --per-chunk`: a convolutional model's file whose chunks each take their own setting, the
mixture of settings that reaches the target PSNR in the fewest bytes.

One setting for the whole file (aezip.target) leaves bytes behind wherever the curve of a model's settings in rate
and squared error is not convex: between two rate points, coding most images at one and the rest at the other
reaches the PSNR in between for fewer bytes than any single setting there. Here every chunk of `chunk_size` images
(CHUNK: small, so the choice is fine-grained; each chunk costs ~34 bytes of framing) is coded at every candidate
setting: each rate point lossy, and each rate point under each error bound of `bounds` (BOUNDS, 0 among them). Each
candidate's bytes and squared error are measured on its real payload, and the file takes one per chunk, solving

    minimise  sum of bytes  subject to  sum of squared errors <= S,

S the largest integer whose PSNR (10 log10(255^2 x samples / S), the one `aezip encode` reports) reaches T. A
Lagrange multiplier mu prices squared error in bytes: each chunk takes the candidate minimising bytes + mu x SSE, and
the smallest mu whose choice fits S is found by bisection; what S has left over is then spent greedily, switching
chunks to smaller candidates, most bytes saved per unit of error first. That is a heuristic for a knapsack problem
(optimal at the error it reaches, not always at S); the file also never exceeds any one setting used for every
chunk alike, which is among the choices compared. Every target is reachable (E = 0 is lossless), and the file's
measured PSNR is at least T by construction.

With `adapt`, each rate point's encoder is fine-tuned on the first images (as `encode --adapt` does for one) and with
`adapt_decoder` its decoder's biases too: the file carries a patch for each rate point whose latents some chunk
decodes (aezip.conv.patch.pack_patches). Those patches' bytes, and an embedded model's (--embed-model: the rate
points used, the max-error coder where a chunk is bounded), are costs of the set of rate points the file uses, so
the choice is made for every such set and the smallest file kept.

The file: header `entropy` PER_CHUNK_CODER, no quality and no max error; each chunk's payload starts with its
setting (aezip.chunks.setting_prefix) and is otherwise the payload a one-setting file has. Decoding needs nothing
new but reading that prefix. Memory: every candidate's payload is held until the choice, about
(rate points x (1 + bounds)) compressed copies of the data.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import time
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from aezip.chunks import chunk_result, setting_prefix, unpack_payload
from aezip.codec import CodecReport, Progress, file_header, image_channels, rechunk
from aezip.conv import coding as conv_coding
from aezip.conv.layout import PER_CHUNK_CODER
from aezip.conv.model import is_conv
from aezip.errors import ParameterError
from aezip.files.atomic import atomic_path, check_output
from aezip.files.container import ContainerWriter
from aezip.files.data import Dataset
from aezip.files.header import default_chunk_size, image_samples
from aezip.files.modelfile import CodecModel
from aezip.metrics import psnr_from_mse

CHUNK = 64            # images per chunk: the choice's grain (finer chunks cost the pixel coders, which learn per chunk)
BOUNDS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 40, 48, 64)   # tried at each rate point


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One chunk coded at one setting: its payload without the setting prefix, squared error and max error."""

    rate: int                  # the rate point, 1..R
    max_error: int | None
    body: bytes
    sse: int
    max_abs: int
    latents: bool              # whether decoding reads the rate point's latents (and its patch)

    @property
    def size(self) -> int:
        return len(self.body) + (1 if self.max_error is None else 2)


@dataclasses.dataclass
class Candidates:
    """Every chunk's candidates, and what writing any choice of them needs."""

    chunks: list[list[Candidate]]
    images: list[int]                  # per chunk
    mf: CodecModel                     # the model (adapted where asked: its patched rate points)
    original: CodecModel               # the model file's, whose decode side an embedded model is
    patches: dict[int, bytes]          # rate point (1..R) -> its decoder patch (adapt_decoder)
    adapted: dict | None               # the header's provenance record
    chunk_size: int
    shape: tuple[int, ...]
    backend: str
    search: bool
    seconds: float
    cache: dict = dataclasses.field(default_factory=dict)    # sections() by (rate points, bounded, embedded)

    @property
    def samples(self) -> int:
        return sum(self.images) * image_samples(self.shape)


def check_per_chunk(mf: CodecModel, jobs: int) -> None:
    """Per-chunk settings are for convolutional models, coded in one process."""
    if not is_conv(mf):
        raise ParameterError("per_chunk", "mixes a convolutional model's rate points and bounds (aezip train --arch "
                                          "conv); this model is an MLP's")
    if jobs != 1:
        raise ParameterError("per_chunk", "codes every candidate in one process: --jobs must be 1")


def code_candidates(dataset: Dataset, mf: CodecModel, *, chunk_size: int | None = None, bounds=BOUNDS,
                    image_range: tuple[int, int] = (0, None), backend: str | None = None, device: str = "auto",
                    pixel_methods: tuple[int, ...] | None = None, search: bool = False, adapt: int = 0,
                    adapt_decoder: bool = False, progress: Progress | None = None) -> Candidates:
    """Code every chunk of the dataset's images lo..hi-1 at every rate point, lossy and under each bound."""
    from aezip import kernels
    from aezip.codec import check_encode_args
    from aezip.tensors import resolve_device
    lo, hi = image_range
    hi = dataset.shape[0] if hi is None else hi
    shape = (hi - lo, *dataset.image_shape)
    chunk_size = check_encode_args(None, chunk_size or min(CHUNK, default_chunk_size(image_samples(shape))), shape,
                                   mf, adapt, adapt_decoder)
    if any(not 0 <= e <= 255 for e in bounds) or 0 not in bounds:
        raise ParameterError("bounds", f"must lie in 0..255 and hold 0 (lossless), got {tuple(bounds)}")
    dev = resolve_device(device)
    backend = kernels.resolve_backend(backend, dev)
    start = time.perf_counter()
    original, patches, adapted = mf, {}, None
    mf.model.to(dev)
    if adapt and hi > lo:
        mf, patches = _adapt_every_rate(mf, dataset, lo, hi, adapt, dev, adapt_decoder)
        adapted = {"steps": adapt, "images": min(hi - lo, default_chunk_size(image_samples(shape)))}
    out = Candidates([], [], mf, original, patches, adapted, chunk_size, shape, backend, search, 0.0)
    for chunk in rechunk(dataset.chunks(chunk_size), chunk_size, lo, hi):
        out.chunks.append(_chunk_candidates(mf, chunk, bounds, backend, dev, pixel_methods, search))
        out.images.append(len(chunk))
        if progress:
            progress(len(chunk))
    out.seconds = time.perf_counter() - start
    return out


def _adapt_every_rate(mf: CodecModel, dataset: Dataset, lo: int, hi: int, steps: int, dev,
                      decoder: bool) -> tuple[CodecModel, dict[int, bytes]]:
    """The model with every rate point adapted on the first images (as many as a default chunk holds) in turn, and
    the decoder patches that makes (rate point 1..R -> patch)."""
    from aezip.conv.adapt import adapt
    first = next(rechunk(dataset.chunks(default_chunk_size(image_samples(dataset.shape))),
                         default_chunk_size(image_samples(dataset.shape)), lo, hi))
    patches = {}
    for rate in range(mf.config.rates):
        mf, patch = adapt(mf, rate, first, steps, dev, decoder=decoder)
        if patch is not None:
            patches[rate + 1] = patch
    return mf, patches


def _chunk_candidates(mf: CodecModel, chunk: np.ndarray, bounds, backend: str, dev,
                      pixel_methods: tuple[int, ...] | None, search: bool) -> list[Candidate]:
    """One chunk at every rate point lossy and under every bound; a bounded stream that reads no latents is the
    same at every rate point and is kept once."""
    out, alone = [], set()
    for rate in range(1, mf.config.rates + 1):
        latent, recon = conv_coding.encode_images(mf, rate - 1, chunk, dev, backend, search)
        for e in (None, *bounds):
            if e in alone:
                continue
            payload, sse, max_abs = chunk_result(mf, chunk, latent, recon, e, pixel_methods)
            latents = bool(unpack_payload(payload, "candidate")[1])
            if e is not None and not latents:
                alone.add(e)
            out.append(Candidate(rate, e, payload, int(sse), max_abs, latents))
    return out


def sse_budget(target: float, samples: int) -> int:
    """The largest total squared error over `samples` samples whose PSNR (psnr_from_mse) is at least `target`."""
    if not math.isfinite(target):
        return 0
    s = max(0, math.floor(samples * 255.0 ** 2 / 10 ** (target / 10)))
    while s > 0 and psnr_from_mse(s / samples) < target:
        s -= 1
    while psnr_from_mse((s + 1) / samples) >= target:
        s += 1
    return s


def choose(cands: list[list[Candidate]], budget: int) -> list[int]:
    """Per chunk, the index of its candidate: fewest total bytes with total squared error <= budget (the module
    docstring's Lagrangian and greedy fill); where no choice fits, the one of least error."""
    width = max(map(len, cands))
    sizes = np.full((len(cands), width), np.inf)
    sses = np.full((len(cands), width), np.inf)
    for i, cs in enumerate(cands):
        sizes[i, :len(cs)] = [c.size for c in cs]
        sses[i, :len(cs)] = [c.sse for c in cs]
    rows = np.arange(len(cands))

    def pick(mu: float) -> np.ndarray:
        """Each chunk's cheapest candidate at price mu, the one of least error among equals."""
        if math.isinf(mu):
            return np.argmin(np.where(sses == sses.min(1, keepdims=True), sizes, np.inf), 1)
        cost = sizes + mu * sses if mu else sizes         # (0 x the padding's inf would be nan)
        return np.argmin(np.where(cost == cost.min(1, keepdims=True), sses, np.inf), 1)

    def error(choice: np.ndarray) -> float:
        return float(sses[rows, choice].sum())

    lo, hi = 0.0, 1.0
    if error(pick(lo)) <= budget:
        choice = pick(lo)
    else:
        while error(pick(hi)) > budget and hi < 1e30:
            hi *= 16
        if error(pick(hi)) > budget:
            hi = math.inf
        else:
            for _ in range(100):               # log-scale bisection between lo (too much error) and hi (fits)
                mid = math.sqrt(max(lo, hi * 1e-12) * hi)
                lo, hi = (mid, hi) if error(pick(mid)) > budget else (lo, mid)
        choice = pick(hi)
    return _fill(choice, sizes, sses, budget - error(choice)).tolist()


def _fill(choice: np.ndarray, sizes: np.ndarray, sses: np.ndarray, slack: float) -> np.ndarray:
    """Spend the slack: switch chunks to smaller candidates whose added error fits, most bytes saved per unit of
    added error first, until none fits."""
    rows = np.arange(len(choice))
    while True:
        saved = sizes[rows, choice][:, None] - sizes          # -inf and +inf at the padding
        added = sses - sses[rows, choice][:, None]
        ok = (saved > 0) & (added <= slack)
        gain = np.where(ok, saved / np.where(ok, np.maximum(added, 1.0), 1.0), -1.0)
        i, k = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if gain[i, k] <= 0:
            return choice
        slack -= added[i, k]
        choice[i] = k


def sections(c: Candidates, rates: frozenset[int], bounded: bool, embed: bool) -> tuple[bytes | None, bytes | None]:
    """(the embedded model, the decoder patch section) of a file whose chunks decode latents at these rate points
    (None where it has none); cached, as choose_file asks for each set of rate points."""
    from aezip.conv.patch import pack_patches
    from aezip.files.decodemodel import decoder_bytes
    key = (rates, bounded, embed)
    if key not in c.cache:
        patches = [c.patches[r] for r in sorted(rates) if r in c.patches]
        model = decoder_bytes(c.original, max_error_parts=bounded, rates=[r - 1 for r in sorted(rates)]) \
            if embed else None
        c.cache[key] = model, pack_patches(patches) if patches else None
    return c.cache[key]


def _fixed_bytes(c: Candidates, rates: frozenset[int], bounded: bool, embed: bool) -> int:
    """Bytes a file pays for using these rate points: their decoder patches and, embedded, their decode side."""
    return sum(len(part or b"") for part in sections(c, rates, bounded, embed))


def choose_file(c: Candidates, target: float, embed: bool = False) -> list[Candidate]:
    """The chunks' settings of the smallest file reaching `target` dB: the per-chunk choice for every set of rate
    points where the set's own bytes depend on it (decoder patches, an embedded model), and every setting for all
    chunks alike, so that the file is never larger than one setting's of the same chunks."""
    budget = sse_budget(target, c.samples)
    rates = range(1, c.mf.config.rates + 1)
    if not c.patches and not embed:
        subsets = [(frozenset(rates), True)]
    else:
        subsets = [(frozenset(s), b) for k in rates for s in itertools.combinations(rates, k) for b in (False, True)]
    choices = []
    for allowed, bounded in subsets:
        pools = [[x for x in cs if (x.rate in allowed or not x.latents) and (bounded or x.max_error is None)]
                 for cs in c.chunks]
        choices.append([cs[k] for cs, k in zip(pools, choose(pools, budget))])
    for rate, bound in {(x.rate, x.max_error) for x in c.chunks[0]}:
        alike = [next((x for x in cs if x.max_error == bound and (x.rate == rate or not x.latents)), None)
                 for cs in c.chunks]
        if all(alike):
            choices.append(alike)
    fits = [p for p in choices if sum(x.sse for x in p) <= budget]   # E = 0 for every chunk always does
    return min(fits, key=lambda p: sum(x.size for x in p) + _fixed_bytes(c, used_rates(p), any_bounded(p), embed))


def used_rates(picked: list[Candidate]) -> frozenset[int]:
    """The rate points whose latents the chosen chunks decode (at least one: an embedded model holds one)."""
    return frozenset(x.rate for x in picked if x.latents) or frozenset({min(x.rate for x in picked)})


def any_bounded(picked: list[Candidate]) -> bool:
    return any(x.max_error is not None for x in picked)


def write_file(f: BinaryIO, c: Candidates, picked: list[Candidate], source, embed: bool = False) -> CodecReport:
    """Write the chosen chunks as one per-chunk file to the binary stream f."""
    start = time.perf_counter()
    rates, bounded = used_rates(picked), any_bounded(picked)
    first = min(rates)
    header = file_header(c.mf, c.shape, source, c.chunk_size, c.backend, PER_CHUNK_CODER, None, bounded, c.search,
                         c.adapted)
    model, patches = sections(c, rates, bounded, embed)
    writer = ContainerWriter(f, header, model, patches)
    for x, n in zip(picked, c.images):
        rate = x.rate if x.latents else first          # a stream without latents decodes at any rate point
        writer.add_chunk(setting_prefix(rate, x.max_error) + x.body, n)
    size = writer.close()
    sse = sum(x.sse for x in picked)
    pixels = c.samples // image_channels(c.shape)
    return CodecReport(sum(c.images), pixels, size, c.seconds + time.perf_counter() - start,
                       psnr_from_mse(sse / c.samples), max(x.max_abs for x in picked), image_channels(c.shape),
                       len(model or b""), picked=describe(picked, c.chunk_size), trials=sum(map(len, c.chunks)))


def describe(picked: list[Candidate], chunk_size: int) -> str:
    """The settings chosen, in words: how many chunks took each."""
    counts: dict[tuple, int] = {}
    for x in picked:
        key = (x.max_error is not None, x.rate if x.latents else 0, x.max_error or 0)
        counts[key] = counts.get(key, 0) + 1
    words = [(f"--max-error {e}" + (f" at rate point {r}" if r else "") if b else f"--quality {r}") + f": {n}"
             for (b, r, e), n in sorted(counts.items())]
    return f"per chunk of {chunk_size} images ({'; '.join(words)})"


def encode_per_chunk(dataset: Dataset, mf: CodecModel, out: str | Path | BinaryIO, psnr: float, *,
                     force: bool = False, image_range=None, embed_model: bool = False, jobs: int = 1,
                     log: Callable[[str], None] | None = None, **args) -> CodecReport:
    """Write the smallest per-chunk file of `dataset` reaching `psnr` dB (the module docstring) to `out`; args go to
    code_candidates (chunk_size, backend, device, pixel_methods, search, adapt, adapt_decoder, progress)."""
    from aezip.options import parse_range
    from aezip.target import check_target
    target = check_target(psnr)
    check_per_chunk(mf, jobs)
    if not hasattr(out, "write"):
        check_output(out, force, inputs=(dataset.path, mf.path))
    lo, hi = parse_range(image_range, dataset.shape[0])
    cands = code_candidates(dataset, mf, image_range=(lo, hi), **args)
    picked = choose_file(cands, target, embed_model)
    source = dataset.source
    if source.names:
        source = dataclasses.replace(source, names=source.names[lo:hi])
    if hasattr(out, "write"):
        report = write_file(out, cands, picked, source, embed_model)
    else:
        with atomic_path(out, force=force, inputs=(dataset.path, mf.path)) as tmp:
            with open(tmp, "wb") as f:
                report = write_file(f, cands, picked, source, embed_model)
    if log:
        log(f"{report.picked}: {report.file_bytes} bytes, PSNR {report.psnr_db:.2f} dB")
    return report
