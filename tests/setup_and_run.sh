#!/usr/bin/env bash
# Set up everything the tests need, from nothing, then run them:
#   a virtual environment with requirements-dev.txt, and Chromium for the
#   real-browser test (Debian's package; installed with apt-get when missing).
# The code's format and lint (ruff, ruff.toml) are checked first: seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -r requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM_PATH:-}" ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium
fi
# Python 3.10, the oldest the project claims, cannot be installed here: every
# requirement must still have a release for it within our ranges (the code
# itself is held to 3.10 by vermin, in tests/test_packaging.py).
py310="$(mktemp -d)"
.venv/bin/pip install --dry-run --quiet --ignore-installed --python-version 3.10 --only-binary=:all: \
  --target "$py310" -r requirements.txt
rmdir "$py310" 2>/dev/null || true
.venv/bin/ruff format --check --quiet .
.venv/bin/ruff check --quiet .
.venv/bin/python -m pytest -q "$@"
