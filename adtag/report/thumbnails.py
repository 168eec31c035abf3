"""Thumbnail strips for the report's gallery: a few evenly spaced frames of a video.

Seeks to each target time rather than decoding the whole file, so a long or 4K ad costs a
handful of keyframe decodes, not minutes.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from PIL import Image

from adtag.errors import AdtagError


def _frame_at(container: av.container.InputContainer, stream: av.video.stream.VideoStream, seconds: float):
    """The first decodable frame at or after ``seconds`` (the last one before it at the end)."""
    tb = stream.time_base
    container.seek(int(seconds / tb) if tb else 0, stream=stream, backward=True, any_frame=False)
    last = None
    for frame in container.decode(stream):
        last = frame
        if frame.pts is None or frame.time is None or frame.time >= seconds - 1e-3:
            return frame
    return last


def thumbnail_strip(video_path: str | Path, n: int = 6, height: int = 72) -> list[np.ndarray]:
    """``n`` frames spread over the video, each ``height`` pixels high (HxWx3 uint8 RGB)."""
    if n < 1 or height < 8:
        raise ValueError("need n >= 1 and height >= 8")
    try:
        container = av.open(str(video_path))
    except (av.error.FFmpegError, OSError) as exc:
        raise AdtagError(f"{video_path}: cannot open video ({exc})") from None
    with container:
        if not container.streams.video:
            raise AdtagError(f"{video_path}: no video stream")
        stream = container.streams.video[0]
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        targets = [duration * (i + 0.5) / n for i in range(n)]
        strip: list[np.ndarray] = []
        for t in targets:
            frame = _frame_at(container, stream, t)
            if frame is None:
                continue
            width = max(8, int(round(frame.width * height / frame.height / 2)) * 2)
            strip.append(frame.reformat(width=width, height=height, format="rgb24").to_ndarray())
    if not strip:
        raise AdtagError(f"{video_path}: no frame could be decoded")
    return strip


def to_jpeg(image: np.ndarray | bytes, quality: int = 80) -> bytes:
    """JPEG bytes of an RGB array (JPEG bytes pass through unchanged)."""
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"thumbnail must be HxWx3 uint8, got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr[..., :3]).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
