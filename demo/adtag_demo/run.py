"""``adtag demo``: the whole system on the built-in corpus, from generated videos to a report.

generate clips -> extract (all default encoders) -> train (stacker) on 80% -> predict and
evaluate the held-out 20% -> ablation (the paper's three tables) -> report.html.
Every stage reuses what an earlier run in the same folder already made.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from adtag.ablation import run_ablation
from adtag.ablation_report import public, to_markdown, write_ablation
from adtag.data.manifest import Item, read_items, write_manifest
from adtag.data.predictions import ranked, read_predictions, read_truth, write_predictions
from adtag.data.vocab import Vocabulary
from adtag.errors import AdtagError
from adtag.models.tagger import Tagger, TrainConfig


def split_held_out(items: list[Item], frac: float, seed: int) -> tuple[list[Item], list[Item]]:
    ids = sorted(it.id for it in items)
    held = set(np.random.default_rng(seed).permutation(ids)[: max(1, int(round(frac * len(ids))))])
    return [it for it in items if it.id not in held], [it for it in items if it.id in held]


def _live_children_cpu(pid: int) -> float:
    """CPU seconds of the running descendants of ``pid`` (Linux /proc; 0 elsewhere).

    Worker pools that outlive a stage (joblib's reusable executor) are never waited for, so
    ``os.times`` alone would not see them.
    """
    total, tick = 0.0, os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        kids = [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    except (OSError, ValueError):
        return 0.0
    for kid in kids:
        try:
            fields = Path(f"/proc/{kid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick + _live_children_cpu(kid)
    return total


def _cpu_seconds() -> float:
    """CPU time of this process, of its finished worker processes and of those still running."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + _live_children_cpu(os.getpid())


class _Stages:
    """Wall time and CPU time per stage; their ratio says how many cores a stage kept busy."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._start = (0.0, 0.0)

    def start(self) -> None:
        self._start = (time.time(), _cpu_seconds())

    def stop(self, name: str) -> None:
        self.wall[name] = time.time() - self._start[0]
        self.cpu[name] = _cpu_seconds() - self._start[1]

    def line(self) -> str:
        return ", ".join(f"{k} {w:.0f} s ({self.cpu[k] / max(w, 1e-9):.1f} cores)" for k, w in self.wall.items())


def _held_out_line(m: dict[str, Any]) -> str:
    return (
        f"GAP@20 {m['gap']:.4f}, hit@1 {m['hit1']:.4f}, mAP {m['map']:.4f} "
        f"(held-out: {m['n_items']} clips, {len(m['per_tag_ap'])} tags; each clip's top 20 tags)"
    )


def next_steps(out: Path, held_video: Path | None) -> list[str]:
    """What to try with what the demo made: shown at the end and named in the README."""
    steps = [f"  open {out / 'report.html'}    # tables, per-tag AP, held-out clips with their tags"]
    if held_video is not None:
        steps.append(f"  adtag tag {out / 'model'} {held_video}    # a held-out clip: its tags and why")
    steps += [
        f"  adtag evaluate {out / 'predictions.json'} {out / 'features' / 'held_out.jsonl'}",
        f"  adtag serve {out / 'model'}    # upload page and HTTP API on http://127.0.0.1:8000",
    ]
    return steps


def run_demo(
    out: Path,
    n_videos: int = 150,
    seed: int = 0,
    workers: int = 2,
    folds: int = 5,
    ablation_folds: int = 5,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    from adtag.commands.evaluate import evaluate
    from adtag.decisions.fit import fit_decider, scores_for_decisions
    from adtag.features.extract import extract_to_dir
    from adtag.features.inputs import discover_inputs
    from adtag.report import render_report, thumbnail_strip
    from adtag.report.decisions import decisions_data
    from adtag_demo.corpus import corpus_notes, generate_corpus

    out = Path(out)
    stages = _Stages()
    stages.start()
    log(f"[1/6] generating {n_videos} ad-like clips in {out / 'corpus'}")
    manifest = generate_corpus(out / "corpus", n_videos=n_videos, seed=seed, progress=progress, workers=workers)
    vocab = Vocabulary.from_file(out / "corpus" / "vocab.txt")
    stages.stop("generate")

    stages.start()
    log(f"[2/6] extracting frames, audio, OCR, ASR and embeddings ({workers} workers)")
    feats, failures = extract_to_dir(discover_inputs([manifest]), out / "features", workers=workers, progress=progress)
    for f in failures:
        log(f"  failed: {f}")
    if feats is None:
        raise AdtagError("extraction produced no item; see the failures above")
    items = [it for it in read_items(feats) if it.tags]
    stages.stop("extract")

    stages.start()
    train, held = split_held_out(items, 0.2, seed)
    write_manifest(train, out / "features" / "train.jsonl")
    write_manifest(held, out / "features" / "held_out.jsonl")
    log(f"[3/6] training the stacker on {len(train)} clips ({folds}-fold meta-features)")
    cfg = TrainConfig(folds=folds, seed=seed)
    from adtag.features.store import manifest_encoders

    cfg.encoders = manifest_encoders(feats)
    model_dir = out / "model"
    tagger = Tagger(cfg).fit(train, vocab, cache_dir=model_dir if model_dir.is_dir() else None, progress=progress)
    tagger.save(model_dir)
    # The decision layer (calibration + per-tag thresholds), as 'adtag train --decide f1' fits it.
    decider = fit_decider(tagger, [it.id for it in train], vocab.encode([it.tags for it in train]), "f1")
    decider.save(model_dir)
    stages.stop("train")

    stages.start()
    log(f"[4/6] predicting {len(held)} held-out clips")
    scores, decide_on = scores_for_decisions(tagger, held)  # ranked, and the decision layer's own
    write_predictions(out / "predictions.json", [it.id for it in held], scores, vocab.tags, 20)
    # The very figures 'adtag evaluate predictions.json held_out.jsonl' prints, from the same files.
    held_metrics = evaluate(
        read_predictions(out / "predictions.json"), read_truth(out / "features" / "held_out.jsonl"), 20
    )
    log(f"  {_held_out_line(held_metrics)}")
    stages.stop("predict")

    stages.start()
    log(f"[5/6] ablation: outer {ablation_folds}-fold over all {len(items)} clips")
    result = run_ablation(
        items,
        vocab,
        replace(cfg, encoders=None),
        outer_folds=ablation_folds,
        progress=progress,
        dataset="adtag demo corpus",
    )
    write_ablation(result, out / "ablation")
    log("")
    log(to_markdown(result))
    stages.stop("ablation")

    stages.start()
    log("[6/6] writing report.html")
    rank = ranked(scores, vocab.tags, 20)
    predictions = {it.id: r for it, r in zip(held, rank, strict=True)}
    truth = {it.id: list(it.tags or []) for it in held}
    gallery = [
        {"id": it.id, "thumbnails": thumbnail_strip(it.video, n=6, height=72), "true": truth[it.id], "pred": r[:6]}
        for it, r in list(zip(held, rank, strict=True))[:12]
        if it.video is not None
    ]
    notes = corpus_notes(out / "corpus") + [
        f"Trained on {len(train)} clips; {_held_out_line(held_metrics)}.",
        f"Ablation tables and per-tag AP: outer {ablation_folds}-fold cross-validation over all {len(items)} "
        "clips (every clip scored once, by a model that did not see it).",
        "Stage times: " + stages.line(),
    ]
    render_report(
        out / "report.html",
        ablation=public(result),
        predictions=predictions,
        truth=truth,
        gallery=gallery,
        held_out=len(held),
        title="adtag demo report",
        notes=notes,
        decisions=decisions_data(decider, scores, vocab.encode([it.tags for it in held]), decide_on),
    )
    stages.stop("report")
    held_video = next((Path(os.path.normpath(it.video)) for it in held if it.video is not None), None)
    log(f"done in {sum(stages.wall.values()):.0f} s: {stages.line()}")
    log(f"report: {out / 'report.html'}   model: {model_dir}")
    log("next:")
    for line in next_steps(out, held_video):
        log(line)
    return {
        "held_out": held_metrics,
        "ablation": public(result),
        "times": stages.wall,
        "cpu": stages.cpu,
        "failures": len(failures),
        "held_video": held_video,
    }
