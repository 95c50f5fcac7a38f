"""In-process `--max-error E` encode and decode speed of this tree against another git ref (e.g. main), with xz -9e
on the same images, in one run:

    python benchmarks/maxerror_speed.py DATA --range 8000:10000 --baseline main [-m M.aezm]
    python benchmarks/maxerror_speed.py DATA --range 8000:10000 --effort best,fast --threads 1,2

Each tree runs in its own interpreter (the ref exported with `git archive`) per thread count (--threads, default 1:
aezip.threads.apply_threads for encode and for decode, as the CLI sets them), the same model file (this
tree's default unless -m), through aezip.codec.encode_dataset / decode_file to .npy; first-call costs (imports,
compiled-code cache) are paid by an untimed warm-up encode and decode; figures are medians of --reps. Each decoded
file is checked against the bound, and the files' SHA-256 say whether the trees wrote the same bytes. --effort
measures `aezip encode --effort` levels (the pixel coders each tries, passed to both trees as method numbers; max
also runs the latent search).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from aezip.bench.speed import _median_seconds

ROOT = Path(__file__).resolve().parent.parent
_MAPPED = {"kernels": "kernels", "cli": "cli"}   # pyproject's package-dir: aezip.kernels = kernels/, aezip.cli = cli/


def worker(src: Path, model: Path, errors: list[int], efforts: dict[str, list[int] | None], reps: int,
           threads: int, out: Path) -> None:
    """Time encode and decode of the images in src at each E and effort (its pixel methods) with the aezip on
    sys.path, with `threads` threads; write JSON rows to out."""
    from aezip.codec import decode_file, encode_dataset
    from aezip.threads import apply_threads
    from aezip.files.data import open_dataset
    from aezip.files.modelfile import load_model
    import aezip
    mf = load_model(model)
    dataset = open_dataset(src)
    images = np.load(src)
    work = out.parent
    encode_dataset(dataset, mf, work / "warm.aez", max_error=0, image_range=(0, 64), force=True)
    decode_file(work / "warm.aez", work / "warm.npy", model_path=mf, force=True)
    rows = []
    for e in errors:
        for effort, methods in efforts.items():
            aez, back = work / f"e{e}.aez", work / f"e{e}.npy"
            apply_threads("encode", threads)
            search = {"search": True} if effort == "max" else {}   # trees before the search have no "max"
            enc = _median_seconds(lambda: encode_dataset(dataset, mf, aez, max_error=e, force=True,
                                                         pixel_methods=methods, **search), reps)
            apply_threads("decode", threads)
            dec = _median_seconds(lambda: decode_file(aez, back, model_path=mf, force=True), reps)
            assert np.abs(np.load(back).astype(int) - images).max() <= e
            data = aez.read_bytes()
            rows.append({"max_error": e, "effort": effort, "bytes": len(data),
                         "sha256": hashlib.sha256(data).hexdigest(), "encode": len(images) / enc,
                         "decode": len(images) / dec})
    out.write_text(json.dumps({"aezip": str(Path(aezip.__file__).parent), "rows": rows}))


def _export(ref: str, into: Path) -> str:
    """The tree of git ref `ref` under `into`, importable as `aezip` from there; returns its short commit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for name, folder in _MAPPED.items():
        (into / "aezip" / name).symlink_to(into / folder, target_is_directory=True)
    return commit


def _run_tree(tree: Path, src: Path, model: Path, errors: list[int], efforts: str, reps: int, threads: int,
              work: Path) -> dict:
    out = work / "rows.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if tree != ROOT:                                  # this tree is the installed (editable) aezip
        env["PYTHONPATH"] = str(tree)
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(src), "-m", str(model),
                    "--max-error", ",".join(map(str, errors)), "--effort", efforts, "--reps", str(reps),
                    "--threads", str(threads), "--out", str(out)],
                   check=True, env=env, cwd=work)
    result = json.loads(out.read_text())
    if Path(result["aezip"]).resolve() != (tree / "aezip").resolve():
        raise SystemExit(f"the worker imported aezip from {result['aezip']}, not {tree}")
    return result


def _xz_row(images: np.ndarray, reps: int) -> dict:
    raw = images.tobytes()
    packed = lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)
    enc = _median_seconds(lambda: lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME), 1)
    dec = _median_seconds(lambda: lzma.decompress(packed), reps)
    return {"bytes": len(packed), "encode": len(images) / enc, "decode": len(images) / dec}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("-m", "--model", default=str(ROOT / "aezip" / "assets" / "default.aezm"))
    ap.add_argument("--range", default=None, help="images A:B")
    ap.add_argument("--max-error", default="0,4", help="comma-separated E values")
    ap.add_argument("--baseline", default=None, help="a git ref to measure beside this tree (e.g. main)")
    ap.add_argument("--effort", default="best", help="comma-separated `aezip encode --effort` levels")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", default="1", help="comma-separated thread counts")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    errors = [int(v) for v in args.max_error.split(",")]
    if args.worker:
        efforts = {e.split(":")[0]: None if e.endswith(":all") else [int(m) for m in e.split(":")[1].split("+")]
                   for e in args.effort.split(",")}
        worker(Path(args.data), Path(args.model), errors, efforts, args.reps, int(args.threads), Path(args.out))
        return
    from aezip.effort import effort_settings
    methods = {e: effort_settings(e)["pixel_methods"] for e in args.effort.split(",")}
    efforts = ",".join(f"{e}:{'all' if m is None else '+'.join(map(str, m))}" for e, m in methods.items())
    from aezip.files.data import open_dataset
    from aezip.options import parse_range
    images = np.concatenate(list(open_dataset(args.data).chunks(4096)))
    lo, hi = parse_range(args.range, len(images))
    images = np.ascontiguousarray(images[lo:hi])
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "images.npy"
        np.save(src, images)
        trees = []
        if args.baseline:
            (work / "base").mkdir()
            trees.append((f"{args.baseline} ({_export(args.baseline, work / 'base')})", work / "base"))
        trees.append(("this tree", ROOT))
        results = []
        for n in (int(v) for v in args.threads.split(",")):
            for label, tree in trees:
                (work / label[:4]).mkdir(exist_ok=True)
                results.append((f"{label}, {n} thr", _run_tree(tree, src, Path(args.model), errors, efforts,
                                                              args.reps, n, work / label[:4])))
        xz = _xz_row(images, args.reps)
    print(f"{len(images)} images {'x'.join(map(str, images.shape[1:]))} ({args.range or 'all'}), model "
          f"{Path(args.model).name}, median of {args.reps}; load average before {load[0]:.2f}, after "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'code, threads':<28}{'E':>3}{'effort':>7}{'bytes':>10}{'encode img/s':>14}{'decode img/s':>14}"
          "  same bytes as first")
    first = {(r["max_error"], r["effort"]): r["sha256"] for r in results[0][1]["rows"]}
    for label, result in results:
        for r in result["rows"]:
            print(f"{label:<28}{r['max_error']:>3}{r['effort']:>7}{r['bytes']:>10}{r['encode']:>14.0f}"
                  f"{r['decode']:>14.0f}  {'yes' if first[r['max_error'], r['effort']] == r['sha256'] else 'NO'}")
    print(f"{'xz -9e':<28}{'-':>3}{'':>7}{xz['bytes']:>10}{xz['encode']:>14.0f}{xz['decode']:>14.0f}")


if __name__ == "__main__":
    main()
