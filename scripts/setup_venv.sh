#!/usr/bin/env bash
# Make .venv in the checkout and install adtag into it (PEP 668 systems refuse a system-wide pip).
#   bash scripts/setup_venv.sh          core + the demo package
#   bash scripts/setup_venv.sh test     core + demo + test tools (and the Ray extra the tests use)
# Torch is pinned to a CPU-only build: taken from a local wheel or index when pip already has one
# (no network), otherwise from PyTorch's CPU index, so an unpinned CUDA build is never pulled.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH="torch==2.13.0"
CPU_INDEX="https://download.pytorch.org/whl/cpu"
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install --disable-pip-version-check)
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  # Offline first: a machine whose pip has a local wheel store (find-links) needs no index at all.
  if ! "${pip[@]}" --no-index --no-deps "$TORCH" >/dev/null 2>&1; then
    "${pip[@]}" "$TORCH" --index-url "$CPU_INDEX"
  fi
fi
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
"${pip[@]}" -e ".${extras}" -e ./demo
