"""How fast the command line answers: ``adtag --help`` and ``adtag evaluate`` on 500 items.

Each command runs in a fresh interpreter ``--repeat`` times; wall time and CPU time (user + system
of the child, from ``getrusage``) are reported as medians, because on a shared machine the CPU
time is the figure that does not depend on the neighbours. References measured in the same run:
the bare interpreter (``python -c pass``) and importing what ``--help`` used to load (torch and
scikit-learn). ``python -X importtime`` lists the slowest imports of ``--help``.

Targets (issue 9): ``--help`` <= 0.5 s and ``evaluate`` on 500 items <= 1 s on an idle machine.

    python benchmarks/bench_cli.py [--repeat 7] [--out benchmarks/results/cli.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
ADTAG = [sys.executable, "-m", "adtag.cli"]


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(cmd: list[str], repeat: int) -> dict[str, Any]:
    timed(cmd)  # warm the page cache
    runs = [timed(cmd) for _ in range(repeat)]
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    return {
        "wall_s": round(statistics.median(walls), 3),
        "wall_min_s": round(min(walls), 3),
        "cpu_s": round(statistics.median(cpus), 3),
        "runs": repeat,
    }


def evaluate_inputs(folder: Path, n: int = 500, n_tags: int = 82, seed: int = 0) -> tuple[Path, Path]:
    """A TAAC-sized problem: ``n`` items, ``n_tags`` tags, top-20 predictions per item."""
    rng = random.Random(seed)
    tags = [f"tag{j:02d}" for j in range(n_tags)]
    truth, preds = [], {}
    for i in range(n):
        true = rng.sample(tags, rng.randint(1, 5))
        truth.append(json.dumps({"id": f"v{i:04d}", "tags": true}))
        ranked = sorted(tags, key=lambda t: -(rng.random() + (0.5 if t in true else 0)))[:20]
        scores = sorted((rng.random() for _ in ranked), reverse=True)
        preds[f"v{i:04d}"] = {"result": [{"labels": ranked, "scores": [round(s, 4) for s in scores]}]}
    (folder / "truth.jsonl").write_text("\n".join(truth) + "\n")
    (folder / "pred.json").write_text(json.dumps(preds))
    return folder / "pred.json", folder / "truth.jsonl"


def slowest_imports(cmd: list[str], top: int = 8) -> list[dict[str, Any]]:
    """``-X importtime`` of ``cmd``: the top-level imports with the largest cumulative time."""
    res = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=ENV, capture_output=True, text=True, check=True)
    rows = []
    for line in res.stderr.splitlines():  # "import time: self_us | cumulative_us | <indent>name"
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append({"module": name.strip(), "cumulative_ms": round(int(parts[1]) / 1000, 1), "depth": depth})
    top_level = [r for r in rows if r["depth"] == 0]
    return sorted(top_level, key=lambda r: -r["cumulative_ms"])[:top]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cli.json")
    args = ap.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        pred, truth = evaluate_inputs(Path(tmp))
        rows = {
            "python -c pass (reference)": measure([sys.executable, "-c", "pass"], args.repeat),
            "import torch, sklearn (what --help loaded before)": measure(
                [sys.executable, "-c", "import torch, sklearn.model_selection"], max(3, args.repeat // 2)
            ),
            "adtag --help": measure([*ADTAG, "--help"], args.repeat),
            "adtag train --help": measure([*ADTAG, "train", "--help"], args.repeat),
            "adtag evaluate (500 items, 82 tags)": measure([*ADTAG, "evaluate", str(pred), str(truth)], args.repeat),
        }
        imports = slowest_imports([*ADTAG, "--help"])
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "commands": rows,
        "help_slowest_imports": imports,
        "targets": {"adtag --help": 0.5, "adtag evaluate (500 items, 82 tags)": 1.0},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    ref = rows["python -c pass (reference)"]
    print(f"load average {result['load_average_before']} -> {result['load_average_after']}")
    print("| command | wall (median) | CPU (median) | CPU / bare interpreter |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['wall_s']:.3f} s | {r['cpu_s']:.3f} s | {r['cpu_s'] / max(ref['cpu_s'], 1e-3):.1f}x |")
    print("slowest imports of adtag --help:", ", ".join(f"{r['module']} {r['cumulative_ms']} ms" for r in imports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
