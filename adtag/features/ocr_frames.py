"""Which sampled frames are worth OCR, and how their lines become one text.

Captions in ads stay on screen for seconds, so OCR runs only when the picture changed: a small
grey thumbnail differs from the one last OCR'd, or the pixels under the last text boxes changed
(a new caption over the same shot), or a refresh interval passed. Repeated lines are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from adtag.encoders.ocr import OcrLine
from adtag.media.frames import SampledFrame

THUMB_WIDTH = 64  # the thumbnail compared between frames (aspect kept)
PROBE_WIDTH = 320  # the grey image whose text-box regions are compared


@dataclass
class OcrPolicy:
    """Thresholds are mean absolute grey-level differences (0-255)."""

    width: int = 960  # OCR input width: captions of 720p/1080p ads still read exactly
    scene_threshold: float = 12.0  # a cut or a big camera move, not a small moving object
    box_threshold: float = 8.0  # a caption replaced by another in the same place
    refresh_seconds: float = 3.0  # new text elsewhere in an unchanged shot waits at most this long


_NORMAL = re.compile(r"[\W_]+", re.UNICODE)


@dataclass
class OcrTracker:
    """Feed it sampled frames in order; it OCRs the ones that changed and collects unique lines."""

    reader: object  # an OCR encoder with read(image_bgr) -> list[OcrLine]
    policy: OcrPolicy = field(default_factory=OcrPolicy)
    frames_seen: int = 0
    frames_read: int = 0
    _last_thumb: np.ndarray | None = None
    _last_probe: np.ndarray | None = None
    _last_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # in probe pixels
    _last_time: float = -1e9
    _lines: dict[str, str] = field(default_factory=dict)  # normalised -> first spelling

    def _changed(self, frame: SampledFrame, probe: np.ndarray) -> bool:
        if self._last_thumb is None or frame.time - self._last_time >= self.policy.refresh_seconds:
            return True
        thumb = _shrink(probe, THUMB_WIDTH)
        if _mad(thumb, self._last_thumb) > self.policy.scene_threshold:
            return True
        for x0, y0, x1, y1 in self._last_boxes:
            if _mad(probe[y0:y1, x0:x1], self._last_probe[y0:y1, x0:x1]) > self.policy.box_threshold:
                return True
        return False

    def feed(self, frame: SampledFrame) -> bool:
        """Consider one frame; returns True if it was OCR'd."""
        self.frames_seen += 1
        probe = frame.image(PROBE_WIDTH, fmt="gray").astype(np.int16)
        if not self._changed(frame, probe):
            return False
        image = frame.image(min(self.policy.width, frame.size[0]), fmt="bgr24")
        lines: list[OcrLine] = self.reader.read(image)
        self.frames_read += 1
        scale = probe.shape[1] / image.shape[1]
        self._last_boxes = [
            (
                int(b[0] * scale),
                int(b[1] * scale),
                max(int(b[2] * scale), int(b[0] * scale) + 1),
                max(int(b[3] * scale), int(b[1] * scale) + 1),
            )
            for b in (line.box for line in lines)
        ]
        self._last_thumb = _shrink(probe, THUMB_WIDTH)
        self._last_probe = probe
        self._last_time = frame.time
        for line in lines:
            key = _NORMAL.sub("", line.text).lower()
            if key and key not in self._lines:
                self._lines[key] = line.text
        return True

    @property
    def text(self) -> str:
        """The unique lines in order of first appearance, joined by spaces."""
        return " ".join(self._lines.values())


def _shrink(img: np.ndarray, width: int) -> np.ndarray:
    """Block-mean downscale to about ``width`` columns (cheap, no resampling library)."""
    f = max(1, img.shape[1] // width)
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    return img[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    if a.size == 0 or a.shape != b.shape:
        return 0.0
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())
