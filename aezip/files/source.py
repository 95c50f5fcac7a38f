"""Where a dataset came from (`Source`, the header's `source` entry) and its stored file names.

File names stored in a .aez are untrusted: they become paths when decoded. `validate_names` admits only plain names
(or class/name of an ImageFolder layout), `output_names` maps them to distinct PNG names, even ignoring case.
"""
from __future__ import annotations

import base64
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aezip.errors import InputError

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
    npz_extra: str | None = None      # npz: its other arrays (labels, ...), an .npz packed with zstd -19, base64

    def to_dict(self) -> dict:
        """The header's `source` entry; file names are stored zlib-compressed, one per line."""
        d = {k: v for k, v in asdict(self).items() if v not in (None, False, []) and k != "names"}
        if self.names:
            d["names_zlib"] = base64.b64encode(zlib.compress("\n".join(self.names).encode(), 9)).decode()
        return d

    def for_output(self, out: object) -> "Source":
        """The format to write to `out`: a path ending in .npy gets a .npy array whatever the source was (a user who
        names a .npy file means one); anything else gets the source's own format."""
        if isinstance(out, (str, Path)) and Path(out).suffix.lower() == ".npy" and self.format != "npy":
            return Source("npy")
        return self

    @classmethod
    def from_dict(cls, d: object, images: int) -> "Source":
        """Parse and check an untrusted header entry for a dataset of `images` images."""
        if not isinstance(d, dict):
            raise InputError("the source entry is not a mapping")
        unknown = set(d) - {"format", "gzip", "npz_key", "npz_compressed", "names", "names_zlib", "npz_extra"}
        if unknown:
            raise InputError(f"unknown source fields {sorted(unknown)}")
        fmt = d.get("format")
        if fmt not in SOURCE_FORMATS:
            raise InputError(f"unknown source format {fmt!r}")
        if not isinstance(d.get("gzip", False), bool) or not isinstance(d.get("npz_compressed", False), bool):
            raise InputError("source flags must be true or false")
        key = d.get("npz_key")
        if key is not None and not (isinstance(key, str) and is_plain_name(key)):
            raise InputError(f"bad npz member name {key!r}")
        names = d.get("names", [])
        if "names_zlib" in d:
            names = _inflate_names(d["names_zlib"], images)
        if fmt == "images":
            validate_names(names, images)
        elif names != []:
            raise InputError("file names stored for a source that is not a folder of images")
        extra = d.get("npz_extra")
        if extra is not None and not (fmt == "npz" and isinstance(extra, str)):
            raise InputError("the source's extra arrays are not a string of an .npz source")
        return cls(fmt, d.get("gzip", False), key, d.get("npz_compressed", False), list(names), extra)


def is_plain_name(name: str) -> bool:
    """A single file name: no separators, no '.'/'..', no control characters, at most 255 bytes."""
    return (0 < len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES and name not in (".", "..")
            and not any(c in name for c in "/\\") and not any(ord(c) < 32 or ord(c) == 127 for c in name))


def is_plain_path(name: str) -> bool:
    """A plain file name, or class/name of an ImageFolder layout (two plain names)."""
    parts = name.split("/")
    return len(parts) <= 2 and all(is_plain_name(p) for p in parts)


def _inflate_names(blob: object, images: int) -> list[str]:
    """Decompress stored file names, never to more than a bounded size."""
    if not isinstance(blob, str):
        raise InputError("stored file names are not a string")
    try:
        raw = base64.b64decode(blob, validate=True)
        d = zlib.decompressobj()
        text = d.decompress(raw, images * (2 * MAX_NAME_BYTES + 2))
        if d.unconsumed_tail or not d.eof:
            raise InputError("stored file names are damaged or longer than the images they name")
        return text.decode("utf-8").split("\n")
    except (ValueError, zlib.error, UnicodeDecodeError):
        raise InputError("stored file names are damaged") from None


def validate_names(names: object, images: int) -> None:
    """Stored file names: one plain (or class/name), distinct name per image (they become paths when decoded)."""
    if not isinstance(names, list) or len(names) != images:
        raise InputError(f"expected {images} stored file names, found "
                         f"{len(names) if isinstance(names, list) else 'none'}")
    for n in names:
        if not isinstance(n, str) or not is_plain_path(n):
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
        stem = (p.parent / p.stem).as_posix()           # class/name keeps its class folder
        candidates = [names[i]] if is_png[i] else [stem + ".png", names[i] + ".png"]
        candidates.append(f"{stem}.{i}.png")
        chosen = next((c for c in candidates if c.casefold() not in used and is_plain_path(c)), f"image-{i}.png")
        used.add(chosen.casefold())
        out[i] = chosen
    return out
