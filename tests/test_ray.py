"""The Ray engine on a real two-node cluster on loopback (see tests/ray_cluster.py).

One module fixture starts the cluster once, inside its own network and PID namespaces, and runs
every driver in turn: extraction whose driver is killed then resumed, prediction, training, the
actor pool with a crashing actor, and last an extraction that loses the second node mid-run. The
tests compare each outcome with the local engine run here on the same inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adtag.cli import main as cli_main
from adtag.data.manifest import read_items, write_manifest
from tests.clips import make_clip, truncate
from tests.conftest import make_manifest

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")

from tests.ray_cluster import namespaces_available, run_in_namespace  # noqa: E402

ENCODERS = "asr=none,audio=none,ocr=none,text=none"  # the visual encoder alone keeps the cluster tests short
SECONDS = [6, 7, 8, 9, 10, 11]  # distinct lengths: a video's arrays landing under another id shows in T
ABLATE = ["--folds", "2", "--inner-folds", "2", "--fusions", "mean,stack", "--modalities", "ocr,extra", "--quiet"]
VIDEO_TRAIN = ["--folds", "2", "--no-joint", "--fusion", "mean", "--quiet"]
TRAIN = ["--folds", "2", "--seed", "3", "--modalities", "ocr,extra", "--no-joint", "--fusion", "mean", "--quiet"]
DECIDE_TRAIN = ["--folds", "2", "--modalities", "ocr,extra", "--no-joint", "--decide", "f1", "--quiet"]


def _journal(store: Path) -> list[dict]:
    return [json.loads(line) for line in (store / "journal.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    why = namespaces_available()
    if why:
        pytest.skip(f"the Ray cluster tests need network and PID namespaces: {why}")
    root = tmp_path_factory.mktemp("ray")
    clips = root / "clips"
    clips.mkdir()
    for i, s in enumerate(SECONDS):
        make_clip(clips / f"ad{i}.mp4", seconds=s, width=160, height=120, fps=4, audio=None)
    truncate(clips / "ad0.mp4", clips / "broken.mp4", 0.3)
    manifest = make_manifest(root / "data", n=40, seed=2)

    # the local engine, here, on the same inputs
    local = root / "local"
    assert cli_main(["extract", str(clips), "--out", str(local), "--encoders", ENCODERS, "--no-progress"]) == 1
    assert cli_main(["train", str(manifest), "--out", str(root / "model_local"), *TRAIN]) == 0
    assert cli_main(["predict", str(root / "model_local"), str(manifest), "--out", str(root / "pred_local.json")]) == 0
    assert cli_main(["ablate", str(manifest), "--out", str(root / "ablate_local"), *ABLATE]) == 0
    # a model with a decision layer (its stacker's refits decide new items): decided tags on both engines
    decide_model = str(root / "model_decide")
    assert cli_main(["train", str(manifest), "--out", decide_model, *DECIDE_TRAIN]) == 0
    predict_decide = ["predict", decide_model, str(manifest), "--decide"]
    assert cli_main([*predict_decide, "--out", str(root / "pred_decide_local.json")]) == 0
    # a model that tags raw videos (trained on the clips extracted above), scored from the clips
    extracted = read_items(local / "manifest.jsonl")
    for it in extracted:
        it.tags = ["long" if SECONDS[int(it.id.removeprefix("ad"))] >= 9 else "short"]
    write_manifest(extracted, local / "tagged.jsonl")
    video_model = str(root / "model_video")
    assert cli_main(["train", str(local / "tagged.jsonl"), "--out", video_model, *VIDEO_TRAIN]) == 0
    assert cli_main(["predict", video_model, str(clips), "--out", str(root / "pred_videos_local.json")]) == 1

    extract = ["extract", str(clips), "--encoders", ENCODERS, "--no-progress", "--engine", "ray"]
    plan = {
        "out": str(root / "outcome.json"),
        "steps": [
            {
                "name": "interrupt",
                "argv": [*extract, "--out", str(root / "resumed")],
                "kill_after": 1,
                "journal": str(root / "resumed" / "journal.jsonl"),
                "kill": "interrupt",
            },
            {
                "name": "kill_driver",
                "argv": [*extract, "--out", str(root / "resumed")],
                "kill_after": 3,
                "journal": str(root / "resumed" / "journal.jsonl"),
                "kill": "driver",
            },
            {"name": "resume", "argv": [*extract, "--out", str(root / "resumed")]},
            {"name": "gather", "argv": [*extract, "--out", str(root / "gathered"), "--gather", "--workers", "2"]},
            {
                "name": "predict",
                "argv": ["predict", str(root / "model_local"), str(manifest), "--out", str(root / "pred_ray.json")],
                "engine": True,
            },
            {
                "name": "predict_decide",
                "argv": [*predict_decide, "--out", str(root / "pred_decide_ray.json")],
                "engine": True,
            },
            {
                "name": "predict_videos",
                "argv": ["predict", video_model, str(clips), "--out", str(root / "pred_videos_ray.json")],
                "engine": True,
            },
            {
                "name": "train",
                "argv": ["train", str(manifest), "--out", str(root / "model_ray"), *TRAIN],
                "engine": True,
            },
            {
                "name": "ablate",
                "argv": ["ablate", str(manifest), "--out", str(root / "ablate_ray"), *ABLATE],
                "engine": True,
            },
            {
                "name": "crash",
                "python": [sys.executable, "-m", "tests.ray_cluster", "--crash-check", str(root / "crash.json")],
            },
            {
                "name": "kill_node",
                "argv": [*extract, "--out", str(root / "lost_node")],
                "kill_after": 2,
                "journal": str(root / "lost_node" / "journal.jsonl"),
                "kill": "worker_node",
            },
        ],
    }
    for step in plan["steps"]:
        if step.pop("engine", False):
            step["argv"] += ["--engine", "ray"]
    proc = run_in_namespace(plan, timeout=420)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads(Path(plan["out"]).read_text())
    steps = {s["name"]: s for s in outcome["steps"]}
    return {"root": root, "clips": clips, "local": local, "steps": steps}


def _same_store(local: Path, other: Path) -> None:
    a = {it.id: it for it in read_items(local / "manifest.jsonl")}
    b = {it.id: it for it in read_items(other / "manifest.jsonl")}
    assert set(a) == set(b) == {f"ad{i}" for i in range(len(SECONDS))}
    for key, item in a.items():
        assert item.extra == b[key].extra and set(item.features) == set(b[key].features) == {"frames"}
        x, y = np.load(item.features["frames"]), np.load(b[key].features["frames"])
        assert x.shape == (2 * SECONDS[int(key[2:])], 1280) and np.array_equal(x, y)


def _sources_once(store: Path, n: int) -> list[dict]:
    records = _journal(store)
    sources = [r["source"] for r in records]
    assert len(sources) == len(set(sources)) == n, sources  # nothing lost, nothing done twice
    return records


def test_ctrl_c_then_a_killed_driver_lose_only_in_flight_videos_and_the_same_command_resumes(run: dict) -> None:
    stopped, killed, resumed = run["steps"]["interrupt"], run["steps"]["kill_driver"], run["steps"]["resume"]
    assert stopped["reached"] and stopped["code"] == 130 and "interrupted" in stopped["stderr"], stopped["stderr"]
    assert killed["reached"] and killed["code"] == -9 and killed["journal_at_kill"] >= 3
    assert resumed["code"] == 1, resumed["stderr"]  # the broken clip, recorded and listed
    assert "broken.mp4: not a readable" in resumed["stderr"]
    records = _sources_once(run["root"] / "resumed", len(SECONDS) + 1)
    failed = [r for r in records if not r["ok"]]
    assert [Path(r["video"]).name for r in failed] == ["broken.mp4"]
    _same_store(run["local"], run["root"] / "resumed")


def test_losing_a_worker_node_mid_run_finishes_on_the_other_with_nothing_lost_or_doubled(run: dict) -> None:
    step = run["steps"]["kill_node"]
    assert step["reached"] and step["actors_killed"] >= 1, step
    assert step["code"] == 1 and "broken.mp4" in step["stderr"], step["stderr"]
    _sources_once(run["root"] / "lost_node", len(SECONDS) + 1)
    _same_store(run["local"], run["root"] / "lost_node")


def test_gather_sends_arrays_to_the_driver_and_gives_the_same_store(run: dict) -> None:
    step = run["steps"]["gather"]
    assert step["code"] == 1 and "broken.mp4" in step["stderr"], step["stderr"]
    _sources_once(run["root"] / "gathered", len(SECONDS) + 1)
    _same_store(run["local"], run["root"] / "gathered")


def test_prediction_on_the_cluster_equals_the_local_engine(run: dict) -> None:
    step = run["steps"]["predict"]
    assert step["code"] == 0, step["stderr"]
    local = json.loads((run["root"] / "pred_local.json").read_text())
    assert json.loads((run["root"] / "pred_ray.json").read_text()) == local and len(local) == 40


def test_decided_prediction_on_the_cluster_equals_the_local_engine(run: dict) -> None:
    step = run["steps"]["predict_decide"]
    assert step["code"] == 0, step["stderr"]
    local = json.loads((run["root"] / "pred_decide_local.json").read_text())
    ray_out = json.loads((run["root"] / "pred_decide_ray.json").read_text())
    assert list(ray_out) == list(local) and len(local) == 40
    assert any(entry["result"][0]["decided"] for entry in local.values())  # the decision layer decided some
    for vid, entry in local.items():
        got, want = ray_out[vid]["result"][0], entry["result"][0]
        assert got["decided"] == want["decided"] and got["review"] == want["review"]
        assert got["labels"] == want["labels"]
        np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)


def test_raw_video_prediction_on_the_cluster_equals_the_local_engine(run: dict) -> None:
    step = run["steps"]["predict_videos"]
    assert step["code"] == 1, step["stderr"][-2000:]  # the broken clip fails, the others are scored
    assert "broken.mp4" in step["stderr"]
    local = json.loads((run["root"] / "pred_videos_local.json").read_text())
    ray_out = json.loads((run["root"] / "pred_videos_ray.json").read_text())
    assert list(ray_out) == list(local) and len(local) == len(SECONDS)
    for vid, entry in local.items():
        got = ray_out[vid]
        assert [t for t in got["result"][0]["labels"]] == [t for t in entry["result"][0]["labels"]]
        np.testing.assert_allclose(got["result"][0]["scores"], entry["result"][0]["scores"], atol=1e-5)


def test_training_on_the_cluster_equals_the_local_engine(run: dict) -> None:
    from safetensors.numpy import load_file

    step = run["steps"]["train"]
    assert step["code"] == 0, step["stderr"]
    a = load_file(run["root"] / "model_local" / "weights.safetensors")
    b = load_file(run["root"] / "model_ray" / "weights.safetensors")
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_ablation_with_outer_folds_on_the_cluster_equals_the_local_engine(run: dict) -> None:
    step = run["steps"]["ablate"]
    assert step["code"] == 0, step["stderr"]
    local = json.loads((run["root"] / "ablate_local" / "ablation.json").read_text())
    remote = json.loads((run["root"] / "ablate_ray" / "ablation.json").read_text())
    assert remote["tables"] == local["tables"] and local["tables"]["fusion"]
    assert remote["per_tag_ap"] == local["per_tag_ap"]


def test_an_actor_that_dies_is_replaced_and_its_task_retried_once_then_recorded(run: dict) -> None:
    step = run["steps"]["crash"]
    assert step["code"] == 0, step["stderr"]
    out = json.loads((run["root"] / "crash.json").read_text())
    assert sorted(t for t, _ in out["done"]) == ["a", "b", "c", "d", "e"]
    assert [t for t, _ in out["lost"]] == ["crash"] and "died twice" in out["lost"][0][1]
    assert out["actors"] >= 4  # two at start, one replacement per death


def test_a_worker_that_cannot_write_the_store_stops_with_a_clear_error(tmp_path: Path) -> None:
    from adtag.engines.ray_extract import ExtractWorker
    from adtag.errors import AdtagError

    worker = ExtractWorker({"visual": "visual/efficientnet-lite0"}, 1, str(tmp_path / "not-mounted-here"), False)
    with pytest.raises(AdtagError, match="cannot write to the feature store .*not-mounted-here.*every node"):
        worker.ready()


def test_engine_ray_without_ray_installed_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    clip = make_clip(tmp_path / "a.mp4", seconds=1, width=64, height=48, audio=None)
    assert cli_main(["extract", str(clip), "--out", str(tmp_path / "f"), "--engine", "ray"]) == 2
    assert "pip install 'adtag[ray]'" in capsys.readouterr().err


def test_the_local_engine_never_imports_ray() -> None:
    code = "import sys, adtag.cli; adtag.cli.build_parser(); sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
