"""The systemd units verify cleanly, and agree with the engine and the installation config."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from sonify.config import Config
from sonify.timing.hours import OpeningHours
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "systemd").glob("*.service"))
INSTALLATION = ROOT / "configs" / "installation.toml"
PROPOSED_SECTIONS = ("service", "hours")  # not in engine/config.py yet


def unit_lines(path: Path) -> dict[str, list[str]]:
    """``key -> [values]`` of a unit file (keys repeat; continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_both_units_are_there() -> None:
    assert [u.name for u in UNITS] == ["sonify-synth.service", "sonify.service"]


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        reason = "systemd-analyze is not installed (Debian package systemd)"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    # verify checks that every Exec*= program exists: on a machine that is not the box
    # (/opt/sonify, fluidsynth missing), stand a stub in for each one that is absent
    stub = tmp_path / "stub"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    for unit in UNITS:
        text = unit.read_text()
        for program in set(re.findall(r"^Exec\w+=[-@:+!]*(/\S+)", text, flags=re.M)):
            if not os.access(program, os.X_OK):
                text = text.replace(program, str(stub))
        (tmp_path / unit.name).write_text(text)
    res = subprocess.run([analyze, "verify", "--man=no",
                          *(str(tmp_path / u.name) for u in UNITS)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr


def test_the_engine_unit_is_supervised_as_the_engine_expects() -> None:
    u = unit_lines(ROOT / "systemd" / "sonify.service")
    assert u["Type"] == ["notify"] and u["NotifyAccess"] == ["main"]
    assert u["Restart"] == ["always"] and u["WatchdogSec"]
    assert u["ExecStart"][0].endswith("sonify run --config /etc/sonify/installation.toml")
    assert u["ExecStopPost"][0].startswith("-")  # an absent port must not fail the stop
    assert "sonify panic --config /etc/sonify/installation.toml" in u["ExecStopPost"][0]
    assert "sonify-synth.service" in u["Wants"][0] and "sonify-synth.service" in u["After"][0]
    # numba JITs: W^X would kill it; its cache lives in the unit's cache directory
    assert "MemoryDenyWriteExecute" not in u
    assert "RestrictRealtime" not in u and "PrivateDevices" not in u
    assert u["CacheDirectory"] == ["sonify"]
    assert "NUMBA_CACHE_DIR=%C/sonify/numba" in u["Environment"]
    # the dispatch thread asks for SCHED_FIFO 20
    from sonify.timing.rt import DISPATCH_PRIORITY

    assert int(u["LimitRTPRIO"][0]) >= DISPATCH_PRIORITY
    for key in ("ProtectSystem", "ProtectHome", "NoNewPrivileges", "PrivateTmp"):
        assert u[key] in (["strict"], ["yes"]), key
    assert u["User"] == ["sonify"] and u["SupplementaryGroups"] == ["audio video"]


def test_the_synth_unit_serves_the_port_the_installation_config_names() -> None:
    u = unit_lines(ROOT / "systemd" / "sonify-synth.service")
    start = u["ExecStart"][0]
    assert "--midi-driver=alsa_seq" in start and "--no-shell" in start
    client = re.search(r"midi\.alsa_seq\.id=(\S+)", start)
    assert client is not None
    config = tomllib.loads(INSTALLATION.read_text())
    # FluidSynth names its sequencer client "FLUID Synth (<id>)"
    assert config["midi"]["port"] == f"FLUID Synth ({client.group(1)})"
    assert "/usr/share/sounds/sf2/FluidR3_GM.sf2" in u["Environment"][-1]


def test_the_installation_config_uses_only_known_keys_besides_the_proposed_sections() -> None:
    data = tomllib.loads(INSTALLATION.read_text())
    known = {k: v for k, v in data.items() if k not in PROPOSED_SECTIONS}
    config = Config.model_validate(known)
    assert config.midi.port and not config.midi.virtual and config.midi.wait_for_port


def test_the_installation_hours_parse() -> None:
    hours = tomllib.loads(INSTALLATION.read_text())["hours"]
    h = OpeningHours.from_settings(hours["week"], dates=hours["dates"], fade_s=hours["fade_s"],
                                   timezone=hours["timezone"])
    assert h.week[0] == ()  # closed on Mondays
    assert hours["fade_control"] == 11 and hours["fade_s"] > 0
