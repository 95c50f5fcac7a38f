"""aezip: compress image datasets with a trained sparse autoencoder.

The Python API (see the README's "Python API"): compress/decompress arrays in memory, encode/decode files or
streams, open a .aez file for random access, train, load and save models. `import aezip` stays light: the names
below load their modules (and torch) when first used. `aezip.torch.AezDataset` is the PyTorch dataset."""
from __future__ import annotations

from importlib import import_module
from typing import Any

from aezip.errors import AezipError, FormatError, InputError, ModelMismatchError, OutputExistsError, ParameterError

__version__ = "0.1.0"

_LAZY = {name: "aezip.api" for name in ("compress", "decompress", "encode", "decode", "verify", "info", "open",
                                          "train", "train_conv", "load_model", "Model", "Reader", "CodecReport",
                                          "open_data")}

__all__ = [*_LAZY, "AezipError", "FormatError", "InputError", "ModelMismatchError", "OutputExistsError",
           "ParameterError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aezip' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

