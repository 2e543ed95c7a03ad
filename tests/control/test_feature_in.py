"""Features arriving over OSC as an extra source: another sonify box's feature stream (the real
stream code, sent by a python-osc client) and TouchDesigner-style messages on 127.0.0.1."""

from __future__ import annotations

import logging
import re
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from sonify.capture import Frame, SourceError
from sonify.cli import build_parser
from sonify.config import load_config
from sonify.control.feature_in import OscFeatureInput, parse_osc_input
from sonify.features.analyzer import Analyzer, Features
from sonify.features.registry import FEATURES, SCALAR_NAMES
from sonify.live.extras import ExtraSources
from sonify.outputs.osc import full_address
from sonify.performance.parts import neutral_features
from sonify.performance.sources import SourceFeatures
from sonify.scene.schema import load_scene
from sonify.scene.stream import frame
from tests.conftest import free_udp_port, stop_process, wait_until
from tests.control.test_osc_server import poll

PHOTO = Path(__file__).parents[1] / "data" / "photos" / "coffee.jpg"


class Published:
    """``publish(name, features)`` as the extra sources call it: thread-safe, newest last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, Features]] = []

    def __call__(self, name: str, features: Features) -> None:
        with self._lock:
            self.calls.append((name, features))

    def last(self) -> tuple[str, Features]:
        with self._lock:
            assert self.calls, "nothing published"
            return self.calls[-1]


def box_a_features() -> Features:
    """What box A's analyzer sees: a real photograph (two frames, so motion is defined)."""
    image = cv2.imread(str(PHOTO))
    assert image is not None, PHOTO
    analyzer = Analyzer()
    analyzer.analyze(Frame(0, 0.0, image))
    return analyzer.analyze(Frame(1, 0.04, np.ascontiguousarray(image[:, ::-1])))


def send_stream(features: Features, port: int) -> int:
    """One tick of box A's feature stream, addressed as its OSC output sends it
    (``/sonify/feature/<name>``), each message a datagram; how many were sent."""
    client = SimpleUDPClient("127.0.0.1", port)
    messages = frame(features, 0.0)
    for m in messages:
        client.send_message(full_address(m.address, "/sonify"), list(m.args))
    return len(messages)


def tolerance(name: str) -> float:
    lo, hi = FEATURES[name].span
    return 1.5e-4 * (hi - lo)  # the stream rounds fractions to 4 decimals, sent as float32


def test_another_boxs_stream_arrives_as_its_features() -> None:
    features = box_a_features()
    got = Published()
    with_input = OscFeatureInput("room", "127.0.0.1", 0, got)
    with_input.start()
    try:
        sent = send_stream(features, with_input.port)
        assert poll(lambda: with_input.stats.received == sent), with_input.stats
        assert poll(lambda: with_input.stats.published >= 1)
    finally:
        with_input.close()
    name, received = got.last()
    assert name == "room"
    assert set(received.values) == set(SCALAR_NAMES)
    for key in SCALAR_NAMES:
        assert received.values[key] == pytest.approx(features.values[key],
                                                     abs=tolerance(key)), key
    assert received.mood == features.mood  # from /sonify/feature/mood i
    stats = with_input.stats
    assert stats.values == len(SCALAR_NAMES) and stats.rejected == 0
    # the mood index and label are taken; the one-hot moods and the arrays are not
    assert stats.ignored == sent - len(SCALAR_NAMES) - 2 == 7


def test_touchdesigner_values_fill_in_and_the_rest_stays_neutral() -> None:
    got = Published()
    neutral = neutral_features().values
    with OscFeatureInputContext(got) as feature_in:
        client = SimpleUDPClient("127.0.0.1", feature_in.port)
        client.send_message("/td/motion", 0.4)
        client.send_message("/sensor/stars", 0.5)  # a fraction of the span: 8 of 16
        client.send_message("/warmth", 7)  # an int; clipped to 1
        assert poll(lambda: feature_in.stats.values == 3)
        assert poll(lambda: got.last()[1].values["warmth"] == 1.0)
    values = got.last()[1].values
    assert values["motion"] == pytest.approx(0.4, abs=1e-6)
    assert values["stars"] == pytest.approx(8.0, abs=1e-5)
    for key in set(SCALAR_NAMES) - {"motion", "stars", "warmth"}:
        assert values[key] == neutral[key], key


def test_bad_feature_values_are_ignored_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sonify.control.feature_in")
    got = Published()
    with OscFeatureInputContext(got) as feature_in:
        client = SimpleUDPClient("127.0.0.1", feature_in.port)
        client.send_message("/td/brightness", "bright")
        client.send_message("/td/contrast", [])
        client.send_message("/sonify/note", ["lead", 1, 60, 0.5, 0.25])  # not a feature: quiet
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(b"\x00garbage", ("127.0.0.1", feature_in.port))
        sock.close()
        client.send_message("/td/hue", 0.5)
        assert poll(lambda: feature_in.stats.received == 5)
        assert poll(lambda: got.calls != [])
        stats = feature_in.stats
    assert stats.rejected == 3 and stats.ignored == 1 and stats.values == 1
    assert "'bright' is not a number" in caplog.text and "bad packet" in caplog.text
    assert got.last()[1].values["hue"] == pytest.approx(0.5)


class OscFeatureInputContext:
    def __init__(self, publish: Published) -> None:
        self.input = OscFeatureInput("td", "127.0.0.1", 0, publish)

    def __enter__(self) -> OscFeatureInput:
        self.input.start()
        return self.input

    def __exit__(self, *exc: object) -> None:
        self.input.close()


def test_osc_inputs_are_parsed() -> None:
    assert parse_osc_input("osc:9100") == ("127.0.0.1", 9100)
    assert parse_osc_input("osc://0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_osc_input("osc:192.168.1.5:9200") == ("192.168.1.5", 9200)
    assert parse_osc_input("osc://[::1]:9100") == ("::1", 9100)
    assert parse_osc_input("camera:1") is None
    for bad in ("osc:", "osc:room", "osc://host:0", "osc://:99999"):
        with pytest.raises(ValueError, match="osc:PORT"):
            parse_osc_input(bad)


def config_with_room(tmp_path: Path, input_: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[source]\ninput = "demo"\n\n[[source.extra]]\nname = "room"\n'
                    f'input = "{input_}"\n')
    return path


def test_an_osc_extra_source_in_the_config_publishes_into_source_features(
        tmp_path: Path) -> None:
    port = free_udp_port()
    config = load_config(config_with_room(tmp_path, f"osc:{port}"))
    sources = SourceFeatures(["room"])
    extras = ExtraSources(config, sources, threading.Event(), realtime=True,
                          beat=lambda t: None)
    assert extras.names == ["room"]
    features = box_a_features()
    extras.open()
    try:
        extras.start()
        send_stream(features, port)
        assert poll(lambda: (latest := sources.latest("room")) is not None
                    and abs(latest.values["stars"] - features.values["stars"]) < 1e-3)
    finally:
        extras.close()
    main = neutral_features()
    merged = sources.merge(main, frozenset({"room"}))
    assert merged is not None
    for key in ("brightness", "motion", "warmth", "stars"):
        assert merged.values[f"room:{key}"] == pytest.approx(features.values[key],
                                                            abs=tolerance(key))
    assert merged.values["brightness"] == main.values["brightness"]  # the main source's own


def test_a_virtual_run_skips_osc_sources_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sonify.live.extras")
    config = load_config(config_with_room(tmp_path, "osc:9100"))
    extras = ExtraSources(config, SourceFeatures(["room"]), threading.Event(), realtime=False,
                          beat=lambda t: None)
    assert extras.osc == [] and extras.names == []
    assert "room (OSC 127.0.0.1:9100) skipped in a virtual run" in caplog.text


def test_a_bad_osc_input_or_a_taken_port_names_the_source(tmp_path: Path) -> None:
    config = load_config(config_with_room(tmp_path, "osc:roomport"))
    with pytest.raises(SourceError, match=r"\[\[source.extra\]\] room: 'osc:roomport'"):
        ExtraSources(config, SourceFeatures(["room"]), threading.Event(), realtime=True,
                     beat=lambda t: None)
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        config = load_config(config_with_room(tmp_path, f"osc:{port}"))
        extras = ExtraSources(config, SourceFeatures(["room"]), threading.Event(),
                              realtime=True, beat=lambda t: None)
        with pytest.raises(SourceError, match=rf"extra source room \(OSC 127.0.0.1:{port}\).*"
                                              rf"port {port}"):
            extras.open()
    finally:
        holder.close()


# -- the README's two-box example, run as written (box A played by a python-osc client) --------

README = Path(__file__).parents[2] / "README.md"


def readme_block(first_line: str, lang: str = "toml") -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", README.read_text(), re.S)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"README has no single ```{lang} block starting {first_line!r}"
    return found[0]


def test_readme_two_box_example_plays_box_as_motion(tmp_path: Path) -> None:
    commands = [line for line in readme_block("# box A", "sh").splitlines()
                if line.startswith("sonify ")]
    box_a, box_b = (shlex.split(c)[1:] for c in commands)
    args_a = build_parser().parse_args(box_a)
    assert args_a.scene == "vj" and args_a.osc == ["127.0.0.1:9100"]
    assert load_scene("vj").stream is not None  # box A streams its features
    port = free_udp_port()
    config = readme_block("# room.toml").replace("osc:9100", f"osc:{port}")
    assert "osc:9100" in readme_block("# room.toml")
    received: list[tuple[int, int]] = []  # (cc, value) box B sends, as OSC
    dispatcher = Dispatcher()
    dispatcher.map("/sonify/cc", lambda _a, _ch, cc, value: received.append((cc, value)))
    peer = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    config += (f'\n[osc]\ntargets = ["127.0.0.1:{peer.server_address[1]}"]\nnotes = false\n'
               f"midi_as_osc = true\n")
    (tmp_path / "room.toml").write_text(config)
    (tmp_path / "room-scene.toml").write_text(readme_block("# room-scene.toml"))
    exe = Path(sys.executable).with_name("sonify")
    args_b = [*box_b, "--no-midi", "--duration", "20"]
    assert args_b[:4] == ["run", "--config", "room.toml", "--scene"]
    proc = subprocess.Popen([str(exe), *args_b], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        client = SimpleUDPClient("127.0.0.1", port)

        def box_a_moves() -> bool:  # box A: everything moves, in the dark
            client.send_message("/sonify/feature/motion", 1.0)
            client.send_message("/sonify/feature/brightness", 0.0)
            return (74, 127) in received and (20, 0) in received

        assert wait_until(box_a_moves, 15.0, 0.05), (received, proc.poll())
    finally:
        stop_process(proc)
        peer.shutdown()
        peer.server_close()
    output = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0 and "scene room_listener" in output, output
