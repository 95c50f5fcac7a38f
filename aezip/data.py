"""Dataset readers and writers: IDX (.gz too), .npy/.npz, folders of PNG/JPEG; streamed in chunks of images.

Every reader yields uint8 arrays of shape n x H x W (grayscale) or n x H x W x C, and records a `Source` that lets
the writer give the dataset back in the format it came in.
"""
from __future__ import annotations

import base64
import gzip
import io
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image

from .atomic import FolderWriter, atomic_folder, atomic_path
from .errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IDX_UBYTE = 0x08
# Pillow modes read exactly as they are ("1" is widened to 0/255 gray, "P" expanded to RGB).
MODE_CHANNELS = {"L": 1, "1": 1, "RGB": 3, "P": 3}


SOURCE_FORMATS = ("idx", "npy", "npz", "images")
MAX_NAME_BYTES = 255


@dataclass
class Source:
    """How a dataset was stored, so that decode can write it back the same way."""

    format: str                       # "idx" | "npy" | "npz" | "images"
    gzip: bool = False                # idx: the file was gzip-compressed
    npz_key: str | None = None        # npz: the member holding the images
    npz_compressed: bool = False      # npz: written by savez_compressed
    names: list[str] = field(default_factory=list)  # images: file names, in dataset order

    def to_dict(self) -> dict:
        """The header's `source` entry; file names are stored zlib-compressed, one per line."""
        d = {k: v for k, v in asdict(self).items() if v not in (None, False, []) and k != "names"}
        if self.names:
            d["names_zlib"] = base64.b64encode(zlib.compress("\n".join(self.names).encode(), 9)).decode()
        return d

    @classmethod
    def from_dict(cls, d: object, images: int) -> "Source":
        """Parse and check an untrusted header entry for a dataset of `images` images."""
        if not isinstance(d, dict):
            raise InputError("the source entry is not a mapping")
        unknown = set(d) - {"format", "gzip", "npz_key", "npz_compressed", "names", "names_zlib"}
        if unknown:
            raise InputError(f"unknown source fields {sorted(unknown)}")
        fmt = d.get("format")
        if fmt not in SOURCE_FORMATS:
            raise InputError(f"unknown source format {fmt!r}")
        if not isinstance(d.get("gzip", False), bool) or not isinstance(d.get("npz_compressed", False), bool):
            raise InputError("source flags must be true or false")
        key = d.get("npz_key")
        if key is not None and not (isinstance(key, str) and _plain_name(key)):
            raise InputError(f"bad npz member name {key!r}")
        names = d.get("names", [])
        if "names_zlib" in d:
            names = _inflate_names(d["names_zlib"], images)
        if fmt == "images":
            validate_names(names, images)
        elif names != []:
            raise InputError("file names stored for a source that is not a folder of images")
        return cls(fmt, d.get("gzip", False), key, d.get("npz_compressed", False), list(names))


def _plain_name(name: str) -> bool:
    """A single file name: no separators, no '.'/'..', no control characters, at most 255 bytes."""
    return (0 < len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES and name not in (".", "..")
            and not any(c in name for c in "/\\") and not any(ord(c) < 32 or ord(c) == 127 for c in name))


def _inflate_names(blob: object, images: int) -> list[str]:
    """Decompress stored file names, never to more than a bounded size."""
    if not isinstance(blob, str):
        raise InputError("stored file names are not a string")
    try:
        raw = base64.b64decode(blob, validate=True)
        d = zlib.decompressobj()
        text = d.decompress(raw, images * (MAX_NAME_BYTES + 1))
        if d.unconsumed_tail or not d.eof:
            raise InputError("stored file names are damaged or longer than the images they name")
        return text.decode("utf-8").split("\n")
    except (ValueError, zlib.error, UnicodeDecodeError):
        raise InputError("stored file names are damaged") from None


def validate_names(names: object, images: int) -> None:
    """Stored file names: one plain, distinct name per image (they become paths when decoded)."""
    if not isinstance(names, list) or len(names) != images:
        raise InputError(f"expected {images} stored file names, found "
                         f"{len(names) if isinstance(names, list) else 'none'}")
    for n in names:
        if not isinstance(n, str) or not _plain_name(n):
            raise InputError(f"stored file name {n!r} is not a plain file name")
    if len(set(names)) != len(names):
        raise InputError("stored file names repeat")


def output_names(names: list[str]) -> list[str]:
    """Decoded images are PNGs: a .png keeps its name, another image gets .png in place of its suffix, or after
    its name where that is taken (a.png + a.jpg -> a.png, a.jpg.png). Distinct even ignoring case."""
    used: set[str] = set()
    out: list[str] = [""] * len(names)
    is_png = [Path(n).suffix.lower() == ".png" for n in names]
    for i in sorted(range(len(names)), key=lambda i: not is_png[i]):   # .png names claim theirs first
        p = Path(names[i])
        candidates = [names[i]] if is_png[i] else [p.stem + ".png", names[i] + ".png"]
        candidates.append(f"{p.stem}.{i}.png")
        chosen = next((c for c in candidates if c.casefold() not in used and _plain_name(c)), f"image-{i}.png")
        used.add(chosen.casefold())
        out[i] = chosen
    return out


@dataclass
class Dataset:
    """A dataset on disk: its shape (N, H, W[, C]), its source format, and a way to stream it."""

    path: Path
    shape: tuple[int, ...]
    source: Source

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """Yield the images in order, `size` at a time (the last chunk may be smaller)."""
        fmt = self.source.format
        if fmt == "idx":
            yield from _idx_chunks(self.path, self.shape, size)
        elif fmt == "npy":
            arr = np.load(self.path, mmap_mode="r")
            for i in range(0, self.shape[0], size):
                yield np.ascontiguousarray(arr[i:i + size])
        elif fmt == "npz":
            yield from _npz_chunks(self.path, self.source.npz_key or "", self.shape, size)
        else:
            for i in range(0, self.shape[0], size):
                yield np.stack([_read_image(self.path / n) for n in self.source.names[i:i + size]])

    def read_all(self) -> np.ndarray:
        """The whole dataset as one array (for training and evaluation, which need it in memory)."""
        parts = list(self.chunks(4096))
        return np.concatenate(parts) if parts else np.zeros(self.shape, np.uint8)


def _check_image_shape(shape: tuple[int, ...], what: str) -> None:
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3, 4)):
        raise InputError(f"{what}: expected images N x H x W or N x H x W x C (C = 1, 3 or 4), got shape {shape}")
    if shape[0] == 0:
        raise InputError(f"{what}: the dataset is empty (0 images)")
    if min(shape[1:]) == 0:
        raise InputError(f"{what}: images of size 0 in shape {shape}")


def open_dataset(path: str | Path) -> Dataset:
    """Open a dataset by its path, recognising the format from the name and contents."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    try:
        if path.is_dir():
            return _open_image_folder(path)
        name = path.name.lower()
        if name.endswith(".npy"):
            return _open_npy(path)
        if name.endswith(".npz"):
            return _open_npz(path)
        with open(path, "rb") as f:
            head = f.read(4)
        if head[:2] == b"\x1f\x8b" or head[:2] == b"\x00\x00":
            return _open_idx(path)
    except PermissionError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None
    raise InputError(f"{path}: unknown format; expected an IDX file (.gz too), .npy, .npz or a folder of PNG/JPEG")


# ---- IDX -------------------------------------------------------------------------------------------------------

def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open_binary(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _read_idx_header(f: BinaryIO, path: Path) -> tuple[int, ...]:
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\x00\x00":
        raise InputError(f"{path}: not an IDX file (bad magic)")
    if head[2] != IDX_UBYTE:
        raise InputError(f"{path}: IDX data type 0x{head[2]:02x} is not supported; aezip handles 8-bit images")
    ndim = head[3]
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise InputError(f"{path}: truncated IDX header")
    return struct.unpack(f">{ndim}I", dims)


def _open_idx(path: Path) -> Dataset:
    with _open_binary(path) as f:
        shape = _read_idx_header(f, path)
    _check_image_shape(shape, str(path))
    return Dataset(path, shape, Source("idx", gzip=_is_gzip(path)))


def _stream_chunks(f: BinaryIO, shape: tuple[int, ...], size: int, what: str) -> Iterator[np.ndarray]:
    """Read uint8 images from a stream positioned at the first pixel, `size` images at a time."""
    per_image = int(np.prod(shape[1:]))
    for i in range(0, shape[0], size):
        n = min(size, shape[0] - i)
        buf = f.read(n * per_image)
        if len(buf) < n * per_image:
            raise InputError(f"{what}: truncated (image {i + len(buf) // per_image} of {shape[0]})")
        yield np.frombuffer(buf, np.uint8).reshape((n, *shape[1:]))


def _idx_chunks(path: Path, shape: tuple[int, ...], size: int) -> Iterator[np.ndarray]:
    with _open_binary(path) as f:
        _read_idx_header(f, path)
        yield from _stream_chunks(f, shape, size, f"{path}: IDX file")


def _write_idx(chunks: Iterator[np.ndarray], shape: tuple[int, ...], out: Path, gz: bool) -> None:
    raw = open(out, "wb")
    f: BinaryIO = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if gz else raw  # type: ignore[assignment]
    try:
        f.write(bytes([0, 0, IDX_UBYTE, len(shape)]) + struct.pack(f">{len(shape)}I", *shape))
        for c in chunks:
            f.write(np.ascontiguousarray(c, np.uint8).tobytes())
    finally:
        f.close()
        raw.close()


# ---- npy / npz --------------------------------------------------------------------------------------------------

def _check_dtype(dtype: np.dtype, what: str) -> None:
    if dtype != np.uint8:
        raise InputError(f"{what}: dtype {dtype} is not supported; aezip handles 8-bit images (uint8)")


def _open_npy(path: Path) -> Dataset:
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    _check_dtype(arr.dtype, str(path))
    _check_image_shape(arr.shape, str(path))
    return Dataset(path, tuple(arr.shape), Source("npy"))


def _npz_member_header(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return reader(f)


def _open_npz(path: Path) -> Dataset:
    with zipfile.ZipFile(path) as zf:
        members = [n for n in zf.namelist() if n.endswith(".npy")]
        keys = [n[:-4] for n in members]
        image_keys = [k for k, n in zip(keys, members) if len(_npz_member_header(zf.open(n))[0]) in (3, 4)]
        if len(image_keys) != 1:
            raise InputError(f"{path}: expected one image array (N x H x W[ x C]) in the .npz, found "
                             f"{len(image_keys)} among keys {keys}")
        key = image_keys[0]
        info = zf.getinfo(key + ".npy")
        with zf.open(info) as f:
            shape, fortran, dtype = _npz_member_header(f)
    _check_dtype(dtype, str(path))
    if fortran:
        raise InputError(f"{path}: Fortran-ordered arrays are not supported")
    _check_image_shape(shape, str(path))
    return Dataset(path, tuple(shape), Source("npz", npz_key=key,
                                              npz_compressed=info.compress_type != zipfile.ZIP_STORED))


def _npz_chunks(path: Path, key: str, shape: tuple[int, ...], size: int) -> Iterator[np.ndarray]:
    with zipfile.ZipFile(path) as zf, zf.open(key + ".npy") as f:
        _npz_member_header(f)
        yield from _stream_chunks(f, shape, size, f"{path}: array {key!r}")


def _write_npy(chunks: Iterator[np.ndarray], shape: tuple[int, ...], out: Path) -> None:
    with open(out, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
        for c in chunks:
            f.write(np.ascontiguousarray(c, np.uint8).tobytes())


def _write_npz(chunks: Iterator[np.ndarray], shape: tuple[int, ...], out: Path, key: str, compressed: bool) -> None:
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", compression=method) as zf:
        with zf.open(key + ".npy", "w", force_zip64=True) as f:
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
            f.write(buf.getvalue())
            for c in chunks:
                f.write(np.ascontiguousarray(c, np.uint8).tobytes())


# ---- image folders ----------------------------------------------------------------------------------------------

def _image_to_array(img: Image.Image, name: str) -> np.ndarray:
    if img.mode not in MODE_CHANNELS:
        raise InputError(f"{name}: image mode {img.mode} is not supported (grayscale or RGB, 8 bits)")
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode == "P":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return _image_to_array(img, str(path))
    except (OSError, SyntaxError) as exc:
        raise InputError(f"{path}: unreadable image ({exc})") from None


def _open_image_folder(path: Path) -> Dataset:
    names = sorted(p.name for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not names:
        raise InputError(f"{path}: the folder holds no PNG or JPEG images")
    odd = [n for n in names if not _plain_name(n)]
    if odd:
        raise InputError(f"{path / odd[0]}: file names with control characters or backslashes are not supported")
    first = _read_image(path / names[0])
    for name in names[1:]:
        try:
            with Image.open(path / name) as img:
                size, channels = img.size, MODE_CHANNELS.get(img.mode)
        except (OSError, SyntaxError) as exc:
            raise InputError(f"{path / name}: unreadable image ({exc})") from None
        if (size[1], size[0]) != first.shape[:2] or channels != (1 if first.ndim == 2 else first.shape[2]):
            raise InputError(f"{path}: images of mixed sizes or modes: {names[0]} is "
                             f"{first.shape[1]}x{first.shape[0]}, {name} is {size[0]}x{size[1]} ({img.mode})")
    return Dataset(path, (len(names), *first.shape), Source("images", names=names))


def _write_images(chunks: Iterator[np.ndarray], out: FolderWriter, names: list[str]) -> int:
    """PNG files under their output names; returns how many images were written."""
    i = 0
    for c in chunks:
        for img in c:
            if i >= len(names):
                raise InputError(f"more images than the {len(names)} stored file names")
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            out.write(names[i], buf.getvalue())
            i += 1
    return i


# ---- writing ----------------------------------------------------------------------------------------------------

def _counted(chunks: Iterator[np.ndarray], expected: int, image_shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    """Pass chunks through, checking that together they hold exactly `expected` images of `image_shape`."""
    seen = 0
    for c in chunks:
        if tuple(c.shape[1:]) != image_shape:
            raise InputError(f"images of shape {c.shape[1:]} where {image_shape} was announced")
        seen += len(c)
        if seen > expected:
            raise InputError(f"more images than the {expected} announced")
        yield c
    if seen != expected:
        raise InputError(f"{seen} images where {expected} were announced")


def write_dataset(chunks: Iterator[np.ndarray], shape: tuple[int, ...], source: Source, out: str | Path,
                  *, force: bool = False, inputs: tuple[str | Path | None, ...] = ()) -> Path:
    """Write chunks (in order, together exactly `shape`) to `out` in the source's format, atomically."""
    out = Path(out)
    shape = tuple(int(s) for s in shape)
    chunks = _counted(chunks, shape[0], shape[1:])
    if source.format == "images":
        with atomic_folder(out, force=force, inputs=inputs) as folder:
            _write_images(chunks, folder, output_names(source.names))
        return out
    with atomic_path(out, force=force, inputs=inputs) as tmp:
        if source.format == "idx":
            _write_idx(chunks, shape, tmp, source.gzip)
        elif source.format == "npy":
            _write_npy(chunks, shape, tmp)
        elif source.format == "npz":
            _write_npz(chunks, shape, tmp, source.npz_key or "images", source.npz_compressed)
        else:
            raise InputError(f"unknown source format {source.format!r}")
    return out
