"""Choose the backend for a kernel call: Triton on CUDA tensors or under TRITON_INTERPRET=1, torch otherwise."""
from __future__ import annotations

import functools
import os
from typing import Any

import torch

from ..errors import BackendError
from ..options import BACKENDS

__all__ = ["BACKENDS", "BackendError", "interpreter_on", "resolve_backend", "available_backends", "dot_precision"]


def interpreter_on() -> bool:
    """True when Triton runs kernels on the CPU through its interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.lru_cache(maxsize=1)
def _triton_import_error() -> str | None:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"triton is not importable ({exc.__class__.__name__}: {exc})"
    return None


def triton_unavailable_reason(device: torch.device) -> str | None:
    """None if Triton can run on tensors of this device, else a one-line reason."""
    reason = _triton_import_error()
    if reason:
        return reason + "; install it with `pip install triton`"
    if device.type == "cuda" or interpreter_on():
        return None
    return (f"tensors are on {device.type}, and Triton runs only on CUDA devices or on the CPU "
            "under TRITON_INTERPRET=1")


DOT_PRECISIONS = ("tf32x3", "ieee", "tf32")


def dot_precision() -> str:
    """tl.dot's precision for fp32 inputs, from AEZIP_DOT_PRECISION: "tf32x3" (default: three TF32 tensor-core
    products that recover fp32 accuracy; on an H200 the kernels pass the fp32 parity tolerances with it and run
    2.4-5.9x faster than with "ieee"), "ieee" (fp32 products on the CUDA cores) or "tf32" (one product: faster, ~1e-3
    relative error, outside the parity tolerances). The interpreter computes all three in fp32."""
    value = os.environ.get("AEZIP_DOT_PRECISION", DOT_PRECISIONS[0]).strip().lower() or DOT_PRECISIONS[0]
    if value not in DOT_PRECISIONS:
        raise BackendError(f"AEZIP_DOT_PRECISION={value!r} is not one of {', '.join(DOT_PRECISIONS)}")
    return value


def default_backend() -> str:
    """The backend asked for by AEZIP_BACKEND (auto if unset)."""
    value = os.environ.get("AEZIP_BACKEND", "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        raise BackendError(f"AEZIP_BACKEND={value!r} is not one of {', '.join(BACKENDS)}")
    return value


def resolve_backend(backend: str | None, device: torch.device) -> str:
    """Turn "auto" | "triton" | "torch" into the backend that will run; "auto" (or None) defers to AEZIP_BACKEND."""
    if backend in (None, "auto"):
        backend = default_backend()
    if backend not in BACKENDS:
        raise BackendError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return "torch"
    reason = triton_unavailable_reason(device)
    if backend == "triton" and reason:
        raise BackendError(f"backend 'triton' cannot run: {reason}")
    return "torch" if reason else "triton"


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """The backends that can run on tensors of this device."""
    device = torch.device(device)
    return ["triton", "torch"] if triton_unavailable_reason(device) is None else ["torch"]


def autotune_configs(configs: list, interpreter: object) -> list:
    """The GPU configs to autotune over; only the first with AEZIP_AUTOTUNE=0; under the interpreter, `interpreter`.

    The interpreter runs each program's block operations as numpy calls, so its cost is per program and per
    operation, not per FLOP: large blocks make an interpreted training step ~20x faster than GPU-sized ones."""
    if interpreter_on():
        return [interpreter]
    if os.environ.get("AEZIP_AUTOTUNE", "1") == "0":
        return configs[:1]
    return configs


def rows_class(rows: int) -> int:
    """The row count's part of an autotune key: the next power of two, clamped to [256, 65536]. Without it the config
    tuned at the first call's batch (256 rows, say) would also run 65536 (1.6x slower on an H200 for the wide
    encoder), while tuning every distinct row count would retune for each last, partial batch."""
    return min(max(1 << max(rows - 1, 0).bit_length(), 256), 65536)


def launch(kernel: Any, grid: Any, config: Any, *args: Any, **kwargs: Any) -> None:
    """Launch an autotuned kernel; with a config, bypass the autotuner and run that config (tests try every one)."""
    if config is None:
        kernel[grid](*args, **kwargs)
    else:
        kernel.fn[grid](*args, **kwargs, **config.kwargs)
