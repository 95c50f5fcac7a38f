"""The .aez container: magic, version, JSON header, chunks with CRC32s, a chunk index and a checksummed trailer.

Layout (integers big-endian):
    magic (8) | format version u16 | header length u32 | header JSON | header CRC32 u32
    [version 3: model length u32 | the decode-side model (decodemodel.py) | its CRC32 u32]
    [version 4: model length u32 (0: none) | the decode-side model | its CRC32 u32 |
                patch length u32 | the decoder patch (aezip.conv.patch) | its CRC32 u32]
    chunk 0 payload | CRC32 u32 | chunk 1 payload | CRC32 u32 | ...
    index: per chunk (offset u64, payload length u32, images u32)     | index CRC32 u32
    trailer: index offset u64 | chunk count u32 | CRC32 of every byte before the trailer u32 | end magic (4)
The index at the end gives random access (`--range`) without reading other chunks; the trailer makes any
truncation visible, and the CRCs make any flipped byte visible. Files without an embedded model are written as
version 2, byte for byte as before; version 3 differs only by the model section (`encode --embed-model`), so an
aezip that reads versions 1-2 refuses it by its version; version 4 adds a decoder patch (`encode --adapt-decoder`), the
model section then possibly empty, so an aezip that would decode it with the unpatched model refuses it instead.
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aezip.errors import FormatError

MAGIC = b"\x89AEZ\r\n\x1a\n"
END_MAGIC = b"AEZ!"
FORMAT_VERSION = 2                 # 2: file names stored compressed in the header
EMBEDDED_VERSION = 3               # 3: version 2 with the decode-side model after the header
PATCHED_VERSION = 4                # 4: version 3 (the model section may be empty) with a decoder patch after it
READ_VERSIONS = (1, 2, 3, 4)
MAX_HEADER_BYTES = 64 << 20
MAX_MODEL_BYTES = 256 << 20
MAX_PATCH_BYTES = 1 << 16          # a decoder patch (aezip.conv.patch) larger than this is not one aezip writes
_PREFIX = struct.Struct(">8sHI")
_CRC = struct.Struct(">I")
_INDEX_ROW = struct.Struct(">QII")
_TRAILER = struct.Struct(">QII4s")


@dataclass(frozen=True)
class ChunkEntry:
    offset: int
    length: int
    images: int
    first_image: int


class ContainerWriter:
    """Write a .aez file chunk by chunk (after the decode-side model's bytes and the decoder patch, where given);
    `close()` writes the index and trailer."""

    def __init__(self, f: BinaryIO, header: dict, model: bytes | None = None, patch: bytes | None = None) -> None:
        self._f = f
        self._crc = 0
        self._pos = 0
        self._entries: list[tuple[int, int, int]] = []
        body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        version = PATCHED_VERSION if patch is not None else FORMAT_VERSION if model is None else EMBEDDED_VERSION
        self._write(_PREFIX.pack(MAGIC, version, len(body)) + body + _CRC.pack(zlib.crc32(body)))
        sections = [model or b"", patch] if patch is not None else [] if model is None else [model]
        for section in sections:
            self._write(_CRC.pack(len(section)) + section + _CRC.pack(zlib.crc32(section)))

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._crc = zlib.crc32(data, self._crc)
        self._pos += len(data)

    def add_chunk(self, payload: bytes, images: int) -> None:
        self._entries.append((self._pos, len(payload), images))
        self._write(payload + _CRC.pack(zlib.crc32(payload)))

    def close(self) -> int:
        """Write the index and trailer; returns the file's size in bytes."""
        index = b"".join(_INDEX_ROW.pack(*e) for e in self._entries)
        index_offset = self._pos
        self._write(index + _CRC.pack(zlib.crc32(index)))
        self._f.write(_TRAILER.pack(index_offset, len(self._entries), self._crc, END_MAGIC))
        return self._pos + _TRAILER.size


class ContainerReader:
    """Read and check a .aez file (a path, the bytes of one, or a seekable binary file object): header, index and
    trailer at open; each chunk's CRC when it is read."""

    def __init__(self, source: str | Path | bytes | BinaryIO) -> None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = io.BytesIO(source)
        if hasattr(source, "read"):
            self.path = Path(str(getattr(source, "name", "<bytes>")))
            self._f = source
        else:
            self.path = Path(source)
            try:
                self._f = open(self.path, "rb")
            except FileNotFoundError:
                raise FormatError(f"{self.path}: no such file") from None
            except OSError as exc:
                raise FormatError(f"{self.path}: cannot read ({exc.strerror})") from None
        try:
            self._open()
        except BaseException:
            self._f.close()
            raise

    def _fail(self, what: str) -> FormatError:
        return FormatError(f"{self.path}: {what}")

    def _open(self) -> None:
        f = self._f
        f.seek(0, 2)
        self.size = f.tell()
        f.seek(0)
        prefix = f.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size or prefix[:8] != MAGIC:
            raise self._fail("not an .aez file (bad magic)")
        _, self.version, hlen = _PREFIX.unpack(prefix)
        if self.version not in READ_VERSIONS:
            raise self._fail(f"unsupported .aez format version {self.version} (this aezip reads versions "
                             f"{', '.join(map(str, READ_VERSIONS))})")
        if hlen > min(MAX_HEADER_BYTES, self.size - _PREFIX.size):
            raise self._fail("truncated or damaged file (the header is longer than the file)")
        body = f.read(hlen)
        crc = f.read(4)
        if len(body) < hlen or len(crc) < 4:
            raise self._fail("truncated file (the header is incomplete)")
        if _CRC.unpack(crc)[0] != zlib.crc32(body):
            raise self._fail("damaged header (CRC mismatch)")
        try:
            self.header = json.loads(body)
        except (ValueError, RecursionError):
            raise self._fail("damaged header (not valid JSON)") from None
        if not isinstance(self.header, dict):
            raise self._fail("damaged header (not a JSON object)")
        self._model = self._section("embedded model", MAX_MODEL_BYTES, self.version == EMBEDDED_VERSION) \
            if self.version >= EMBEDDED_VERSION else None
        self._patch = self._section("decoder patch", MAX_PATCH_BYTES, True) if self.version >= PATCHED_VERSION \
            else None
        self._header_end = f.tell()
        if self.size < self._header_end + 4 + _TRAILER.size:
            raise self._fail("truncated file (no chunk index or trailer)")
        f.seek(self.size - _TRAILER.size)
        index_offset, count, self._body_crc, end = _TRAILER.unpack(f.read(_TRAILER.size))
        if end != END_MAGIC:
            raise self._fail("truncated or damaged file (no trailer at the end)")
        index_len = count * _INDEX_ROW.size
        if index_offset + index_len + 4 != self.size - _TRAILER.size or index_offset < self._header_end:
            raise self._fail("damaged trailer (the chunk index is not where it says)")
        f.seek(index_offset)
        index = f.read(index_len)
        if _CRC.unpack(f.read(4))[0] != zlib.crc32(index):
            raise self._fail("damaged chunk index (CRC mismatch)")
        self.chunks: list[ChunkEntry] = []
        first, expected_offset = 0, self._header_end
        for i in range(count):   # chunks lie back to back, in order, from the header to the index
            off, length, images = _INDEX_ROW.unpack_from(index, i * _INDEX_ROW.size)
            if off != expected_offset or off + length + 4 > index_offset:
                raise self._fail(f"damaged chunk index (chunk {i} is not where the previous one ends)")
            if images == 0:
                raise self._fail(f"damaged chunk index (chunk {i} holds no images)")
            self.chunks.append(ChunkEntry(off, length, images, first))
            first += images
            expected_offset = off + length + 4
        if expected_offset != index_offset:
            raise self._fail("damaged chunk index (the chunks do not fill the file up to the index)")

    def _section(self, what: str, most: int, required: bool) -> tuple[int, int] | None:
        """(offset, length) of the length-prefixed section at the read position, which it skips (None: an empty
        section, where it may be empty)."""
        f = self._f
        length = f.read(4)
        (n,) = _CRC.unpack(length) if len(length) == 4 else (-1,)
        if not (1 if required else 0) <= n <= min(most, self.size - f.tell() - 4):
            raise self._fail(f"truncated or damaged file (the {what}'s length is out of range)")
        at = f.tell()
        f.seek(n + 4, 1)
        return (at, n) if n else None

    def _read_section(self, section: tuple[int, int] | None, what: str) -> bytes | None:
        if section is None:
            return None
        offset, n = section
        self._f.seek(offset)
        data, crc = self._f.read(n), self._f.read(4)
        if len(data) < n or len(crc) < 4 or _CRC.unpack(crc)[0] != zlib.crc32(data):
            raise self._fail(f"damaged {what} (CRC mismatch)")
        return data

    @property
    def model_bytes(self) -> int:
        """The size of the embedded decode-side model (0: none)."""
        return self._model[1] if self._model else 0

    @property
    def patch_bytes(self) -> int:
        """The size of the decoder patch (0: none)."""
        return self._patch[1] if self._patch else 0

    def embedded_model(self) -> bytes | None:
        """The embedded decode-side model's bytes, its CRC checked (None: the file has none)."""
        return self._read_section(self._model, "embedded model")

    def decoder_patch(self) -> bytes | None:
        """The decoder patch's bytes (aezip.conv.patch), its CRC checked (None: the file has none)."""
        return self._read_section(self._patch, "decoder patch")

    @property
    def total_images(self) -> int:
        return sum(c.images for c in self.chunks)

    def read_chunk(self, i: int) -> bytes:
        """The payload of chunk i, its CRC checked."""
        c = self.chunks[i]
        self._f.seek(c.offset)
        payload = self._f.read(c.length)
        crc = self._f.read(4)
        if len(payload) < c.length or len(crc) < 4 or _CRC.unpack(crc)[0] != zlib.crc32(payload):
            raise self._fail(f"damaged chunk {i} (CRC mismatch)")
        return payload

    def verify(self) -> None:
        """Check the CRC of the whole file body (every byte but the trailer)."""
        self._f.seek(0)
        crc, left = 0, self.size - _TRAILER.size
        while left:
            block = self._f.read(min(left, 1 << 20))
            crc = zlib.crc32(block, crc)
            left -= len(block)
        if crc != self._body_crc:
            raise self._fail("damaged file (whole-file CRC mismatch)")

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "ContainerReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
