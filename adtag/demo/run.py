"""``adtag demo``: the whole system on the built-in corpus, from generated videos to a report.

generate clips -> extract (all default encoders) -> train (stacker) on 80% -> predict and
evaluate the held-out 20% -> ablation (the paper's three tables) -> report.html.
Every stage reuses what an earlier run in the same folder already made.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from adtag.ablation import run_ablation
from adtag.ablation_report import public, to_markdown, write_ablation
from adtag.data.manifest import Item, read_items, write_manifest
from adtag.data.predictions import ranked, write_predictions
from adtag.data.vocab import Vocabulary
from adtag.errors import AdtagError
from adtag.metrics import gap_at_k, hit_at_1, mean_ap
from adtag.models.tagger import Tagger, TrainConfig


def split_held_out(items: list[Item], frac: float, seed: int) -> tuple[list[Item], list[Item]]:
    ids = sorted(it.id for it in items)
    held = set(np.random.default_rng(seed).permutation(ids)[: max(1, int(round(frac * len(ids))))])
    return [it for it in items if it.id not in held], [it for it in items if it.id in held]


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
    from adtag.decisions.fit import fit_decider
    from adtag.demo.corpus import corpus_notes, generate_corpus
    from adtag.features.extract import extract_to_dir
    from adtag.features.inputs import discover_inputs
    from adtag.report import render_report, thumbnail_strip
    from adtag.report.decisions import decisions_data

    out = Path(out)
    times: dict[str, float] = {}
    t = time.time()
    log(f"[1/6] generating {n_videos} ad-like clips in {out / 'corpus'}")
    manifest = generate_corpus(out / "corpus", n_videos=n_videos, seed=seed, progress=progress, workers=workers)
    vocab = Vocabulary.from_file(out / "corpus" / "vocab.txt")
    times["generate"] = time.time() - t

    t = time.time()
    log(f"[2/6] extracting frames, audio, OCR, ASR and embeddings ({workers} workers)")
    feats, failures = extract_to_dir(discover_inputs([manifest]), out / "features", workers=workers, progress=progress)
    for f in failures:
        log(f"  failed: {f}")
    if feats is None:
        raise AdtagError("extraction produced no item; see the failures above")
    items = [it for it in read_items(feats) if it.tags]
    times["extract"] = time.time() - t

    t = time.time()
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
    times["train"] = time.time() - t

    t = time.time()
    log(f"[4/6] predicting {len(held)} held-out clips")
    scores = tagger.predict_proba(held)
    write_predictions(out / "predictions.json", [it.id for it in held], scores, vocab.tags, 20)
    y = vocab.encode([it.tags for it in held])
    held_metrics = {"gap": gap_at_k(scores, y), "hit1": hit_at_1(scores, y), "map": mean_ap(scores, y)}
    log(f"  held-out GAP@20 {held_metrics['gap']:.4f}  hit@1 {held_metrics['hit1']:.4f}  mAP {held_metrics['map']:.4f}")
    times["predict"] = time.time() - t

    t = time.time()
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
    times["ablation"] = time.time() - t

    t = time.time()
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
        f"Held-out clips ({len(held)}): GAP@20 {held_metrics['gap']:.4f}, hit@1 {held_metrics['hit1']:.4f}.",
        "Stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()),
    ]
    render_report(
        out / "report.html",
        ablation=public(result),
        predictions=predictions,
        truth=truth,
        gallery=gallery,
        title="adtag demo report",
        notes=notes,
        decisions=decisions_data(decider, scores, y),
    )
    times["report"] = time.time() - t
    log(
        f"done: {out / 'report.html'}  (model: {model_dir}; stage times: "
        + ", ".join(f"{k} {v:.0f}s" for k, v in times.items())
        + ")"
    )
    return {"held_out": held_metrics, "ablation": public(result), "times": times, "failures": len(failures)}
