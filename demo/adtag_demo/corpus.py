"""Generate the built-in ad corpus: clips, a manifest, the vocabulary and a record of evidence.

Layout of ``out_dir``::

    clips/<id>.mp4     H.264 + AAC (some clips have no audio track), 6-12 s, 360p-720p
    manifest.jsonl     {"id", "tags", "video"} per clip: what ``adtag extract`` reads
    vocab.txt          tag<TAB>id, like TAAC's label_id.txt
    corpus.json        how each clip was made: evidence per tag and channel, captions drawn,
                       lines spoken, music and sounds, and which font and TTS engine were used

Every clip is a function of ``(seed, index)`` only, so re-running reuses clips already made
(a larger corpus reuses a smaller one's) and a crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from adtag.data.manifest import Item, write_manifest
from adtag.errors import AdtagError
from adtag.io import write_json, write_text
from adtag_demo.encode import write_mp4
from adtag_demo.fonts import FontChoice, find_cjk_font
from adtag_demo.plan import ClipPlan, make_plan
from adtag_demo.soundtrack import SAMPLE_RATE, build_soundtrack
from adtag_demo.speech import tts_engine
from adtag_demo.taxonomy import BY_KEY, vocab_lines
from adtag_demo.visuals import build_picture

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3  # bump whenever rendering changes, so old clips are not reused
INFO_FILE = "corpus.json"


def _fingerprint(plan: ClipPlan, font: FontChoice, tts: bool) -> str:
    """What a clip's bytes depend on: its plan, the generator, the font and the TTS engine."""
    return f"v{GENERATOR_VERSION}-{plan.digest()}-{font.name}-{'tts' if tts else 'babble'}"


def make_clip(plan: ClipPlan, path: Path, font: FontChoice) -> dict[str, Any]:
    """Render, mix and encode one clip to ``path``; return its record for ``corpus.json``."""
    rng = np.random.default_rng(plan.seed)
    picture = build_picture(plan, rng, font)
    sound = build_soundtrack(plan, np.random.default_rng([plan.seed, 1]))
    write_mp4(
        path,
        picture.timeline.frame,
        plan.n_frames,
        plan.fps,
        plan.width,
        plan.height,
        sound.samples if sound is not None else None,
        SAMPLE_RATE,
    )
    return {
        "tags": [BY_KEY[k].name for k in plan.tags],
        "evidence": {BY_KEY[k].name: ch for k, ch in plan.evidence.items()},
        "distractors": [BY_KEY[k].name for k in plan.distractors],
        "width": plan.width,
        "height": plan.height,
        "fps": plan.fps,
        "n_frames": plan.n_frames,
        "duration": plan.duration,
        "has_audio": plan.has_audio,
        "has_text": plan.has_text,
        "scene": picture.scene,
        "mode": picture.mode,
        "texts": picture.texts,
        "speech": sound.speech if sound else "none",
        "spoken": sound.spoken if sound else [],
        "music": sound.music if sound else "",
        "sounds": sound.sounds if sound else [],
        "plan": asdict(plan),
    }


def _make_clip_job(args: tuple[ClipPlan, Path, FontChoice]) -> tuple[str, dict[str, Any]]:
    plan, path, font = args
    return plan.id, make_clip(plan, path, font)


def read_corpus_info(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``corpus.json`` of a generated corpus (an empty dict when there is none yet)."""
    path = Path(out_dir) / INFO_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def corpus_notes(out_dir: str | os.PathLike, ids: list[str] | None = None) -> list[str]:
    """Plain-language facts about a generated corpus, for the report's "About this run".

    ``ids`` limits the counts to some clips (e.g. the held-out ones).
    """
    info = read_corpus_info(out_dir)
    if not info:
        return []
    clips = [info["clips"][i] for i in (ids or info.get("ids", [])) if i in info["clips"]]
    n = len(clips)
    font = info.get("font", {})
    notes = [
        f"Built-in demo corpus: {n} generated ad clips (seed {info.get('seed')}), "
        f"{sum(len(c['tags']) for c in clips) / max(n, 1):.1f} tags per clip on average.",
        (
            f"Captions drawn with {font.get('name')} (Chinese and English)."
            if font.get("cjk")
            else "No CJK font was found: captions were drawn in English only."
        ),
    ]
    talking = sum(c["speech"] != "none" for c in clips)
    if info.get("speech") == "tts":
        notes.append(f"Speech: {talking} clips have a voice-over spoken by espeak-ng (real English words).")
    else:
        notes.append(
            f"Speech: no text-to-speech engine was installed; {talking} voice-overs are wordless babble, "
            "so speech recognition has nothing to read."
        )
    notes.append(
        f"Missing modalities: {sum(not c['has_audio'] for c in clips)} clips have no audio track, "
        f"{sum(not c['has_text'] for c in clips)} show no text; "
        f"{sum(bool(c['distractors']) for c in clips)} carry a cue for a tag they do not have."
    )
    return notes


def _workers(n_jobs: int, workers: int | None) -> int:
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    return max(1, min(workers, n_jobs))


def generate_corpus(
    out_dir: Path,
    n_videos: int = 150,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Generate (or complete) the demo corpus in ``out_dir``; return the manifest's path.

    Clips already there from an earlier run with the same seed are reused. ``workers``
    processes render in parallel (default: up to 2, this project's core count).
    """
    if n_videos < 1:
        raise AdtagError(f"--videos must be at least 1, got {n_videos}")
    out_dir = Path(out_dir)
    clips_dir = out_dir / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    font = find_cjk_font()
    tts = tts_engine() is not None
    if not tts:
        log.warning("espeak-ng not found: voice-overs are speech-like babble without words (apt-get install espeak-ng)")
    old = read_corpus_info(out_dir)
    old_clips: dict[str, Any] = old.get("clips", {}) if old.get("seed") == seed else {}

    plans = [make_plan(seed, i) for i in range(n_videos)]
    records: dict[str, dict[str, Any]] = {}
    todo: list[tuple[ClipPlan, Path, FontChoice]] = []
    for plan in plans:
        path = clips_dir / f"{plan.id}.mp4"
        fp = _fingerprint(plan, font, tts)
        prev = old_clips.get(plan.id)
        if prev is not None and prev.get("fingerprint") == fp and path.is_file():
            records[plan.id] = prev
        else:
            todo.append((plan, path, font))

    fingerprints = {plan.id: _fingerprint(plan, font, tts) for plan, _, _ in todo}
    # Records of clips beyond this corpus's size stay: a later, larger run can reuse them.
    kept = {k: v for k, v in old_clips.items() if (clips_dir / f"{k}.mp4").is_file()}
    ids = [p.id for p in plans]

    def save_info() -> None:
        info = {
            "generator": GENERATOR_VERSION,
            "seed": seed,
            "n_videos": n_videos,
            "ids": ids,
            "font": asdict(font),
            "tts": tts_engine(),
            "speech": "tts" if tts else "babble",
            "clips": dict(sorted({**kept, **records}.items())),
        }
        write_json(out_dir / INFO_FILE, info)

    def done(clip_id: str, record: dict[str, Any]) -> None:
        record["fingerprint"] = fingerprints[clip_id]
        records[clip_id] = record
        bar.update()
        if len(records) % 10 == 0:
            save_info()  # an interrupted run resumes from here

    bar = tqdm(
        total=n_videos, initial=n_videos - len(todo), desc="generating ad clips", unit="clip", disable=not progress
    )
    n_workers = _workers(len(todo), workers)
    try:
        if n_workers == 1:
            for job in todo:
                done(*_make_clip_job(job))
        elif todo:
            ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
            with ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
                for clip_id, record in pool.map(_make_clip_job, todo, chunksize=1):
                    done(clip_id, record)
    finally:
        bar.close()
        save_info()
    write_text(out_dir / "vocab.txt", "\n".join(vocab_lines()) + "\n")
    items = [Item(id=i, tags=records[i]["tags"], video=clips_dir / f"{i}.mp4") for i in ids]
    write_manifest(items, out_dir / "manifest.jsonl")
    return out_dir / "manifest.jsonl"
