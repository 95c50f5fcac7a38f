"""One chunk of images and its payload, both ways: the latent codes a model gives a chunk, the decoder's prediction
from them, the payload (latent stream, pixel stream under --max-error, the decoded pixels' checksum) an encoder
writes, and the pixels a decoder rebuilds from it, checked. aezip.codec runs these over a whole dataset and its
container; aezip.files.parallel runs them in worker processes."""
from __future__ import annotations

import struct
import zlib

import numpy as np

from aezip.coding.latentcoder import decode_latents, encode_latents, fine_codes, latent_coder, marks_centroids
from aezip.coding.pixelstream import ALONE, CODER_METHODS, MLP, decode_pixels, encode_pixels
from aezip.coding.quality import coarse_codes
from aezip.coding.residual import RESIDUAL_CODER, decode_residual
from aezip.conv import coding as conv_coding
from aezip.conv.layout import CODER as CONV_CODER, MAX_RATES, PER_CHUNK_CODER
from aezip.errors import AezipError, FormatError
from aezip.files.header import image_samples
from aezip.files.modelfile import CodecModel, ModelFile
from aezip.network.tiles import predict
from aezip.threads import block_pool

_PAYLOAD = struct.Struct(">III")   # images, latent stream length, residual stream length
_BOUNDED = 0x80                    # a per-chunk setting's first byte: this flag | the rate point (1..MAX_RATES)


def pack_payload(n: int, latent: bytes, residual: bytes, pixel_crc: int) -> bytes:
    return _PAYLOAD.pack(n, len(latent), len(residual)) + latent + residual + struct.pack(">I", pixel_crc)


def unpack_payload(payload: bytes, where: str) -> tuple[int, bytes, bytes, int]:
    if len(payload) < _PAYLOAD.size + 4:
        raise FormatError(f"{where}: chunk payload too short")
    n, lat, res = _PAYLOAD.unpack_from(payload)
    if _PAYLOAD.size + lat + res + 4 != len(payload):
        raise FormatError(f"{where}: chunk payload lengths do not add up")
    body = payload[_PAYLOAD.size:]
    (crc,) = struct.unpack(">I", body[lat + res:])
    return n, body[:lat], body[lat:lat + res], crc


def setting_prefix(quality: int, max_error: int | None) -> bytes:
    """What a chunk of a per-chunk file (PER_CHUNK_CODER, aezip.mixed) starts with: its rate point `quality`
    (1..MAX_RATES) in one byte, flagged where the chunk has an error bound, then the bound (0..255) in a second."""
    if not 1 <= quality <= MAX_RATES or not (max_error is None or 0 <= max_error <= 255):
        raise ValueError(f"no chunk setting of rate point {quality} and max error {max_error}")
    return bytes([quality]) if max_error is None else bytes([_BOUNDED | quality, max_error])


def setting_name(quality: int, max_error: int | None, latents: bool) -> str:
    """A per-chunk file's chunk setting in the encoder's words (a bounded stream without latents names no rate)."""
    if max_error is None:
        return f"--quality {quality}"
    return f"--max-error {max_error}" + (f" at rate point {quality}" if latents else "")


def read_setting(payload: bytes, where: str) -> tuple[int, int | None, bytes]:
    """(rate point, error bound or None, the rest) of an untrusted chunk payload of a per-chunk file
    (setting_prefix); FormatError where it is too short to hold one, or names rate point 0."""
    if len(payload) < 2:
        raise FormatError(f"{where}: chunk payload too short")
    bounded = bool(payload[0] & _BOUNDED)
    quality, max_error = payload[0] & ~_BOUNDED, payload[1] if bounded else None
    if quality == 0:
        raise FormatError(f"{where}: the chunk names rate point 0")
    return quality, max_error, payload[2 if bounded else 1:]


def chunk_setting(mf: CodecModel, payload: bytes, header: dict, where: str) -> tuple[bytes, dict]:
    """(the rest of a per-chunk file's chunk payload, the header that chunk decodes with: its own rate point and
    bound) from the untrusted setting it starts with (setting_prefix)."""
    quality, max_error, rest = read_setting(payload, where)
    if quality > header["levels"]:
        raise FormatError(f"{where}: the chunk's rate point {quality} is outside 1..{header['levels']}")
    if max_error is not None and (header["residual"] is None or mf.residual_prior is None):
        raise FormatError(f"{where}: a bounded chunk, but the file names no pixel coder or its decode-side model "
                          "holds none")
    return rest, dict(header, entropy=CONV_CODER, quality=quality, max_error=max_error)


def chunk_codes(mf: ModelFile, chunk: np.ndarray, backend: str, device, quality: int | None = None,
                search: bool = False) -> np.ndarray:
    """The latent codes of one chunk of images (the model already on `device`): the model's own codes, or the
    coarse codes of a quality level (see quality.py); with `search`, refined by the encoder's search (search.py)."""
    from aezip.tensors import to_unit
    x = to_unit(chunk).to(device)
    if quality is None:
        codes = mf.model.codes(x, backend, chunk.shape[1:]).cpu().numpy()
    else:
        import torch
        with torch.no_grad():
            z = mf.model.encode(x, backend, chunk.shape[1:]).cpu().numpy()
        codes = coarse_codes(z, mf.config.levels, quality)
    if search:
        from aezip.network.search import refine
        codes = refine(mf.model, mf.tables, mf.config.levels, x, codes, quality, chunk.shape[1:], mf.config.patch,
                       mf.config.context)
    return codes


def _alone(mf: ModelFile, samples: int):
    """The model's pixel model without latents where its base image fits images of `samples` samples (a tile
    model's images of other sizes have none)."""
    a = mf.pixel_alone
    return a if a is not None and a.base.size == samples else None


def chunk_prediction(mf: ModelFile, chunk: np.ndarray, codes: np.ndarray,
                     quality: int | None = None) -> tuple[np.ndarray, bool]:
    """The decoder's prediction of a chunk (n x D) from its codes of `quality`, and whether the codes stand for their
    bins' centroids: at a quality level the same codes stand for their grid points or their centroids, whichever
    decodes closer to the chunk (the chunk-tables coder records which)."""
    flat = chunk.reshape(len(chunk), -1)
    recon = predict(mf.config, mf.intdec, fine_codes(mf, codes, quality), chunk.shape[1:], block_pool())
    if quality is None or not marks_centroids(latent_coder(mf, quality)):
        return recon, False
    alt = predict(mf.config, mf.intdec, fine_codes(mf, codes, quality, True), chunk.shape[1:], block_pool())
    centroid = _squared_error(flat, alt) < _squared_error(flat, recon)
    return (alt if centroid else recon), centroid


def encode_chunk(mf: ModelFile, chunk: np.ndarray, codes: np.ndarray, max_error: int | None,
                 quality: int | None = None, pixel_methods: tuple[int, ...] | None = None) -> tuple[bytes, float, int]:
    """One chunk of images and their codes (of `quality`) into its payload; also its squared error and max
    error. pixel_methods limits the pixel coders tried under max_error (pixelstream's method numbers; default:
    all)."""
    coder = latent_coder(mf, quality)
    recon, centroid = chunk_prediction(mf, chunk, codes, quality)
    latent = encode_latents(mf, codes, quality, chunk.shape[1:], coder, centroid)
    return chunk_result(mf, chunk, latent, recon, max_error, pixel_methods)


def encode_conv_chunk(mf: CodecModel, chunk: np.ndarray, quality: int, backend: str, device,
                      max_error: int | None = None, pixel_methods: tuple[int, ...] | None = None,
                      search: bool = False) -> tuple[bytes, float, int]:
    """One chunk of images coded by a convolutional model at rate point `quality` (1..its rate points) into its
    payload (under max_error: its reconstruction the pixel coders' prediction, as an MLP model's; `search`: latents
    refined, aezip.conv.refine); also its squared error and max error."""
    latent, recon = conv_coding.encode_images(mf, quality - 1, chunk, device, backend, search)
    return chunk_result(mf, chunk, latent, recon, max_error, pixel_methods)


def chunk_result(mf: CodecModel, chunk: np.ndarray, latent: bytes, recon: np.ndarray, max_error: int | None,
                  pixel_methods: tuple[int, ...] | None) -> tuple[bytes, float, int]:
    """A chunk's payload from its latent stream and the decoder's prediction (n x D): under max_error with the
    cheapest pixel stream (and no latents where that stream needs none), its decoded pixels' checksum at the end;
    also its squared error and max error."""
    flat, residual = chunk.reshape(len(chunk), -1), b""
    if max_error is not None:
        stream = encode_pixels(flat, recon, chunk.shape[1:], max_error, mf.residual_prior, len(latent), mf.pixel,
                               _alone(mf, flat.shape[1]), pixel_methods, raster=mf.raster)
        residual, recon = stream.data, stream.recon
        latent = latent if stream.needs_latents else b""
    payload = pack_payload(len(flat), latent, residual, zlib.crc32(recon.tobytes()))
    return payload, float(_squared_error(flat, recon)), int(np.abs(flat.astype(np.int64) - recon).max(initial=0))


def _squared_error(flat: np.ndarray, recon: np.ndarray) -> int:
    diff = flat.astype(np.int64) - recon
    return int((diff * diff).sum())


def _chunk_pixels(header: dict, latent: bytes, residual: bytes, n: int, mf: CodecModel) -> np.ndarray:
    """One chunk's pixels (n x D uint8) from its latent and pixel streams."""
    image_shape, max_error = tuple(header["shape"][1:]), header["max_error"]
    if not latent and max_error is not None:
        pred = None
    elif header["entropy"] == CONV_CODER:
        pred = conv_coding.decode_images(mf, header["quality"] - 1, latent, n, image_shape)
    else:
        pred = predict(mf.config, mf.intdec, decode_latents(mf, header, latent, n), image_shape, block_pool())
    if max_error is None:
        return pred
    if header["residual"] == RESIDUAL_CODER:    # files before the tagged pixel stream: the context coder alone
        if pred is None:
            raise ValueError("a pixel stream without latents")
        return decode_residual(residual, pred, image_shape, max_error, mf.residual_prior)
    coder = header["residual"]
    mlp = mf.pixel if CODER_METHODS[coder] > MLP else None   # version 1: none
    alone = _alone(mf, image_samples(header["shape"])) if CODER_METHODS[coder] > ALONE else None
    return decode_pixels(residual, pred, (n, image_samples(header["shape"])), image_shape, max_error,
                         mf.residual_prior, mlp, alone, coder, mf.raster)


def decode_payload(mf: CodecModel, payload: bytes, images: int, header: dict, where: str) -> np.ndarray:
    """A chunk's payload (the index says it holds `images`) into its images, its pixel checksum checked."""
    image_shape = tuple(header["shape"][1:])
    if header["entropy"] == PER_CHUNK_CODER:
        payload, header = chunk_setting(mf, payload, header, where)
    n, latent, residual, crc = unpack_payload(payload, where)
    if n != images:
        raise FormatError(f"{where}: the chunk holds {n} images, the index says {images}")
    try:
        recon = _chunk_pixels(header, latent, residual, n, mf)
    except AezipError:
        raise
    except (ValueError, RuntimeError, OverflowError, AssertionError, TypeError, IndexError) as exc:
        # constriction signals a stream that does not decode with AssertionError or ValueError
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise FormatError(f"{where}: undecodable stream ({detail})") from None
    if zlib.crc32(recon.tobytes()) != crc:
        raise FormatError(f"{where}: decoded pixels fail their checksum (damaged file or wrong model)")
    return recon.reshape((n, *image_shape))
