"""Container metadata: duration, displayed size, frame rate, rotation, which streams exist."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import av

from adtag.media.errors import MediaError


@dataclass(frozen=True)
class MediaInfo:
    """What the container says about a file. ``width``/``height`` are as displayed (after rotation)."""

    duration: float
    width: int
    height: int
    fps: float
    rotation: int
    has_video: bool
    has_audio: bool

    def as_extra(self) -> dict[str, float]:
        """The numbers that become the manifest's ``extra`` modality."""
        return {k: float(v) for k, v in asdict(self).items()}


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open ``path`` for reading, turning every failure into a MediaError that names the file."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path), "r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaError(path, f"not a readable video or audio file ({exc.strerror or exc})") from None


def normalise_rotation(degrees: float | int | None) -> int:
    """Display rotation as one of 0, 90, 180, 270 (counter-clockwise, as FFmpeg reports it)."""
    if not degrees:
        return 0
    return int(round(float(degrees) / 90.0)) * 90 % 360


def first_frame_rotation(container: av.container.InputContainer) -> int:
    """Rotation from the first frame's display matrix (phones store it there, not in the stream)."""
    try:
        for frame in container.decode(video=0):
            return normalise_rotation(frame.rotation)
    except av.error.FFmpegError:
        pass
    return 0


def probe(path: str | Path) -> MediaInfo:
    """Read metadata; only the first video frame is decoded, for its rotation."""
    with open_container(path) as container:
        return probe_container(container, path)


def probe_container(container: av.container.InputContainer, path: str | Path) -> MediaInfo:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise MediaError(path, "no video or audio stream")
    duration = 0.0
    if container.duration is not None:
        duration = container.duration / av.time_base
    elif video is not None and video.duration is not None and video.time_base is not None:
        duration = float(video.duration * video.time_base)
    width = height = 0
    fps = 0.0
    rotation = 0
    if video is not None:
        width, height = video.codec_context.width, video.codec_context.height
        rate = video.average_rate or video.guessed_rate
        fps = float(rate) if rate else 0.0
        rotation = first_frame_rotation(container)
        if rotation in (90, 270):
            width, height = height, width
    return MediaInfo(
        duration=round(max(duration, 0.0), 3),
        width=width,
        height=height,
        fps=round(fps, 3),
        rotation=rotation,
        has_video=video is not None,
        has_audio=audio is not None,
    )
