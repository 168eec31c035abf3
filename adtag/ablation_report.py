"""Write an ablation result as Markdown, JSON and a PNG bar chart (atomic writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adtag.io import atomic_path, write_json, write_text
from adtag.models.fusions import FUSIONS

TITLES = {
    "single": "Table 1: single modality",
    "combinations": "Table 2: combinations of modalities",
    "fusion": "Table 3: fusion strategies",
}


def _options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items())) or "default options"


def stacker_note(result: dict[str, Any], table: str) -> str:
    """Which stacker settings a table's rows use where they differ from the default stacker's ("" otherwise)."""
    options = result.get("stacker_options", {})
    default = options.get("default", {})
    if table == "fusion":
        cheaper = [f"`{f}` with {_options({**default, **o})}" for f, o in options.items() if f in FUSIONS and o]
        if not cheaper:
            return ""
        return (
            f"Cheaper stacker settings: {'; '.join(cheaper)}. The `stack` row is the default stacker "
            f"({_options(default)}), as `adtag train` fits it."
        )
    if not options.get(table):
        return ""
    return (
        f"Each row is a `stack` stacker with {_options({**default, **options[table]})}: cheaper than Table 3's "
        "default `stack` row (`adtag ablate --full-stackers` fits every row with the default settings)."
    )


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Ablation: {result.get('dataset') or 'manifest'}",
        "",
        f"{result['n_items']} items, {result['n_tags']} tags; outer {result['folds']}-fold cross-validation, "
        f"inner {result.get('inner_folds', '?')}-fold meta-features. GAP@20 and hit@1 on pooled held-out predictions.",
    ]
    for key, title in TITLES.items():
        rows = result["tables"].get(key, [])
        if not rows:
            continue
        best = max(r["gap"] for r in rows)
        lines += ["", f"## {title}", ""]
        if note := stacker_note(result, key):
            lines += [note, ""]
        lines += ["| name | GAP@20 | hit@1 |", "|---|---:|---:|"]
        for r in rows:
            mark = "**" if r["gap"] == best else ""
            lines.append(f"| {r['name']} | {mark}{r['gap']:.4f}{mark} | {r['hit1']:.4f} |")
    return "\n".join(lines) + "\n"


def public(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part (no prediction matrices)."""
    return {k: v for k, v in result.items() if k not in ("predictions", "truth")}


def bar_chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = [(TITLES[k], result["tables"][k]) for k in TITLES if result["tables"].get(k)]
    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 4), squeeze=False)
    for ax, (title, rows) in zip(axes[0], tables, strict=True):
        names = [r["name"] for r in rows]
        ax.barh(names[::-1], [r["gap"] for r in rows][::-1], color="#4c72b0")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("GAP@20")
        lo = min(r["gap"] for r in rows)
        ax.set_xlim(max(0.0, lo - 0.1), min(1.0, max(r["gap"] for r in rows) + 0.02))
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_ablation(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "ablation.md", "json": out_dir / "ablation.json", "png": out_dir / "ablation.png"}
    write_text(paths["markdown"], to_markdown(result))
    write_json(paths["json"], public(result))
    bar_chart(result, paths["png"])
    return paths
