"""The stacker stage of ``adtag train`` on its own: the default stacker refitted on the out-of-fold
meta-features of bench_text's 7,800 realistic text items (10 branches x 163 tags + extras), per code
tree and torch thread count: CPU-s, wall, the rung chosen, the paper network's epochs (blend rung) and
GAP@20 on the 1,000 new items.

The branches are fitted once (``--dump``, ~6 CPU-min) and their meta-features kept in an ``.npz``:
    python benchmarks/bench_stacker.py --dump /tmp/text_mf.npz
    python benchmarks/bench_stacker.py --meta /tmp/text_mf.npz --code before=/path/to/main --code after=. --threads 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_FIT = r"""
import json, os, sys, time
import numpy as np
from adtag import runtime
runtime.configure(1)
import torch
from adtag.metrics import gap_at_k
from adtag.models.meta_features import MetaFeatures
from adtag.models.stacker import Stacker
epochs = []
fit = Stacker.fit
def counted(self, *a, **k):  # the blend rung's paper network: how long it trained
    out = fit(self, *a, **k)
    if self.kind == "paper":
        epochs.append(getattr(self, "epochs_", None))
    return out
Stacker.fit = counted
z = np.load(sys.argv[1])
br = [str(b) for b in z["branches"]]
mf, mt = MetaFeatures(z["P"], z["present"], br, z["extras"]), MetaFeatures(z["Pt"], z["presentt"], br, z["extrast"])
torch.set_num_threads(int(sys.argv[2]))
load, c0, w0 = os.getloadavg()[0], time.process_time(), time.time()
st = Stacker(seed=0).fit(mf, z["Y"])
cpu, wall = time.process_time() - c0, time.time() - w0
print(json.dumps({"cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "load": [load, os.getloadavg()[0]],
                  "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "rung": st.chosen_, "cv_gap": st.cv_gap_,
                  "paper_epochs": epochs, "new_items_gap": round(gap_at_k(st.predict_proba(mt), z["Yt"]), 4)}))
"""


def dump(path: Path) -> None:
    import tempfile

    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_text import make_items, write_manifest

    from adtag import runtime
    from adtag.data.manifest import read_items
    from adtag.models.tagger import Tagger, TrainConfig

    runtime.configure(1)
    rows, tmp = make_items(7800 + 1000), Path(tempfile.mkdtemp())
    train = read_items(write_manifest(rows[:7800], tmp / "train.jsonl"))
    test = read_items(write_manifest(rows[7800:], tmp / "test.jsonl"))
    tagger = Tagger(TrainConfig(folds=5, fusion="mean")).fit(train, progress=False, log=lambda *a: None)
    mf, mt, idx = tagger.meta_features_, tagger.meta_features(test), {t: i for i, t in enumerate(tagger.vocab_.tags)}

    def truth(items):
        Y = np.zeros((len(items), len(idx)), np.float32)
        for r, it in enumerate(items):
            Y[r, [idx[t] for t in it.tags or [] if t in idx]] = 1
        return Y

    np.savez(
        path,
        P=mf.P,
        present=mf.present,
        extras=np.asarray(mf.extras),
        branches=np.array(mf.branches),
        Y=truth(train),
        Pt=mt.P,
        presentt=mt.present,
        extrast=np.asarray(mt.extras),
        Yt=truth(test),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", type=Path, help="fit the branches and write their meta-features here")
    ap.add_argument("--meta", type=Path, help="the meta-features written by --dump")
    ap.add_argument("--code", action="append", default=[], help="NAME=PATH of a code tree (repeatable)")
    ap.add_argument("--threads", default="1", help="comma list of torch thread counts")
    args = ap.parse_args()
    if args.dump:
        dump(args.dump)
        return
    for name, code in (c.split("=", 1) for c in args.code or [f"this={ROOT}"]):
        for t in args.threads.split(","):
            env = {**os.environ, "PYTHONPATH": str(Path(code).resolve())}
            out = subprocess.run(
                [sys.executable, "-c", _FIT, str(args.meta), t],
                env=env,
                cwd=code,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            print(json.dumps({"code": name, "threads": int(t), **json.loads(out.strip().splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()
