#!/usr/bin/env bash
# System packages adtag's tests and demo use, from Debian's archive. Idempotent and quick when
# everything is present: apt runs only for what is missing.
#   chromium   headless browser that checks report.html renders without console errors
#   espeak-ng  text-to-speech for the demo corpus's voice-overs (without it: wordless babble)
# The CJK font comes from PyPI (noto-cjk-sans-otc, a dependency in pyproject.toml).
set -euo pipefail

# "demo" installs only what the demo uses; no argument installs everything the tests use too.
need=()
if [ "${1:-all}" != "demo" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)

if [ ${#need[@]} -eq 0 ]; then
  echo "system deps: all present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "system deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}"
