"""Checks a model file's metadata and tensors before anything is built from them: model files are untrusted.

Every tensor must be one the format defines, with the dtype and shape the configuration implies, so nothing
larger than the file itself is ever allocated; the configuration is bounded (MAX_* below); the integer decoder's
weights, shifts and thresholds must keep its promise (every accumulator below EXACT_LIMIT, so decoding stays
exact and bit-identical), and so must the pixel model's and the raster network's (optional; check_pixel_tensors,
check_raster_tensors); entropy tables
and the pixel model's table must give every symbol a positive count.
"""
from __future__ import annotations

import numpy as np

from aezip.network.config import MAX_CONTEXT, MAX_MARGIN, MAX_PATCH, AEConfig
from aezip.coding.context import check_context_tensors
from aezip.errors import FormatError
from aezip.files.header import MAX_IMAGE_SAMPLES, MAX_LATENT
from aezip.coding.intdecoder import ACT_LIMIT, EXACT_LIMIT, SHIFT_LIMIT, WEIGHT_LIMIT
from aezip.coding.pixelmodel import ALONE, INPUT_LIMIT, MU_BUCKETS, WITH_LATENTS, channels, levels_of, n_features
from aezip.coding.rasternet import FEATURES, PREFIX as RASTER, VALUES, RasterNet, is_exact
from aezip.coding.residual import N_CONTEXTS, PRIOR_TOTAL

MAX_HIDDEN_LAYERS = 8
MAX_WIDTH = 1 << 16
MAX_LEVELS = 1 << 16
BANK_MAX = 16384              # codes of at most this many training images go into a model file
MAX_TABLE_TOTAL = 1 << 52     # a table row's total: count / total is then one exact division
MAX_PIXEL_SCALES = 64
MAX_PIXEL_COUNT = 1 << 24     # a pixel-model table entry: 256 of them sum far below 2^52
MAX_RASTER_WIDTH = 512        # the raster network runs once per pixel while decoding: its layers stay small


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise FormatError(what)


def _ints(v: object, lo: int, hi: int) -> bool:
    return isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi
                                                 for x in v)


def check_residual_prior(tensors: dict[str, np.ndarray], required: bool) -> set[str]:
    """The max-error coder's prior (`residual.prior`, a decode-side model of a lossy file has none): its names."""
    if not required and "residual.prior" not in tensors:
        return set()
    prior = _expect(tensors, "residual.prior", "int16", (N_CONTEXTS, 256))
    _need(bool((prior >= 0).all() and (prior <= PRIOR_TOTAL).all()), f"residual prior outside 0..{PRIOR_TOTAL}")
    return {"residual.prior"}


def check_config(config: object) -> dict:
    """The architecture entry of a model's metadata, bounded; returns it."""
    if not isinstance(config, dict):
        raise FormatError("config is not a mapping")
    shape, hidden = config.get("image_shape"), config.get("hidden")
    _need(_ints(shape, 1, MAX_IMAGE_SAMPLES) and len(shape) in (2, 3) and (len(shape) == 2 or shape[2] in (1, 3, 4))
          and int(np.prod(shape)) <= MAX_IMAGE_SAMPLES, f"config image_shape {shape!r} is not H x W[ x C]")
    _need(_ints(hidden, 1, MAX_WIDTH) and len(hidden) <= MAX_HIDDEN_LAYERS,
          f"config hidden {hidden!r}: at most {MAX_HIDDEN_LAYERS} widths of 1..{MAX_WIDTH}")
    _need(_ints([config.get("latent")], 1, MAX_LATENT), f"config latent {config.get('latent')!r} out of range")
    _need(_ints([config.get("levels")], 2, MAX_LEVELS), f"config levels {config.get('levels')!r} out of range")
    tile = [config.get(k, 0) for k in ("patch", "margin", "context")]
    _need(_ints(tile, 0, MAX_PATCH) and tile[1] <= MAX_MARGIN and tile[2] <= MAX_CONTEXT
          and (tile[0] > 0 or tile[1:] == [0, 0]),
          f"config patch, margin, context {tile!r}: expected 0..{MAX_PATCH}, 0..{MAX_MARGIN}, 0..{MAX_CONTEXT} "
          f"(margin and context only with a patch)")
    return config


def _expect(tensors: dict[str, np.ndarray], key: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    t = tensors.get(key)
    _need(t is not None, f"tensor {key} is missing")
    _need(t.dtype == np.dtype(dtype) and t.shape == shape,
          f"tensor {key} is {t.dtype} {t.shape}, expected {dtype} {shape}")
    return t


def check_tensors(config: dict, tensors: dict[str, np.ndarray], *, decode_only: bool = False) -> None:
    """Every tensor present, of the dtype and shape the config implies, within its bounds; no others. A decode-side
    model (decode_only) holds no float network, and the max-error coder's parts only where its file needs them."""
    cfg = AEConfig.from_dict(config)
    latent, levels = config["latent"], config["levels"]
    expected = set()
    for name, shape in cfg.weight_shapes().items() if not decode_only else ():
        _expect(tensors, f"float.{name}", "float32", shape)
        expected.add(f"float.{name}")
    tables = _expect(tensors, "entropy.tables", "int64", (latent, levels))
    _need(bool((tables >= 1).all()) and bool((tables.sum(axis=1, dtype=np.float64) < MAX_TABLE_TOTAL).all()),
          "entropy tables must hold positive counts with bounded totals")
    expected |= check_residual_prior(tensors, required=not decode_only)
    rdims = cfg.layer_dims()[1]
    n = len(rdims) - 1
    shifts = _expect(tensors, "intdec.shifts", "int64", (n - 1,))
    _need(bool((np.abs(shifts) <= SHIFT_LIMIT).all()), "integer decoder shifts out of range")
    thresholds = _expect(tensors, "intdec.thresholds", "int64", (255,))
    _need(bool((np.diff(thresholds) >= 0).all()) and bool((np.abs(thresholds) < EXACT_LIMIT).all()),
          "integer decoder thresholds must be sorted and bounded")
    in_limit = float(levels - 1)
    for i in range(n):
        w = _expect(tensors, f"intdec.w{i}", "int32", (rdims[i + 1], rdims[i]))
        b = _expect(tensors, f"intdec.b{i}", "int64", (rdims[i + 1],))
        _need(bool((np.abs(w.astype(np.int64)) <= WEIGHT_LIMIT).all()), f"intdec.w{i} exceeds {WEIGHT_LIMIT}")
        bound = np.abs(w.astype(np.float64)).sum(axis=1) * in_limit + np.abs(b.astype(np.float64))
        _need(bool((bound < EXACT_LIMIT / 2).all()), f"intdec layer {i} could leave exact integer arithmetic")
        in_limit = float(ACT_LIMIT)
    expected |= {"entropy.tables", "intdec.shifts", "intdec.thresholds"}
    expected |= {f"intdec.{k}{i}" for i in range(n) for k in "wb"}
    bank = None if decode_only else tensors.get("restore.bank")
    if bank is not None:
        _need(bank.dtype in (np.uint8, np.uint16) and bank.ndim == 2 and bank.shape[1] == latent * cfg.rows()
              and bank.shape[0] <= BANK_MAX and int(bank.max(initial=0)) < levels,
              f"restore.bank {bank.dtype} {bank.shape} does not fit the model")
        expected.add("restore.bank")
    for prefix in (WITH_LATENTS, ALONE):   # the pixel models are part of the max-error coder
        if prefix + "table" in tensors and "residual.prior" in tensors:
            expected |= check_pixel_tensors(tuple(config["image_shape"]), tensors, prefix)
    if RASTER + "out_bits" in tensors and "residual.prior" in tensors:   # part of the max-error coder too
        expected |= check_raster_tensors(tensors)
    expected |= check_context_tensors(latent, levels, tensors, MAX_TABLE_TOTAL)
    unknown = set(tensors) - expected
    _need(not unknown, f"unknown tensors {sorted(unknown)[:3]}")


def check_raster_tensors(tensors: dict[str, np.ndarray]) -> set[str]:
    """The raster network's tensors (rasternet.py): FEATURES -> hidden -> hidden -> 256 integer layers (hidden widths
    at most MAX_RASTER_WIDTH: it runs once per decoded pixel) whose accumulators stay below EXACT_LIMIT / 2; returns
    their names."""
    names = {RASTER + "shifts", RASTER + "out_bits"}
    _expect(tensors, RASTER + "shifts", "int64", (2,))
    _expect(tensors, RASTER + "out_bits", "int64", (1,))
    width = FEATURES
    for i in range(3):
        w, b = tensors.get(f"{RASTER}w{i}"), tensors.get(f"{RASTER}b{i}")
        _need(w is not None and b is not None and w.ndim == 2, f"tensor {RASTER}w{i} or {RASTER}b{i} is missing")
        out = VALUES if i == 2 else w.shape[0]
        _need(1 <= out <= (VALUES if i == 2 else MAX_RASTER_WIDTH), f"{RASTER}w{i} has {out} outputs")
        _expect(tensors, f"{RASTER}w{i}", "int32", (out, width))
        _expect(tensors, f"{RASTER}b{i}", "int64", (out,))
        _need(bool((np.abs(w.astype(np.int64)) <= WEIGHT_LIMIT).all()), f"{RASTER}w{i} exceeds {WEIGHT_LIMIT}")
        names |= {f"{RASTER}w{i}", f"{RASTER}b{i}"}
        width = out
    net = RasterNet.from_tensors(tensors)
    _need(is_exact(net), "the raster network could leave exact integer arithmetic")
    return names


def _mlp_layers(tensors: dict[str, np.ndarray], prefix: str, k: int, layers: int, features: int) -> set[str]:
    """Pass k's integer layers: a chain features -> ... -> 2 whose accumulators stay below EXACT_LIMIT / 2."""
    names, width, in_limit = set(), features, float(INPUT_LIMIT)
    for i in range(layers):
        w, b = tensors.get(f"{prefix}p{k}.w{i}"), tensors.get(f"{prefix}p{k}.b{i}")
        _need(w is not None and b is not None, f"tensor {prefix}p{k}.w{i} or {prefix}p{k}.b{i} is missing")
        out = 2 if i == layers - 1 else (w.shape[0] if w.ndim == 2 else 0)
        _need(1 <= out <= MAX_WIDTH, f"{prefix}p{k}.w{i} has {out} outputs")
        _expect(tensors, f"{prefix}p{k}.w{i}", "int32", (out, width))
        _expect(tensors, f"{prefix}p{k}.b{i}", "int64", (out,))
        _need(bool((np.abs(w.astype(np.int64)) <= WEIGHT_LIMIT).all()), f"{prefix}p{k}.w{i} exceeds {WEIGHT_LIMIT}")
        bound = np.abs(w.astype(np.float64)).sum(axis=1) * in_limit + np.abs(b.astype(np.float64))
        _need(bool((bound < EXACT_LIMIT / 2).all()), f"pixel model layer {k}.{i} could leave exact integer arithmetic")
        names |= {f"{prefix}p{k}.w{i}", f"{prefix}p{k}.b{i}"}
        width, in_limit = out, float(ACT_LIMIT)
    return names


def check_pixel_tensors(image_shape: tuple[int, ...], tensors: dict[str, np.ndarray], prefix: str) -> set[str]:
    """The tensors of the pixel model named prefix + ..., their shapes and bounds (see pixelmodel.py); returns their
    names. The model without latents (prefix ALONE) also holds its base image (D uint8)."""
    shifts = tensors.get(prefix + "shifts")
    _need(shifts is not None and shifts.ndim == 2 and 1 <= shifts.shape[1] + 1 <= MAX_HIDDEN_LAYERS + 1,
          f"tensor {prefix}shifts is missing or not passes x hidden layers")
    passes = shifts.shape[0]
    _need(levels_of(passes, image_shape) is not None, f"pixel model of {passes} passes does not fit the images")
    layers = shifts.shape[1] + 1
    _expect(tensors, prefix + "shifts", "int64", (passes, layers - 1))
    _need(bool((np.abs(shifts) <= SHIFT_LIMIT).all()), "pixel model shifts out of range")
    table = tensors[prefix + "table"]
    _need(table.ndim == 3 and 2 <= table.shape[0] <= MAX_PIXEL_SCALES, f"{prefix}table is not scales x buckets x 256")
    scales = table.shape[0]
    _expect(tensors, prefix + "table", "int32", (scales, MU_BUCKETS, 256))
    _need(bool((table >= 1).all() and (table <= MAX_PIXEL_COUNT).all()), f"{prefix}table outside 1..{MAX_PIXEL_COUNT}")
    offset = _expect(tensors, prefix + "offset_table", "int32", (scales, 511))
    _need(bool((offset >= 1).all() and (offset <= MAX_PIXEL_COUNT).all()),
          f"{prefix}offset_table outside 1..{MAX_PIXEL_COUNT}")
    for key, width in ((prefix + "mu_thresholds", 510), (prefix + "s_thresholds", scales - 1)):
        t = _expect(tensors, key, "int64", (passes, width))
        _need(bool((np.diff(t, axis=1) >= 0).all() and (np.abs(t) < EXACT_LIMIT).all()),
              f"{key} must be sorted and bounded")
    names = {prefix + k for k in ("shifts", "table", "offset_table", "mu_thresholds", "s_thresholds")}
    for k in range(passes):
        names |= _mlp_layers(tensors, prefix, k, layers, n_features(k % channels(image_shape)))
    if prefix == ALONE:
        _expect(tensors, prefix + "base", "uint8", (int(np.prod(image_shape)),))
        names.add(prefix + "base")
    return names
