"""Test setup: Triton kernels run on the CPU through the interpreter; "auto" picks torch unless a test asks."""
from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")   # must precede any import of the kernel modules
os.environ["AEZIP_BACKEND"] = "torch"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from aezip.bench.demo import sample_path  # noqa: E402
from aezip.files.data import open_dataset  # noqa: E402
from aezip.network.model import AEConfig  # noqa: E402
from aezip.files.modelfile import save_model  # noqa: E402
from aezip.options import PixelOptions  # noqa: E402
from aezip.network.training import TrainOptions, train_model  # noqa: E402

torch.set_num_threads(2)
TINY_PIXEL = PixelOptions(hidden=(8,), scales=4, levels=(1,), samples=3000, epochs=2, batch_size=128,
                          lr=1e-2)   # CPU-sized


def pytest_collection_modifyitems(config, items) -> None:
    """Skip `interpreter` tests when the interpreter is off, `gpu` tests without a CUDA device, and the long fuzz
    run unless it is asked for by name (-m fuzz), whatever other -m expression is given."""
    interpreting = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    fuzz_asked = "fuzz" in (config.getoption("-m") or "")
    for item in items:
        if "interpreter" in item.keywords and not interpreting:
            item.add_marker(pytest.mark.skip(reason="needs TRITON_INTERPRET=1 (Triton's CPU interpreter)"))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
        if "fuzz" in item.keywords and not fuzz_asked:
            item.add_marker(pytest.mark.skip(reason="the long fuzz run: select it with -m fuzz"))


@pytest.fixture(scope="session")
def sample_images() -> np.ndarray:
    """The 300 MNIST images shipped with the package (uint8, 300 x 28 x 28)."""
    return open_dataset(sample_path()).read_all()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, sample_images) -> Path:
    """A CPU-sized model (784-32-8) trained for a few epochs on the sample."""
    config = AEConfig(image_shape=(28, 28), hidden=(32,), latent=8, levels=8)
    opts = TrainOptions(epochs=3, batch_size=32, seed=1, device="cpu", backend="torch", pixel=TINY_PIXEL)
    result = train_model(sample_images, config, opts, progress=False, log=lambda m: None)
    path = tmp_path_factory.mktemp("model") / "tiny.aezm"
    save_model(path, result)
    return path


def write_idx(path: Path, images: np.ndarray) -> Path:
    """Write uint8 images as an (uncompressed) IDX file."""
    import struct
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, images.ndim]) + struct.pack(f">{images.ndim}I", *images.shape) + images.tobytes())
    return path



@pytest.fixture
def legacy_coders():
    """Encode as before the chunk-tables coder (static, ladder or context coder by model and quality), so tests
    pin the decoding of files written then."""
    from tests.legacy import legacy_files
    with legacy_files():
        yield
