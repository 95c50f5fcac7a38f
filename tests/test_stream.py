"""Training from data that is not read whole: a memory-mapped .npy and a folder read file by file give the model
that the same images in memory give."""
from __future__ import annotations

import numpy as np
from PIL import Image

from aezip.network.config import AEConfig
from aezip.files.data import open_dataset
from aezip.files.modelfile import model_bytes
from aezip.options import TrainOptions
from aezip.files.stream import FolderImages, ImageRows, training_array
from aezip.network.training import train_model

CONFIG = AEConfig(image_shape=(28, 28), hidden=(16,), latent=4, levels=8)


def _model(images) -> bytes:
    opts = TrainOptions(epochs=2, batch_size=16, device="cpu", backend="torch", seed=2, denoise="mask:0.1")
    return model_bytes(train_model(images, CONFIG, opts, progress=False, log=lambda m: None))


def test_memory_map_and_folder_train_the_model_of_the_array(tmp_path, sample_images) -> None:
    images = sample_images[:80]
    np.save(tmp_path / "d.npy", images)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    mapped = training_array(open_dataset(tmp_path / "d.npy"), 10, 80)
    files = training_array(open_dataset(folder), 10, 80)
    assert isinstance(mapped, np.memmap) and isinstance(files, FolderImages)
    assert ImageRows(mapped, "cpu").mapped and ImageRows(files, "cpu").mapped
    np.testing.assert_array_equal(files[np.array([5, 0, 69])], images[[15, 10, 79]])
    want = _model(images[10:80])
    assert _model(mapped) == want and _model(files) == want
