"""`aezip bench codec`: aezip beside the codecs users would pick instead, measured on the same images in one run.

Rates are file bytes x 8 / pixels of files written for real (model bytes are reported apart, never hidden): each row
also gives the rate with its model's bytes added, for aezip both the model file's (.aezm) and the decode-side model's
(the part an --embed-model file carries, decodemodel.py), and one aezip row is an --embed-model file itself.
"""
from __future__ import annotations

import io
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from aezip.bench.bdrate import METHODS, bd_rate, frontier, psnr_gaps
from aezip.bench.baselines import (PCACodec, jpegxl_lossless, more_components, pca_best_at_rate,
                                   raw_compressors)
from aezip.codec import Progress, decode_file, encode_dataset
from aezip.effort import effort_settings
from aezip.files.data import Dataset, array_dataset
from aezip.files.decodemodel import decoder_bytes
from aezip.metrics import bits_per_pixel, psnr
from aezip.conv.model import is_conv
from aezip.files.modelfile import load_model, model_at_quality
from aezip.coding.pixelstream import ALONE, MLP
from aezip.target import ladder_levels

MAX_ERRORS = (0, 1, 2, 4, 8, 12, 16, 24, 32)   # up to 32: on noisy photographs the bound beats the ladder from ~25 dB
# The curve of every lossy file aezip writes in one run: each model's --quality points and the first model's
# --max-error points (not the --embed-model file, whose rate counts the model). Its efficient frontier (bdrate) is
# what a user gets who picks, for each target PSNR, the setting with the smallest file.
EVERY_SETTING = "aezip every lossy setting (--quality and --max-error)"
PER_CHUNK = "aezip --psnr --per-chunk"   # a conv model's per-chunk files (aezip.mixed), one per whole dB


@dataclass
class Row:
    """One codec at one setting on the test images."""

    codec: str
    setting: str
    bytes: int
    bits_per_pixel: float
    psnr_db: float
    max_abs_error: int
    encode_images_per_s: float
    decode_images_per_s: float
    model_bytes: int = 0                         # the model a decoder needs beside the file (aezip: the .aezm)
    bits_per_pixel_with_model: float = 0.0       # (bytes + model_bytes) x 8 / pixels
    decoder_bytes: int | None = None             # aezip: the decode-side model this file needs (None: other codecs)
    bits_per_pixel_with_decoder: float | None = None


def _row(codec: str, setting: str, size: int, images: np.ndarray, recon: np.ndarray, t_enc: float, t_dec: float,
         model_bytes: int = 0, decoder: int | None = None) -> Row:
    n = len(images)
    err = int(np.abs(images.astype(np.int64) - recon.astype(np.int64)).max())
    return Row(codec, setting, size, bits_per_pixel(size, images), psnr(images, recon), err, n / max(t_enc, 1e-9),
               n / max(t_dec, 1e-9), model_bytes, bits_per_pixel(size + model_bytes, images), decoder,
               None if decoder is None else bits_per_pixel(size + decoder, images))


def _timed(fn: Callable, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _pixel_model_runs(mf) -> list[tuple[tuple[int, ...], str]]:
    """The lossless rows of the model's pixel models on their own: (pixel coders allowed, setting suffix)."""
    runs = []
    if mf.pixel_alone is not None:
        runs.append(((ALONE,), ", pixel model alone"))
    if mf.pixel is not None:
        runs.append(((MLP,), ", latents + pixel model"))
    return runs


def aezip_rows(images: np.ndarray, models: Iterable[tuple[str, Path | None]], max_errors: Iterable[int],
               workdir: Path, progress: Progress | None = None, effort: str = "best", adapt: int = 0,
               adapt_decoder: bool = False) -> list[Row]:
    """Encode and decode real .aez files (each timing includes writing and reading the file): each model lossy at
    every level of its quality ladder (2..L), the first model lossy with --embed-model (decoded without the model),
    the first model at each max error (each chunk's cheapest pixel coder), and the first model lossless with only
    its pixel model without latents, and only its pixel model with latents (where it has them); every encode at
    `effort` (`aezip encode --effort`), and a convolutional model's with its encoder adapted for `adapt` steps
    (`aezip encode --adapt`), its decoder's biases too with `adapt_decoder` (the files carry them)."""
    dataset = array_dataset(images)
    rows = []
    models = [(name, load_model(path)) for name, path in models]
    first = models[0]
    runs = [(name, mf, q, None, False, None, "") for name, mf in models for q in ladder_levels(mf)]
    runs += [(*first, None, None, True, None, "")] + [(*first, None, e, False, None, "") for e in max_errors]
    runs += [(*first, None, 0, False, m, label) for m, label in _pixel_model_runs(first[1])]
    at_effort = effort_settings(effort)
    tail = _effort_suffix(effort, adapt, adapt_decoder)
    decoders: dict[tuple, int] = {}   # the decode-side model's size, per model id and kind of file
    for name, mf, quality, max_error, embed, methods, label in runs:
        aez, out = workdir / "x.aez", workdir / "x.npy"
        steps = adapt if is_conv(mf) else 0
        report, t_enc = _timed(lambda: encode_dataset(dataset, mf, aez, max_error=max_error, force=True,
                                                      quality=quality, embed_model=embed,
                                                      pixel_methods=methods or at_effort["pixel_methods"],
                                                      search=at_effort["search"], adapt=steps,
                                                      adapt_decoder=adapt_decoder and steps > 0))
        _, t_dec = _timed(lambda: decode_file(aez, out, model_path=None if embed else mf, force=True))
        recon = np.load(out)
        setting = _architecture(mf) + (
            "" if quality is None else f", --quality {quality}") + (
            "" if max_error is None else f", --max-error {max_error}") + (", --embed-model" if embed else "") + (
            label + (tail if steps else _effort_suffix(effort, 0, False)))
        author = model_at_quality(mf, quality)   # the model the file names (the default's sibling at coarse levels)
        rates = ((quality or mf.config.rates) - 1,) if is_conv(mf) else None   # a conv file needs its one rate point
        kind = (author.id, max_error is not None, rates)
        if not embed and kind not in decoders:
            decoders[kind] = len(decoder_bytes(author, max_error_parts=max_error is not None, rates=rates))
        decoder = 0 if embed else decoders[kind]
        rows.append(_row(f"aezip {name}", setting, report.file_bytes, images, recon, t_enc, t_dec,
                         0 if embed else author.path.stat().st_size, decoder))
        if progress:
            progress(1)
    if is_conv(first[1]):
        rows += per_chunk_rows(images, *first, [r for r in rows if r.codec == f"aezip {first[0]}"], workdir, effort,
                               adapt, adapt_decoder, progress)
    return rows


def per_chunk_rows(images: np.ndarray, name: str, mf, own: list[Row], workdir: Path, effort: str = "best",
                   adapt: int = 0, adapt_decoder: bool = False, progress: Progress | None = None) -> list[Row]:
    """A convolutional model's `encode --psnr T --per-chunk` files (aezip.mixed), decoded for real, at every whole
    dB T from the lowest PSNR of its rows `own` to the highest of their lossy ones; the candidates are coded once
    for every target, and each row's encode time is theirs plus its file's writing."""
    from aezip.mixed import any_bounded, choose_file, code_candidates, sections, used_rates, write_file
    lossy = [r.psnr_db for r in own if r.max_abs_error > 0 and "--embed-model" not in r.setting]
    at_effort = effort_settings(effort)
    dataset = array_dataset(images)
    cands, t_cand = _timed(lambda: code_candidates(dataset, mf, adapt=adapt, adapt_decoder=adapt_decoder,
                                                   **at_effort))
    rows = []
    for target in range(math.ceil(min(lossy)), math.floor(max(lossy)) + 1):
        aez, out = workdir / "x.aez", workdir / "x.npy"
        picked = choose_file(cands, target)
        with open(aez, "wb") as f:
            report, t_write = _timed(write_file, f, cands, picked, dataset.source)
        _, t_dec = _timed(lambda: decode_file(aez, out, model_path=mf, force=True))
        decoder, _ = sections(cands, used_rates(picked), any_bounded(picked), embed=True)   # cached per rate set
        rows.append(_row(f"aezip {name}", f"{_architecture(mf)}, --psnr {target} --per-chunk"
                         + _effort_suffix(effort, adapt, adapt_decoder), report.file_bytes, images, np.load(out),
                         t_cand + t_write, t_dec, mf.path.stat().st_size, len(decoder)))
        if progress:
            progress(1)
    return rows


def _effort_suffix(effort: str, adapt: int, adapt_decoder: bool) -> str:
    """The encoder options part of a row's setting."""
    return (("" if effort == "best" else f", --effort {effort}") + (f", --adapt {adapt}" if adapt else "")
            + (" --adapt-decoder" if adapt and adapt_decoder else ""))


def _architecture(mf) -> str:
    """The model part of a row's setting."""
    cfg = mf.config
    if is_conv(mf):
        return f"conv n{cfg.n} m{cfg.m} z{cfg.z}, {cfg.rates} rate points"
    return f"latent {cfg.latent}, L {cfg.levels}"


def raw_rows(images: np.ndarray) -> list[Row]:
    """General-purpose compressors on the raw bytes of the whole set."""
    rows = []
    raw = images.tobytes()
    for name, (compress, decompress) in raw_compressors().items():
        blob, t_enc = _timed(compress, raw)
        back, t_dec = _timed(decompress, blob)
        recon = np.frombuffer(back, np.uint8).reshape(images.shape)
        rows.append(_row(name, "raw bytes, whole set", len(blob), images, recon, t_enc, t_dec))
    return rows


def mosaic(images: np.ndarray) -> np.ndarray:
    """All images tiled into one near-square picture (zero padding in the last row)."""
    n, h, w = images.shape[:3]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    pad = np.zeros((rows * cols - n, *images.shape[1:]), np.uint8)
    tiles = np.concatenate([images, pad]).reshape(rows, cols, h, w, *images.shape[3:])
    return tiles.swapaxes(1, 2).reshape(rows * h, cols * w, *images.shape[3:])


def unmosaic(big: np.ndarray, n: int, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    rows, cols = big.shape[0] // h, big.shape[1] // w
    tiles = big.reshape(rows, h, cols, w, *shape[2:]).swapaxes(1, 2).reshape(rows * cols, *shape)
    return tiles[:n]


def _pil(fmt: str, params: dict, color: bool) -> tuple[Callable[[np.ndarray], bytes], Callable[[bytes], np.ndarray]]:
    """(encode, decode) of one Pillow format."""
    def enc(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format=fmt, **params)
        return buf.getvalue()

    def dec(b: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(b)) as im:
            return np.asarray(im.convert("RGB" if color else "L"))

    return enc, dec


def _image_codec(images: np.ndarray, enc: Callable[[np.ndarray], bytes], dec: Callable[[bytes], np.ndarray],
                 per_image: bool) -> tuple[int, np.ndarray, float, float]:
    """Bytes, reconstruction and times of an image codec, per image or on one mosaic of the whole set."""
    if per_image:
        blobs, t_enc = _timed(lambda: [enc(a) for a in images])
        recon, t_dec = _timed(lambda: np.stack([dec(b) for b in blobs]))
        return sum(map(len, blobs)), recon.reshape(images.shape), t_enc, t_dec
    blob, t_enc = _timed(enc, mosaic(images))
    big, t_dec = _timed(dec, blob)
    return len(blob), unmosaic(big, len(images), images.shape[1:]), t_enc, t_dec


def image_codec_rows(images: np.ndarray, qualities: Iterable[int] = (1, 5, 10, 20, 50, 90)) -> list[Row]:
    """PNG, WebP lossless and JPEG-XL lossless (efforts 7, 9); JPEG and WebP lossy; per image and on a mosaic."""
    color = images.ndim == 4
    settings = [("PNG", _pil("PNG", {"optimize": True}, color), "lossless"),
                ("WebP lossless", _pil("WEBP", {"lossless": True, "quality": 100, "method": 6}, color), "lossless")]
    settings += [("JPEG-XL lossless", jpegxl_lossless(effort), f"effort {effort}") for effort in (7, 9)]
    for q in qualities:
        settings.append(("JPEG", _pil("JPEG", {"quality": q}, color), f"q {q}"))
        settings.append(("WebP", _pil("WEBP", {"quality": q, "method": 6}, color), f"q {q}"))
    rows = []
    for name, (enc, dec), label in settings:
        for per_image in (True, False):
            size, recon, t_enc, t_dec = _image_codec(images, enc, dec, per_image)
            rows.append(_row(name, f"{label}, {'per image' if per_image else 'mosaic'}", size, images, recon,
                             t_enc, t_dec))
    return rows


def pca_rows(train: np.ndarray, images: np.ndarray, sizes: Iterable[int] = (2, 4, 8, 16, 24, 32, 48, 64),
             step: float = 32.0, reach: float = 0.0) -> list[Row]:
    """PCA fit on the training images; coefficients quantized (one step) and packed with zstd -19; from 2
    components, so that its curve reaches the low PSNR of the coarsest --quality levels. Where its last row codes
    below `reach` bits/pixel (aezip's top lossy rate), rows follow with more components (x1.5 or x2, up to the data's
    rank) and then finer steps (halved, down to 2), until one reaches it: every aezip point has PCA rows on both
    sides to be compared with."""
    sizes = list(sizes)
    x = images.reshape(len(images), -1)
    rank = min(x.shape[1], len(train))
    full = PCACodec.fit(train, rank if reach else max(sizes))
    rows = [_pca_row(full, images, k, step) for k in sizes]
    k = sizes[-1]
    while rows[-1].bits_per_pixel < reach and (k < rank or step > 2):
        if k < rank:
            k = more_components(k, rank)
        else:
            step /= 2
        rows.append(_pca_row(full, images, k, step))
    return rows


def _pca_row(full: PCACodec, images: np.ndarray, k: int, step: float) -> Row:
    codec = full.first(k)
    blob, t_enc = _timed(codec.compress, images, step)
    recon, t_dec = _timed(codec.decompress, blob, images.shape, step)
    return _row("PCA + zstd", f"{k} components, step {step:g}", len(blob), images, recon, t_enc, t_dec,
                codec.basis.nbytes + codec.mean.nbytes)


def _points(rows: Iterable[Row]) -> list[tuple[float, float]]:
    return [(r.bits_per_pixel, r.psnr_db) for r in rows]


def bd_rates(rows: list[Row], aezip_names: list[str]) -> dict[str, dict[str, float | None]]:
    """BD-rate (%) of each aezip curve against each lossy baseline curve (_comparisons), by both methods of
    bdrate.py."""
    return {f"{t} vs {a}": {m: bd_rate(_points(anchor), _points(test), m) for m in METHODS}
            for t, test, a, anchor in _comparisons(rows, aezip_names)}


def _comparisons(rows: list[Row], aezip_names: list[str]) -> Iterator[tuple[str, list[Row], str, list[Row]]]:
    """(test name, its rows, anchor name, its rows): each model's quality ladder, all the models' ladders together
    where there are several (the frontier of their points: a ladder of models), the first model's --max-error
    curve, and every lossy setting together (EVERY_SETTING), each against each lossy baseline curve (PCA + zstd,
    JPEG and WebP per image and on a mosaic; the --max-error curve alone not against PCA)."""
    def family(codec: str, where: str = "") -> list[Row]:
        return [r for r in rows if r.codec == codec and where in r.setting]

    anchors = {"PCA + zstd": family("PCA + zstd")}
    for codec in ("JPEG", "WebP"):
        for where in ("per image", "mosaic"):
            anchors[f"{codec} ({where})"] = family(codec, where)
    tests = {f"aezip {n} --quality": [r for r in family(f"aezip {n}") if "--quality" in r.setting]
             for n in aezip_names}
    if len(aezip_names) > 1:   # a ladder of models (e.g. a model and its low-rate sibling): each point from any
        tests["aezip models together --quality"] = [r for n in aezip_names for r in tests[f"aezip {n} --quality"]]
    tests["aezip --max-error"] = [r for r in family(f"aezip {aezip_names[0]}", "--max-error")
                                  if r.max_abs_error > 0]
    tests[EVERY_SETTING] = _efficient([r for n in aezip_names for r in tests[f"aezip {n} --quality"]]
                                      + tests["aezip --max-error"])
    per_chunk = family(f"aezip {aezip_names[0]}", "--per-chunk")
    if per_chunk:
        tests[PER_CHUNK] = per_chunk
    for t, test in tests.items():
        for a, anchor in anchors.items():
            if not (t == "aezip --max-error" and a == "PCA + zstd"):
                yield t, test, a, anchor


def _efficient(rows: list[Row]) -> list[Row]:
    """The rows on their efficient frontier (bdrate.frontier): those no other row beats in both rate and PSNR."""
    rates, psnrs = frontier(_points(rows))
    keep = set(zip(rates.tolist(), psnrs.tolist()))
    return [r for r in rows if (r.bits_per_pixel, r.psnr_db) in keep]


def psnr_gap_summary(rows: list[Row], aezip_names: list[str]) -> dict[str, dict]:
    """For each aezip curve against each lossy baseline: every point's PSNR gap (dB) over the baseline at its own
    rate (bdrate.psnr_gaps), and the smallest and largest of those inside the baseline's rates."""
    out = {}
    for t, test, a, anchor in _comparisons(rows, aezip_names):
        gaps = psnr_gaps(_points(anchor), _points(test))
        inside = [g for _, g in gaps if g is not None]
        out[f"{t} vs {a}"] = {"points": [[r, g] for r, g in gaps], "inside": len(inside),
                              "min_db": min(inside, default=None), "max_db": max(inside, default=None)}
    return out


def run_codec_report(data: Dataset, test_range: tuple[int, int], train_range: tuple[int, int],
                     models: list[tuple[str, Path | None]], max_errors: Iterable[int] = MAX_ERRORS,
                     progress: Progress | None = None, effort: str = "best", adapt: int = 0,
                     adapt_decoder: bool = False) -> dict:
    """Every row and the BD-rates, as one JSON-ready dict; progress(1) after each codec setting; aezip encodes at
    `effort`, convolutional models' encoders adapted for `adapt` steps (their decoders' biases too with
    `adapt_decoder`)."""
    images = data.read_all()
    test, train = images[test_range[0]:test_range[1]], images[train_range[0]:train_range[1]]
    with tempfile.TemporaryDirectory(prefix="aezip-bench-") as tmp:
        rows = aezip_rows(test, models, max_errors, Path(tmp), progress, effort, adapt, adapt_decoder)
    reach = max(r.bits_per_pixel for r in rows if "--embed-model" not in r.setting and r.max_abs_error > 0)
    for group in (lambda: raw_rows(test), lambda: image_codec_rows(test), lambda: pca_rows(train, test, reach=reach)):
        rows += group()
        if progress:
            progress(1)
    names = [name for name, _ in models]
    first = max((r for r in rows if r.codec == f"aezip {names[0]}" and "--quality" in r.setting),
                key=lambda r: r.bits_per_pixel)   # the model's own quantizer: the top of its ladder
    return {"test_range": list(test_range), "train_range": list(train_range), "images": len(test),
            "rows": [asdict(r) for r in rows],
            "pca_at_aezip_rate": {"aezip": {"codec": first.codec, "bits_per_pixel": first.bits_per_pixel,
                                            "psnr_db": first.psnr_db},
                                  "pca": pca_best_at_rate(train, test, first.bits_per_pixel)},
            "bd_rate_method": "pchip: piecewise cubic Hermite of log(rate) over PSNR through each curve's efficient "
                              "points; cubic: Bjontegaard's least-squares cubic (see aezip/bench/bdrate.py)",
            "bd_rate_percent": bd_rates(rows, names),
            "psnr_gap_db": psnr_gap_summary(rows, names)}


def reconstructions(data: Dataset, test_range: tuple[int, int], models: list[tuple[str, Path | None]],
                    count: int = 16) -> tuple[np.ndarray, list[np.ndarray]]:
    """The first `count` test images and their round trips through each model's .aez file."""
    from aezip.api import compress, decompress

    images = data.read_all()[test_range[0]:test_range[0] + count]
    recons = []
    for _, path in models:
        mf = load_model(path)
        recons.append(decompress(compress(images, mf), mf))
    return images, recons
