"""Folders of images as datasets: flat (every image in the folder) or ImageFolder-style (one subfolder per class,
whose names give the labels). PNG, JPEG, WebP, TIFF and BMP; grayscale, RGB and RGBA. A folder that mixes modes
is read in its widest one (gray -> RGB -> RGBA), and says so in a note."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from aezip.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
# Pillow modes read as 8-bit images, and their channel counts ("1" is widened to gray, "P" expanded to RGB(A)).
MODE_CHANNELS = {"L": 1, "1": 1, "RGB": 3, "P": 3, "RGBA": 4, "LA": 4, "PA": 4}
CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def image_to_array(img: Image.Image, name: str, channels: int | None = None) -> np.ndarray:
    """An 8-bit image as uint8 (H x W, or H x W x C), converted to `channels` channels where given."""
    if img.mode not in MODE_CHANNELS:
        raise InputError(f"{name}: image mode {img.mode} is not supported (8-bit grayscale, RGB or RGBA)")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    want = CHANNEL_MODES[channels or MODE_CHANNELS[img.mode]]
    if img.mode != want:
        img = img.convert(want)
    return np.asarray(img, dtype=np.uint8)


def read_image(path: Path, channels: int | None = None) -> np.ndarray:
    """One image file as uint8, converted to `channels` channels where given."""
    try:
        with Image.open(path) as img:
            return image_to_array(img, str(path), channels)
    except (OSError, SyntaxError) as exc:
        raise InputError(f"{path}: unreadable image ({exc})") from None


def _images_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def list_images(path: Path) -> tuple[list[str], np.ndarray | None, list[str]]:
    """(names relative to the folder, labels or None, class names): the images of a flat folder, or of an
    ImageFolder layout (no images at the top, one subfolder of images per class; labels are class indices in the
    sorted order of the subfolder names)."""
    names = _images_in(path)
    if names:
        return names, None, []
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith(".") and _images_in(d))
    if not classes:
        raise InputError(f"{path}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)}), nor class subfolders "
                         "of images")
    names, labels = [], []
    for k, c in enumerate(classes):
        files = _images_in(path / c)
        names += [f"{c}/{f}" for f in files]
        labels += [k] * len(files)
    return names, np.asarray(labels, np.int64), classes


def scan_folder(path: Path, names: list[str]) -> tuple[tuple[int, ...], list[str]]:
    """The shape of one image (all must have the same size) in the folder's widest mode, and notes on conversions."""
    sizes, modes = {}, Counter()
    for name in names:
        try:
            with Image.open(path / name) as img:
                if img.mode not in MODE_CHANNELS:
                    raise InputError(f"{path / name}: image mode {img.mode} is not supported (8-bit grayscale, "
                                     "RGB or RGBA)")
                sizes.setdefault(img.size, name)
                channels = 4 if img.mode == "P" and "transparency" in img.info else MODE_CHANNELS[img.mode]
                modes[CHANNEL_MODES[channels]] += 1
        except (OSError, SyntaxError) as exc:
            raise InputError(f"{path / name}: unreadable image ({exc})") from None
    if len(sizes) > 1:
        (a, na), (b, nb) = list(sizes.items())[:2]
        raise InputError(f"{path}: images of mixed sizes: {na} is {a[0]}x{a[1]}, {nb} is {b[0]}x{b[1]}")
    (w, h), = sizes
    channels = max(MODE_CHANNELS[m] for m in modes)
    notes = []
    if len(modes) > 1:
        mix = ", ".join(f"{n} {m}" for m, n in sorted(modes.items()))
        notes.append(f"{path}: the folder mixes image modes ({mix}); all are read as {CHANNEL_MODES[channels]}")
    return ((h, w) if channels == 1 else (h, w, channels)), notes
