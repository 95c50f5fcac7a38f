"""`aezip bench kernels`: the Triton kernels against torch eager and torch.compile of the reference, same run.

Figures: median and p20/p80 time, TFLOP/s for the GEMMs, GB/s for the KL pass, % of the device's peak (a table of
published peaks for the GPUs we know; on a CPU a peak measured here with a large fp32 matmul), and peak memory.
Where no GPU is present the Triton rows say so; no figure is ever made up.
"""
from __future__ import annotations

import datetime as dt
import platform
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from aezip import __version__, kernels
from aezip.kernels.dispatch import dot_precision
from aezip.kernels.reference import encoder_forward_reference, sparse_kl_reference
from aezip.network.model import AEConfig, AutoEncoder

# Dense peaks from the vendors' data sheets: fp32 (CUDA cores), tf32 and bf16 (tensor cores), memory bandwidth.
GPU_PEAKS = {
    "H200": {"fp32": 67e12, "tf32": 495e12, "bf16": 989e12, "bytes_per_s": 4.8e12},
    "H100": {"fp32": 67e12, "tf32": 495e12, "bf16": 989e12, "bytes_per_s": 3.35e12},
    "A100": {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12, "bytes_per_s": 2.04e12},
}
# Encoder chains: the whole-image default and a wide one; tile models' rows (one per tile, a 16 x 16 window of an
# 8 x 8 tile with margin 4: the picked gray and RGB architectures, sizing.py), where a batch is tiles, not images.
ARCHS = {"default": (784, 512, 256, 32), "wide": (3072, 2048, 1024, 256),
         "tile 8+4 gray": (256, 256, 128, 8), "tile 8+4 RGB": (768, 256, 128, 16)}


def environment(device: torch.device) -> dict:
    """What the figures were measured on."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {"device": name, "device_type": device.type, "torch": torch.__version__, "triton": triton_version,
            "dot_precision": dot_precision(),
            "aezip": __version__, "git_commit": commit, "threads": torch.get_num_threads(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], object], device: torch.device, reps: int = 20, warmup: int = 3) -> dict:
    """Median, p20 and p80 of `reps` timed calls, in seconds, after warm-up."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    p20, med, p80 = np.percentile(times, [20, 50, 80])
    return {"median_s": float(med), "p20_s": float(p20), "p80_s": float(p80)}


def cpu_peak_flops(n: int = 2048, reps: int = 5) -> float:
    """An fp32 peak measured here: the best of a few n x n matmuls."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = min(time_fn(lambda: a @ b, torch.device("cpu"), reps=reps, warmup=1)["p20_s"] for _ in range(2))
    return 2 * n ** 3 / best


def _peak(device: torch.device, key: str) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((p[key] for gpu, p in GPU_PEAKS.items() if gpu in name), None)


def _gemm_peak(device: torch.device, impl: str) -> float | None:
    """The GEMM peak a row is measured against: the Triton kernels' tl.dot precision decides their units (tf32x3 is
    three TF32 tensor-core products per product: a third of the TF32 peak); torch's fp32 matmul (TF32 off, torch's
    default) runs on the fp32 units."""
    if impl != "triton":
        return _peak(device, "fp32")
    tf32 = _peak(device, "tf32")
    return {"ieee": _peak(device, "fp32"), "tf32x3": tf32 and tf32 / 3, "tf32": tf32}[dot_precision()]


def _variants(device: torch.device, triton_fn: Callable, torch_fn: Callable, compile_ok: bool) -> list:
    out: list[tuple[str, Callable | None, str | None]] = []
    reason = kernels.dispatch.triton_unavailable_reason(device)
    out.append(("triton", None if reason else triton_fn, reason and "Triton timings need a GPU: " + reason))
    out.append(("torch eager", torch_fn, None))
    if compile_ok:
        try:
            compiled = torch.compile(torch_fn)
            compiled()
            out.append(("torch.compile", compiled, None))
        except Exception as exc:  # compile needs a working toolchain; report why it is missing
            out.append(("torch.compile", None, f"torch.compile failed: {str(exc).splitlines()[0][:120]}"))
    return out


CONV_IMAGES_PER_ROW = 64   # a conv encoder row's batch counts images: `--batch B` times B / 64 (its windows: 256 rows
#                            per 32 x 32 image in the first layer, as a tile model's 16 tiles of 8 x 8 are 16 rows)


def _conv_rows(device: torch.device, batch_sizes: list[int], reps: int, compile_ok: bool,
               cpu_peak: float | None) -> list[dict]:
    """Rows for a conv model's rate-point encoder (aezip.conv, RGB, n = m = 64, z = 32) on 32 x 32 images: every
    layer through the Triton conv kernel against torch's convolutions."""
    from aezip.conv.network import ConvCodec

    torch.manual_seed(0)
    net = ConvCodec(3, 1, "hyper", 64, 64, 32).eval().to(device)
    macs = sum(m.weight[0].numel() * m.out_channels * side * side for m, side in
               ((net.enc[0], 16), (net.enc[2], 8), (net.enc[4], 4), (net.h_enc[0], 4), (net.h_enc[2], 2)))
    macs += 64 * 64 * (16 * 16 + 8 * 8)           # the two GDN products
    rows = []
    for b in batch_sizes:
        images = max(1, b // CONV_IMAGES_PER_ROW)
        x = torch.rand(images, 3, 32, 32, device=device)
        with torch.no_grad():
            for impl, fn, note in _variants(device, lambda: net.encode(x, "triton"), lambda: net.encode(x, "torch"),
                                            compile_ok):
                row = _measure("conv encoder (RGB, 32x32 images)", impl, images, fn, note, device, reps,
                               flops=2 * macs * images, peak_flops=_gemm_peak(device, impl) or cpu_peak)
                if impl == "triton" and fn is not None:
                    from aezip.kernels.conv_kernel import _conv_gemm_kernel
                    config = getattr(_conv_gemm_kernel, "best_config", None)
                    row["config"] = config and " ".join(f"{k.split('_')[1][0]}{v}" for k, v in config.kwargs.items())
                rows.append(row)
    return rows


def bench_kernels(device: torch.device, batch_sizes: list[int], reps: int = 20, compile_ok: bool = True) -> list[dict]:
    """Rows for the encoder forward (default and wide), sparse-KL forward+backward and one training step."""
    rows = []
    cpu_peak = cpu_peak_flops() if device.type == "cpu" else None
    peak_bw = _peak(device, "bytes_per_s")
    for arch_name, dims in ARCHS.items():
        g = torch.Generator().manual_seed(0)
        ws = [(torch.randn(o, i, generator=g) / i ** 0.5).to(device) for i, o in zip(dims[:-1], dims[1:])]
        bs = [torch.zeros(o, device=device) for o in dims[1:]]
        acts = ["relu"] * (len(dims) - 2) + ["sigmoid"]
        flops_per_row = 2 * sum(i * o for i, o in zip(dims[:-1], dims[1:]))
        for b in batch_sizes:
            x = torch.rand(b, dims[0], device=device)
            with torch.no_grad():
                variants = _variants(device, lambda: kernels.encoder_forward(x, ws, bs, acts, backend="triton"),
                                     lambda: encoder_forward_reference(x, ws, bs, acts), compile_ok)
                for impl, fn, note in variants:
                    row = _measure(f"encoder forward ({arch_name})", impl, b, fn, note, device, reps,
                                   flops=flops_per_row * b, peak_flops=_gemm_peak(device, impl) or cpu_peak)
                    if impl == "triton" and fn is not None:
                        from aezip.kernels.encoder_kernel import chosen_config, fused_encoder_fits
                        row["config"] = chosen_config(fused_encoder_fits(ws))
                    rows.append(row)
    rows += _conv_rows(device, batch_sizes, reps, compile_ok, cpu_peak)
    for b in batch_sizes:
        h = torch.rand(b, 256, device=device, requires_grad=True)

        def kl(fn: Callable) -> Callable:
            return lambda: torch.autograd.grad(fn(), h)

        variants = _variants(device, kl(lambda: kernels.sparse_kl(h, 0.05, backend="triton")),
                             kl(lambda: sparse_kl_reference(h, 0.05)), compile_ok)
        for impl, fn, note in variants:
            rows.append(_measure("sparse-KL forward+backward (J=256)", impl, b, fn, note, device, reps,
                                 bytes_moved=2 * b * 256 * 4, peak_bytes=peak_bw))
    for b in batch_sizes:
        model = AutoEncoder(AEConfig(image_shape=(28, 28))).to(device)
        opt = torch.optim.Adam(model.parameters())
        x = torch.rand(b, 784, device=device)
        for impl in ("triton", "torch"):
            reason = kernels.dispatch.triton_unavailable_reason(device) if impl == "triton" else None

            def step(backend: str = impl) -> None:
                h = model.encode(x, backend)
                loss = ((model.decode(h) - x) ** 2).sum() / b + kernels.sparse_kl(
                    h, 0.05, 0.1, backend=backend)
                opt.zero_grad()
                loss.backward()
                opt.step()
            rows.append(_measure("training step (default AE)", "triton" if impl == "triton" else "torch eager", b,
                                 None if reason else step, reason and "Triton timings need a GPU: " + reason,
                                 device, max(3, reps // 4)))
    return rows


def _measure(case: str, impl: str, batch: int, fn: Callable | None, note: str | None, device: torch.device,
             reps: int, flops: float | None = None, peak_flops: float | None = None,
             bytes_moved: float | None = None, peak_bytes: float | None = None) -> dict:
    row: dict = {"case": case, "impl": impl, "batch": batch}
    if fn is None:
        row["note"] = note
        return row
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row.update(time_fn(fn, device, reps=reps))
    t = row["median_s"]
    if flops:
        row["tflops"] = flops / t / 1e12
        if peak_flops:
            row["pct_peak"] = 100 * flops / t / peak_flops
    if bytes_moved:
        row["gb_s"] = bytes_moved / t / 1e9
        if peak_bytes:
            row["pct_peak"] = 100 * bytes_moved / t / peak_bytes
    if device.type == "cuda":
        row["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    return row
