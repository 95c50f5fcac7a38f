"""Images as tensors, and the device they run on."""
from __future__ import annotations

import numpy as np
import torch

from aezip.errors import ParameterError


def resolve_device(device: str) -> torch.device:
    """"auto" | "cpu" | "cuda" into a torch device; asking for CUDA where there is none is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "'cuda': no CUDA device is available (this torch build or machine has "
                                         "none)")
    if device not in ("cpu", "cuda"):
        raise ParameterError("device", f"{device!r}: expected auto, cpu or cuda")
    return torch.device(device)


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 images (n x ...) to float rows in [0, 1] (n x D)."""
    return torch.from_numpy(np.array(images, dtype=np.float32).reshape(len(images), -1)) / 255.0
