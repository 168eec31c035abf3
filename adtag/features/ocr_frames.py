"""Which sampled frames are worth OCR, and how their lines become one text.

OCR runs when the *text* on screen changes, not when the picture does: in real ads the camera
pans, zooms and shakes and the shot cuts every 1-3 s while a subtitle stays put for seconds. So:

- each line read is remembered with its stroke pixels: pixels at the bright (or dark) extreme of
  their neighbourhood with a much darker (brighter) one close by, i.e. glyph fill or outline, in
  the polarity that has fewer of them (the glyphs, not a caption band). When a large share of
  them are no longer strokes on a later frame, the text there changed or went away; a photo
  panning behind unchanged text leaves them in place;
- a cheap text-region probe (text detection alone, on a small image) looks for new text every
  ``probe_seconds``; text it finds outside the remembered boxes calls for OCR;
- when a read finds no text where there was some, the next allowed frame is read again (text
  detection can miss a line on one background);
- full OCR (detection + recognition) runs at most ``max_per_second`` times per second of video
  (a change seen meanwhile waits for the next allowed frame: subtitles stay up for seconds), and
  recognition is skipped for remembered lines whose strokes did not change.

Repeated lines are dropped from the text.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

import numpy as np

from adtag.encoders.ocr import OcrLine
from adtag.media.frames import SampledFrame

Box = tuple[int, int, int, int]


@dataclass
class OcrPolicy:
    """When to OCR. Pixel thresholds are grey levels (0-255)."""

    width: int = 960  # OCR input width: captions of 720p/1080p ads still read exactly
    probe_seconds: float = 1.0  # how often the text-region probe looks for new text
    probe_side: int = 256  # long side of the probe's text detection (256: 40% cheaper than 320, same recall here)
    max_per_second: float = 1.0  # full OCR calls per second of video, at most
    stroke_change: int = 40  # a stroke is this much brighter (darker) than pixels next to it, twice
    changed_share: float = 0.4  # a line that lost this share of its strokes is new text (or gone)


@dataclass
class _Seen:
    """A line read earlier, its box in the frame's pixels, and its stroke pixels when it was read."""

    line: OcrLine
    box: Box  # in the frame's pixels
    masks: list[tuple[int, np.ndarray]]  # (0 bright / 1 dark, stroke pixels)
    pixels: np.ndarray  # the box's grey pixels when it was read


_NORMAL = re.compile(r"[\W_]+", re.UNICODE)


@dataclass
class OcrTracker:
    """Feed it sampled frames in order; it OCRs the ones whose text changed and collects unique lines."""

    reader: object  # an OCR encoder: read(image_bgr[, reuse]) -> list[OcrLine]; detect(image_bgr, side) optional
    policy: OcrPolicy = field(default_factory=OcrPolicy)
    frames_seen: int = 0
    frames_read: int = 0  # full OCR calls
    probes: int = 0  # text-region probes
    _seen: list[_Seen] = field(default_factory=list)
    _last_read: float | None = None
    _last_probe: float = -1e9
    _pending: bool = False
    _retried: bool = False
    _takes_reuse: bool | None = None
    _lines: dict[str, str] = field(default_factory=dict)  # normalised -> first spelling

    def feed(self, frame: SampledFrame) -> bool:
        """Consider one frame; returns True if it was OCR'd."""
        self.frames_seen += 1
        grey = frame.image(frame.size[0], fmt="gray")  # at full size: the luma plane, no scaling
        changed = [self._changed(seen, grey) for seen in self._seen]
        want = self._last_read is None or self._pending or any(changed)
        if not want and frame.time - self._last_probe >= 0.9 * self.policy.probe_seconds:
            want = self._new_text(frame, grey)
        if not want:
            return False
        # (0.9: sampled frames come a frame early or late, 0.48 or 0.52 s apart at 25 fps)
        if self._last_read is not None and frame.time - self._last_read < 0.9 / self.policy.max_per_second:
            self._pending = True  # read it on the next allowed frame
            return False
        self._read(frame, grey, changed)
        return True

    def _changed(self, seen: _Seen, grey: np.ndarray) -> bool:
        x0, y0, x1, y1 = seen.box
        now = grey[y0:y1, x0:x1].astype(np.int16)
        if now.shape != seen.pixels.shape:
            return True
        # Text that stays keeps its strokes while the picture behind moves; new text, or none,
        # leaves few of them. A stroke pixel stays a stroke pixel of the same polarity through the
        # blur of compression, where its grey level does not. The polarity followed is the one
        # with fewer stroke pixels: the glyphs, not the band or the outline around them.
        if not seen.masks:  # no strokes to follow: any change of the pixels counts
            return float(np.abs(now - seen.pixels).mean()) > self.policy.stroke_change / 4
        k, old = min(seen.masks, key=lambda km: int(km[1].sum()))
        lost = float((old & ~_strokes(now, self.policy)[k]).sum()) / float(old.sum())
        return lost > self.policy.changed_share

    def _new_text(self, frame: SampledFrame, grey: np.ndarray) -> bool:
        """The probe: text detection on a small image; True if it finds text outside the known boxes."""
        import cv2

        self._last_probe = frame.time
        detect = getattr(self.reader, "detect", None)
        if detect is None:  # a reader without a detector: OCR at every probe
            return True
        self.probes += 1
        h, w = grey.shape
        f = min(1.0, self.policy.probe_side / max(h, w))
        small = cv2.resize(grey, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        boxes = detect(np.repeat(small[:, :, None], 3, axis=2), self.policy.probe_side)
        known = [s.box for s in self._seen]
        return any(_covered(tuple(int(v / f) for v in b), known) < 0.5 for b in boxes)  # type: ignore[arg-type]

    def _read(self, frame: SampledFrame, grey: np.ndarray, changed: list[bool]) -> None:
        image = frame.image(min(self.policy.width, frame.size[0]), fmt="bgr24")
        scale = grey.shape[1] / image.shape[1]
        steady = [s.line for s, c in zip(self._seen, changed, strict=True) if not c]

        def reuse(box: Box) -> OcrLine | None:
            for line in steady:
                if _iou(box, line.box) > 0.7:
                    return OcrLine(box, line.text, line.score)
            return None

        if self._takes_reuse is None:
            self._takes_reuse = "reuse" in inspect.signature(self.reader.read).parameters
        lines: list[OcrLine] = self.reader.read(image, reuse=reuse) if self._takes_reuse else self.reader.read(image)
        self.frames_read += 1
        self._last_read = frame.time
        self._last_probe = frame.time
        # Text that went away may only have been missed by detection on this frame's background:
        # look once more on the next allowed frame.
        self._pending = bool(self._seen) and not lines and not self._retried
        self._retried = self._pending
        self._seen = [self._remember(line, grey, scale) for line in lines]
        for line in lines:
            key = _NORMAL.sub("", line.text).lower()
            if key and key not in self._lines:
                self._lines[key] = line.text

    def _remember(self, line: OcrLine, grey: np.ndarray, scale: float) -> _Seen:
        h, w = grey.shape
        x0, y0 = min(w - 1, max(0, int(line.box[0] * scale))), min(h - 1, max(0, int(line.box[1] * scale)))
        x1, y1 = (
            max(x0 + 1, min(w, int(np.ceil(line.box[2] * scale)))),
            max(y0 + 1, min(h, int(np.ceil(line.box[3] * scale)))),
        )
        pixels = grey[y0:y1, x0:x1].astype(np.int16)
        # A polarity with (almost) no stroke pixels says nothing: leave it out.
        masks = [(k, m) for k, m in enumerate(_strokes(pixels, self.policy)) if m.sum() >= 8]
        return _Seen(line, (x0, y0, x1, y1), masks, pixels)

    @property
    def text(self) -> str:
        """The unique lines in order of first appearance, joined by spaces."""
        return " ".join(self._lines.values())


def _strokes(pixels: np.ndarray, policy: OcrPolicy) -> tuple[np.ndarray, np.ndarray]:
    """Bright and dark stroke pixels of a text box: pixels near the brightest (darkest) of their
    7x7 neighbourhood with a much darker (brighter) one in it, as glyphs with an outline or on a
    plain band have (and not a bright sky behind the text)."""
    import cv2

    img = pixels.astype(np.uint8)
    near = np.ones((7, 7), np.uint8)
    low, high = cv2.erode(img, near).astype(np.int16), cv2.dilate(img, near).astype(np.int16)
    contrast, close = 2 * policy.stroke_change, policy.stroke_change
    return (pixels - low > contrast) & (high - pixels < close), (high - pixels > contrast) & (pixels - low < close)


def _area(b: Box) -> float:
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def _inter(a: Box, b: Box) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _iou(a: Box, b: Box) -> float:
    i = _inter(a, b)
    return i / max(_area(a) + _area(b) - i, 1e-9)


def _covered(box: Box, known: list[Box]) -> float:
    """Share of ``box`` inside the known boxes (they do not overlap much: summing is close enough)."""
    return min(1.0, sum(_inter(box, k) for k in known) / max(_area(box), 1e-9))
