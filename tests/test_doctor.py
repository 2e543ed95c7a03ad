"""`sonify doctor` on this machine: no camera, no sound card, JACK only where a test starts it."""

from __future__ import annotations

import argparse
import json
import os
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from sonify.cli import build_parser
from sonify.install import doctor
from tests.conftest import MidiDump, free_udp_port


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def own_http_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTP port has no config key yet: point its default at a free port, so a sonify
    running elsewhere on this machine does not decide these tests."""
    ports = tuple((name, proto, keys, free_tcp_port() if name == "http port" else default, hosts)
                  for name, proto, keys, default, hosts in doctor.network.CONTROL_PORTS)
    monkeypatch.setattr(doctor.network, "CONTROL_PORTS", ports)


def write_config(tmp_path: Path, text: str = "", *, source: str = "demo",
                 control_port: int | None = None, midi_file: str = "") -> Path:
    """A config playing ``source`` with its control ports free and recordings in tmp_path;
    ``text`` adds sections of its own."""
    port = control_port if control_port is not None else free_udp_port()
    body = (f'[source]\ninput = "{source}"\n\n'
            f"[control]\nport = {port}\noscquery_port = 0\n\n"
            f'[record]\nfallback_midi_file = "{tmp_path / "fallback.mid"}"\n'
            f'midi_file = "{midi_file}"\n\n{text}')
    path = tmp_path / "sonify.toml"
    path.write_text(body)
    return path


def run(path: Path | None, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    """Exit status and checks of `sonify doctor --config PATH --json`, through main()."""
    parser = argparse.ArgumentParser()
    doctor.add_arguments(parser)
    args = parser.parse_args([*(["--config", str(path)] if path else []), "--json"])
    status = doctor.run(args)
    checks = json.loads(capsys.readouterr().out)
    for c in checks:
        assert set(c) == {"name", "status", "detail", "fix"}
        assert c["status"] in ("ok", "warn", "fail")
        if c["status"] != "ok":
            assert c["fix"].strip(), f"{c['name']} is {c['status']} without a fix"
    return status, checks


def check(checks: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [c for c in checks if c["name"] == name]
    assert found, f"no check {name!r} in {[c['name'] for c in checks]}"
    return found[0]


def test_good_config_with_the_demo_exits_0(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    status, checks = run(write_config(tmp_path), capsys)
    assert status == 0, [c for c in checks if c["status"] == "fail"]
    assert check(checks, "config")["status"] == "ok"
    assert check(checks, "scene")["status"] == "ok"
    assert check(checks, "source")["status"] == "ok"
    assert "demo" in check(checks, "source")["detail"]
    assert check(checks, "numba")["status"] == "ok"
    assert check(checks, "realtime")["status"] in ("ok", "warn")  # never stops a run
    # no JACK, no ALSA sequencer: a virtual port cannot be made, so the music is recorded
    midi = check(checks, "midi")
    assert midi["status"] in ("ok", "warn")
    if midi["status"] == "warn":
        assert "fallback.mid" in midi["detail"]
        assert "(used)" in check(checks, "recording")["detail"]


def test_text_report_has_one_line_per_check_and_a_verdict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = doctor.run_doctor(str(write_config(tmp_path, source="auto")))
    text = capsys.readouterr().out
    assert status == 0
    lines = text.splitlines()
    assert lines[0] == f"sonify doctor: {tmp_path / 'sonify.toml'}"
    assert any(line.startswith("✓ config") for line in lines)
    # no camera here and the config says auto: the demo plays, which is a warning with a fix
    source = next(i for i, line in enumerate(lines) if line.startswith("! source"))
    assert "demo" in lines[source]
    assert lines[source + 1].lstrip().startswith("fix: ")
    assert "0 failures: sonify can run with this setup" in lines[-1]


def test_no_libjack_noise_on_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # a JACK server name nobody runs: libjack complains on stderr when a client tries it
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "sonify-doctor-test-nobody")
    config = write_config(tmp_path, '[midi]\napi = "jack"\nport = "x"\n')
    assert doctor.run_doctor(str(config)) == 1
    out, err = capfd.readouterr()
    assert "jack: not usable" in out
    assert err == ""


def test_missing_midi_port_fails_with_the_fix(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, '[midi]\nport = "no-such-synth"\n')
    status, checks = run(config, capsys)
    assert status == 1
    midi = check(checks, "midi")
    assert midi["status"] == "fail"
    assert "no-such-synth" in midi["detail"]
    assert "MIDI systems built into python-rtmidi" in midi["detail"]


def test_missing_jack_port_lists_the_ports_and_how_to_set_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], midi_dump: MidiDump) -> None:
    config = write_config(tmp_path, '[midi]\napi = "jack"\nport = "no-such-synth"\n')
    status, checks = run(config, capsys)
    assert status == 1
    midi = check(checks, "midi")
    assert midi["status"] == "fail"
    assert "no MIDI output port matches 'no-such-synth' on jack" in midi["detail"]
    assert midi_dump.port in midi["detail"]  # the port list
    assert "[midi] port" in midi["fix"] and midi_dump.port in midi["fix"]
    assert str(config) in midi["fix"]


def test_configured_jack_port_that_exists_is_ok(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                midi_dump: MidiDump) -> None:
    config = write_config(tmp_path, f'[midi]\nport = "{midi_dump.client}"\n')
    status, checks = run(config, capsys)
    midi = check(checks, "midi")
    assert midi["status"] == "ok", midi
    assert f"-> {midi_dump.port!r} (jack)" in midi["detail"]
    assert status == 0, [c for c in checks if c["status"] == "fail"]


def test_virtual_port_on_a_running_jack_is_ok(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              jack_server: Any) -> None:
    status, checks = run(write_config(tmp_path, '[midi]\napi = "jack"\n'), capsys)
    midi = check(checks, "midi")
    assert midi["status"] == "ok", midi
    assert "virtual port 'sonify' can be made (jack)" in midi["detail"]
    assert "used only if MIDI cannot open" in check(checks, "recording")["detail"]


def test_unknown_scene_fails_naming_it(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    status, checks = run(write_config(tmp_path, '[scene]\nname = "no-such-scene"\n'), capsys)
    assert status == 1
    scene = check(checks, "scene")
    assert scene["status"] == "fail"
    assert "no-such-scene" in scene["detail"]
    assert "[scene] name" in scene["fix"] and "gallery" in scene["fix"]


BROKEN_SCENE = """name = "broken"
[tempo]
bpm = "fast"
"""


def test_broken_scene_file_is_reported_with_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "broken.toml").write_text(BROKEN_SCENE)
    monkeypatch.setenv("SONIFY_SCENES", str(scenes))
    status, checks = run(write_config(tmp_path), capsys)
    assert status == 0  # the configured scene is fine; a switch to the broken one would fail
    found = check(checks, "scenes")
    assert found["status"] == "warn"
    assert str(scenes / "broken.toml") in found["detail"]
    assert "tempo.bpm" in found["detail"]


def test_broken_configured_scene_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "broken.toml").write_text(BROKEN_SCENE)
    monkeypatch.setenv("SONIFY_SCENES", str(scenes))
    status, checks = run(write_config(tmp_path, '[scene]\nname = "broken"\n'), capsys)
    assert status == 1
    scene = check(checks, "scene")
    assert scene["status"] == "fail"
    assert str(scenes / "broken.toml") in scene["detail"] and "tempo.bpm" in scene["detail"]


def test_invalid_config_fails_with_the_config_error(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, '[midi]\napi = "pulse"\n')
    status, checks = run(path, capsys)
    assert status == 1
    config = check(checks, "config")
    assert config["status"] == "fail"
    assert "midi.api" in config["detail"] and str(path) in config["detail"]


def test_missing_config_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, checks = run(tmp_path / "nope.toml", capsys)
    assert status == 1
    assert "not found" in check(checks, "config")["detail"]


def test_named_camera_that_is_missing_fails(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    status, checks = run(write_config(tmp_path, source="camera:7"), capsys)
    assert status == 1
    source = check(checks, "source")
    assert source["status"] == "fail"
    assert "/dev/video7 does not exist" in source["detail"]


def test_missing_source_file_fails_and_a_real_one_is_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, checks = run(write_config(tmp_path, source=str(tmp_path / "nope.mp4")), capsys)
    assert status == 1
    assert check(checks, "source")["status"] == "fail"
    assert "nope.mp4" in check(checks, "source")["detail"]

    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "still.png"), np.full((48, 64, 3), 128, np.uint8))
    status, checks = run(write_config(tmp_path, source=str(tmp_path / "still.png")), capsys)
    source = check(checks, "source")
    assert source["status"] == "ok", source
    assert "64x48" in source["detail"]


def test_control_port_in_use_fails_naming_the_holder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        status, checks = run(write_config(tmp_path, control_port=port), capsys)
    assert status == 1
    control = check(checks, "control port")
    assert control["status"] == "fail"
    assert f"127.0.0.1:{port} is in use" in control["detail"]
    assert f"pid {os.getpid()}" in control["detail"]
    assert "[control] port" in control["fix"]


def test_control_port_0_is_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, checks = run(write_config(tmp_path, control_port=0), capsys)
    assert check(checks, "control port") == {"name": "control port", "status": "ok",
                                             "detail": "off ([control] port = 0)", "fix": ""}


def test_osc_targets_listening_silent_and_unresolvable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    silent = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        listening = receiver.getsockname()[1]
        targets = f'"127.0.0.1:{listening}", "localhost:{silent}", "no-such-host.invalid:9"'
        status, checks = run(write_config(tmp_path, f"[osc]\ntargets = [{targets}]\n"), capsys)
    assert check(checks, f"osc 127.0.0.1:{listening}")["status"] == "ok"
    quiet = check(checks, f"osc localhost:{silent}")
    assert quiet["status"] == "warn" and "nothing on this machine listens" in quiet["detail"]
    unresolved = check(checks, "osc no-such-host.invalid:9")
    # a run plays on and retries the name in the background: a warning, not a failure
    assert unresolved["status"] == "warn" and "does not resolve" in unresolved["detail"]
    assert "retries the name in the background" in unresolved["detail"]
    assert "getent hosts no-such-host.invalid" in unresolved["fix"]
    assert not any(c["name"].startswith("osc") and c["status"] == "fail" for c in checks)


def test_low_disk_fails_a_recording_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    real = shutil.disk_usage

    def tiny(path: Any) -> Any:
        usage = real(path)
        return type(usage)(usage.total, usage.total - (50 << 20), 50 << 20)

    monkeypatch.setattr(shutil, "disk_usage", tiny)
    config = write_config(tmp_path, midi_file=str(tmp_path / "rec" / "a.mid"))
    status, checks = run(config, capsys)
    rec = check(checks, "recording")
    assert rec["status"] == "fail", rec
    assert "50 MB free" in rec["detail"] and "df -h" in rec["fix"]
    assert status == 1


def test_unusable_numba_cache_dir_is_a_warning(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/dev/null/numba")
    [numba] = doctor.system._check_numba()
    assert numba.status == "warn"
    assert "NUMBA_CACHE_DIR" in numba.fix


def test_a_probe_that_does_not_answer_is_killed() -> None:
    answer = doctor.probes._run_probe("numba", {}, 0.01)
    assert answer.get("timeout") is True and "no answer within" in answer["error"]


def test_the_cli_wires_the_subcommand() -> None:
    args = build_parser().parse_args(["doctor", "--json", "--config", "x.toml"])
    assert (args.command, args.json, args.config) == ("doctor", True, "x.toml")


def test_each_camera_is_opened_and_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """No camera on this machine: the list and the child-process probe are stood in for."""
    import sonify.capture

    opened: list[str] = []

    def probe(spec: str, config: Any) -> dict[str, Any]:
        opened.append(spec)
        if spec in ("/dev/video2", "camera:2"):
            return {"error": "cannot open /dev/video2 (busy)"}
        return {"kind": "CameraSource", "live": True, "fps": 30.0, "open_s": 0.4,
                "width": 1280, "height": 720, "frames": 31, "measured_fps": 29.9}

    monkeypatch.setattr(sonify.capture, "find_cameras", lambda: ["/dev/video0", "/dev/video2"])
    monkeypatch.setattr(doctor.devices, "_probe_source_in_child", probe)
    status, checks = run(write_config(tmp_path, source="auto"), capsys)
    assert opened == ["/dev/video0", "/dev/video2"]  # one at a time, each once
    source = check(checks, "source")
    assert source["status"] == "ok"
    assert "/dev/video0" in source["detail"] and "1280x720 at 30 fps" in source["detail"]
    assert "29.9 fps measured" in check(checks, "camera /dev/video0")["detail"]
    other = check(checks, "camera /dev/video2")
    assert other["status"] == "warn" and "not the configured source" in other["detail"]
    assert status == 0

    opened.clear()
    status, checks = run(write_config(tmp_path, source="camera:2"), capsys)
    assert opened == ["/dev/video0", "camera:2"]  # the configured one as the config names it
    assert check(checks, "source")["status"] == "fail"
    assert check(checks, "camera /dev/video2")["status"] == "fail"
    assert status == 1


def test_sonify_doctor_console_script(tmp_path: Path) -> None:
    """As a user runs it: the installed console script, a config with the demo and no ports."""
    import subprocess
    import sys

    config = tmp_path / "box.toml"
    config.write_text('[source]\ninput = "demo"\n[midi]\nenabled = false\n'
                      "[control]\nport = 0\noscquery_port = 0\n[http]\nport = 0\n")
    exe = Path(sys.executable).with_name("sonify")
    done = subprocess.run([str(exe), "doctor", "--config", str(config), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json.loads(done.stdout)
    assert {c["name"] for c in checks} >= {"config", "scene", "numba", "realtime"}
    assert all(c["status"] in ("ok", "warn") for c in checks)


def test_config_refusals_are_the_runs_own(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """doctor loads the config with the run's validation: what `run` refuses fails here."""
    path = tmp_path / "refused.toml"
    path.write_text('[source]\ninput = "demo"\n[control]\nallow = ["the-tablet"]\n'
                    "[analysis]\nsmoothing_s = { brightnes = 1.0 }\n"
                    '[http]\ntoken = "short"\n')
    status, checks = run(path, capsys)
    assert status == 1
    config = check(checks, "config")
    assert config["status"] == "fail"
    for words in ("control.allow: 'the-tablet' is not an IP address or network",
                  "analysis.smoothing_s: unknown feature(s) 'brightnes'",
                  "http.token: is 5 characters long: use at least 16"):
        assert words in config["detail"]


def test_exposure_is_reported_and_allow_any_is_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_udp_port()
    # a loopback config: nothing reachable from elsewhere, and doctor says where each listens
    status, checks = run(write_config(tmp_path, control_port=port), capsys)
    exposure = check(checks, "exposure")
    assert exposure["status"] == "ok"
    assert f"OSC control on UDP 127.0.0.1:{port}: this machine only" in exposure["detail"]
    # allow_any on the network: a warning that names the address, and the way out (the check
    # alone: the whole report would also try binding 0.0.0.0, and tests bind loopback only)
    path = tmp_path / "open.toml"
    path.write_text(f'[control]\nhost = "0.0.0.0"\nallow_any = true\nport = {port}\n'
                    "oscquery_port = 0\n[http]\nhost = \"0.0.0.0\"\n"
                    'token = "0123456789abcdef"\n')
    ctx, config_check = doctor._check_config(str(path))
    assert config_check.status == "ok"
    exposure = asdict(doctor._check_exposure(ctx))
    assert exposure["status"] == "warn"
    assert f"OSC control on UDP 0.0.0.0:{port}" in exposure["detail"]
    assert "no password" in exposure["detail"] and "OSCQuery is off" in exposure["detail"]
    assert "health page on TCP 0.0.0.0:8765 is reachable from other machines, for requests " \
           "that carry [http] token" in exposure["detail"]
    assert "[control] allow" in exposure["fix"]
    # an allow list: reachable, but only those senders are obeyed
    path.write_text(f'[control]\nhost = "0.0.0.0"\nallow = ["10.0.0.0/24"]\nport = {port}\n')
    exposure = asdict(doctor._check_exposure(doctor._check_config(str(path))[0]))
    assert exposure["status"] == "ok"
    assert "only senders in [control] allow are obeyed (10.0.0.0/24)" in exposure["detail"]
    assert "OSCQuery (the read-only description of the controls) binds where it does, TCP " \
           "0.0.0.0:9001" in exposure["detail"]
