"""The .aez header: what the codec writes in it, and the checks an untrusted one must pass before any allocation.

Every number that sizes memory is bounded here, before the decoder sees it: the image shape (H·W·C samples per
image ≤ MAX_IMAGE_SAMPLES), the images per chunk (chunk_size · H·W·C ≤ MAX_CHUNK_SAMPLES, which bounds a chunk's
decoded pixels and the decoder's work arrays), the latent size and levels, the max error (0..255), and for a tile
model its tile side, context radius and latent symbols per chunk (≤ MAX_CHUNK_SYMBOLS).
"""
from __future__ import annotations

import re

from aezip.errors import FormatError
from aezip.coding.chunktables import CHUNK_CODER, CHUNK_CODER_V2, CHUNK_CODER_V3
from aezip.coding.context import CONTEXT_CODER
from aezip.coding.quality import LADDER_CODER
from aezip.conv.layout import (ARITHMETIC as CONV_ARITHMETIC, CODER as CONV_CODER, CODERS as CONV_CODERS, MAX_RATES,
                               PER_CHUNK_CODER, padded)

MAX_IMAGE_SAMPLES = 1 << 26          # 8,192 x 8,192 RGB fits
MAX_CHUNK_SAMPLES = 1 << 23          # 8.4 M samples per chunk: ~10,700 images of 28x28
MAX_LATENT = 4096
MAX_CHUNK_SYMBOLS = 1 << 24          # a tile model's latent codes per chunk (tiles x latent x images)
MAX_SHARDS = 1 << 16
DEFAULT_CHUNK = 1024
REQUIRED_FIELDS = frozenset({"shape", "dtype", "source", "model_id", "levels", "latent", "max_error", "backend",
                             "aezip_version", "chunk_size", "decoder", "entropy", "residual"})
_MODEL_ID = re.compile(r"[0-9a-f]{64}")


def default_chunk_size(image_samples: int) -> int:
    """DEFAULT_CHUNK images, fewer for large images so a chunk stays within MAX_CHUNK_SAMPLES."""
    return max(1, min(DEFAULT_CHUNK, MAX_CHUNK_SAMPLES // image_samples))


def max_chunk_size(image_samples: int) -> int:
    """The most images of this size one chunk may hold."""
    return max(1, MAX_CHUNK_SAMPLES // image_samples)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise FormatError(what)


def image_samples(shape: list[int] | tuple[int, ...]) -> int:
    """H·W·C of a dataset shape (N, H, W[, C])."""
    n = 1
    for s in shape[1:]:
        n *= s
    return n


def validate_header(h: object, *, decoder: str, entropy: tuple[str, ...], residual: tuple[str, ...]) -> dict:
    """Check an untrusted header against the schema and bounds; returns it. Raises FormatError naming the field.
    `entropy` lists the latent coders understood; a file of a quality level Q (quality.py) records it and names the
    ladder coder, the context coder (context.py) or the chunk-tables coder (chunktables.py), which serve every
    level. A convolutional codec's file (aezip.conv) has its own coder and decoder arithmetic and is checked by
    _check_conv instead."""
    if isinstance(h, dict) and h.get("entropy") in CONV_CODERS:
        return _check_conv(h, residual)
    _check_common(h)
    shape, levels, latent, chunk, e = (h[k] for k in ("shape", "levels", "latent", "chunk_size", "max_error"))
    _need(levels >= 2, f"header levels {levels!r} outside 2..65536")
    _need(h.get("decoder") == decoder, f"decoder arithmetic {h.get('decoder')!r} is not supported ({decoder})")
    _need(h.get("entropy") in entropy, f"latent coder {h.get('entropy')!r} is not supported "
                                       f"({', '.join(entropy)})")
    q, coder = h.get("quality"), h.get("entropy")
    _need(coder in (LADDER_CODER, CONTEXT_CODER, CHUNK_CODER, CHUNK_CODER_V2, CHUNK_CODER_V3) if "quality" in h
          else coder not in (LADDER_CODER, CHUNK_CODER_V2),
          f"header quality {q!r} and latent coder {coder!r} disagree (the ladder coders {LADDER_CODER} and "
          f"{CHUNK_CODER_V2} need a quality, the per-dimension coder none)")
    _need("quality" not in h or (_is_int(q) and 2 <= q < levels), f"header quality {q!r} outside 2..{levels - 1} "
                                                                    f"(levels {levels})")
    _need(h.get("residual") is None if e is None else h.get("residual") in residual,
          f"residual coder {h.get('residual')!r} is not supported with max_error {e!r}")
    if "tiles" in h:
        _check_tiles(h["tiles"], shape, latent, chunk)
    return h


def _check_common(h: object) -> None:
    """The fields every codec's header shares: shape, dtype, model id, levels, latent and chunk size."""
    if not isinstance(h, dict):
        raise FormatError("the header is not a JSON object")
    missing = REQUIRED_FIELDS - set(h)
    _need(not missing, f"header fields missing: {', '.join(sorted(missing))}")
    shape = h.get("shape")
    _need(isinstance(shape, list) and len(shape) in (3, 4) and all(_is_int(s) for s in shape),
          f"header shape {shape!r} is not N x H x W[ x C]")
    _need(shape[0] >= 1 and min(shape[1:]) >= 1 and (len(shape) == 3 or shape[3] in (1, 3, 4)),
          f"header shape {shape!r} is empty or has an unsupported channel count")
    samples = image_samples(shape)
    _need(samples <= MAX_IMAGE_SAMPLES, f"header shape {shape!r}: images larger than {MAX_IMAGE_SAMPLES} samples")
    _need(h.get("dtype") == "uint8", f"header dtype {h.get('dtype')!r} is not supported (uint8 only)")
    _need(isinstance(h.get("model_id"), str) and bool(_MODEL_ID.fullmatch(h["model_id"])),
          "header model_id is not a sha256 hex digest")
    levels, latent = h.get("levels"), h.get("latent")
    _need(_is_int(levels) and 1 <= levels <= 1 << 16, f"header levels {levels!r} outside 1..65536")
    _need(_is_int(latent) and 1 <= latent <= MAX_LATENT, f"header latent {latent!r} outside 1..{MAX_LATENT}")
    chunk = h.get("chunk_size")
    _need(_is_int(chunk) and 1 <= chunk <= max_chunk_size(samples),
          f"header chunk_size {chunk!r} outside 1..{max_chunk_size(samples)} for images of {samples} samples")
    e = h.get("max_error")
    _need(e is None or (_is_int(e) and 0 <= e <= 255), f"header max_error {e!r} is not none or 0..255")
    for k in ("backend", "aezip_version"):
        _need(isinstance(h.get(k), str), f"header {k} is missing or not a string")
    _need(isinstance(h.get("source"), dict), "header source is not a JSON object")
    if "shard" in h:
        _check_shard(h["shard"], shape[0])


def _check_conv(h: dict, residual: tuple[str, ...]) -> dict:
    """A convolutional codec's header: its decoder arithmetic, a rate point `quality` 1..levels (levels: the model's
    rate points), a pixel coder where it has a max error, no tiles, and a bounded count of latents per chunk. A
    file whose chunks name their own setting (PER_CHUNK_CODER) has no quality and no max error in its header, and
    names the pixel coder its bounded chunks use, if any (their settings are checked chunk by chunk: aezip.chunks)."""
    _check_common(h)
    _need(h.get("decoder") == CONV_ARITHMETIC, f"decoder arithmetic {h.get('decoder')!r} is not supported with latent "
                                               f"coder {CONV_CODER} ({CONV_ARITHMETIC})")
    levels, q, e = h["levels"], h.get("quality"), h["max_error"]
    _need(levels <= MAX_RATES, f"header levels {levels!r}: a convolutional model has at most {MAX_RATES} rate points")
    if h["entropy"] == PER_CHUNK_CODER:
        _need("quality" not in h and e is None, "header quality and max_error: a file of per-chunk settings has "
                                                "neither (its chunks name theirs)")
        _need(h.get("residual") is None or h.get("residual") in residual,
              f"residual coder {h.get('residual')!r} is not supported")
    else:
        _need(_is_int(q) and 1 <= q <= levels, f"header quality {q!r} outside 1..{levels} (the model's rate points)")
        _need(h.get("residual") is None if e is None else h.get("residual") in residual,
              f"residual coder {h.get('residual')!r} is not supported with max_error {e!r}")
    _need("tiles" not in h, "a convolutional codec's file has no tiles")
    ph, pw = padded(tuple(h["shape"][1:]))
    symbols = ph * pw // 64 * h["latent"] * h["chunk_size"]
    _need(symbols <= MAX_CHUNK_SYMBOLS, f"header: {symbols} latents per chunk, more than {MAX_CHUNK_SYMBOLS}")
    return h


def _check_tiles(t: object, shape: list[int], latent: int, chunk: int) -> None:
    """A tile model's geometry: the tile side and the decoder's context radius, and a bounded count of latent
    symbols per chunk (tiles per image x latent x images)."""
    from aezip.network.config import MAX_CONTEXT, MAX_PATCH
    from aezip.network.tiles import tile_count
    _need(isinstance(t, dict) and set(t) == {"patch", "context"} and all(_is_int(v) for v in t.values())
          and 1 <= t["patch"] <= MAX_PATCH and 0 <= t["context"] <= MAX_CONTEXT,
          f"header tiles entry {t!r} is not {{patch: 1..{MAX_PATCH}, context: 0..{MAX_CONTEXT}}}")
    symbols = tile_count(tuple(shape[1:]), t["patch"]) * latent * chunk
    _need(symbols <= MAX_CHUNK_SYMBOLS, f"header tiles entry {t!r}: {symbols} latent symbols per chunk, more than "
                                        f"{MAX_CHUNK_SYMBOLS}")


def _check_shard(s: object, images: int) -> None:
    """A part of a sharded encode: shard index of count, holding `images` images [lo, hi) of total."""
    ok = isinstance(s, dict) and set(s) == {"index", "count", "images", "total"} and isinstance(s["images"], list) \
        and len(s["images"]) == 2 and all(_is_int(v) for v in (s["index"], s["count"], s["total"], *s["images"]))
    _need(ok, "header shard entry is not {index, count, images: [lo, hi], total}")
    lo, hi = s["images"]
    _need(0 <= s["index"] < s["count"] <= MAX_SHARDS and 0 <= lo < hi <= s["total"] and hi - lo == images,
          f"header shard entry {s!r} is out of range")
