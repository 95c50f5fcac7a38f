"""What `aezip train` takes besides the data and the architecture, and the parsers of its option strings.

No torch here: the command line reads these defaults to build its options, and its other commands never need torch.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

RECONSTRUCTION_LOSSES = ("bce", "mse", "cosine")
EXECUTION_OPTIONS = ("device", "backend", "fused_optimizer")   # how training ran, not what it learns: not in info


@dataclass
class TrainOptions:
    """Everything `aezip train` takes besides the data and the architecture."""

    loss: str = "bce"
    rho: float | None = 0.05          # sparse-KL target activation; None turns the penalty off
    beta: float = 1.0
    l2: float = 0.0
    denoise: str | None = None        # "gaussian:SIGMA" | "mask:P" | "box:S"
    quant_noise: str = "uniform"      # "uniform" (additive noise of one step) | "ste" (straight-through rounding)
    prior: str | None = None          # "adversarial[:uniform|bernoulli:RHO]": a discriminator on the latents
    prior_weight: float = 1.0
    shift: int = 1                    # augmentation: random translations of up to this many pixels
    weight_decay: float = 0.01
    epochs: int = 160
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    val_split: float = 0.1
    patience: int = 30
    device: str = "auto"
    backend: str | None = None
    fused_optimizer: bool = False     # torch's fused AdamW: ~4x faster steps on a CPU, but not the same bits

    def __post_init__(self) -> None:
        if self.loss not in RECONSTRUCTION_LOSSES:
            raise InputError(f"unknown loss {self.loss!r}; expected one of {', '.join(RECONSTRUCTION_LOSSES)}")
        if self.rho is not None and not 0.0 < self.rho < 1.0:
            raise InputError(f"--sparsity must lie in (0, 1), got {self.rho}")
        if self.quant_noise not in ("uniform", "ste"):
            raise InputError(f"unknown quantization noise {self.quant_noise!r}; expected uniform or ste")
        if not 0.0 < self.val_split < 1.0:
            raise InputError(f"--val-split must lie in (0, 1), got {self.val_split}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InputError("--epochs, --batch-size and --lr must be positive")
        if self.shift < 0 or self.weight_decay < 0:
            raise InputError("--shift and --weight-decay must not be negative")
        parse_denoise(self.denoise)
        try:
            parse_prior(self.prior)
        except ValueError as exc:
            raise InputError(str(exc)) from None


DENOISE_SPECS = "gaussian:SIGMA (SIGMA >= 0), mask:P (0 <= P < 1) or box:S (an S x S box, S >= 1)"


def parse_denoise(spec: str | None) -> tuple[str, float] | None:
    """'gaussian:SIGMA', 'mask:P' or 'box:S' into (kind, value); None stays None."""
    if not spec:
        return None
    kind, _, value = spec.partition(":")
    try:
        v = float(value)
    except ValueError:
        raise InputError(f"--denoise {spec!r}: expected {DENOISE_SPECS}") from None
    valid = {"gaussian": v >= 0, "mask": 0 <= v < 1, "box": v >= 1 and v == int(v)}
    if not valid.get(kind, False):
        raise InputError(f"--denoise {spec!r}: expected {DENOISE_SPECS}")
    return kind, v


def parse_prior(spec: str | None) -> tuple[str, float] | None:
    """'adversarial', 'adversarial:uniform' or 'adversarial:bernoulli:RHO' into (distribution, rho)."""
    if not spec:
        return None
    parts = spec.split(":")
    if parts[0] != "adversarial" or len(parts) > 3:
        raise ValueError(f"--prior {spec!r}: expected adversarial[:uniform|bernoulli:RHO]")
    if len(parts) == 1 or parts[1:] == ["uniform"]:
        return "uniform", 0.0
    if parts[1] == "bernoulli" and len(parts) == 3:
        try:
            rho = float(parts[2])
        except ValueError:
            rho = -1.0
        if 0.0 < rho < 1.0:
            return "bernoulli", rho
    raise ValueError(f"--prior {spec!r}: expected adversarial[:uniform|bernoulli:RHO] with 0 < RHO < 1")
