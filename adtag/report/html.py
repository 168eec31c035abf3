"""Render the self-contained ``report.html``: the paper's three tables, charts, per-tag AP, a
precision-recall curve and a gallery of held-out clips.

Everything is inline (CSS, PNG charts and JPEG thumbnails as data URIs, a subset CJK font),
and a Content-Security-Policy forbids any fetch, so the page looks the same offline, mailed,
or opened years later. Every string from data is HTML-escaped: tags may hold ``<``, ``&``.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

from adtag.io import write_text
from adtag.report.charts import bar_chart, pr_chart
from adtag.report.curves import pooled_pr_curve
from adtag.report.decisions import decisions_html
from adtag.report.fonts import embedded_font_css
from adtag.report.thumbnails import to_jpeg

NONE = '<span class="empty">none</span>'
# (key in ablation["tables"], heading, first column)
TABLES = (
    ("single", "Single modality", "modality"),
    ("combinations", "Modality combinations", "modalities"),
    ("fusion", "Fusion strategies", "fusion"),
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _img(data: bytes, mime: str, alt: str, **attrs: Any) -> str:
    extra = "".join(f' {k}="{_e(v)}"' for k, v in attrs.items())
    return f'<img src="{_data_uri(data, mime)}" alt="{_e(alt)}"{extra}>'


def _num(x: Any) -> float:
    """A finite float, or NaN for None, NaN and anything that is not a number."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v if np.isfinite(v) else float("nan")


def _fmt(x: Any) -> str:
    v = _num(x)
    return f"{v:.4f}" if np.isfinite(v) else "&ndash;"


def _kind(row: dict[str, Any]) -> str:
    kind = row.get("kind")
    return f' <span class="kind">{_e(kind)}</span>' if kind else ""


def _table(rows: Sequence[dict[str, Any]], caption: str, first: str) -> str:
    """One ablation table; the row with the best GAP is highlighted."""
    if not rows:
        return f'<div><h3>{_e(caption)}</h3><p class="empty">no rows</p></div>'
    gaps = [_num(r.get("gap")) for r in rows]
    finite = [g for g in gaps if np.isfinite(g)]
    best = gaps.index(max(finite)) if finite else -1
    body = []
    for i, r in enumerate(rows):
        cls = ' class="best"' if i == best else ""
        body.append(
            # "+" gets a break opportunity so long modality combinations wrap inside their column
            f"<tr{cls}><td>{_e(r.get('name', '?')).replace('+', '+<wbr>')}{_kind(r)}</td>"
            f'<td class="num">{_fmt(r.get("gap"))}</td><td class="num">{_fmt(r.get("hit1"))}</td></tr>'
        )
    return (
        f"<div><h3>{_e(caption)}</h3><table><thead><tr><th>{_e(first)}</th>"
        f'<th class="num">GAP@20</th><th class="num">hit@1</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _charts(tables: dict[str, Sequence[dict[str, Any]]]) -> str:
    out = []
    for key, title in (("single", "GAP@20 per modality"), ("fusion", "GAP@20 per fusion strategy")):
        rows = [r for r in tables.get(key, []) if np.isfinite(_num(r.get("gap")))]
        if not rows:
            continue
        png = bar_chart([str(r.get("name", "?")) for r in rows], [_num(r["gap"]) for r in rows], title)
        out.append(f"<figure>{_img(png, 'image/png', title)}<figcaption>{_e(title)}</figcaption></figure>")
    return "".join(out) or '<p class="empty">no results to chart</p>'


def _per_tag(per_tag_ap: dict[str, float], source: str = "") -> str:
    """A sorted table with inline bars (HTML text, so CJK tag names use the embedded font).

    ``source`` says which scores the APs come from, so the mean is not mistaken for another figure.
    """
    if not per_tag_ap:
        return '<p class="empty">no per-tag results</p>'
    # Tags without a score (no positive example held out) go last, shown as a dash.
    rows = sorted(per_tag_ap.items(), key=lambda kv: (not np.isfinite(_num(kv[1])), -np.nan_to_num(_num(kv[1])), kv[0]))
    body = "".join(
        f'<tr><td>{_e(tag)}</td><td class="num">{_fmt(ap)}</td><td class="bar">'
        f'<div class="fill" style="width:{np.clip(np.nan_to_num(_num(ap)), 0, 1) * 100:.1f}%"></div></td></tr>'
        for tag, ap in rows
    )
    scored = [_num(v) for v in per_tag_ap.values() if np.isfinite(_num(v))]
    mean = f"mean AP over {len(scored)} scored tags: {np.mean(scored):.4f}" if scored else "no tag could be scored"
    if source:
        mean += f" ({source})"
    return (
        f'<table class="ap"><thead><tr><th>tag</th><th class="num">AP</th><th></th></tr></thead>'
        f'<tbody>{body}</tbody></table><p class="notes">{mean}</p>'
    )


def _pr(predictions: dict[str, list[tuple[str, float]]], truth: dict[str, list[str]]) -> str:
    curve = pooled_pr_curve(predictions, truth)
    if curve.n_positives == 0:
        return '<p class="empty">no held-out items with true tags</p>'
    caption = (
        f"Pooled over {curve.n_items} held-out clips and {curve.n_positives} true (clip, tag) pairs; "
        f"micro-average AP = {curve.average_precision:.4f}. True tags missing from the ranked lists count as "
        "never retrieved."
    )
    chart = _img(pr_chart(curve), "image/png", "precision-recall curve")
    return f"<figure>{chart}<figcaption>{_e(caption)}</figcaption></figure>"


GALLERY_LEGEND = (
    '<span class="chip hit">green</span> a true tag the model ranked among its top guesses (as many as the clip '
    'has true tags), or a guess that is a true tag; <span class="chip miss">red</span> a true tag it missed; '
    '<span class="chip">grey</span> a guess that is not a true tag. The number is the tag\'s score.'
)


def _gallery(gallery: Sequence[dict[str, Any]], held_out: int | None = None) -> str:
    if not gallery:
        return '<p class="empty">no clips</p>'
    total = held_out if held_out is not None else len(gallery)
    head = f'<p class="notes">Showing {len(gallery)} of {total} held-out clips. {GALLERY_LEGEND}</p>'
    cards = []
    for entry in gallery:
        true = [str(t) for t in entry.get("true", [])]
        pred = [(str(t), float(s)) for t, s in entry.get("pred", [])]
        thumbs = "".join(
            _img(to_jpeg(t), "image/jpeg", f"{entry.get('id', '')} frame {i + 1}")
            for i, t in enumerate(entry.get("thumbnails", []))
        )
        predicted = {t for t, _ in pred[: max(len(true), 1)]}
        true_chips = "".join(f'<span class="chip {"hit" if t in predicted else "miss"}">{_e(t)}</span>' for t in true)
        pred_chips = "".join(
            f'<span class="chip {"hit" if t in true else ""}">{_e(t)}<span class="score">{s:.2f}</span></span>'
            for t, s in pred
        )
        cards.append(
            f'<div class="card"><h3>{_e(entry.get("id", ""))}</h3><div class="strip">{thumbs}</div>'
            f'<div class="tags"><span class="label">true</span>{true_chips or NONE}</div>'
            f'<div class="tags"><span class="label">predicted</span>{pred_chips or NONE}</div>'
            "</div>"
        )
    return f'{head}<div class="gallery">{"".join(cards)}</div>'


def _per_tag_source(ablation: dict[str, Any]) -> str:
    n, folds = ablation.get("n_items"), ablation.get("folds")
    if n is None:
        return ""
    where = f"outer {folds}-fold cross-validation" if folds else "out-of-fold scores"
    return f"default stacker, {where} over all {n} items; every score counts, not only the top 20"


def _page_text(
    ablation: dict[str, Any], truth: dict[str, list[str]], gallery: Sequence[dict[str, Any]], *extra: str
) -> str:
    """All data strings that end up on the page, for the font subset."""
    parts = [*extra, str(ablation.get("dataset", ""))]
    for rows in ablation.get("tables", {}).values():
        parts += [str(r.get("name", "")) for r in rows]
    parts += list(map(str, ablation.get("per_tag_ap", {})))
    for tags in truth.values():
        parts += list(map(str, tags))
    for g in gallery:
        parts += [str(g.get("id", ""))] + [str(t) for t in g.get("true", [])] + [str(t) for t, _ in g.get("pred", [])]
    return " ".join(parts)


def render_report(
    path: str | os.PathLike,
    *,
    ablation: dict[str, Any],
    predictions: dict[str, list[tuple[str, float]]],
    truth: dict[str, list[str]],
    gallery: list[dict[str, Any]],
    title: str = "adtag report",
    notes: Sequence[str] = (),
    held_out: int | None = None,
    decisions: dict[str, Any] | None = None,
) -> None:
    """Write the report to ``path`` atomically.

    ``ablation`` is the output of ``adtag ablate``; ``predictions`` maps held-out ids to
    ranked (tag, score) lists and ``truth`` to their true tags; ``gallery`` entries hold
    ``id``, ``thumbnails`` (RGB arrays or JPEG bytes), ``true`` and ``pred``. ``notes`` are
    lines about the run shown under the title (e.g. whether real speech was present);
    ``held_out`` is the number of held-out clips the gallery picks from (default: its length).
    ``decisions`` (from :func:`adtag.report.decisions.decisions_data`) adds a reliability diagram
    and the per-tag thresholds.
    """
    tables = ablation.get("tables", {})
    summary = (
        f"{ablation.get('dataset', 'dataset')}: {ablation.get('n_items', '?')} items, "
        f"{ablation.get('n_tags', '?')} tags; ablation by outer {ablation.get('folds', '?')}-fold cross-validation, "
        f"inner {ablation.get('inner_folds', '?')}-fold out-of-fold meta-features"
    )
    notes_html = ""
    if notes:
        notes_html = (
            '<section id="notes"><h2>About this run</h2><ul class="notes">'
            + "".join(f"<li>{_e(n)}</li>" for n in notes)
            + "</ul></section>"
        )
    page = Template(resources.files("adtag.report").joinpath("template.html").read_text(encoding="utf-8"))
    dec_tags = [str(r["tag"]) for r in (decisions or {}).get("thresholds", [])]
    text = _page_text(ablation, truth, gallery, title, summary, *notes, *dec_tags)
    out = page.substitute(
        title=_e(title),
        summary=_e(summary),
        font_css=embedded_font_css(text),
        notes=notes_html,
        tables="".join(_table(tables.get(key, []), caption, first) for key, caption, first in TABLES),
        charts=_charts(tables),
        per_tag=_per_tag(ablation.get("per_tag_ap", {}), _per_tag_source(ablation)),
        pr=_pr(predictions, truth),
        gallery=_gallery(gallery, held_out),
        decisions=decisions_html(decisions, lambda png, alt: _img(png, "image/png", alt)),
    )
    write_text(Path(path), out)  # atomic, with the usual umask-based mode: a report is meant to be shared
