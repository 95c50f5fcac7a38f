"""Files as aezip wrote them before the chunk-tables latent coder: the static, ladder or context coder by model
and quality (latentcoder.legacy_coder), so tests pin their decoding and benchmarks/chunk_tables.py compares."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import aezip.chunks
import aezip.codec
from aezip.coding.latentcoder import encode_latents, legacy_coder


@contextmanager
def legacy_files() -> Iterator[None]:
    """Encode as files were written before the chunk-tables coder (the header's coder name in aezip.codec, the
    chunk's coder and latent stream in aezip.chunks)."""
    saved = aezip.codec.latent_coder, aezip.chunks.latent_coder, aezip.chunks.encode_latents
    aezip.codec.latent_coder = aezip.chunks.latent_coder = legacy_coder
    aezip.chunks.encode_latents = (lambda mf, codes, q, shape, *_:
                                   encode_latents(mf, codes, q, shape, legacy_coder(mf, q)))
    try:
        yield
    finally:
        aezip.codec.latent_coder, aezip.chunks.latent_coder, aezip.chunks.encode_latents = saved
