"""Shared plumbing for encoders: the local cache folder and ONNX Runtime sessions with bounded threads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from adtag.io import atomic_path


def cache_dir() -> Path:
    """Where derived model files live (an assembled Whisper model, an exported ONNX graph).

    ``$ADTAG_CACHE`` or ``~/.cache/adtag``. Nothing here is ever downloaded: every file is built
    from weights shipped inside an installed package.
    """
    root = os.environ.get("ADTAG_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "adtag")
    return Path(root)


def cached_file(name: str, build: Any) -> Path | None:
    """Return the cached file ``name``, building it with ``build(tmp_path)`` first if missing.

    The file is written under a temporary name and renamed, so concurrent workers and a crash
    never leave a half-written model. Returns None when the cache folder is not writable.
    """
    path = cache_dir() / name
    if path.is_file():
        return path
    try:
        with atomic_path(path) as tmp:
            build(tmp)
    except OSError:
        return None
    return path


def ort_session(model: str | Path | bytes, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads that sleep when idle.

    ORT's default thread pool spins while waiting for work, burning a core per thread even when
    the model is idle; with parallel workers that spinning steals the other workers' CPU.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.enable_cpu_mem_arena = False  # the arena keeps the peak of the largest batch for good
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
