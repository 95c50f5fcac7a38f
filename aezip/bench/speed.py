"""`aezip bench speed`: how fast aezip encodes and decodes, beside xz and zstd on the same bytes, and how close each
aezip figure comes to what this machine's matrix multiplies allow.

The ceiling of a path is the images/s its GEMMs alone would reach at the GEMM rate measured in the same run (one
core's rate times the threads the paths run with: each block thread runs single-threaded BLAS): the integer decoder
runs float64 GEMMs (2 x sum of in x out FLOPs an image), the encoder float32 ones, so lossy decode is bounded by the
float64 rate and encode by both. Whole-process figures time the `aezip` command in a fresh
interpreter (imports, model load, file I/O included). Machines drift and are shared: read ratios within one run.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import zstandard

from aezip.bench.baselines import raw_compressors
from aezip.codec import decode_file, encode_dataset
from aezip.files.data import open_dataset, write_dataset
from aezip.files.source import Source
from aezip.files.modelfile import load_model
from aezip.threads import apply_threads


def gemm_rate(dtype: type, m: int = 1024, k: int = 512, n: int = 784, reps: int = 5) -> float:
    """Measured GEMM FLOP/s of numpy's BLAS for one (m x k) @ (k x n) product, the decoder's largest layer."""
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k)).astype(dtype), rng.random((k, n)).astype(dtype)
    a @ b
    return 2.0 * m * k * n / _median_seconds(lambda: a @ b, reps)


def _median_seconds(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def layer_flops(dims: list[int]) -> float:
    """FLOPs an image of an MLP with these widths (input first): 2 x sum of in x out."""
    return 2.0 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def _whole_process(args: list[str]) -> float:
    """Seconds the `aezip` command takes in a fresh interpreter."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from aezip.cli.main import main; main()", *args], check=True,
                   capture_output=True)
    return time.perf_counter() - t


def run_speed_report(images: np.ndarray, *, reps: int = 3, model_path: Path | None = None,
                     threads: int | None = None) -> dict:
    """Rows of images/s for aezip (lossy and lossless, in-process and whole-process), xz and zstd on `images`."""
    n = len(images)
    mf = load_model(model_path)
    dims, rdims = mf.config.layer_dims()
    per_image = mf.config.rows(images.shape[1:])     # rows of codes per image: 1, or its tiles
    enc_flops, dec_flops = per_image * layer_flops(dims), per_image * layer_flops(rdims)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "images.npy"
        write_dataset(iter([images]), images.shape, Source("npy"), src, force=True)
        dataset = open_dataset(src)
        used = apply_threads("decode", threads)
        f64, f32 = gemm_rate(np.float64), gemm_rate(np.float32)   # one core: BLAS runs single-threaded here
        dec_ceiling = used * f64 / dec_flops
        enc_ceiling = used / (enc_flops / f32 + dec_flops / f64)
        model_arg = ["-m", str(mf.path)]
        for label, max_error in (("lossy", None), ("lossless", 0)):
            aez, out = work / f"{label}.aez", work / f"{label}-out.npy"
            apply_threads("encode", threads)
            t_enc = _median_seconds(lambda: encode_dataset(dataset, mf, aez, max_error=max_error, force=True), reps)
            apply_threads("decode", threads)
            t_dec = _median_seconds(lambda: decode_file(aez, out, model_path=mf.path, force=True), reps)
            if max_error == 0 and not np.array_equal(np.load(out), images):
                raise AssertionError("lossless round trip changed pixels")
            size = aez.stat().st_size
            extra = [] if max_error is None else ["--max-error", str(max_error)]
            thr = [] if threads is None else ["--threads", str(threads)]
            w_enc = _whole_process(["encode", str(src), "-o", str(aez), "--force", *model_arg, *extra, *thr])
            w_dec = _whole_process(["decode", str(aez), "-o", str(out), "--force", *model_arg, *thr])
            for what, secs, ceiling in (("encode", t_enc, enc_ceiling), ("decode", t_dec, dec_ceiling)):
                rows.append({"codec": f"aezip {label}", "op": what, "where": "in-process", "bytes": size,
                             "images_per_s": n / secs, "ceiling_images_per_s": ceiling})
            for what, secs in (("encode", w_enc), ("decode", w_dec)):
                rows.append({"codec": f"aezip {label}", "op": what, "where": "whole process", "bytes": size,
                             "images_per_s": n / secs, "ceiling_images_per_s": None})
        raw = images.tobytes()
        for name, comp, decomp in _raw_codecs():
            blob = comp(raw)
            t_c = _median_seconds(lambda: comp(raw), 1 if name.startswith("xz") else reps)
            t_d = _median_seconds(lambda: decomp(blob), reps)
            for what, secs in (("encode", t_c), ("decode", t_d)):
                rows.append({"codec": name, "op": what, "where": "in-process", "bytes": len(blob),
                             "images_per_s": n / secs, "ceiling_images_per_s": None})
    return {"images": n, "image_shape": list(images.shape[1:]), "reps": reps, "threads": used,
            "gemm_gflops": {"float64": f64 / 1e9, "float32": f32 / 1e9}, "rows": rows,
            "ceilings": {"decode": dec_ceiling, "encode": enc_ceiling,
                         "decoder_flops_per_image": dec_flops, "encoder_flops_per_image": enc_flops}}


def _raw_codecs() -> list[tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]]:
    """The general-purpose compressors the speed report times: xz -9e, zstd -19 (as in bench codec) and zstd -3."""
    table = raw_compressors()
    zstd3 = (lambda b: zstandard.ZstdCompressor(level=3).compress(b), table["zstd -19"][1])
    return [(name, *codec) for name, codec in (("xz -9e", table["xz -9e"]), ("zstd -19", table["zstd -19"]),
                                               ("zstd -3", zstd3))]
