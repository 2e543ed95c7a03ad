#!/usr/bin/env bash
# Install everything the tests need into .venv, then run the whole suite: lint, types, the
# import layers, tests.
# This is the README's test command; .ci/run calls it unchanged. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages (as root with apt, e.g. in CI): OpenCV's wheel needs libGL and glib at
# import time; python-rtmidi's wheel needs libasound; Debian's python3 needs python3-venv for
# `python3 -m venv`. The output tests' real peers: jackd2 (jackd, jack_lsp, jack_midi_dump,
# jack_connect), liblo-tools (oscdump), puredata-core (pd: the README's patch hears notes
# over OSC), coreutils (stdbuf); the health page's browser test:
# chromium (Debian's, driven by Playwright: never `playwright install`), and curl (the README's
# page commands); the installation box:
# systemd (systemd-analyze verify), fluidsynth + fluid-soundfont-gm (a real synth), tzdata;
# the Link tests' private network namespace: iproute2 (ip), util-linux (unshare, nsenter).
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    need=()
    for pkg in libgl1 libglib2.0-0 libasound2 jackd2 liblo-tools coreutils chromium \
               systemd fluidsynth fluid-soundfont-gm tzdata iproute2 util-linux \
               puredata-core curl; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    python3 -c "import ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
    if [ ${#need[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        # jackd2 asks whether to enable real-time priority: no (the tests run it --no-realtime)
        echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}"
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,link]'
.venv/bin/python -m ruff check engine tests
.venv/bin/python -m mypy
.venv/bin/lint-imports --no-cache  # the layers ([tool.importlinter] in pyproject.toml)
.venv/bin/python -m pytest -q "$@"
