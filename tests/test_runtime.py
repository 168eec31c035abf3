"""Process-wide thread settings: more torch threads only for a while, and only where idle ones sleep."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from adtag import runtime


def test_threads_raises_torch_threads_inside_and_restores_them(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    with runtime.threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # spinning threads: the one thread stays
    with runtime.threads(2):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 1


def test_configure_asks_for_sleeping_threads_only_before_torch_loads(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    runtime.configure(1)  # torch is loaded in this process: too late to tell its OpenMP
    assert "OMP_WAIT_POLICY" not in os.environ
    fresh = "from adtag import runtime; import os, sys; runtime.configure(1); print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", fresh], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
