#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite (lint, types, tests).
# This is the README's test command; .ci/run calls it unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: OpenCV's wheel needs libGL and glib at import time.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    need=()
    for pkg in libgl1 libglib2.0-0; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if [ ${#need[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}"
    fi
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m ruff check engine tests
python3 -m mypy
python3 -m pytest -q "$@"
