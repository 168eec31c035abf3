"""Written files and folders: atomic, and readable by others as the umask allows."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from adtag.io import atomic_dir, current_umask, write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_without_changing(umask_022) -> None:
    assert current_umask() == 0o022
    os.umask(0o027)
    assert current_umask() == 0o027
    assert os.umask(0o022) == 0o027  # unchanged by the read


def test_atomic_dir_gives_umask_modes_to_the_folder_and_its_files(tmp_path: Path, umask_022) -> None:
    with atomic_dir(tmp_path / "model") as tmp:
        assert _mode(tmp) == 0o700  # private while it is being built
        (tmp / "sub").mkdir()
        fd = os.open(tmp / "weights.bin", os.O_WRONLY | os.O_CREAT, 0o600)  # as a library might
        os.close(fd)
        write_text(tmp / "config.json", "{}")
        (tmp / "sub" / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(tmp / "sub" / "run.sh", 0o700)
    out = tmp_path / "model"
    assert _mode(out) == 0o755 and _mode(out / "sub") == 0o755
    assert _mode(out / "weights.bin") == 0o644 and _mode(out / "config.json") == 0o644
    assert _mode(out / "sub" / "run.sh") == 0o755


def test_a_stricter_umask_is_respected(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        with atomic_dir(tmp_path / "private") as tmp:
            write_text(tmp / "a.txt", "x")
        write_text(tmp_path / "b.txt", "y")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "private") == 0o700 and _mode(tmp_path / "private" / "a.txt") == 0o600
    assert _mode(tmp_path / "b.txt") == 0o600


def test_a_trained_model_folder_is_shareable(trained) -> None:
    """adtag train's folder: weights.safetensors too, not only the JSON files (the process umask)."""
    _, model = trained
    umask = current_umask()
    assert _mode(model) == 0o777 & ~umask
    files = [f for f in model.rglob("*") if f.is_file()]
    assert any(f.name == "weights.safetensors" for f in files)
    for f in files:
        assert _mode(f) == 0o666 & ~umask, f
