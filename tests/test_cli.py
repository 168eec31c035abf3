"""The command line itself: fast to answer, clear when the user mixes things up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adtag.cli import COMMANDS, build_parser, main
from tests.conftest import REPO

HEAVY = ("torch", "sklearn", "scipy", "onnxruntime", "fastapi", "uvicorn", "av", "matplotlib", "transformers", "PIL")


def _loaded_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; return the heavy modules it loaded and its output."""
    probe = (
        "import io, json, sys, contextlib\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n" + "".join(f"        {line}\n" for line in code.splitlines()) + "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'out': out.getvalue(), 'demo': 'adtag_demo' in sys.modules}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.splitlines()[-1])


def test_help_loads_no_heavy_library() -> None:
    for argv in [["--help"]] + [[name, "--help"] for name in COMMANDS]:
        res = _loaded_after(f"from adtag.cli import main\nmain({argv!r})")
        assert res["heavy"] == [], (argv, res["heavy"])
        assert "usage: adtag" in res["out"]


def test_evaluate_loads_no_model_library(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    truth.write_text(
        "\n".join(json.dumps({"id": f"v{i}", "tags": ["a", "b"] if i % 2 else ["c"]}) for i in range(20)) + "\n"
    )
    preds = {f"v{i}": {"result": [{"labels": ["a", "c", "b"], "scores": [0.9, 0.5, 0.1]}]} for i in range(20)}
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    res = _loaded_after(
        f"from adtag.cli import main\nmain(['evaluate', {str(tmp_path / 'pred.json')!r}, {str(truth)!r}])"
    )
    assert [m for m in res["heavy"] if m in ("torch", "sklearn", "onnxruntime", "fastapi")] == []
    # Every figure says what it is computed from.
    assert "(each item's top 20 tags, pooled)" in res["out"]
    assert "mAP" in res["out"] and "macro over the 3 tags in the truth" in res["out"]


def test_report_fonts_stand_on_their_own() -> None:
    res = _loaded_after(
        "from adtag.report.fonts import embedded_font_css, find_cjk_font\n"
        "print(find_cjk_font().cjk, len(embedded_font_css('室内 indoor')) > 1000)"
    )
    assert not res["demo"] and res["out"].split() == ["True", "True"]
    # The corpus generator left the core package for its own (demo/adtag_demo, the adtag-demo project).
    assert not list((REPO / "adtag").glob("demo/*.py")) and (REPO / "demo" / "adtag_demo" / "corpus.py").is_file()


def test_demo_without_the_demo_package_says_how_to_install_it(monkeypatch, tmp_path: Path, capsys) -> None:
    class NoDemo:  # what a core-only install sees: no adtag_demo anywhere on the path
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name.split(".")[0] == "adtag_demo":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    for name in [m for m in sys.modules if m.split(".")[0] == "adtag_demo"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NoDemo(), *sys.meta_path])
    assert main(["demo", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "pip install -e ./demo" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_help_texts_read_cleanly(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    shown = capsys.readouterr().out
    assert "80%" in shown and "%%" not in shown
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert "--out FEATURE_DIR" in usage and "[--out" not in usage


@pytest.mark.parametrize("command", ["train", "ablate", "demo", "extract"])
def test_quiet_and_no_progress_are_one_switch(command: str) -> None:
    args = {"train": ["m.jsonl", "--out", "o"], "ablate": ["m.jsonl"], "demo": [], "extract": ["v.mp4"]}[command]
    parser = build_parser()
    assert parser.parse_args([command, *args, "--no-progress"]).quiet
    assert parser.parse_args([command, *args, "--quiet"]).quiet
    assert not parser.parse_args([command, *args]).quiet


def _videos(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "a.mp4").write_bytes(b"\x00" * 64)
    return folder


def test_train_on_a_folder_of_videos_points_to_extract(tmp_path: Path, capsys) -> None:
    videos = _videos(tmp_path / "ads")
    assert main(["train", str(videos), "--out", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "folder of videos, not a manifest" in err and "adtag extract" in err
    feats = tmp_path / "feats"
    feats.mkdir()
    (feats / "manifest.jsonl").write_text('{"id": "a", "tags": ["x"]}\n')
    assert main(["train", str(feats), "--out", str(tmp_path / "model")]) == 2
    assert f"did you mean its manifest, {feats / 'manifest.jsonl'}" in capsys.readouterr().err


def test_swapped_model_and_videos_are_named(tmp_path: Path, capsys) -> None:
    videos = _videos(tmp_path / "ads")
    assert main(["predict", str(videos), str(tmp_path / "model"), "--out", str(tmp_path / "p.json")]) == 2
    assert "the arguments look swapped" in capsys.readouterr().err
    assert main(["tag", str(videos / "a.mp4"), str(tmp_path / "model")]) == 2
    assert "the arguments look swapped" in capsys.readouterr().err


def test_unknown_fusion_is_a_clear_error(manifest: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:  # argparse checks --fusion against the fusion registry
        main(["train", str(manifest), "--out", str(tmp_path / "m"), "--fusion", "stak", "--quiet"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "stak" in err and "stack" in err and not (tmp_path / "m").exists()


def test_nothing_to_score_gives_each_reason_once(trained, tmp_path: Path, capsys) -> None:
    _, model = trained
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"this is not a video")
    assert main(["predict", str(model), str(folder), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert "every video failed" in err
    line = next(x for x in err.splitlines() if "broken.mp4" in x)
    assert line.count("broken.mp4") == 1 and len(line.split("broken.mp4", 1)[1].strip(": ")) > 5  # a reason
    assert not (tmp_path / "p.json").exists()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    demo_cmd, test_cmd = blocks[0].strip(), blocks[1].strip()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci == test_cmd
    # Both work where system-wide pip is refused (PEP 668): they install into a virtual environment.
    assert "bash scripts/setup_venv.sh &&" in demo_cmd and "bash scripts/setup_venv.sh test &&" in test_cmd
    setup = (REPO / "scripts" / "setup_venv.sh").read_text(encoding="utf-8")
    assert "python3 -m venv .venv" in setup and "-e ./demo" in setup
    assert 'TORCH="torch==2.13.0"' in setup and "download.pytorch.org/whl/cpu" in setup  # the CPU-only torch build
    assert demo_cmd.endswith(".venv/bin/adtag demo") and test_cmd.endswith(".venv/bin/python -m pytest")
