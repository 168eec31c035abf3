"""Write files so that a crash never leaves a half-written result behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(umask)
    return umask


def usual_mode(path: Path, umask: int | None = None) -> int:
    """The mode a plain ``open()`` or ``mkdir()`` would give: 0666/0777 less the umask."""
    umask = current_umask() if umask is None else umask
    if path.is_dir():
        return 0o777 & ~umask
    executable = path.stat().st_mode & 0o111
    return (0o666 | (0o111 if executable else 0)) & ~umask


def _share_tree(root: Path) -> None:
    """Give a folder built under mkdtemp (0700) and its files (mkstemp: 0600) the usual modes,
    so another user can read a model folder the way they read any other file of its owner."""
    umask = current_umask()
    for dirpath, _dirs, files in os.walk(root):
        here = Path(dirpath)
        os.chmod(here, usual_mode(here, umask))
        for name in files:
            f = here / name
            if not f.is_symlink():
                os.chmod(f, usual_mode(f, umask))


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 files; give the result the mode a plain open() would (umask applied).
        os.chmod(tmp_path, usual_mode(tmp_path))
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temporary name, then swap it into place.

    An existing directory at ``path`` is replaced only once the new one is complete. The result
    and everything in it get the usual umask-based modes, not mkdtemp's private 0700.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _share_tree(tmp)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
