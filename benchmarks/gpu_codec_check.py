"""GPU encode -> CPU decode, and where each codec path runs fastest on a GPU machine.

Part of `benchmarks/gpu_check.sh`. For each dataset and mode (lossy, a `--quality` level, `--max-error 4` and 0,
lossy `--effort max`) it encodes once on the device (Triton kernels) and once on the CPU (torch reference), decodes
both files in a fresh process that sees no GPU (`CUDA_VISIBLE_DEVICES=`), and compares: the chunk payloads, the
decoded pixels of the two files, and the decoded pixels against the input (max error ≤ E). A GPU-written file passes when its CPU decode meets
its bound and its pixel checksums (every chunk stores the CRC of the pixels the encoder reconstructed; the decoder
checks it). The device's float encoder may pick other latent codes than the CPU's where a value sits at a rounding
tie, so the two files need not be the same bytes; the table counts the chunks and images that differ.

Then the device policy (#13): lossy and lossless encode images/s on the device and on the CPU with 1..16 threads,
and decode (CPU only: decoding never uses torch) with 1..16 threads, all in one run on the same images.

    python benchmarks/gpu_codec_check.py --set mnist=DATA.gz,default,8000:10000 --set gray=g.npy,tg.aezm --out DIR
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import aezip
from aezip.bench.demo import sample_path
from aezip.files.container import ContainerReader
from aezip.threads import apply_threads

MODES: dict[str, dict] = {"lossy": {}, "quality 8": {"quality": 8}, "max-error 4": {"max_error": 4},
                          "lossless": {"max_error": 0}, "effort max": {"effort": "max"}}


def _parse_set(text: str) -> tuple[str, Path, str | None, str | None]:
    """NAME=DATA[,MODEL[,A:B]] (MODEL "default" or empty: the embedded model)."""
    name, _, rest = text.partition("=")
    parts = rest.split(",")
    model = parts[1] if len(parts) > 1 and parts[1] not in ("", "default") else None
    return name, Path(parts[0]), model, parts[2] if len(parts) > 2 else None


def _payloads(path: Path) -> list[bytes]:
    with ContainerReader(path) as r:
        return [r.read_chunk(i) for i in range(len(r.chunks))]


def _cpu_decode(aez: Path, out: Path, model_path: str | None) -> tuple[np.ndarray, float]:
    """Decode in a fresh process that sees no GPU; the pixels and the seconds it took."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    model = ["-m", model_path] if model_path else []
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aezip.cli.main", "decode", str(aez), "-o", str(out), "--force", "-q",
                    *model], check=True, env=env)
    return np.load(out), time.perf_counter() - t


def compare(name: str, images: np.ndarray, model_path: str | None, device: str, work: Path) -> list[dict]:
    """One row per mode: the device's file and the CPU's, both decoded on the CPU."""
    model, rows = aezip.load_model(model_path), []
    for mode, kw in MODES.items():
        if kw.get("quality", 0) >= model.config.levels:
            continue
        row: dict = {"set": name, "mode": mode, "images": len(images)}
        decoded = {}
        for where, dev, backend in (("device", device, "auto"), ("cpu", "cpu", "torch")):
            aez = work / f"{name}-{mode.replace(' ', '')}-{where}.aez"
            report = aezip.encode(images, aez, model, device=dev, backend=backend, force=True, **kw)
            with ContainerReader(aez) as r:
                row[f"{where}_backend"] = r.header["backend"]
            decoded[where], row[f"{where}_decode_s"] = _cpu_decode(aez, aez.with_suffix(".npy"), model_path)
            row[f"{where}_bits_per_pixel"] = report.bits_per_pixel
            row[f"{where}_encode_images_per_s"] = len(images) / report.seconds
            row[f"{where}_psnr"] = report.psnr_db
            err = np.abs(decoded[where].astype(np.int16) - images.astype(np.int16))
            row[f"{where}_max_error"] = int(err.max())
            row[f"{where}_within_bound"] = "max_error" not in kw or int(err.max()) <= kw["max_error"]
            row[f"{where}_matches_its_report"] = int(err.max()) == report.max_abs_error
        g, c = (_payloads(work / f"{name}-{mode.replace(' ', '')}-{w}.aez") for w in ("device", "cpu"))
        row["chunks"] = len(g)
        row["chunks_differing"] = sum(a != b for a, b in zip(g, c)) + abs(len(g) - len(c))
        row["images_decoding_differently"] = int(np.sum(np.any(
            decoded["device"].reshape(len(images), -1) != decoded["cpu"].reshape(len(images), -1), axis=1)))
        row["ok"] = bool(row["device_within_bound"] and row["device_matches_its_report"])
        rows.append(row)
        print(f"{name:<8}{mode:<13}{row['device_backend']:>8} {row['device_bits_per_pixel']:8.4f} "
              f"{row['device_psnr']:7.2f} | cpu {row['cpu_bits_per_pixel']:8.4f} {row['cpu_psnr']:7.2f} | "
              f"chunks differing {row['chunks_differing']}/{row['chunks']}, images decoding differently "
              f"{row['images_decoding_differently']}/{len(images)}, max error {row['device_max_error']} "
              f"{'PASS' if row['ok'] else 'FAIL'} | encode images/s {row['device_encode_images_per_s']:,.0f} on the "
              f"device, {row['cpu_encode_images_per_s']:,.0f} on the CPU", flush=True)
    return rows


def _rate(fn, n: int, reps: int) -> float:
    """Images/s: n over the median of `reps` timed calls (after one untimed call)."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / float(np.median(times))


def device_policy(images: np.ndarray, device: str, threads: list[int], work: Path, reps: int) -> list[dict]:
    """Encode images/s on the device and on the CPU per thread count, decode images/s per thread count."""
    from aezip.codec import decode_file
    model = aezip.load_model(None)
    rows = []
    for label, kw, n in (("lossy", {}, len(images)), ("lossless", {"max_error": 0}, len(images) // 10)):
        sub = images[:n]
        aez = work / f"policy-{label}.aez"
        settings = [(device, "auto", t) for t in threads[:1]] + [("cpu", "torch", t) for t in threads]
        for dev, backend, t in settings:
            apply_threads("encode", t)
            rate = _rate(lambda: aezip.encode(sub, aez, model, device=dev, backend=backend, force=True, **kw), n,
                         reps)
            rows.append({"path": f"{label} encode", "device": dev, "threads": t, "images": n, "images_per_s": rate})
            print(f"{label} encode on {dev} ({backend}), {t} threads: {rate:,.0f} images/s", flush=True)
        for t in threads:
            apply_threads("decode", t)
            rate = _rate(lambda: decode_file(aez, work / "policy.npy", force=True), n, reps)
            rows.append({"path": f"{label} decode", "device": "cpu", "threads": t, "images": n, "images_per_s": rate})
            print(f"{label} decode, {t} threads: {rate:,.0f} images/s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="NAME=DATA[,MODEL[,A:B]]; default: the shipped MNIST sample with the default model")
    parser.add_argument("--device", default="cuda", help="where the 'device' encode runs (cpu to try the script)")
    parser.add_argument("--threads", default="1,2,4,8", help="CPU thread counts for the policy rows")
    parser.add_argument("--policy-images", type=int, default=20000, help="images for the policy rows (0: none)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sets = [_parse_set(s) for s in args.sets] or [("sample", sample_path(), None, None)]
    result: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "compare": [], "policy": []}
    first = None
    work = Path(tempfile.mkdtemp(prefix="gpu-codec-"))    # files stay out of --out, which keeps only the JSON
    for name, data, model_path, image_range in sets:
        images = aezip.open_data(data).read_all()
        if image_range:
            a, b = (int(v) for v in image_range.split(":"))
            images = images[a:b]
        first = images if first is None else first
        result["compare"] += compare(name, images, model_path, args.device, work)
        (args.out / "gpu-codec.json").write_text(json.dumps(result, indent=1))
    if args.policy_images and first is not None and first.shape[1:] == (28, 28):
        reps_of = -(-args.policy_images // len(first))
        tiled = np.concatenate([first] * reps_of)[:args.policy_images]
        result["policy"] = device_policy(tiled, args.device, [int(t) for t in args.threads.split(",")], work,
                                         args.reps)
    (args.out / "gpu-codec.json").write_text(json.dumps(result, indent=1))
    shutil.rmtree(work)
    return 0 if all(r["ok"] for r in result["compare"]) else 1


if __name__ == "__main__":
    sys.exit(main())
