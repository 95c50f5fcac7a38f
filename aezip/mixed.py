"""`aezip encode --psnr T --per-chunk`: a convolutional model's file whose chunks each take their own setting, the
mixture of settings that reaches the target PSNR in the fewest bytes.

One setting for the whole file (aezip.target) leaves bytes behind wherever the curve of a model's settings in rate
and squared error is not convex: between two rate points, coding most images at one and the rest at the other
reaches the PSNR in between for fewer bytes than any single setting there. Here the images are cut into groups (a
default chunk's worth, the most a chunk holds) and each group into parts of `chunk_size` images (CHUNK: the choice's
grain). Each group, whole, and each part are coded at every candidate setting: each rate point lossy, and each rate
point under each error bound of `bounds` (BOUNDS, 0 among them). Both grains, because small chunks cost bytes: ~34
of framing each, and the pixel coders learn from scratch in every chunk (64-image chunks of the gray photographs
took 0.3-0.8 % more bytes lossy and 0.8-1.7 % more bounded than 512-image ones). Each candidate's bytes and
squared error are measured on its real payload, and the file takes, per group, its whole candidate or one per part,
solving

    minimise  sum of bytes  subject to  sum of squared errors <= S,

S the largest integer whose PSNR (10 log10(255^2 x samples / S), the one `aezip encode` reports) reaches T. A
Lagrange multiplier mu prices squared error in bytes: each chunk takes the candidate minimising bytes + mu x SSE,
each group whole or in parts as that sum is smaller, and the smallest mu whose choice fits S is found by bisection;
what S has left over is then spent greedily, switching chunks to smaller candidates, most bytes saved per unit of
error first. That is a heuristic for a knapsack problem (optimal at the error it reaches, not always at S); the
file also never exceeds any one setting used for every chunk alike, which is among the choices compared. Every
target is reachable (E = 0 is lossless), and the file's measured PSNR is at least T by construction.

With `adapt`, each rate point's encoder is fine-tuned on the first group (as `encode --adapt` does for one) and with
`adapt_decoder` its decoder's biases too: the file carries a patch for each rate point whose latents some chunk
decodes (aezip.conv.patch.pack_patches). Those patches' bytes, and an embedded model's (--embed-model: the rate
points used, the max-error coder where a chunk is bounded), are costs of the set of rate points the file uses, so
the choice is made for every such set and the smallest file kept.

The file: header `entropy` PER_CHUNK_CODER, no quality and no max error, `chunk_size` the groups'; each chunk's
payload starts with its setting (aezip.chunks.setting_prefix) and is otherwise the payload a one-setting file's
chunk has. Decoding needs nothing new but reading that prefix. Memory: every candidate's payload is held until the
choice, two grains x (rate points x (1 + bounds)) compressed copies of the data at most.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import time
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from aezip.chunks import chunk_result, setting_name, setting_prefix, unpack_payload
from aezip.codec import CodecReport, Progress, file_header, image_channels, peek, rechunk
from aezip.conv import coding as conv_coding
from aezip.conv.layout import PER_CHUNK_CODER
from aezip.conv.model import is_conv
from aezip.errors import ParameterError
from aezip.files.atomic import atomic_path, check_output
from aezip.files.container import ContainerWriter
from aezip.files.data import Dataset
from aezip.files.header import image_samples
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


Chunk = tuple[Candidate, int]          # a chunk of a file: its candidate and its images


@dataclasses.dataclass
class Group:
    """A group's images (a default chunk's worth) coded as one chunk at every setting (`whole`; none where the group
    is one part), and each of its parts (chunks of the choice's grain) at every setting."""

    whole: list[Candidate]
    parts: list[list[Candidate]]
    images: list[int]                  # per part


@dataclasses.dataclass
class Candidates:
    """Every group's candidates, and what writing any choice of them needs."""

    groups: list[Group]
    mf: CodecModel                     # the model (adapted where asked: its patched rate points)
    original: CodecModel               # the model file's, whose decode side an embedded model is
    patches: dict[int, bytes]          # rate point (1..R) -> its decoder patch (adapt_decoder)
    adapted: dict | None               # the header's provenance record
    chunk_size: int                    # the parts' images
    group_size: int                    # the groups' images: the header's chunk_size
    shape: tuple[int, ...]
    backend: str
    search: bool
    seconds: float
    cache: dict = dataclasses.field(default_factory=dict)    # sections() by (rate points, bounded, embedded)

    @property
    def samples(self) -> int:
        return sum(sum(g.images) for g in self.groups) * image_samples(self.shape)


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
    group_size = check_encode_args(None, None, shape, mf, adapt, adapt_decoder)
    chunk_size = check_encode_args(None, chunk_size or min(CHUNK, group_size), shape, mf)
    group_size = max(group_size, chunk_size)
    if any(not 0 <= e <= 255 for e in bounds) or 0 not in bounds:
        raise ParameterError("bounds", f"must lie in 0..255 and hold 0 (lossless), got {tuple(bounds)}")
    dev = resolve_device(device)
    backend = kernels.resolve_backend(backend, dev)
    start = time.perf_counter()
    original, patches, adapted = mf, {}, None
    mf.model.to(dev)
    groups = rechunk(dataset.chunks(group_size), group_size, lo, hi)
    if adapt:
        first, groups = peek(groups)
        if first is not None:
            mf, patches = _adapt_every_rate(mf, first, adapt, dev, adapt_decoder)
            adapted = {"steps": adapt, "images": len(first)}
    out = Candidates([], mf, original, patches, adapted, chunk_size, group_size, shape, backend, search, 0.0)
    for group in groups:
        out.groups.append(_group_candidates(mf, group, chunk_size, bounds, backend, dev, pixel_methods, search))
        if progress:
            progress(len(group))
    out.seconds = time.perf_counter() - start
    return out


def _adapt_every_rate(mf: CodecModel, images: np.ndarray, steps: int, dev,
                      decoder: bool) -> tuple[CodecModel, dict[int, bytes]]:
    """The model with every rate point adapted on `images` in turn (aezip.conv.adapt), and the decoder patches that
    makes (rate point 1..R -> patch)."""
    from aezip.conv.adapt import adapt
    patches = {}
    for rate in range(mf.config.rates):
        mf, patch = adapt(mf, rate, images, steps, dev, decoder=decoder)
        if patch is not None:
            patches[rate + 1] = patch
    return mf, patches


def _group_candidates(mf: CodecModel, group: np.ndarray, chunk_size: int, bounds, backend: str, dev,
                      pixel_methods: tuple[int, ...] | None, search: bool) -> Group:
    """A group whole (where it has several parts) and each of its parts at every rate point, lossy and under every
    bound; the images analysed once per rate point (conv.coding.encode_parts)."""
    cuts = list(range(0, len(group), chunk_size)) + [len(group)]
    whole, parts = [], [[] for _ in cuts[1:]]
    alone: list[set] = [set() for _ in range(len(cuts))]    # bounds whose streams need no latents, per chunk
    for rate in range(1, mf.config.rates + 1):
        stream, streams, recon = conv_coding.encode_parts(mf, rate - 1, group, cuts, dev, backend, search)
        if len(parts) > 1:
            whole += _candidates(mf, rate, group, stream, recon, bounds, pixel_methods, alone[-1])
        for k, (a, b) in enumerate(zip(cuts, cuts[1:])):
            parts[k] += _candidates(mf, rate, group[a:b], streams[k], recon[a:b], bounds, pixel_methods, alone[k])
    return Group(whole, parts, [b - a for a, b in zip(cuts, cuts[1:])])


def _candidates(mf: CodecModel, rate: int, chunk: np.ndarray, latent: bytes, recon: np.ndarray, bounds,
                pixel_methods: tuple[int, ...] | None, alone: set) -> list[Candidate]:
    """One chunk at one rate point, lossy and under every bound not in `alone` (the bounds whose streams read no
    latents at an earlier rate point: the same at every one, kept once; this one's are added to it)."""
    out = []
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


def _matrices(lists: list[list[Candidate]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, squared errors) of each list's candidates as rows, padded with inf to `width`."""
    sizes, sses = np.full((len(lists), width), np.inf), np.full((len(lists), width), np.inf)
    for i, cs in enumerate(lists):
        sizes[i, :len(cs)] = [c.size for c in cs]
        sses[i, :len(cs)] = [c.sse for c in cs]
    return sizes, sses


def _cheapest(sizes: np.ndarray, sses: np.ndarray, mu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's candidate of least bytes + mu x error (the least error among equals), that cost and its error."""
    cost = sizes + mu * sses if mu else sizes                 # (0 x the padding's inf would be nan)
    k = np.argmin(np.where(cost == cost.min(1, keepdims=True), sses, np.inf), 1)
    rows = np.arange(len(k))
    return k, cost[rows, k], sses[rows, k]


def choose(groups: list[Group], budget: int) -> list[Chunk]:
    """The file's chunks: each group whole or in parts, each chunk's candidate, fewest total bytes with total
    squared error <= budget (the module docstring's Lagrangian and greedy fill, with the groups whole or in parts as
    the Lagrangian picks, all in parts and all whole: the smallest that fits); where none fits, the least error."""
    options = [_choose(groups, budget, layout) for layout in ("free", "parts", "whole")]
    fits = [p for p in options if sum(x.sse for x, _ in p) <= budget] or options
    return min(fits, key=lambda p: (sum(x.sse for x, _ in p) > budget, sum(x.size for x, _ in p)))


def _choose(groups: list[Group], budget: int, layout: str) -> list[Chunk]:
    """choose() with each group whole or in parts as the Lagrangian picks (`layout` "free"), or all in parts, or all
    whole where they may be."""
    parts = [cs for g in groups for cs in g.parts]
    owner = np.array([i for i, g in enumerate(groups) for _ in g.parts])
    wholes = [i for i, g in enumerate(groups) if g.whole] if layout != "parts" else []
    width = max(len(cs) for cs in parts + [groups[i].whole for i in wholes])
    part_m, whole_m = _matrices(parts, width), _matrices([groups[i].whole for i in wholes], width)

    def pick(mu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(each part's candidate, each whole's, which groups go whole, the total error) at price mu."""
        pk, pcost, psse = _cheapest(*part_m, mu)
        group_cost, group_sse = np.bincount(owner, pcost, len(groups)), np.bincount(owner, psse, len(groups))
        whole = np.zeros(len(groups), bool)
        wk = np.zeros(len(wholes), np.int64)
        if wholes:
            wk, wcost, wsse = _cheapest(*whole_m, mu)
            whole[wholes] = (wcost < group_cost[wholes]) | (layout == "whole")
            group_sse[wholes] = np.where(whole[wholes], wsse, group_sse[wholes])
        return pk, wk, whole, float(group_sse.sum())

    lo, hi = 0.0, 1.0
    if pick(lo)[3] <= budget:
        hi = lo
    else:
        while pick(hi)[3] > budget and hi < 1e30:
            hi *= 16
        for _ in range(100 if pick(hi)[3] <= budget else 0):   # log-scale bisection: lo too much error, hi fits
            mid = math.sqrt(max(lo, hi * 1e-12) * hi)
            lo, hi = (mid, hi) if pick(mid)[3] > budget else (lo, mid)
    pk, wk, whole, error = pick(hi)
    items = []    # (candidates, choice, images) of each chunk of the file, in order
    starts = np.cumsum([0] + [len(g.parts) for g in groups])
    for i, g in enumerate(groups):
        if whole[i]:
            items.append((g.whole, int(wk[wholes.index(i)]), sum(g.images)))
        else:
            items += [(g.parts[r - starts[i]], int(pk[r]), g.images[r - starts[i]])
                      for r in range(starts[i], starts[i + 1])]
    choice = _fill(np.array([k for _, k, _ in items]), *_matrices([cs for cs, _, _ in items], width), budget - error)
    return [(cs[k], n) for (cs, _, n), k in zip(items, choice)]


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


def _alike(c: Candidates, rate: int, bound: int | None, whole: bool) -> list[Chunk] | None:
    """Every chunk at one setting: each group whole (where it may be) or in parts; None where a chunk lacks it."""
    def match(cs: list[Candidate]) -> Candidate | None:
        return next((x for x in cs if x.max_error == bound and (x.rate == rate or not x.latents)), None)
    out = []
    for g in c.groups:
        out += [(match(g.whole), sum(g.images))] if whole and g.whole else list(zip(map(match, g.parts), g.images))
    return out if all(x is not None for x, _ in out) else None


def choose_file(c: Candidates, target: float, embed: bool = False) -> list[Chunk]:
    """The chunks of the smallest file reaching `target` dB: the per-chunk choice for every set of rate points where
    the set's own bytes depend on it (decoder patches, an embedded model), and every setting for all chunks alike
    (the groups whole, or in parts), so that the file is never larger than one setting's."""
    budget = sse_budget(target, c.samples)
    rates = range(1, c.mf.config.rates + 1)
    if not c.patches and not embed:
        subsets = [(frozenset(rates), True)]
    else:
        subsets = [(frozenset(s), b) for k in rates for s in itertools.combinations(rates, k) for b in (False, True)]
    choices = []
    for allowed, bounded in subsets:
        keep = lambda cs: [x for x in cs if (x.rate in allowed or not x.latents)  # noqa: E731
                           and (bounded or x.max_error is None)]
        choices.append(choose([Group(keep(g.whole), list(map(keep, g.parts)), g.images) for g in c.groups], budget))
    for rate, bound in {(x.rate, x.max_error) for x in c.groups[0].parts[0]}:
        choices += [p for p in (_alike(c, rate, bound, w) for w in (False, True)) if p]
    fits = [p for p in choices if sum(x.sse for x, _ in p) <= budget]   # E = 0 for every chunk always does
    return min(fits, key=lambda p: sum(x.size for x, _ in p) + _fixed_bytes(c, used_rates(p), any_bounded(p), embed))


def used_rates(picked: list[Chunk]) -> frozenset[int]:
    """The rate points whose latents the chosen chunks decode (at least one: an embedded model holds one)."""
    return frozenset(x.rate for x, _ in picked if x.latents) or frozenset({min(x.rate for x, _ in picked)})


def any_bounded(picked: list[Chunk]) -> bool:
    return any(x.max_error is not None for x, _ in picked)


def write_file(f: BinaryIO, c: Candidates, picked: list[Chunk], source, embed: bool = False) -> CodecReport:
    """Write the chosen chunks as one per-chunk file to the binary stream f."""
    start = time.perf_counter()
    rates, bounded = used_rates(picked), any_bounded(picked)
    header = file_header(c.mf, c.shape, source, c.group_size, c.backend, PER_CHUNK_CODER, None, bounded, c.search,
                         c.adapted)
    model, patches = sections(c, rates, bounded, embed)
    writer = ContainerWriter(f, header, model, patches)
    for x, n in picked:
        rate = x.rate if x.latents else min(rates)     # a stream without latents decodes at any rate point
        writer.add_chunk(setting_prefix(rate, x.max_error) + x.body, n)
    size = writer.close()
    sse = sum(x.sse for x, _ in picked)
    channels = image_channels(c.shape)
    trials = sum(len(g.whole) + sum(map(len, g.parts)) for g in c.groups)
    return CodecReport(sum(n for _, n in picked), c.samples // channels, size, c.seconds + time.perf_counter() - start,
                       psnr_from_mse(sse / c.samples), max(x.max_abs for x, _ in picked), channels, len(model or b""),
                       picked=describe(picked), trials=trials)


def describe(picked: list[Chunk]) -> str:
    """The settings chosen, in words: how many images and chunks took each."""
    counts: dict[tuple, list[int]] = {}
    for x, n in picked:
        key = (x.max_error is not None, x.rate if x.latents else 0, x.max_error or 0)
        counts.setdefault(key, []).append(n)
    words = [setting_name(r, e if b else None, r > 0) + f": {sum(ns)} images in {len(ns)} chunk{'s' * (len(ns) != 1)}"
             for (b, r, e), ns in sorted(counts.items())]
    return f"per chunk ({'; '.join(words)})"


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
