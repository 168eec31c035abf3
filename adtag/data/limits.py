"""Size caps on what one item may carry, so no input can make a stage run unbounded.

- Text: each text modality keeps at most ``max_text_chars()`` characters, the first and last
  halves (as ASR keeps the first and last 128 words): word splitting and TF-IDF then take bounded
  time however long the OCR/ASR text of an item is.
- Arrays: a feature array may have at most ``max_rows()`` rows (frames per item) and
  ``max_dim()`` columns; a .npy file is checked from its header, before anything is loaded.

Each cap can be changed with an environment variable (read at call time):
``ADTAG_MAX_TEXT_CHARS`` (default 2048), ``ADTAG_MAX_ROWS`` (4096), ``ADTAG_MAX_DIM`` (8192).
"""

from __future__ import annotations

import os

from adtag.errors import AdtagError

DEFAULTS = {"ADTAG_MAX_TEXT_CHARS": 2048, "ADTAG_MAX_ROWS": 4096, "ADTAG_MAX_DIM": 8192}


def _cap(name: str) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise AdtagError(f"${name}={raw!r}: expected a positive integer") from None
    if value < 1:
        raise AdtagError(f"${name}={raw!r}: expected a positive integer")
    return value


def max_text_chars() -> int:
    return _cap("ADTAG_MAX_TEXT_CHARS")


def max_rows() -> int:
    return _cap("ADTAG_MAX_ROWS")


def max_dim() -> int:
    return _cap("ADTAG_MAX_DIM")


def cap_text(text: str, limit: int | None = None) -> str:
    """``text`` if it fits in ``limit`` characters, else its first and last halves joined by a space."""
    limit = max_text_chars() if limit is None else limit
    if len(text) <= limit:
        return text
    head = limit // 2
    return text[:head] + " " + text[len(text) - (limit - head - 1) :]


def check_shape(shape: tuple[int, ...], where: str) -> None:
    """AdtagError naming ``where`` when an array of ``shape`` is over the row or column cap."""
    rows, dim = (1, shape[0]) if len(shape) == 1 else (shape[0], shape[-1]) if shape else (1, 1)
    if rows > max_rows():
        raise AdtagError(
            f"{where}: {rows} rows (frames) in shape {shape}, over the cap of {max_rows()} (ADTAG_MAX_ROWS)"
        )
    if dim > max_dim():
        raise AdtagError(f"{where}: {dim} columns in shape {shape}, over the cap of {max_dim()} (ADTAG_MAX_DIM)")
