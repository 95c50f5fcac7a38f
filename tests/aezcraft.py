"""Take a .aez file apart and put it back together with every checksum recomputed, so crafted files reach the
parser's checks instead of stopping at a CRC (the test suite's tool for hostile files)."""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field

from aezip.files.container import MAGIC, END_MAGIC

_PREFIX = struct.Struct(">8sHI")
_ROW = struct.Struct(">QII")
_TRAILER = struct.Struct(">QII4s")


@dataclass
class Parts:
    """A .aez file as its pieces; `rows` (offset, length, images) is recomputed by build() unless given; `model` is
    the embedded decode-side model of a version-3 or -4 file, `patch` the decoder patch of a version-4 file (each
    written whenever it is not None, whatever the version; the model as an empty section where only a patch is)."""

    version: int
    header: bytes
    payloads: list[bytes]
    images: list[int]
    rows: list[tuple[int, int, int]] | None = None
    extra: bytes = b""          # bytes between the last chunk and the index
    magic: bytes = field(default=MAGIC)
    model: bytes | None = None
    patch: bytes | None = None

    @property
    def header_json(self) -> dict:
        return json.loads(self.header)

    def with_header(self, h: object) -> "Parts":
        """A copy whose header is `h` serialized as JSON (or `h` itself if it is bytes)."""
        body = h if isinstance(h, bytes) else json.dumps(h).encode()
        return Parts(self.version, body, list(self.payloads), list(self.images), self.rows, self.extra, self.magic,
                     self.model, self.patch)


def parse(data: bytes) -> Parts:
    """Split a well-formed .aez file into its parts."""
    magic, version, hlen = _PREFIX.unpack_from(data)
    header = data[_PREFIX.size:_PREFIX.size + hlen]
    model = patch = None
    at = _PREFIX.size + hlen + 4
    if version >= 3:
        (n,) = struct.unpack_from(">I", data, at)
        model, at = data[at + 4:at + 4 + n] or None, at + n + 8
    if version >= 4:
        (n,) = struct.unpack_from(">I", data, at)
        patch = data[at + 4:at + 4 + n]
    index_offset, count, _, _ = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    payloads, images = [], []
    for i in range(count):
        off, length, n = _ROW.unpack_from(data, index_offset + i * _ROW.size)
        payloads.append(data[off:off + length])
        images.append(n)
    return Parts(version, header, payloads, images, magic=magic, model=model, patch=patch)


def build(p: Parts) -> bytes:
    """Serialize parts with correct CRCs everywhere (header, chunks, index, whole body)."""
    out = bytearray(_PREFIX.pack(p.magic, p.version, len(p.header)) + p.header
                    + struct.pack(">I", zlib.crc32(p.header)))
    for section in ([p.model or b"", p.patch] if p.patch is not None else [p.model] if p.model is not None else []):
        out += struct.pack(">I", len(section)) + section + struct.pack(">I", zlib.crc32(section))
    rows = []
    for payload, n in zip(p.payloads, p.images):
        rows.append((len(out), len(payload), n))
        out += payload + struct.pack(">I", zlib.crc32(payload))
    out += p.extra
    index = b"".join(_ROW.pack(*r) for r in (p.rows if p.rows is not None else rows))
    index_offset = len(out)
    out += index + struct.pack(">I", zlib.crc32(index))
    count = len(p.rows if p.rows is not None else rows)
    out += _TRAILER.pack(index_offset, count, zlib.crc32(bytes(out)), END_MAGIC)
    return bytes(out)


def payload_parts(payload: bytes) -> tuple[int, bytes, bytes, int]:
    """A chunk payload as (images, latent stream, residual stream, pixel CRC)."""
    n, lat, res = struct.unpack_from(">III", payload)
    body = payload[12:]
    return n, body[:lat], body[lat:lat + res], struct.unpack(">I", body[lat + res:lat + res + 4])[0]


def make_payload(n: int, latent: bytes, residual: bytes, crc: int) -> bytes:
    """Inverse of payload_parts (lengths recomputed)."""
    return struct.pack(">III", n, len(latent), len(residual)) + latent + residual + struct.pack(">I", crc)
