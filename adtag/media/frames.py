"""Frames sampled every ``interval`` seconds; only sampled frames are converted and resized.

Every frame must be decoded (H.264 predicts from its neighbours), but colour conversion and scaling
(``swscale``) run only on the frames we keep, at the size each encoder wants: most of the decode
cost of a naive pipeline is converting frames that are thrown away.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from adtag.media.errors import MediaError
from adtag.media.probe import normalise_rotation, open_container

# Codecs whose non-reference frames can be dropped without breaking the frames we keep.
_SKIP_NONREF_CODECS = {"h264", "hevc"}


@dataclass
class SampledFrame:
    """One kept frame: its index among kept frames, its time in seconds, and the decoded picture."""

    index: int
    time: float
    frame: av.VideoFrame
    rotation: int = 0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as displayed."""
        w, h = self.frame.width, self.frame.height
        return (h, w) if self.rotation in (90, 270) else (w, h)

    def image(self, width: int, height: int | None = None, fmt: str = "rgb24") -> np.ndarray:
        """The picture scaled to ``width`` x ``height`` (aspect kept when ``height`` is None), upright.

        ``fmt`` is an FFmpeg pixel format: ``rgb24``, ``bgr24`` or ``gray``.
        """
        dw, dh = self.size
        if height is None:
            height = max(2, int(round(dh * width / dw / 2)) * 2)
        # Scale in stored orientation, then rotate: rotation is cheap on the small image.
        sw, sh = (height, width) if self.rotation in (90, 270) else (width, height)
        arr = self.frame.to_ndarray(width=sw, height=sh, format=fmt, interpolation="BILINEAR")
        if self.rotation:
            arr = np.ascontiguousarray(np.rot90(arr, k=self.rotation // 90))
        return arr


def iter_frames(
    path: str | Path,
    interval: float = 0.5,
    max_seconds: float | None = None,
    threads: int = 1,
    skip_nonref: bool = True,
) -> Iterator[SampledFrame]:
    """Yield the first frame at or after each multiple of ``interval`` seconds.

    Yields nothing for a file without a video stream. A stream that breaks part-way (a truncated
    download) ends the iteration with the frames decoded so far; one that yields no frame at all
    raises MediaError naming the file.
    """
    with open_container(path) as container:
        if not container.streams.video:
            return
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.thread_count = max(1, threads)
        ctx.thread_type = "SLICE" if threads > 1 else "NONE"
        if skip_nonref and ctx.name in _SKIP_NONREF_CODECS:
            # Non-reference frames are never needed to decode others; skipping them halves the
            # work on B-frame streams and costs at most one frame (~40 ms) of sampling accuracy.
            ctx.skip_frame = "NONREF"
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        next_t = 0.0
        kept = 0
        decoded = 0
        try:
            for frame in container.decode(stream):
                t = (frame.time - start) if frame.time is not None else decoded / rate
                decoded += 1
                if max_seconds is not None and t > max_seconds:
                    break
                if t + 1e-3 < next_t:
                    continue
                yield SampledFrame(kept, max(t, 0.0), frame, normalise_rotation(frame.rotation))
                kept += 1
                while next_t <= t + 1e-3:
                    next_t += interval
        except av.error.FFmpegError as exc:
            if kept == 0:
                raise MediaError(path, f"video stream cannot be decoded ({exc.strerror or exc})") from None
