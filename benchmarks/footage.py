"""Ad-like footage that moves as real ads do, with its subtitles and speech kept as ground truth.

Each clip is a sequence of shots (a hard cut every 1-3 s); a shot pans and zooms over a real
photograph (scikit-learn's and matplotlib's sample images) with hand-held shake. Subtitles in
Chinese or English (Noto Sans CJK, white with a dark outline, no box: as broadcast subtitles)
change every 2-4 s independently of the cuts, and some clips carry a fixed corner logo. The
soundtrack is espeak-ng speech over music, music alone, or absent. Nothing here depends on the
adtag package: the benchmark can run old and new extraction code on the same files.

    footage = make_footage(folder, MIXED)    # -> list of dicts: path, seconds, subtitles, speech
"""

from __future__ import annotations

import fractions
import functools
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

RATE = 16000

ZH_LINES = [
    "限时优惠 全场五折",
    "新品上市 欢迎选购",
    "夏日清凉 畅饮一夏",
    "品质生活从这里开始",
    "立即下载 领取红包",
    "健康早餐 营养美味",
    "拍照更清晰的手机",
    "今日下单 次日送达",
    "专业护肤 水润一整天",
    "全家出游 就选这里",
    "会员专享 积分翻倍",
    "安全驾驶 舒适出行",
]
EN_LINES = [
    "Summer sale starts today",
    "Buy one get one free",
    "Light and fast running shoes",
    "Order online before Sunday",
    "Free delivery to your door",
    "Fresh coffee every morning",
    "The phone with the best camera",
    "Book your holiday now",
    "Save up to fifty percent",
    "Visit our store today",
    "Clean energy for your home",
    "Join the club for free",
]
ZH_SPEECH = ["全场五折。", "夏日大促销，全场商品五折起。", "今天下单，明天就能送到你家。", "欢迎来到我们的门店。"]
EN_SPEECH = [
    "Big summer sale.",
    "Summer sale starts today. Buy one, get one free on all running shoes.",
    "Order online before Sunday and enjoy free delivery to your door.",
    "Limited time offer. Visit our store today.",
]
LOGOS = ["ADTV", "优选频道", "NEWS 24"]


@dataclass(frozen=True)
class ClipSpec:
    """One clip to generate: length, size, subtitle language, soundtrack kind, seed."""

    name: str
    seconds: float
    width: int
    height: int
    lang: str = "en"  # subtitle and speech language: "en" or "zh"
    sound: str = "speech"  # "speech" (over music), "music", or "none"
    logo: bool = False
    fps: int = 25
    seed: int = 0


# The realistic mixed batch: 5-60 s, landscape and vertical, zh and en, with and without speech.
MIXED = [
    ClipSpec("phone-zh-5s", 5, 720, 1280, "zh", "speech", seed=1),
    ClipSpec("tv-en-8s", 8, 1280, 720, "en", "music", logo=True, seed=2),
    ClipSpec("phone-en-12s", 12, 540, 960, "en", "speech", seed=3),
    ClipSpec("tv-zh-15s", 15, 1280, 720, "zh", "speech", logo=True, seed=4),
    ClipSpec("phone-zh-6s", 6, 720, 1280, "zh", "none", seed=5),
    ClipSpec("web-en-20s", 20, 960, 540, "en", "speech", seed=6),
    ClipSpec("tv-zh-30s", 30, 1280, 720, "zh", "music", seed=7),
    ClipSpec("phone-en-45s", 45, 720, 1280, "en", "speech", logo=True, seed=8),
    ClipSpec("tv-en-10s", 10, 1280, 720, "en", "speech", seed=9),
    ClipSpec("tv-zh-60s", 60, 1280, 720, "zh", "speech", seed=10),
]
# Issue 11's other figure: four 30 s 720p clips.
FOUR_720P = [
    ClipSpec(f"tv-{lang}-30s-{i}", 30, 1280, 720, lang, "speech", logo=i % 2 == 0, seed=20 + i)
    for i, lang in enumerate(["en", "zh", "en", "zh"])
]


@functools.cache
def photos() -> list[np.ndarray]:
    """Real photographs shipped with scikit-learn and matplotlib, RGB uint8."""
    import matplotlib
    from sklearn.datasets import load_sample_images

    out = [np.asarray(im) for im in load_sample_images().images]  # china.jpg, flower.jpg
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        out.append(np.asarray(Image.open(sample / name).convert("RGB")))
    return out


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    from noto_cjk_sans_otc import FONT_PATH

    return ImageFont.truetype(str(FONT_PATH), size=size, index=2)  # index 2: the SC (simplified) face


def _text_layer(text: str, size: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """White text with a dark outline: (RGB, alpha in 0..1) just big enough to hold it."""
    font = _font(size)
    stroke = max(2, size // 12)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
    w, h = min(width, x1 - x0 + 4), y1 - y0 + 4
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(img).text(
        (2 - x0, 2 - y0), text, font=font, fill=(255, 255, 255, 255), stroke_width=stroke, stroke_fill=(20, 20, 20, 255)
    )
    arr = np.asarray(img)
    return arr[..., :3].astype(np.float32), arr[..., 3:].astype(np.float32) / 255.0


def _paste(frame: np.ndarray, layer: tuple[np.ndarray, np.ndarray], x: int, y: int) -> None:
    rgb, alpha = layer
    h, w = alpha.shape[:2]
    region = frame[y : y + h, x : x + w].astype(np.float32)
    frame[y : y + h, x : x + w] = (region * (1 - alpha) + rgb * alpha).astype(np.uint8)


def _schedule(rng: np.random.Generator, seconds: float, low: float, high: float) -> list[float]:
    """Start times of segments of random length in [low, high) covering ``seconds``."""
    starts, t = [], 0.0
    while t < seconds:
        starts.append(round(t, 2))
        t += float(rng.uniform(low, high))
    return starts


def _shot_path(rng: np.random.Generator, photo: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (centre x, centre y, scale) of a pan/zoom over ``photo`` for a frame of width x height."""
    ph, pw = photo.shape[:2]
    cover = max(width / pw, height / ph)  # the smallest scale at which the photo fills the frame
    ends = []
    for _ in range(2):
        scale = cover * float(rng.uniform(1.05, 1.6))
        half_w, half_h = width / scale / 2, height / scale / 2
        cx = float(rng.uniform(half_w, pw - half_w))
        cy = float(rng.uniform(half_h, ph - half_h))
        ends.append((cx, cy, scale))
    return np.array(ends[0]), np.array(ends[1])


def _shake(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """Hand-held shake: a smoothed random walk, (n, 2) pixel offsets."""
    steps = rng.normal(0, 1, size=(n + 8, 2))
    kernel = np.ones(8) / 8
    smooth = np.stack([np.convolve(steps[:, i], kernel, mode="valid")[:n] for i in range(2)], axis=1)
    walk = np.cumsum(smooth, axis=0) * 0.6
    walk -= np.linspace(0, 1, n)[:, None] * walk[-1:]  # stay near the framing
    return np.clip(walk, -3, 3) / 3 * amplitude


def _speech(text: str, voice: str) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run([exe, "-v", voice, "-s", "150", "--stdout", text], check=True, capture_output=True).stdout
    import io
    import wave

    with wave.open(io.BytesIO(wav)) as w:
        src = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    n = int(len(pcm) * RATE / src)
    return np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.float32)


def _music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    notes = rng.choice([196.0, 220.0, 247.0, 262.0, 294.0, 330.0], size=int(seconds * 2) + 1)
    freq = notes[(t * 2).astype(int)]
    return (0.12 * np.sin(2 * np.pi * np.cumsum(freq) / RATE) * (0.7 + 0.3 * np.sin(2 * np.pi * 2 * t))).astype(
        np.float32
    )


def _soundtrack(spec: ClipSpec, rng: np.random.Generator) -> tuple[np.ndarray | None, list[str]]:
    if spec.sound == "none":
        return None, []
    n = int(spec.seconds * RATE)
    track = _music(spec.seconds, rng)
    said: list[str] = []
    if spec.sound == "speech":
        lines, voice = (ZH_SPEECH, "cmn") if spec.lang == "zh" else (EN_SPEECH, "en")
        voice_track = np.zeros(n, np.float32)
        pos = int(0.3 * RATE)
        for line in lines * 8:
            clip = _speech(line, voice)
            if pos + len(clip) > n - int(0.2 * RATE):
                break
            voice_track[pos : pos + len(clip)] = clip
            said.append(line)
            pos += len(clip) + int(0.4 * RATE)
        track = 0.9 * voice_track + track
    return np.clip(track, -1, 1), said


def render(spec: ClipSpec, path: Path, preset: str = "fast") -> dict:
    """Encode one clip (H.264 + AAC); returns its ground truth (subtitles with times, speech)."""
    rng = np.random.default_rng(spec.seed)
    pics = photos()
    w, h, fps = spec.width, spec.height, spec.fps
    n_frames = int(round(spec.seconds * fps))
    cuts = _schedule(rng, spec.seconds, 1.0, 3.0)
    shots = []
    for i, start in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else spec.seconds
        photo = pics[int(rng.integers(len(pics)))]
        a, b = _shot_path(rng, photo, w, h)
        shots.append((start, end, photo, a, b))
    lines = ZH_LINES if spec.lang == "zh" else EN_LINES
    order = rng.permutation(len(lines))
    sub_starts = _schedule(rng, spec.seconds, 2.0, 4.0)
    size = max(18, min(w, h) // 16)
    subtitles = []
    layers = []
    for i, start in enumerate(sub_starts):
        end = sub_starts[i + 1] if i + 1 < len(sub_starts) else spec.seconds
        if end - start < 1.0:  # a last sliver of a subtitle is not one a viewer reads
            subtitles[-1]["end"] = round(spec.seconds, 2) if subtitles else None
            break
        text = lines[order[i % len(lines)]]
        layer = _text_layer(text, size, w - 8)
        subtitles.append({"start": start, "end": round(end, 2), "text": text})
        layers.append(layer)
    logo = _text_layer(LOGOS[spec.seed % len(LOGOS)], max(14, size * 2 // 3), w // 2) if spec.logo else None
    shake = _shake(rng, n_frames, amplitude=min(w, h) * 0.01)
    audio, said = _soundtrack(spec, rng)

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fractions.Fraction(fps))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": preset, "crf": "23", "threads": "1"}
        aus = None
        if audio is not None:  # every stream is added before the first packet is written
            aus = out.add_stream("aac", rate=RATE)
            aus.layout = "mono"
        for i in range(n_frames):
            t = i / fps
            start, end, photo, a, b = next(s for s in shots if s[0] <= t < s[1] or s is shots[-1])
            u = (t - start) / max(end - start, 1e-6)
            u = u * u * (3 - 2 * u)  # ease in and out, as a camera operator moves
            cx, cy, scale = a + (b - a) * u
            cx, cy = cx + shake[i, 0] / scale, cy + shake[i, 1] / scale
            m = np.array([[scale, 0, w / 2 - scale * cx], [0, scale, h / 2 - scale * cy]], dtype=np.float64)
            frame = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            for sub, layer in zip(subtitles, layers, strict=True):
                if sub["start"] <= t < sub["end"]:
                    lh, lw = layer[1].shape[:2]
                    _paste(frame, layer, (w - lw) // 2, int(h * 0.86) - lh // 2)
            if logo is not None:
                _paste(frame, logo, w - logo[1].shape[1] - w // 30, h // 30)
            for packet in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None and audio is not None:
            _encode_audio(out, aus, audio)
    return {
        "path": str(path),
        **asdict(spec),
        "cuts": cuts,
        "subtitles": subtitles,
        "logo_text": LOGOS[spec.seed % len(LOGOS)] if spec.logo else None,
        "speech": said,
    }


def _encode_audio(out: av.container.OutputContainer, stream: av.AudioStream, samples: np.ndarray) -> None:
    pts = 0
    for start in range(0, len(samples), 1024):
        block = np.ascontiguousarray(samples[start : start + 1024])
        frame = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
        frame.sample_rate, frame.pts = RATE, pts
        pts += len(block)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def make_footage(folder: str | Path, specs: list[ClipSpec]) -> list[dict]:
    """Render ``specs`` into ``folder`` (reusing clips already there from the same spec); ground truth too."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truths = []
    for spec in specs:
        path = folder / f"{spec.name}.mp4"
        truth_path = folder / f"{spec.name}.json"
        if path.is_file() and truth_path.is_file():
            truth = json.loads(truth_path.read_text(encoding="utf-8"))
            if {k: truth.get(k) for k in asdict(spec)} == asdict(spec):
                truths.append(truth)
                continue
        tmp = folder / f".{spec.name}.tmp.mp4"
        truth = render(spec, tmp)
        tmp.replace(path)
        truth["path"] = str(path)
        truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
        truths.append(truth)
    return truths


if __name__ == "__main__":
    import sys
    import time

    t = time.process_time()
    for truth in make_footage(sys.argv[1] if len(sys.argv) > 1 else "/tmp/adtag-footage", MIXED[:1]):
        print(truth["path"], truth["seconds"], [s["text"] for s in truth["subtitles"]], truth["speech"])
    print(f"{time.process_time() - t:.1f} CPU-s")
