"""Small ad-like test videos encoded with PyAV, so that no binary clip is committed.

``make_clip`` draws a few coloured scenes with a moving shape and burnt-in captions (rendered with
Pillow's bundled font) and, optionally, a soundtrack; ``make_audio_file`` writes an audio-only file.
The demo corpus generator may import these helpers.
"""

from __future__ import annotations

import fractions
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

RATE = 16000
Caption = tuple[float, float, str]  # (start s, end s, text)

_SCENES = [(200, 60, 40), (30, 120, 200), (40, 160, 80), (230, 200, 50)]


def tone(seconds: float, rate: int = RATE, freq: float = 440.0, level: float = 0.3) -> np.ndarray:
    """A mono sine tone with a slow tremolo: music-like, not speech."""
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)


def speech(text: str, seconds: float | None = None, voice: str = "en") -> np.ndarray:
    """Synthesised speech at 16 kHz mono from the system's espeak-ng (raises if it is missing)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run([exe, "-v", voice, "-s", "160", "--stdout", text], check=True, capture_output=True).stdout
    import io
    import wave

    with wave.open(io.BytesIO(wav)) as w:
        src_rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    n_out = int(len(pcm) * RATE / src_rate)
    out = np.interp(np.linspace(0, len(pcm) - 1, n_out), np.arange(len(pcm)), pcm).astype(np.float32)
    if seconds is not None:
        n = int(seconds * RATE)
        out = np.pad(out, (0, max(0, n - len(out))))[:n]
    return out


def _frame_image(i: int, fps: float, width: int, height: int, captions: Sequence[Caption]) -> np.ndarray:
    t = i / fps
    scene = _SCENES[int(t // 2.5) % len(_SCENES)]
    img = Image.new("RGB", (width, height), scene)
    draw = ImageDraw.Draw(img)
    r = max(4, min(width, height) // 8)
    cx = int((0.2 + 0.6 * ((t * 0.3) % 1.0)) * width)
    cy = height // 3
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(250, 250, 250))
    for start, end, text in captions:
        if start <= t < end:
            font = ImageFont.load_default(size=max(10, height // 12))
            box = draw.textbbox((0, 0), text, font=font)
            tw, th = box[2] - box[0], box[3] - box[1]
            x, y = (width - tw) // 2, int(height * 0.78)
            draw.rectangle([x - 8, y - 6, x + tw + 8, y + th + 12], fill=(0, 0, 0))
            draw.text((x, y), text, font=font, fill=(255, 255, 255))
    return np.asarray(img)


def make_clip(
    path: str | Path,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: float = 10,
    audio: np.ndarray | str | None = "tone",
    captions: Sequence[Caption] = (),
    rotation: int = 0,
    frames: int | None = None,
    container_format: str | None = None,
    crf: int = 28,
    preset: str = "ultrafast",
) -> Path:
    """Encode an H.264 (+ AAC) clip; ``audio`` is a 16 kHz array, ``"tone"``, or None for no track.

    ``rotation`` stores a display-matrix rotation as phones do; ``frames`` overrides the frame count.
    """
    path = Path(path)
    n_frames = frames if frames is not None else max(1, int(round(seconds * fps)))
    with av.open(str(path), "w", format=container_format) as out:
        vs = out.add_stream("libx264", rate=fractions.Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": preset, "crf": str(crf)}
        if rotation:
            vs.set_display_rotation(rotation)
        samples = None
        if isinstance(audio, str):
            samples = tone(n_frames / fps)
        elif audio is not None:
            samples = np.asarray(audio, dtype=np.float32)
        aus = None
        if samples is not None:
            aus = out.add_stream("aac", rate=RATE)
            aus.layout = "mono"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(_frame_image(i, fps, width, height, captions), format="rgb24")
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None and samples is not None:
            _encode_audio(out, aus, samples)
    return path


def make_panning_clip(
    path: str | Path,
    seconds: float = 4.0,
    width: int = 480,
    height: int = 270,
    fps: float = 10,
    captions: Sequence[Caption] = (),
    cut_every: float = 2.0,
) -> Path:
    """The camera pans and zooms over real photographs (scikit-learn's), with a hard cut every
    ``cut_every`` s and burnt-in captions: every sampled frame differs from the last in its pixels
    while the caption text stays put. Captions in Noto Sans CJK, white with a dark outline. No soundtrack."""
    import cv2
    from noto_cjk_sans_otc import FONT_PATH
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    path = Path(path)
    n_frames = max(1, int(round(seconds * fps)))
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fractions.Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(n_frames):
            t = i / fps
            shot = int(t // cut_every)
            photo = photos[shot % len(photos)]
            u = (t % cut_every) / cut_every
            scale = max(width / photo.shape[1], height / photo.shape[0]) * (1.2 + 0.3 * u)
            cx = photo.shape[1] * (0.4 + 0.2 * u) + 3 * np.sin(7 * t)
            cy = photo.shape[0] * 0.5 + 3 * np.cos(5 * t)
            m = np.array([[scale, 0, width / 2 - scale * cx], [0, scale, height / 2 - scale * cy]])
            rgb = cv2.warpAffine(photo, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            img = Image.fromarray(rgb)
            draw = ImageDraw.Draw(img)
            for start, end, text in captions:
                if start <= t < end:
                    font = ImageFont.truetype(str(FONT_PATH), size=max(10, height // 12), index=2)
                    box = draw.textbbox((0, 0), text, font=font, stroke_width=2)
                    x, y = (width - (box[2] - box[0])) // 2, int(height * 0.8)
                    draw.text((x, y), text, font=font, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
            for packet in vs.encode(av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    return path


def _encode_audio(out: av.container.OutputContainer, stream: av.AudioStream, samples: np.ndarray) -> None:
    chunk = 1024
    pts = 0
    for start in range(0, len(samples), chunk):
        block = samples[start : start + chunk]
        frame = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
        frame.sample_rate = RATE
        frame.pts = pts
        pts += len(block)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def make_audio_file(path: str | Path, samples: np.ndarray) -> Path:
    """An audio-only file (AAC in MP4/M4A) holding ``samples`` (16 kHz mono)."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=RATE)
        stream.layout = "mono"
        _encode_audio(out, stream, np.asarray(samples, dtype=np.float32))
    return path


def truncate(src: str | Path, dst: str | Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of a file's bytes: a download cut short."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep)])
    return Path(dst)
