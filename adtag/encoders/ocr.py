"""OCR: a BGR image -> text lines with boxes, with the PP-OCRv4 models inside ``rapidocr-onnxruntime``.

RapidOCR's defaults are tuned for documents, not video frames: it scales every image up to a
736 px short side and its ONNX Runtime threads busy-wait. Here text detection (most of the cost)
runs on a copy scaled to ``det_side`` px on the long side (512: captions of a 720p ad are still
found, at about half the cost of 960), recognition reads the crops from the full image it was
given, the sessions use bounded, sleeping threads, and the 180-degree classifier is off
(captions are upright).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adtag.encoders._runtime import ort_session
from adtag.encoders.registry import register_encoder


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: its box (x0, y0, x1, y1) in the image's pixels, text and confidence."""

    box: tuple[int, int, int, int]
    text: str
    score: float


class RapidOcr:
    """PP-OCRv4 detection + recognition; ``read(image_bgr)`` returns the lines found."""

    def __init__(self, threads: int = 1, det_side: int = 512, min_score: float = 0.5) -> None:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        from rapidocr_onnxruntime import RapidOCR

        self.engine = RapidOCR(
            intra_op_num_threads=1,
            inter_op_num_threads=1,
            det_limit_type="max",
            det_limit_side_len=det_side,
            use_cls=False,
            text_score=min_score,
        )
        if threads > 1:  # rebuild the sessions with sleeping (non-spinning) thread pools
            for holder in (self.engine.text_det.infer, self.engine.text_rec.session):
                holder.session = ort_session(holder.session._model_path, threads)
        self.det_side = det_side
        self.min_score = min_score

    def _quads(self, image: np.ndarray, side: int) -> list[np.ndarray]:
        import cv2

        h, w = image.shape[:2]
        scale = min(1.0, side / max(h, w))
        small = (
            image
            if scale == 1.0
            else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        )
        boxes, _ = self.engine.text_det(small)
        if boxes is None or len(boxes) == 0:
            return []
        return [np.asarray(b, dtype=np.float32) / scale for b in self.engine.sorted_boxes(boxes)]

    def detect(self, image_bgr: np.ndarray, side: int | None = None) -> list[tuple[int, int, int, int]]:
        """Text boxes only (no recognition), detected at ``side`` px on the long side: a cheap probe."""
        quads = self._quads(np.ascontiguousarray(image_bgr), side or self.det_side)
        return [_bounds(q) for q in quads]

    def read(
        self, image_bgr: np.ndarray, reuse: Callable[[tuple[int, int, int, int]], OcrLine | None] | None = None
    ) -> list[OcrLine]:
        """Detect and recognise the lines of ``image_bgr``.

        ``reuse(box)`` may return the line already read at that place (text known not to have
        changed): recognition, the larger part of the cost on long subtitle lines, then skips it.
        """
        image = np.ascontiguousarray(image_bgr)
        quads = self._quads(image, self.det_side)
        if not quads:
            return []
        lines: list[OcrLine | None] = [reuse(_bounds(q)) if reuse else None for q in quads]
        todo = [i for i, line in enumerate(lines) if line is None]
        if todo:
            crops = self.engine.get_crop_img_list(image, [quads[i] for i in todo])
            results, _ = self.engine.text_rec(crops)
            for i, res in zip(todo, results, strict=True):
                text, score = str(res[0]).strip(), float(res[1])
                if text and score >= self.min_score:
                    lines[i] = OcrLine(_bounds(quads[i]), text, score)
        return [line for line in lines if line is not None]


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    return (int(x0), int(y0), int(x1), int(y1))


@register_encoder(
    "ocr/ppocr-v4",
    dim=None,
    weights="package rapidocr-onnxruntime (PP-OCRv4 det/rec ONNX)",
    description="PP-OCRv4 text detection and recognition on sampled frames (zh + en)",
)
def ppocr_v4(threads: int = 1, **options: float) -> RapidOcr:
    return RapidOcr(threads=threads, **options)
