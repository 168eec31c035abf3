"""adtag audit: rank training labels that are likely wrong or likely missing."""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
from pathlib import Path

import numpy as np

from adtag.audit import Suspect, audit_scores, rank_suspects
from adtag.data.manifest import load_manifest
from adtag.decisions.decider import Decider
from adtag.errors import AdtagError
from adtag.io import write_text

META_FEATURES = "meta_features.npz"
THUMBNAILS = 60  # rows that get a thumbnail strip: decoding is the slow part


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "audit",
        help="rank training labels that are likely wrong or missing",
        description=(
            "Compare each training item's labels with the whole system's out-of-fold scores (kept by "
            "'adtag train --decide'): a tag present with a very low score is likely wrong, a tag absent with "
            "a very high one likely missing. Writes a CSV (rank, item, tag, kind, score, suspicion, the "
            "branches that carried the evidence, OCR and ASR text) and an HTML page beside it, with "
            "thumbnails when the manifest's videos are at hand."
        ),
    )
    p.add_argument("model_dir", type=Path, help="folder written by 'adtag train --decide'")
    p.add_argument("manifest", type=Path, help="the training manifest (labels as they are now)")
    p.add_argument("--out", type=Path, default=Path("audit.csv"), help="CSV to write (default: audit.csv)")
    p.add_argument("--top", type=int, default=200, help="rows to list (default: 200)")
    p.add_argument(
        "--min-suspicion", type=float, default=0.0, help="list only labels at least this likely in error (default: 0)"
    )
    p.add_argument(
        "--noise",
        default="0.05,0.01",
        metavar="DROP,ADD",
        help="assumed label noise: share of true tags left out, share of absent tags added (default: 0.05,0.01)",
    )
    p.add_argument("--no-thumbnails", action="store_true", help="do not decode videos for the HTML page")
    return p


def _branch_evidence(model_dir: Path, n: int):
    f = model_dir / META_FEATURES
    if not f.is_file():
        return None, None, None
    try:
        with np.load(f, allow_pickle=False) as z:
            P, present, names = z["P"], z["present"], [str(x) for x in z["branches"]]
    except (OSError, KeyError, ValueError):
        return None, None, None
    return (P, present, names) if P.shape[0] == n else (None, None, None)


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise AdtagError(f"--top {args.top}: must be at least 1")
    try:
        drop, add = (float(x) for x in args.noise.split(","))
        if not (0 < drop < 1 and 0 < add < 1 and drop + add < 1):
            raise ValueError
    except ValueError:
        raise AdtagError(f"--noise {args.noise!r}: expected DROP,ADD, two shares in (0, 1), e.g. 0.05,0.01") from None
    d = Decider.load(args.model_dir)
    if d.oof_scores is None or not d.oof_ids:
        raise AdtagError(f"{args.model_dir}: no out-of-fold scores kept; retrain with 'adtag train --decide'")
    items = {it.id: it for it in load_manifest(args.manifest)}
    rows = [i for i, vid in enumerate(d.oof_ids) if vid in items]
    if not rows:
        raise AdtagError(f"{args.manifest}: none of its items is a training item of {args.model_dir}")
    index = {t: j for j, t in enumerate(d.tags)}
    labels = np.zeros((len(rows), len(d.tags)), bool)
    unknown: set[str] = set()
    for r, i in enumerate(rows):
        for t in items[d.oof_ids[i]].tags or []:
            if t in index:
                labels[r, index[t]] = True
            else:
                unknown.add(t)
    P, present, names = _branch_evidence(args.model_dir, len(d.oof_ids))
    cal = audit_scores(d, np.asarray(rows))
    suspects = rank_suspects(
        cal,
        labels,
        [d.oof_ids[i] for i in rows],
        d.tags,
        P[rows] if P is not None else None,
        names,
        present[rows] if present is not None else None,
        top=args.top,
        min_suspicion=args.min_suspicion,
        drop=drop,
        add=add,
    )
    write_text(args.out, _csv(suspects, items))
    page = args.out.with_suffix(".html")
    write_text(page, _html(suspects, items, not args.no_thumbnails, len(rows)))
    wrong = sum(s.kind == "likely wrong" for s in suspects)
    print(
        f"audited {len(rows)} items x {len(d.tags)} tags: {wrong} likely wrong, {len(suspects) - wrong} likely "
        f"missing labels listed in {args.out} and {page}"
    )
    if unknown:
        print(f"note: tags the model does not know were not audited: {', '.join(sorted(unknown)[:10])}")
    if len(rows) < len(items):
        print(f"note: {len(items) - len(rows)} manifest items are not training items of the model and were skipped")
    return 0


def _evidence(s: Suspect) -> str:
    return "; ".join(f"{b} {p:.2f}" for b, p in s.evidence)


def _csv(suspects: list[Suspect], items: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rank", "item", "tag", "kind", "score", "suspicion", "evidence", "ocr", "asr", "video"])
    for s in suspects:
        it = items[s.item]
        w.writerow(
            [
                s.rank,
                s.item,
                s.tag,
                s.kind,
                f"{s.score:.4f}",
                f"{s.suspicion:.4f}",
                _evidence(s),
                it.text.get("ocr", ""),
                it.text.get("asr", ""),
                str(it.video or ""),
            ]
        )
    return buf.getvalue()


def _thumb(video) -> str:
    from adtag.report.thumbnails import thumbnail_strip, to_jpeg

    try:
        strip = thumbnail_strip(video, n=3, height=54)
    except (AdtagError, ValueError, OSError):
        return ""
    return "".join(f'<img alt="" src="data:image/jpeg;base64,{base64.b64encode(to_jpeg(f)).decode()}">' for f in strip)


def _html(suspects: list[Suspect], items: dict, thumbnails: bool, n_items: int) -> str:
    e = html.escape
    out = []
    for s in suspects:
        it = items[s.item]
        thumb = (
            _thumb(it.video) if thumbnails and s.rank <= THUMBNAILS and it.video and Path(it.video).is_file() else ""
        )
        text = " / ".join(f"{k.upper()}: {it.text[k]}" for k in ("ocr", "asr") if it.text.get(k))
        out.append(
            f"<tr class='{'wrong' if s.kind == 'likely wrong' else 'missing'}'><td>{s.rank}</td><td>{e(s.item)}"
            f"<div class='th'>{thumb}</div></td><td>{e(s.tag)}</td><td>{e(s.kind)}</td><td>{s.score:.3f}</td>"
            f"<td>{s.suspicion:.3f}</td><td>{e(_evidence(s))}</td><td class='txt'>{e(text)}</td></tr>"
        )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>adtag label audit</title><style>
body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top;font-size:14px}}
tr.wrong td:nth-child(4){{color:#b00}} tr.missing td:nth-child(4){{color:#06c}} .th img{{height:54px;margin:2px}}
.txt{{max-width:28rem;font-size:12px;color:#555}}</style></head><body>
<h1>Label audit</h1><p>{len(suspects)} suspicious labels among {n_items} training items, most suspicious first.
<em>Score</em> is the tag's calibrated out-of-fold score; <em>suspicion</em> the probability that the label is
in error given that score, under the assumed noise rates; <em>evidence</em> the branches whose out-of-fold
probabilities carried it.</p>
<table><thead><tr><th>#</th><th>item</th><th>tag</th><th>kind</th><th>score</th><th>suspicion</th>
<th>evidence</th><th>OCR / ASR</th></tr></thead><tbody>
{"".join(out)}
</tbody></table></body></html>
"""
