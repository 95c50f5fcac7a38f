"""A seeded, structure-aware fuzzer for .aez and model files (decode-side ones too, embedded in a .aez or alone): it
crafts hostile files that reach the parser (every CRC recomputed), decodes each one through the CLI in this process,
and records what must never happen: a traceback, a run over the time limit, a write outside the output path. Peak
memory is the process's peak RSS.

    python -m tests.fuzz --aez 10000 --models 1000 --seed 0     # the long run (README reports one)
    pytest -m fuzz                                                # the same through pytest (AEZIP_FUZZ_CASES)
tests/test_fuzz.py runs a few hundred cases of each kind in every test run.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import random
import resource
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from aezip.cli.main import main
from aezip.codec import encode_dataset
from aezip.coding.pixelstream import GRADIENT, MIXING, MIXING_EXACT, MIXING_LATENTS
from aezip.conv.layout import PER_CHUNK_CODER
from aezip.files.data import open_dataset
from aezip.files.decodemodel import pack, save_decoder, unpack
from aezip.bench.demo import sample_path
from aezip.network.model import AEConfig
from aezip.files.modelfile import load_model, save_model
from aezip.options import PixelOptions
from aezip.network.training import TrainOptions, train_model
from tests import aezcraft

TIME_LIMIT_S = 30.0
_HOSTILE_VALUES = [0, -1, 1, 2 ** 31, 2 ** 63, 10 ** 30, -(10 ** 9), 1e308, float("nan"), True, None, "", "x" * 5000,
                   "../../x", "/etc/passwd", "a\0b", [], [1], [0, 0, 0], [10 ** 6, 28, 28], [1, 10 ** 6, 10 ** 6],
                   {}, {"format": "images"}, [[[[[]]]]], "uint16", "fixed-point-v1", 255, 256, 100000]
_HOSTILE_NAMES = ["../x.png", "/tmp/aezip-fuzz-abs.png", "..", ".", "", "a/b.png", "a\\b.png", "a\0.png", "\n",
                  "A.PNG", "a.png", "x" * 300 + ".png", 7, None]


@dataclass
class Outcome:
    """What the fuzz run saw."""

    cases: int = 0
    exits: dict[int, int] = field(default_factory=dict)
    tracebacks: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)
    outside_writes: list[str] = field(default_factory=list)
    max_seconds: float = 0.0

    def summary(self) -> dict:
        return {"cases": self.cases, "exit_codes": self.exits, "tracebacks": len(self.tracebacks),
                "over_time_limit": len(self.slow), "outside_writes": len(self.outside_writes),
                "max_seconds": round(self.max_seconds, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "first_tracebacks": self.tracebacks[:3]}


def make_corpus(workdir: Path) -> tuple[Path, list[Path]]:
    """A tiny model and well-formed files of each kind to mutate: lossy IDX, a lower --quality, lossless .npy, an
    image folder, files with an embedded model (lossy, and --max-error with the pixel model), a gradient-coded one,
    a mixing-coded one, one coded by the mixing coder with latents and the model's raster network, one by the mixing
    coder's exact form under E > 0, and a tiny tile model's files (_tile_files); the model's decode-side file beside
    it."""
    images = open_dataset(sample_path()).read_all()[:24]
    config = AEConfig(image_shape=(28, 28), hidden=(16,), latent=4, levels=8)
    opts = TrainOptions(epochs=1, batch_size=32, seed=0, device="cpu", backend="torch",
                        pixel=PixelOptions(hidden=(8,), scales=4, levels=(1,), samples=2000, epochs=1))
    model_path = workdir / "tiny.aezm"
    save_model(model_path, train_model(images, config, opts, progress=False, log=lambda m: None))
    mf = load_model(model_path)
    assert mf.raster is not None   # the "raster" file below codes with it
    np.save(workdir / "src.npy", images[:12])
    folder = workdir / "folder"
    folder.mkdir()
    for i, img in enumerate(images[:5]):
        Image.fromarray(img).save(folder / f"img{i}.{'png' if i % 2 else 'jpg'}")
    corpus = []
    np.savez(workdir / "src.npz", images=images[:9], labels=np.arange(9), names=np.array(["a", "b"]))
    yy, xx = np.mgrid[0:28, 0:28]
    np.save(workdir / "smooth.npy", np.stack([(3 * yy + 2 * xx + 9 * k) % 256 for k in range(10)]).astype(np.uint8))
    for name, src, kw in (("lossy", workdir / "src.npy", {"chunk_size": 5}),
                          ("npz", workdir / "src.npz", {"chunk_size": 4}),
                          ("lossless", workdir / "src.npy", {"chunk_size": 7, "max_error": 0}),
                          ("quality", workdir / "src.npy", {"chunk_size": 5, "quality": 3}),
                          ("folder", folder, {"chunk_size": 2, "max_error": 3}),
                          ("embedded", workdir / "src.npy", {"chunk_size": 5, "embed_model": True}),
                          ("embedded-e", workdir / "src.npy", {"chunk_size": 6, "max_error": 2, "embed_model": True}),
                          ("gradient", workdir / "smooth.npy", {"chunk_size": 4, "max_error": 0,
                                                                 "pixel_methods": (GRADIENT,)}),
                          ("mixing", workdir / "smooth.npy", {"chunk_size": 4, "max_error": 1,
                                                               "pixel_methods": (MIXING,)}),
                          ("raster", workdir / "src.npy", {"chunk_size": 6, "max_error": 0,   # method 10, its network
                                                           "pixel_methods": (MIXING_LATENTS,)}),
                          ("exact", workdir / "smooth.npy", {"chunk_size": 5, "max_error": 2,   # method 12 (v7)
                                                              "pixel_methods": (MIXING_EXACT,)})):
        encode_dataset(open_dataset(src), mf, workdir / f"{name}.aez", **kw)
        corpus.append(workdir / f"{name}.aez")
    corpus += _tile_files(workdir) + _conv_files(workdir)
    save_decoder(mf, workdir / "tiny.aezd")
    return model_path, corpus


def _conv_files(workdir: Path) -> list[Path]:
    """Files of a tiny convolutional model (`conv.aezm`, two rate points) at each rate and under a max error, its
    decode side embedded, one with a decoder patch too, one of per-chunk settings with patches (aezip.mixed), and
    `conv-plain.aez` without it (the model-file cases name it)."""
    from aezip.api import train_conv
    from aezip.mixed import encode_per_chunk
    images = np.random.default_rng(3).integers(0, 256, (10, 20, 28, 3), dtype=np.uint8)
    mf = train_conv(images, lambdas=(0.001, 0.01), steps=2, batch_size=4, widths=(8, 6, 4), device="cpu")
    mf.save(workdir / "conv.aezm")
    np.save(workdir / "conv.npy", images[:7])
    out = []
    for name, kw in (("conv-1", {"quality": 1, "embed_model": True}), ("conv-2", {"quality": 2, "embed_model": True}),
                     ("conv-e", {"quality": 1, "max_error": 2, "embed_model": True}), ("conv-plain", {"quality": 2}),
                     ("conv-patch", {"quality": 2, "embed_model": True, "adapt": 3, "adapt_decoder": True})):
        encode_dataset(open_dataset(workdir / "conv.npy"), mf, workdir / f"{name}.aez", chunk_size=3, **kw)
        out.append(workdir / f"{name}.aez")
    encode_per_chunk(open_dataset(workdir / "conv.npy"), mf, workdir / "conv-mixed.aez", 12.0, chunk_size=2,
                     embed_model=True, adapt=2, adapt_decoder=True)
    return out + [workdir / "conv-mixed.aez"]


def _tile_files(workdir: Path) -> list[Path]:
    """Files of a tiny tile model, its decode-side model embedded (coder v3): at its full levels, whose chunks take
    the neighbour-context tables (latent method 3), and at a --quality level."""
    def fields(n: int, h: int, w: int, seed: int) -> np.ndarray:            # smooth random images
        f = np.random.default_rng(seed).normal(size=(n, h + 4, w + 4)).cumsum(1).cumsum(2)[:, 2:h + 2, 2:w + 2]
        f -= f.min(axis=(1, 2), keepdims=True)
        return np.round(255 * f / (f.max(axis=(1, 2), keepdims=True) + 1e-9)).astype(np.uint8)

    config = AEConfig(image_shape=(16, 16), hidden=(16,), latent=2, levels=8, patch=4, margin=1, context=1)
    opts = TrainOptions(epochs=30, batch_size=16, seed=2, device="cpu", backend="torch", pixel_model=False,
                        augment=())
    save_model(workdir / "tiles.aezm", train_model(fields(48, 16, 16, 0), config, opts, progress=False,
                                                   log=lambda m: None))
    mf = load_model(workdir / "tiles.aezm")
    np.save(workdir / "fields.npy", fields(16, 48, 44, 1))
    out = []
    for name, kw in (("tiles", {"chunk_size": 8}), ("tiles-q", {"chunk_size": 8, "quality": 3})):
        encode_dataset(open_dataset(workdir / "fields.npy"), mf, workdir / f"{name}.aez", embed_model=True, **kw)
        out.append(workdir / f"{name}.aez")
    payloads = aezcraft.parse(out[0].read_bytes()).payloads
    assert all(aezcraft.payload_parts(p)[1][:1] == b"\x03" for p in payloads)    # the fuzzer reaches method 3
    return out


def _hostile(rng: random.Random) -> object:
    v = rng.choice(_HOSTILE_VALUES)
    return v if rng.random() < 0.8 else {"deep": [v] * rng.randint(0, 3)}


def mutate_decoder(blob: bytes, rng: random.Random) -> bytes:
    """One hostile variant of a decode-side model: its manifest, tensor data, framing, or raw damage."""
    manifest, data = unpack(blob)
    kind = rng.randrange(5)
    if kind == 0:                                        # a manifest field, the architecture included
        if rng.random() < 0.5:
            manifest[rng.choice(["format", "format_version", "model_id", "config", "tensors"])] = _hostile(rng)
        else:
            manifest["config"][rng.choice(["image_shape", "hidden", "latent", "levels"])] = rng.choice(
                [_hostile(rng), [10 ** 6, 256], [4096, 4096], 10 ** 6, 1, [28, 28, 3]])
    elif kind == 1:                                      # a tensor entry: name, dtypes, shape; dropped or repeated
        entries = manifest["tensors"]
        i = rng.randrange(len(entries))
        what = rng.randrange(4)
        if what == 0:
            entries[i][rng.randrange(4)] = rng.choice([_hostile(rng), "float32", "uint64", "int64", "int8",
                                                       [10 ** 6, 10 ** 6], [2 ** 40] * 4, "intdec.w0"])
        elif what == 1:
            entries.pop(i)
        elif what == 2:
            entries.append(list(entries[i]))
        else:
            entries[i][3] = [entries[i][3][0] + rng.choice([-1, 1])] + entries[i][3][1:] if entries[i][3] else [2]
    elif kind == 2:                                      # tensor bytes at their extremes (a weight past the bound)
        raw = bytearray(data)
        pos = rng.randrange(len(raw))
        raw[pos:pos + 4] = rng.choice([b"\xff", b"\x7f", b"\x80", b"\x00"]) * len(raw[pos:pos + 4])
        data = bytes(raw)
    elif kind == 3:                                      # the payload's stated size, the data's length
        return blob[:10] + rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"]) + blob[14:] if rng.random() < 0.5 \
            else pack(manifest, data[:rng.randrange(len(data))], preset=0)
    else:                                                # raw damage and truncation
        raw = bytearray(blob[:rng.randrange(1, len(blob) + 1)])
        for _ in range(rng.randint(0, 3)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        return bytes(raw)
    return pack(manifest, data, preset=0)


def mutate_aez(data: bytes, rng: random.Random) -> bytes:
    """One hostile variant of a well-formed .aez file; most keep every checksum valid."""
    parts = aezcraft.parse(data)
    h = parts.header_json
    if parts.patch is not None and rng.random() < 0.3:   # the decoder patch: bytes flipped, cut or grown
        raw = bytearray(parts.patch)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        parts.patch = rng.choice([bytes(raw), bytes(raw[:rng.randrange(len(raw))]), bytes(raw) + bytes(3)])
        return aezcraft.build(parts)
    if parts.model is not None and rng.random() < 0.3:   # the embedded model
        if rng.random() < 0.15:
            parts.model = rng.choice([None, b"", parts.model[:rng.randrange(len(parts.model))]])
        else:
            parts.model = mutate_decoder(parts.model, rng)
        return aezcraft.build(parts)
    kind = rng.randrange(10)
    if kind == 0:                                        # a header field gets a hostile value
        h[rng.choice(sorted(h))] = _hostile(rng)
    elif kind == 1:                                      # a header field disappears, or an unknown one appears
        if rng.random() < 0.6:
            h.pop(rng.choice(sorted(h)), None)
        else:
            h[rng.choice(["extra", "shard"])] = rng.choice([_hostile(rng), {"index": 0, "count": 10 ** 9, "total": 9,
                                                            "images": [0, h["shape"][0]]}])
    elif kind == 2:                                      # the source entry, file names included
        src = h["source"]
        if rng.random() < 0.5:
            src.pop("names_zlib", None)
            src["names"] = [rng.choice(_HOSTILE_NAMES) for _ in range(rng.choice([0, 1, h["shape"][0],
                                                                                   h["shape"][0] + 1]))]
        else:
            src[rng.choice(["format", "gzip", "npz_key", "names_zlib", "names", "npz_extra"])] = rng.choice(
                [_hostile(rng), "KLUv/QRYAQAA", "KLUv/WQAAAAAAAA=", "not base64!"])
    elif kind == 3:                                      # shape, chunk size, max error against the chunks
        h[rng.choice(["shape", "chunk_size", "max_error", "levels", "latent", "quality"])] = rng.choice(
            [[h["shape"][0] + rng.randint(-2, 2), *h["shape"][1:]], rng.randint(-3, 2 ** 20), 0, 1, 127, 128, 255])
    elif kind == 4 and len(parts.payloads) > 0:          # index rows: repeated, reordered, recounted
        sections = [parts.model or b"", parts.patch] if parts.patch is not None else [parts.model] \
            if parts.model is not None else []
        off = 14 + len(parts.header) + 4 + sum(len(x) + 8 for x in sections)
        rows = []
        for p, n in zip(parts.payloads, parts.images):
            rows.append((off, len(p), n))
            off += len(p) + 4
        choice = rng.randrange(4)
        if choice == 0:
            rows = [rows[0]] * rng.randint(2, 50)
        elif choice == 1:
            rng.shuffle(rows)
        elif choice == 2:
            i = rng.randrange(len(rows))
            rows[i] = (rows[i][0], rows[i][1], rng.choice([0, 1, rows[i][2] + 1, 2 ** 32 - 1]))
        else:
            i = rng.randrange(len(rows))
            rows[i] = (rows[i][0] + rng.randint(-8, 8), rows[i][1] + rng.randint(-8, 8), rows[i][2])
        parts.rows = rows
    elif kind == 5 and parts.payloads:                   # a chunk payload's fields or streams (or its setting)
        i = rng.randrange(len(parts.payloads))
        prefix, payload = b"", parts.payloads[i]
        if h.get("entropy") == PER_CHUNK_CODER:          # the chunk's setting first (aezip.mixed)
            cut = 2 if payload[0] & 0x80 else 1
            prefix, payload = payload[:cut], payload[cut:]
            if rng.random() < 0.3:
                prefix = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2])))
        n, lat, res, crc = aezcraft.payload_parts(payload)
        what = rng.randrange(5)
        if what == 0:
            n = rng.choice([0, n + 1, max(0, n - 1), 2 ** 32 - 1])
        elif what == 1:
            lat = bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 4, 8, len(lat)])))
        elif what == 2:
            res = bytes(rng.randrange(256) for _ in range(rng.choice([0, 4, len(res) + 4])))
        elif what == 3 and lat:
            j = rng.randrange(len(lat))
            lat = lat[:j] + bytes([lat[j] ^ (1 << rng.randrange(8))]) + lat[j + 1:]
        else:
            crc ^= 1
        parts.payloads[i] = prefix + aezcraft.make_payload(n, lat, res, crc)
        if rng.random() < 0.3:
            parts.payloads[i] = parts.payloads[i][:rng.randrange(len(parts.payloads[i]) + 1)]
    elif kind == 6:                                      # the header is not valid JSON, or not an object
        return aezcraft.build(parts.with_header(rng.choice([b"[" * 50000, b"{", b"1", b"\xff", b"[]", b"null",
                                                            json.dumps([h]).encode()])))
    elif kind == 7:                                      # version and magic
        parts.version = rng.choice([0, 1, 3, 65535])
    elif kind == 8:                                      # raw damage that the checksums must catch
        raw = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        return bytes(raw)
    else:                                                # truncation or trailing garbage
        return data[:rng.randrange(len(data))] if rng.random() < 0.5 else data + bytes(rng.randint(1, 64))
    return aezcraft.build(parts.with_header(h))


def _split_safetensors(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _join_safetensors(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def mutate_model(data: bytes, rng: random.Random) -> bytes:
    """One hostile variant of a model file: its metadata, tensor table or tensor values."""
    header, body = _split_safetensors(data)
    meta = json.loads(header["__metadata__"]["aezip"])
    tensors = [k for k in header if k != "__metadata__"]
    kind = rng.randrange(7)
    if kind == 0:                                        # the architecture
        cfg = meta["config"]
        key = rng.choice(["image_shape", "hidden", "latent", "levels"])
        cfg[key] = rng.choice([_hostile(rng), [10 ** 6, 256], [4096, 4096, 4096], 10 ** 6, 1, [28, 28, 3]])
    elif kind == 1:                                      # the metadata entries themselves
        meta[rng.choice(["format", "format_version", "config", "info"])] = _hostile(rng)
    elif kind == 2:                                      # a tensor's dtype, shape or offsets
        entry = header[rng.choice(tensors)]
        field_name = rng.choice(["dtype", "shape", "data_offsets"])
        entry[field_name] = rng.choice([_hostile(rng), "F64", "I8", [10 ** 6, 10 ** 6], [0, 2 ** 62], [3, 1]])
    elif kind == 3:                                      # a tensor goes missing, or an unknown one appears
        if rng.random() < 0.5:
            header.pop(rng.choice(tensors))
        else:
            header["evil.tensor"] = {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}
    elif kind == 4:                                      # tensor values at their extremes
        name = rng.choice(tensors)
        start, end = header[name]["data_offsets"]
        raw = bytearray(body)
        width = {"I32": 4, "I64": 8, "I16": 2, "U8": 1, "F32": 4}.get(header[name]["dtype"], 1)
        if end > start:
            pos = start + rng.randrange((end - start) // width) * width
            raw[pos:pos + width] = rng.choice([b"\xff", b"\x7f", b"\x80", b"\x00"]) * width
        body = bytes(raw)
    elif kind == 5:                                      # the metadata is not what it should be
        header["__metadata__"] = rng.choice([{"aezip": "[" * 50000}, {"aezip": "{"}, {}, {"aezip": "null"}])
        return _join_safetensors(header, body)
    else:                                                # raw damage and truncation
        raw = bytearray(data[:rng.randrange(8, len(data) + 1)])
        for _ in range(rng.randint(0, 3)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        return bytes(raw)
    header["__metadata__"] = {"aezip": json.dumps(meta, sort_keys=True)}
    return _join_safetensors(header, body)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_cli(args: list[str], outcome: Outcome, label: str, sandbox: Path) -> None:
    """Run one CLI call in this process; record tracebacks, slow runs and files written outside the output."""
    before = _files(sandbox)
    err = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:   # anything main lets through reaches the user as a traceback
        code = -1
        outcome.tracebacks.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
    seconds = time.perf_counter() - start
    outcome.cases += 1
    outcome.exits[code] = outcome.exits.get(code, 0) + 1
    outcome.max_seconds = max(outcome.max_seconds, seconds)
    if seconds > TIME_LIMIT_S:
        outcome.slow.append(f"{label}: {seconds:.1f} s")
    if code not in (0, -1) and not err.getvalue().startswith("aezip: error: "):
        outcome.tracebacks.append(f"{label}: exit {code} without a one-line error: {err.getvalue()[:200]}")
    out = sandbox / "out"
    new = {f for f in _files(sandbox) - before if f != "out" and not f.startswith("out/")}
    if new:
        outcome.outside_writes.append(f"{label}: {sorted(new)[:3]}")
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink(missing_ok=True)


def fuzz(aez_cases: int, model_cases: int, seed: int, workdir: Path) -> Outcome:
    """Craft and decode `aez_cases` .aez files and `model_cases` model files; returns what happened."""
    rng = random.Random(seed)
    model_path, corpus = make_corpus(workdir)
    sandbox = workdir / "sandbox"
    sandbox.mkdir()
    outcome = Outcome()
    originals = [p.read_bytes() for p in corpus]
    model_data, decoder_data = model_path.read_bytes(), model_path.with_suffix(".aezd").read_bytes()
    conv_data, conv_file = (workdir / "conv.aezm").read_bytes(), (workdir / "conv-plain.aez").read_bytes()
    for i in range(aez_cases):
        crafted = sandbox / "in.aez"
        original = rng.choice(originals)
        crafted.write_bytes(mutate_aez(original, rng))
        embedded = aezcraft.parse(original).model is not None       # decoded by the model it carries
        run_cli(["decode", str(crafted), *([] if embedded else ["-m", str(model_path)]), "-o", str(sandbox / "out")],
                outcome, f"aez case {i}", sandbox)
        if i % 4 == 0:
            run_cli(["info", str(crafted)], outcome, f"aez case {i} (info)", sandbox)
    for i in range(model_cases):
        crafted = sandbox / "model.aezm"
        decoder, conv = i % 3 == 2, i % 3 == 1        # a third each: decode-side (.aezd), conv and MLP model files
        crafted.write_bytes(mutate_decoder(decoder_data, rng) if decoder else
                            mutate_model(conv_data if conv else model_data, rng))
        parts = aezcraft.parse(conv_file if conv else originals[i % len(originals)])
        h = parts.header_json           # the file names the crafted model, so a model that loads is also decoded
        if not decoder:                 # with (a .aezd names its model by the id it holds)
            h["model_id"] = hashlib.sha256(crafted.read_bytes()).hexdigest()
        named = sandbox / "named.aez"
        named.write_bytes(aezcraft.build(parts.with_header(h)))
        run_cli(["decode", str(named), "-m", str(crafted), "-o", str(sandbox / "out")], outcome,
                f"model case {i}", sandbox)
    if Path("/tmp/aezip-fuzz-abs.png").exists():
        outcome.outside_writes.append("/tmp/aezip-fuzz-abs.png")
    return outcome


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aez", type=int, default=10000, help="crafted .aez files")
    parser.add_argument("--models", type=int, default=1000, help="crafted model files")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        summary = fuzz(args.aez, args.models, args.seed, Path(tmp)).summary()
    print(json.dumps(summary, indent=1))
    sys.exit(1 if summary["tracebacks"] or summary["over_time_limit"] or summary["outside_writes"] else 0)


if __name__ == "__main__":
    cli()
