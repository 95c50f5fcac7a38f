"""A decoder patch: a convolutional model's rate point with its synthesis biases and inverse-GDN betas adapted to the
images of one file (`aezip encode --adapt STEPS --adapt-decoder`), carried in that file as small integer deltas.

The decode side of a rate point (aezip.conv.integer.RatePoint) holds its synthesis in fixed point: per layer a bias
at the accumulator's scale 2^acc_frac and, for inverse GDN, a beta at 2^(ACT_FRAC_BITS + gdn_frac). A patch changes
only those 5 vectors (2n + 2n + C integers: 257 at n = 64 in gray), keeping every scale: value' = value + q * 2^shift
with one shift per vector, so its integers are a few bits each. The patched network is checked with every bound of
a stored one (aezip.coding.intconv.net_from_tensors), so decoding stays exact on every machine; weights, gamma, the
hyper-synthesis and the entropy tables are the model's own.

Format (`aezip-conv-patch`, version 1; integers big-endian):
    magic "AEZP" | version u8 | rate point u8 (0-based) | vectors u8 |
    per vector: layer u8 | kind u8 (0 bias, 1 beta) | shift u8 (0..36) | width u8 (1 or 2 bytes) | length u16 |
                values (signed, that width)
The container stores it in its own checksummed section (aezip.files.container, version 4); the file's rate counts it.

Why it pays: on held-out photographs unlike the training set, the encoder alone cannot move the decoder's output
where the pictures are; adapting these few hundred numbers with the encoder closed half of the remaining gap in the
probe (README "Convolutional models", benchmarks/results/adaptation-probe-gray.txt).
"""
from __future__ import annotations

import dataclasses
import struct

import numpy as np

from aezip.coding.intconv import ACT_FRAC_BITS, net_from_tensors, net_tensors
from aezip.conv.integer import RatePoint, synthesis_plan
from aezip.errors import FormatError
from aezip.files.container import MAX_PATCH_BYTES

MAGIC = b"AEZP"
VERSION = 1
BIAS, BETA = 0, 1
PATCHED = ("dec.0.bias", "dec.1.beta", "dec.2.bias", "dec.3.beta", "dec.4.bias")   # the float parameters adapted
STEP_BITS = 10           # a delta's step: 2^-10 of the value's real unit (biases in activations, betas in norms)
_HEAD = struct.Struct(">4sBBB")
_VECTOR = struct.Struct(">BBBBH")
_WIDTHS = {1: ">i1", 2: ">i2"}
MAX_SHIFT = 36           # |q| * 2^shift < 2^15 * 2^36 < 2^52: the sum with a stored integer (< 2^52) fits int64


def _vectors(point: RatePoint) -> list[tuple[int, int, np.ndarray, int]]:
    """(layer, kind, the integer vector, its real unit's fractional bits) of each patchable vector."""
    out = []
    for i, layer in enumerate(point.synthesis.layers):
        out.append((i, BIAS, layer.bias, layer.acc_frac))
        if layer.activation == "igdn":
            out.append((i, BETA, layer.beta, ACT_FRAC_BITS + layer.gdn_frac))
    return out


def make_patch(point: RatePoint, net, rate: int) -> tuple[RatePoint, bytes | None]:
    """(the rate point with the synthesis biases and betas of the fine-tuned one-group float ConvCodec `net`, at the
    point's own scales in STEP_BITS steps, each delta within 2^15 steps; the patch's bytes), or (the point, None)
    where the patched network would break a bound of the fixed-point decoder. The point itself is not changed."""
    targets = []
    for i, conv in enumerate(net.dec[0::2]):
        targets.append(conv.bias.detach().double().cpu().numpy())
        if 2 * i + 1 < len(net.dec):
            targets.append(net.dec[2 * i + 1].effective()[1].detach().double().cpu().numpy())
    body, count = b"", 0
    for (layer, kind, base, frac), target in zip(_vectors(point), targets):
        shift = min(max(0, frac - STEP_BITS), MAX_SHIFT)
        q = np.clip(np.round((np.round(target * 2.0 ** frac) - base) * 2.0 ** -shift), -32767, 32767).astype(np.int64)
        if not q.any():
            continue
        width = 1 if np.abs(q).max() < 128 else 2
        body += _VECTOR.pack(layer, kind, shift, width, len(q)) + q.astype(_WIDTHS[width]).tobytes()
        count += 1
    blob = _HEAD.pack(MAGIC, VERSION, rate, count) + body
    try:
        return apply_patch(point, blob, rate), blob
    except FormatError:
        return point, None


def apply_patch(point: RatePoint, blob: bytes, rate: int) -> RatePoint:
    """Rate point `rate` (0-based) patched by an untrusted patch's bytes, every bound of a stored network checked;
    FormatError naming what is wrong otherwise."""
    if not _HEAD.size <= len(blob) <= MAX_PATCH_BYTES:
        raise FormatError(f"decoder patch of {len(blob)} bytes is not one aezip writes")
    magic, version, patch_rate, count = _HEAD.unpack_from(blob)
    if magic != MAGIC or version != VERSION:
        raise FormatError(f"not an aezip decoder patch of version {VERSION}")
    if patch_rate != rate:
        raise FormatError(f"the decoder patch is for rate point {patch_rate + 1}, the file's is {rate + 1}")
    known = {(layer, kind): base for layer, kind, base, _ in _vectors(point)}
    tensors = net_tensors(point.synthesis, "s")
    pos, seen = _HEAD.size, set()
    for _ in range(count):
        if pos + _VECTOR.size > len(blob):
            raise FormatError("the decoder patch is truncated")
        layer, kind, shift, width, length = _VECTOR.unpack_from(blob, pos)
        pos += _VECTOR.size
        if (layer, kind) not in known or (layer, kind) in seen or width not in _WIDTHS:
            raise FormatError(f"decoder patch vector ({layer}, {kind}, width {width}) is unknown or repeated")
        seen.add((layer, kind))
        base = known[(layer, kind)]
        if length != len(base) or pos + width * length > len(blob):
            raise FormatError(f"decoder patch vector ({layer}, {kind}) has {length} values where the model has "
                              f"{len(base)}, or runs past the patch")
        if shift > MAX_SHIFT:
            raise FormatError(f"decoder patch vector ({layer}, {kind}): shift {shift} beyond {MAX_SHIFT}")
        q = np.frombuffer(blob, _WIDTHS[width], length, pos).astype(np.int64)
        pos += width * length
        tensors[f"s.{layer}.{'bias' if kind == BIAS else 'beta'}"] = base + (q << shift)
    if pos != len(blob):
        raise FormatError(f"{len(blob) - pos} bytes follow the decoder patch's last vector")
    net = point.synthesis
    first, last = net.layers[0].weight, net.layers[-1].weight
    try:
        synthesis = net_from_tensors(tensors, "s", synthesis_plan(last.shape[1], first.shape[1], first.shape[0]),
                                     net.in_frac, net.in_limit, pixels=True)
    except ValueError as exc:
        raise FormatError(f"the decoder patch breaks a bound of the fixed-point decoder ({exc})") from None
    return dataclasses.replace(point, synthesis=synthesis)


_COUNT = struct.Struct(">B")
_LENGTH = struct.Struct(">H")


def pack_patches(patches: list[bytes]) -> bytes:
    """The decoder patches of a file of per-chunk settings (aezip.mixed), one per rate point it adapted, in one
    section: count u8 | per patch: length u16 | the patch."""
    return _COUNT.pack(len(patches)) + b"".join(_LENGTH.pack(len(p)) + p for p in patches)


def unpack_patches(section: bytes) -> dict[int, bytes]:
    """{rate point (0-based): its patch's bytes} of an untrusted section of pack_patches (each patch is checked when
    applied); FormatError if the section is not one, or names a rate point twice."""
    if not section:
        raise FormatError("an empty decoder patch section")
    (count,), pos, out = _COUNT.unpack_from(section), _COUNT.size, {}
    for _ in range(count):
        if pos + _LENGTH.size > len(section):
            raise FormatError("the decoder patch section is truncated")
        (n,) = _LENGTH.unpack_from(section, pos)
        blob = section[pos + _LENGTH.size:pos + _LENGTH.size + n]
        pos += _LENGTH.size + n
        if len(blob) != n or n < _HEAD.size:
            raise FormatError("the decoder patch section is truncated")
        rate = _HEAD.unpack_from(blob)[2]
        if rate in out:
            raise FormatError(f"the decoder patch section patches rate point {rate + 1} twice")
        out[rate] = blob
    if pos != len(section):
        raise FormatError(f"{len(section) - pos} bytes follow the decoder patch section's last patch")
    return out
