"""The main job end to end on a small built-in corpus: demo, then tag and predict on raw videos."""

import json
from pathlib import Path

import pytest

from adtag.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict, list[str]]:
    from adtag_demo.run import run_demo

    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    res = run_demo(out, n_videos=14, folds=2, ablation_folds=2, workers=2, progress=False, log=lines.append)
    return out, res, lines


def test_demo_writes_every_artefact(demo):
    out, res, lines = demo
    for rel in (
        "report.html",
        "predictions.json",
        "model/config.json",
        "model/weights.safetensors",
        "ablation/ablation.md",
        "ablation/ablation.json",
        "ablation/ablation.png",
        "features/manifest.jsonl",
    ):
        assert (out / rel).is_file(), rel
    text = "\n".join(lines)
    for table in ("Table 1: single modality", "Table 2: combinations", "Table 3: fusion strategies"):
        assert table in text
    ablation = json.loads((out / "ablation" / "ablation.json").read_text())
    singles = {r["name"] for r in ablation["tables"]["single"]}
    assert {"frames", "audio", "extra"} <= singles
    assert {"stack", "mean", "concat", "attention"} <= {r["name"] for r in ablation["tables"]["fusion"]}
    preds = json.loads((out / "predictions.json").read_text())
    assert len(preds) == 3 and all(len(v["result"][0]["labels"]) == 20 for v in preds.values())
    assert 0.0 < res["held_out"]["gap"] <= 1.0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64" in html and "http://" not in html and "https://" not in html


def test_second_run_reuses_features_and_branches(demo):
    from adtag_demo.run import run_demo

    out, first, _ = demo
    lines: list[str] = []
    again = run_demo(out, n_videos=14, folds=2, ablation_folds=2, workers=2, progress=False, log=lines.append)
    assert again["times"]["extract"] < first["times"]["extract"] / 3
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["metrics"]["branches_cached"] is True
    assert cfg["config"]["encoders"]  # recorded, so raw videos are extracted the same way


def test_tag_explains_a_raw_video(demo, capsys):
    out, _, _ = demo
    video = sorted((out / "corpus" / "clips").glob("*.mp4"))[0]
    capsys.readouterr()
    assert main(["tag", str(out / "model"), str(video), "--top-k", "5", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["tags"]) == 5 and res["tags"][0]["score"] >= res["tags"][-1]["score"]
    assert any(name.startswith("frames/") for name in res["tags"][0]["branches"])
    assert "frames" in res["modalities"]
    assert main(["tag", str(out / "model"), str(video), "--top-k", "3"]) == 0
    shown = capsys.readouterr().out
    assert "OCR:" in shown and "ASR:" in shown and "share" in shown


def test_predict_on_a_folder_of_videos_lists_failures(demo, tmp_path: Path, capsys):
    out, _, _ = demo
    folder = tmp_path / "videos"
    folder.mkdir()
    for clip in sorted((out / "corpus" / "clips").glob("*.mp4"))[:2]:
        (folder / clip.name).write_bytes(clip.read_bytes())
    (folder / "broken.mp4").write_bytes(b"this is not a video")
    pred = tmp_path / "pred.json"
    code = main(["predict", str(out / "model"), str(folder), "--out", str(pred), "--top-k", "5"])
    assert code == 1  # two scored, one failure listed
    assert "broken.mp4" in capsys.readouterr().err
    assert len(json.loads(pred.read_text())) == 2


def test_demo_figures_are_evaluates_and_it_names_next_steps(demo, capsys):
    out, res, lines = demo
    # The held-out figures are exactly what 'adtag evaluate' prints for the files the demo wrote.
    capsys.readouterr()
    assert main(["evaluate", str(out / "predictions.json"), str(out / "features" / "held_out.jsonl"), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for key in ("gap", "hit1", "map", "n_items"):
        assert evaluated[key] == res["held_out"][key], key
    text = "\n".join(lines)
    assert f"(held-out: {evaluated['n_items']} clips" in text and "each clip's top 20 tags" in text
    # It ends with what to try next: a held-out clip by name, the model to serve, the report.
    held_ids = {json.loads(x)["id"] for x in (out / "features" / "held_out.jsonl").read_text().splitlines()}
    assert res["held_video"] is not None and Path(res["held_video"]).stem in held_ids
    tail = "\n".join(lines[lines.index("next:") :])
    assert f"adtag tag {out / 'model'} {res['held_video']}" in tail
    assert f"adtag serve {out / 'model'}" in tail and str(out / "report.html") in tail
    # Every stage reports how many cores it kept busy.
    assert set(res["cpu"]) == set(res["times"]) and "cores)" in text


def test_stage_cpu_counts_worker_processes_still_running():
    """Worker pools outlive a stage (joblib reuses them): their CPU time counts all the same."""
    import subprocess
    import sys
    import time

    from adtag_demo.run import _cpu_seconds

    before = _cpu_seconds()
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", busy])
    try:
        deadline = time.time() + 60
        while _cpu_seconds() - before < 0.5 and time.time() < deadline:
            time.sleep(0.2)
        assert _cpu_seconds() - before >= 0.5 and child.poll() is None  # counted while it still runs
    finally:
        child.kill()
        child.wait()
