"""The library's options as plain data (no torch): training options, the parsers of option strings, image ranges,
and the names the CLI offers as choices. The CLI reads its defaults and choices from here, so printing help imports
no torch."""
from __future__ import annotations

from dataclasses import dataclass, field

from aezip.errors import ParameterError

BACKENDS = ("auto", "triton", "torch")
DEVICES = ("auto", "cpu", "cuda")
RECONSTRUCTION_LOSSES = ("bce", "mse", "cosine")
EXECUTION_OPTIONS = ("device", "backend", "fused_optimizer")   # how training ran, not what it learns: not in info
# options newer than the shipped model: in its info only when set, so the default recipe still writes the shipped
# model file byte for byte
RECORDED_WHEN_SET = ("variable_rate", "rate_weight", "context_model", "augment")
WEIGHT_BITS = (2, 16)   # the integer decoder's signed weight bits: 16 unless a coarser decoder is asked for
FINETUNE_EPOCHS = 16    # decoder fine-tuning for coarser weights (network/finetune.py): epochs and L1 weight,
FINETUNE_SPARSITY = 1e-2  # chosen on a validation split of MNIST's training images (README)
LOW_RATE_QUALITIES = (2, 3, 4, 6)   # a low-rate sibling's levels (coding/lowrate.py) and its decoder's tuning
LOW_RATE_EPOCHS = 30                # epochs (network/finetune.tune_for_codes; README: "A low-rate sibling")
QUANT_NOISES = ("uniform", "ste")
EFFORTS = ("best", "fast", "max")        # every pixel coder; the context and generic ones; best + the latent search
ESTIMATES = ("mean", "nearest")          # restore: fit-weighted mean of the refined decodings, or the best one
DENOISE_SPECS = "gaussian:SIGMA (SIGMA >= 0), mask:P (0 <= P < 1) or box:S (an S x S box, S >= 1)"
PRIOR_SPECS = "adversarial[:uniform|bernoulli:RHO] with 0 < RHO < 1"


@dataclass
class PixelOptions:
    """The learned pixel model's size and training budget (pixeltrain.py)."""

    hidden: tuple[int, ...] = (32, 32)
    scales: int = 16
    levels: tuple[int, ...] = (1, 3)   # coarse-to-fine levels (1 + 3L passes per channel; 1: the 2x2 interleave)
    #                                    to try: the one with the lower validation cost is kept
    samples: int = 200_000      # training pixels per pass (a random subset when there are more)
    epochs: int = 8
    batch_size: int = 1024
    lr: float = 3e-3


@dataclass
class TrainOptions:
    """Everything training takes besides the data and the architecture."""

    loss: str = "bce"
    rho: float | None = 0.05          # sparse-KL target activation; None (or 0) turns the penalty off
    beta: float = 1.0
    l2: float = 0.0
    denoise: str | None = None        # "gaussian:SIGMA" | "mask:P" | "box:S"
    quant_noise: str = "uniform"      # "uniform" (additive noise of one step) | "ste" (straight-through rounding)
    variable_rate: int = 0            # Q >= 2: each sample's quantization is that of a random quality Q..levels
    rate_weight: float = 0.0          # R + lambda D: this weight times the latents' bits under a learned density
    context_model: bool = False       # also count the latents' context entropy model (context.py)
    prior: str | None = None          # "adversarial[:uniform|bernoulli:RHO]": a discriminator on the latents
    prior_weight: float = 1.0
    shift: int = 1                    # augmentation: random translations of up to this many pixels
    augment: str | None = None        # more augmentation: "flip,invert,channels,contrast,zoom" or a subset
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
    pixel_model: bool = True          # also train the learned pixel models and raster network of the max-error coder
    decoder_bits: int = 8             # the integer decoder's weight bits; below 16 the decoder is fine-tuned for them
    pixel: PixelOptions = field(default_factory=PixelOptions)   # its size and training budget

    def __post_init__(self) -> None:
        if not self.rho:
            self.rho = None
        _choice("loss", self.loss, RECONSTRUCTION_LOSSES)
        _choice("quant_noise", self.quant_noise, QUANT_NOISES)
        _choice("device", self.device, DEVICES)
        if self.backend is not None:
            _choice("backend", self.backend, BACKENDS)
        if self.rho is not None and not 0.0 < self.rho < 1.0:
            raise ParameterError("rho", f"must lie in (0, 1), got {self.rho}")
        if not 0.0 < self.val_split < 1.0:
            raise ParameterError("val_split", f"must lie in (0, 1), got {self.val_split}")
        for name in ("epochs", "batch_size", "lr"):
            if getattr(self, name) <= 0:
                raise ParameterError(name, f"must be positive, got {getattr(self, name)}")
        if self.variable_rate == 1 or self.variable_rate < 0:
            raise ParameterError("variable_rate", f"must be 0 (off) or a quality of at least 2, got "
                                                  f"{self.variable_rate}")
        for name in ("shift", "weight_decay", "rate_weight"):
            if getattr(self, name) < 0:
                raise ParameterError(name, f"must not be negative, got {getattr(self, name)}")
        check_weight_bits("decoder_bits", self.decoder_bits)
        parse_denoise(self.denoise)
        parse_prior(self.prior)
        parse_augment(self.augment)


def check_weight_bits(param: str, bits: int) -> None:
    """Refuse integer decoder weight bits outside WEIGHT_BITS."""
    if not WEIGHT_BITS[0] <= bits <= WEIGHT_BITS[1]:
        raise ParameterError(param, f"must lie in {WEIGHT_BITS[0]}..{WEIGHT_BITS[1]}, got {bits}")


def _choice(param: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParameterError(param, f"{value!r} is not one of {', '.join(choices)}")


def parse_denoise(spec: str | None) -> tuple[str, float] | None:
    """'gaussian:SIGMA', 'mask:P' or 'box:S' into (kind, value); None stays None."""
    if not spec:
        return None
    kind, _, value = spec.partition(":")
    try:
        v = float(value)
    except ValueError:
        raise ParameterError("denoise", f"{spec!r}: expected {DENOISE_SPECS}") from None
    valid = {"gaussian": v >= 0, "mask": 0 <= v < 1, "box": v >= 1 and v == int(v)}
    if not valid.get(kind, False):
        raise ParameterError("denoise", f"{spec!r}: expected {DENOISE_SPECS}")
    return kind, v


AUGMENTATIONS = ("flip", "invert", "channels", "contrast", "zoom")


def parse_augment(spec: str | None) -> tuple[str, ...]:
    """'flip,invert,channels,contrast,zoom' (any subset; '' or 'none': none) into the names."""
    names = tuple(s.strip() for s in (spec or "").split(",") if s.strip() and s.strip() != "none")
    bad = [n for n in names if n not in AUGMENTATIONS]
    if bad:
        raise ParameterError("augment", f"{bad[0]!r} is not one of {', '.join(AUGMENTATIONS)} (comma-separated)")
    return names


def parse_prior(spec: str | None) -> tuple[str, float] | None:
    """'adversarial', 'adversarial:uniform' or 'adversarial:bernoulli:RHO' into (distribution, rho)."""
    if not spec:
        return None
    parts = spec.split(":")
    if parts[0] == "adversarial" and (len(parts) == 1 or parts[1:] == ["uniform"]):
        return "uniform", 0.0
    if parts[0] == "adversarial" and len(parts) == 3 and parts[1] == "bernoulli":
        try:
            rho = float(parts[2])
        except ValueError:
            rho = -1.0
        if 0.0 < rho < 1.0:
            return "bernoulli", rho
    raise ParameterError("prior", f"{spec!r}: expected {PRIOR_SPECS}")


def parse_range(spec: str | tuple[int, int] | None, total: int, param: str = "image_range") -> tuple[int, int]:
    """'A:B' (either end may be empty) or (A, B) into 0 <= A < B <= total; None is everything."""
    if spec is None or spec == "":
        return 0, total
    if isinstance(spec, str):
        a, sep, b = spec.partition(":")
        try:
            lo = int(a) if a else 0
            hi = int(b) if b else total
        except ValueError:
            raise ParameterError(param, f"{spec!r}: expected A:B with integers") from None
        if not sep:
            raise ParameterError(param, f"{spec!r}: expected A:B")
    else:
        lo, hi = (int(v) for v in spec)
    if not 0 <= lo < hi <= total:
        raise ParameterError(param, f"{spec!r}: expected A:B with 0 <= A < B <= {total}")
    return lo, hi


HELD_OUT_FRACTION = 0.2


def split_ranges(total: int, test_range: str | tuple[int, int] | None = None,
                 train_range: str | tuple[int, int] | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """(train, test) image ranges: by default the last 20 % are held out for testing and the rest fit; a test
    range alone leaves the images before it (or, if none, after it) for fitting."""
    if test_range is None:
        held = max(1, round(total * HELD_OUT_FRACTION))
        if held >= total:
            raise ParameterError("test_range", f"cannot hold out images from a dataset of {total}")
        test = (total - held, total)
    else:
        test = parse_range(test_range, total, "test_range")
    if train_range is not None:
        train = parse_range(train_range, total, "train_range")
    elif test[0] > 0:
        train = (0, test[0])
    elif test[1] < total:
        train = (test[1], total)
    else:
        raise ParameterError("test_range", f"{test[0]}:{test[1]} leaves no images to fit on")
    return train, test
