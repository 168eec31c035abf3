"""Extraction on realistic footage (issue 11), old and new code side by side in one run.

Footage (benchmarks/footage.py): pans and zooms over real photographs with hand-held shake, a hard
cut every 1-3 s, zh/en subtitles changing every 2-4 s, speech / music / silence, 5-60 s, vertical
and landscape. For each code tree (``--before``: a checkout of the old code, and this one) and in
fresh processes:

- ``stages``: one process, one Extractor (threads=1), every clip of the mixed batch: CPU-seconds
  per stage (``time.process_time`` around each stage, all threads), model loading, the share of
  sampled frames OCR'd, every subtitle read or not, the speech read word for word or not, and
  whether torch was imported;
- ``cli``: ``adtag extract FOLDER --workers 2`` on the mixed batch and on four 30 s 720p clips,
  CPU-seconds of the whole command (parent + workers, model loading included).

The decode-only floor (sampled frames converted + audio to 16 kHz) is the reference.

    python benchmarks/bench_footage.py --before /tmp/extract-before [--footage DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normal(text: str) -> str:
    return _WORD.sub("", text).lower()


def cpu() -> float:
    return time.process_time()


# -- run inside a code tree (PYTHONPATH = that tree) -----------------------------------------------


def stage_decode(truths: list[dict]) -> dict:
    from adtag.media import iter_frames, read_audio

    start = cpu()
    for t in truths:
        for frame in iter_frames(t["path"], 0.5):
            frame.image(224, 224)
            frame.image(320, fmt="gray")
        read_audio(t["path"])
    return {"cpu_s": cpu() - start}


def stage_extract(truths: list[dict]) -> dict:
    from contextlib import contextmanager

    import adtag.features.pipeline as pipeline

    per_stage: dict[str, float] = {}

    @contextmanager
    def timed(timings: dict, stage: str):  # CPU time per stage instead of wall time
        start = cpu()
        try:
            yield
        finally:
            timings[stage] = timings.get(stage, 0.0) + cpu() - start
            per_stage[stage] = per_stage.get(stage, 0.0) + cpu() - start

    pipeline._timed = timed
    start = cpu()
    extractor = pipeline.Extractor(threads=1)
    load = cpu() - start
    clips = []
    start = cpu()
    for t in truths:
        t0 = cpu()
        item, timings = extractor.extract(t["path"])
        clips.append(
            {
                "name": t["name"],
                "seconds": t["seconds"],
                "cpu_s": cpu() - t0,
                "frames": timings.get("frames", 0),
                "ocr_frames": timings.get("ocr_frames", 0),
                "ocr": item.text.get("ocr", ""),
                "asr": item.text.get("asr", ""),
                "audio_shape": list(item.features["audio"].shape) if "audio" in item.features else None,
            }
        )
    return {
        "load_cpu_s": load,
        "cpu_s": cpu() - start,
        "stages": per_stage,
        "clips": clips,
        "torch_imported": "torch" in sys.modules,
    }


# -- the driver ------------------------------------------------------------------------------------


def in_tree(tree: Path, stage: str, footage: Path, max_seconds: float) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--footage", str(footage), "--max-seconds", str(max_seconds)]
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "ORT_DISABLE_TELEMETRY": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=tree)
    if done.returncode != 0:
        raise RuntimeError(f"{stage} in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cli(tree: Path, videos: list[str], out: Path) -> dict:
    """``adtag extract VIDEO... --workers 2`` from ``tree``: CPU-s of the command and all its workers."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "ORT_DISABLE_TELEMETRY": "1"}
    cmd = [sys.executable, "-m", "adtag.commands.extract", *videos, "--out", str(out), "--workers", "2"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run([*cmd, "--no-progress"], env=env, capture_output=True, text=True, check=False, cwd=tree)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"adtag extract in {tree} failed:\n{done.stderr[-3000:]}")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu_s, "wall_s": wall, "stdout": done.stdout.strip()[-300:]}


def score(result: dict, truths: list[dict]) -> dict:
    """Share of sampled frames OCR'd, subtitles read, speech read word for word, per clip and overall."""
    by_name = {t["name"]: t for t in truths}
    subs_total = subs_read = frames = ocr_frames = 0
    missed: list[str] = []
    speech_ok = speech_clips = 0
    for clip in result["clips"]:
        truth = by_name[clip["name"]]
        ocr = normal(clip["ocr"])
        frames += clip["frames"]
        ocr_frames += clip["ocr_frames"]
        for sub in truth["subtitles"]:
            subs_total += 1
            if normal(sub["text"]) in ocr:
                subs_read += 1
            else:
                missed.append(f"{clip['name']}: {sub['text']}")
        if truth["speech"] and truth["lang"] == "en":  # espeak-ng's Mandarin is not reliably readable
            speech_clips += 1
            said = normal(" ".join(truth["speech"]))
            clip["speech_exact"] = normal(clip["asr"]) == said
            speech_ok += clip["speech_exact"]
    return {
        "ocr_frame_share": ocr_frames / max(frames, 1),
        "subtitles_read": f"{subs_read}/{subs_total}",
        "subtitles_missed": missed,
        "english_speech_exact": f"{speech_ok}/{speech_clips}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", help="a checkout of the old code (e.g. git worktree add /tmp/extract-before a282a45)")
    ap.add_argument("--footage", default=os.path.join(tempfile.gettempdir(), "adtag-footage"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "footage.json"))
    ap.add_argument("--skip-cli", action="store_true", help="only the per-stage profile")
    ap.add_argument(
        "--max-seconds", type=float, default=60.0, help="only the mixed clips this long or shorter (default: all)"
    )
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    args = ap.parse_args()
    footage = Path(args.footage)
    mixed_dir, four_dir = footage / "mixed", footage / "four720p"
    if args.stage:  # PYTHONPATH picks the code tree; read the ground truth the driver wrote
        folder = four_dir if args.stage == "decode4" else mixed_dir
        truths = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
        truths = [t for t in truths if t["seconds"] <= args.max_seconds or folder == four_dir]
        fn = {"decode": stage_decode, "decode4": stage_decode, "extract": stage_extract}[args.stage]
        print(json.dumps(fn(truths), default=float, ensure_ascii=False))
        return

    sys.path.insert(0, str(ROOT))
    from benchmarks.footage import FOUR_720P, MIXED, make_footage

    t = cpu()
    truths = make_footage(mixed_dir, [s for s in MIXED if s.seconds <= args.max_seconds])
    four_paths = [t["path"] for t in make_footage(four_dir, FOUR_720P)]
    print(f"footage ready ({cpu() - t:.0f} CPU-s to generate)", file=sys.stderr)
    mixed_seconds = sum(x["seconds"] for x in truths)
    four_seconds = sum(s.seconds for s in FOUR_720P)
    trees = {"after": ROOT}
    if args.before:
        trees = {"before": Path(args.before).resolve(), "after": ROOT}
    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": os.getloadavg(),
        "footage": {"mixed_clips": len(truths), "mixed_seconds": mixed_seconds, "four_720p_seconds": four_seconds},
    }
    print("decode floor ...", file=sys.stderr)
    results["decode"] = in_tree(ROOT, "decode", footage, args.max_seconds)
    results["decode_four_720p"] = in_tree(ROOT, "decode4", footage, args.max_seconds)
    floor4 = results["decode_four_720p"]["cpu_s"] / four_seconds
    floor = results["decode"]["cpu_s"] / mixed_seconds
    work = Path(tempfile.mkdtemp(prefix="adtag-footage-run-"))
    try:
        for label, tree in trees.items():
            print(f"{label}: per-stage profile ...", file=sys.stderr)
            prof = in_tree(tree, "extract", footage, args.max_seconds)
            entry = {"profile": prof, "quality": score(prof, truths)}
            entry["per_video_s"] = {
                "all": prof["cpu_s"] / mixed_seconds,
                "stages": {k: v / mixed_seconds for k, v in sorted(prof["stages"].items(), key=lambda kv: -kv[1])},
                "load_cpu_s": prof["load_cpu_s"],
                "ratio_to_decode_floor": prof["cpu_s"] / mixed_seconds / floor,
            }
            if not args.skip_cli:
                print(f"{label}: adtag extract, mixed batch ...", file=sys.stderr)
                mixed = cli(tree, [t["path"] for t in truths], work / f"{label}-mixed")
                print(f"{label}: adtag extract, four 30 s 720p ...", file=sys.stderr)
                four = cli(tree, four_paths, work / f"{label}-four")
                entry["cli"] = {
                    "mixed": {**mixed, "cpu_per_video_s": mixed["cpu_s"] / mixed_seconds},
                    "four_720p": {**four, "cpu_per_video_s": four["cpu_s"] / four_seconds},
                }
            results[label] = entry
            results[f"load_after_{label}"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["decode"]["cpu_per_video_s"] = floor
    summary = {"decode_floor_cpu_per_video_s": floor, "decode_floor_four_720p": floor4}
    for label in trees:
        e = results[label]
        summary[label] = {
            "stages_cpu_per_video_s": e["per_video_s"]["all"],
            "over_decode_floor": e["per_video_s"]["ratio_to_decode_floor"],
            "per_stage": {k: round(v, 4) for k, v in e["per_video_s"]["stages"].items()},
            "load_cpu_s": round(e["per_video_s"]["load_cpu_s"], 2),
            "torch_imported": e["profile"]["torch_imported"],
            **{k: v for k, v in e["quality"].items() if k != "subtitles_missed"},
        }
        if "cli" in e:
            for k, v in e["cli"].items():
                summary[label][f"cli_{k}_cpu_per_video_s"] = round(v["cpu_per_video_s"], 4)
                summary[label][f"cli_{k}_over_floor"] = round(
                    v["cpu_per_video_s"] / (floor4 if k == "four_720p" else floor), 1
                )
                summary[label][f"cli_{k}_wall_s"] = round(v["wall_s"], 1)
    results["summary"] = summary
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, default=float, ensure_ascii=False) + "\n")
    print(json.dumps(summary, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
