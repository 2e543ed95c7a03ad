"""The feature stream's conventions, for TouchDesigner, Resolume and a lighting desk: every
value at a fixed rate (a receiver that connects late hears the picture at once), changes only
as an option, the mood as a number and a one-hot set, the grid and the stars as float arrays,
and OSCQuery's description matching what is sent."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cache

import numpy as np

from sonify.capture import open_source
from sonify.config import Config
from sonify.events import Event, OscMessage
from sonify.features.analyzer import Analyzer, Features
from sonify.features.registry import MOOD_LABELS, SCALAR_NAMES
from sonify.outputs.recording import RecordingOutput
from sonify.performance import Performance, play
from sonify.scene.schema import Scene, load_scene
from sonify.scene.stream import STREAM_ARRAYS, frame, stream_layout
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler
from tests.scene.helpers import analyse, demo_frames, settled
from tests.scene.helpers import play as play_scene

RATE_HZ = 30  # the vj scene's


@cache
def night_still() -> tuple[Features, ...]:
    return tuple(settled(demo_frames("night", 1)[0], 60))


def vj(changes_only: bool = False) -> Scene:
    scene = load_scene("vj")
    assert scene.stream is not None
    return scene.model_copy(update={"stream": scene.stream.model_copy(
        update={"changes_only": changes_only})})


def osc(events: list[Event]) -> list[OscMessage]:
    return [e for e in events if isinstance(e, OscMessage) and e.address.startswith("/feature")]


def types(args: tuple[object, ...]) -> str:
    return "".join("i" if isinstance(a, int) else "f" if isinstance(a, float) else "s"
                   for a in args)


def test_vj_sends_every_address_at_its_rate_even_from_a_still_picture() -> None:
    events, _, _ = play_scene(vj(), night_still(), seconds=2.0)
    per_address = Counter(m.address for m in osc(events))
    layout = stream_layout()
    assert set(per_address) == {a.address for a in layout}
    assert set(per_address.values()) == {2 * RATE_HZ}  # one each tick, changed or not
    last_tick = max(m.t for m in osc(events))
    assert {m.address for m in osc(events) if m.t == last_tick} == set(per_address)


def test_changes_only_sends_a_still_value_once() -> None:
    events, _, _ = play_scene(vj(changes_only=True), night_still(), seconds=2.0)
    per_address = Counter(m.address for m in osc(events))
    assert set(per_address) == {a.address for a in stream_layout()}
    assert set(per_address.values()) == {1}


def test_the_mood_is_a_number_and_a_one_hot_set_that_agree() -> None:
    moving = tuple(analyse(demo_frames("city", 120)))
    events, _, _ = play_scene(vj(), moving, seconds=3.0)
    ticks: dict[float, dict[str, tuple[object, ...]]] = defaultdict(dict)
    for m in osc(events):
        ticks[m.t][m.address] = m.args
    for values in ticks.values():
        (index,) = values["/feature/mood"]
        (label,) = values["/feature/mood/label"]
        assert isinstance(index, int) and MOOD_LABELS[index] == label
        hot = [m for m in MOOD_LABELS if values[f"/feature/mood/{m}"] == (1.0,)]
        assert hot == [label]
        assert all(values[f"/feature/mood/{m}"] == (0.0,) for m in MOOD_LABELS if m != label)


def test_the_grid_and_the_stars_go_as_float_arrays() -> None:
    f = night_still()[-1]
    messages = {m.address: m.args for m in frame(f, 0.0)}
    grid = messages["/feature/grid"]
    assert len(grid) == 64 and types(grid) == "f" * 64
    np.testing.assert_allclose(grid, f.arrays["grid"].ravel(), atol=1e-4)
    assert grid[0] == round(float(f.arrays["grid"][0, 0]), 4)  # row by row from the top left
    stars = np.array(messages["/feature/star_points"]).reshape(16, 3)
    assert ((0.0 <= stars) & (stars <= 1.0)).all()
    seen = int(round(f.values["stars"]))
    assert seen > 0 and (stars[:min(seen, 16), 2] > 0).all()  # a night sky has stars
    np.testing.assert_allclose(stars, f.arrays["star_points"], atol=1e-4)


def test_oscquery_layout_names_every_address_with_the_types_sent() -> None:
    f = night_still()[-1]
    sent = {m.address: types(m.args) for m in frame(f, 0.0)}
    described = {a.address: a.types for a in stream_layout()}
    assert sent == described
    assert described["/feature/mood"] == "i" and described["/feature/brightness"] == "f"
    assert [a.address for a in stream_layout(arrays=())][-1] == "/feature/mood/label"
    assert set(STREAM_ARRAYS) == {"grid", "star_points"}


def play_config_stream(changes_only: bool, seconds: float = 2.0) -> list[OscMessage]:
    out = RecordingOutput()
    clock = ManualTime(0.0)
    config = Config()
    config.scene.name = "gallery"
    config.osc.stream_features_hz = 10.0
    config.osc.stream_changes_only = changes_only
    perf = Performance(config, Scheduler([out], clock), seed=0)
    perf.start(0.0)
    analyzer = Analyzer()
    with open_source("demo:night", seed=0, width=320, height=180) as src:
        play(iter(src), perf, clock, analyze=analyzer.analyze, start_s=0.0, duration_s=seconds,
             block_s=0.01, lookahead_s=0.05)
    perf.scheduler.stop(panic=True)
    assert perf.streamed["mood"] in MOOD_LABELS
    assert set(SCALAR_NAMES) <= set(perf.streamed)
    return [e for e in out.events if isinstance(e, OscMessage) and e.voice == "stream"]


def test_the_config_stream_follows_the_same_conventions() -> None:
    msgs = play_config_stream(changes_only=False)
    per_address = Counter(m.address for m in msgs)
    assert set(per_address) == {a.address for a in stream_layout()}
    assert min(per_address.values()) >= 19  # 10 a second for 2 s, from the first frame on
    assert len(set(per_address.values())) == 1
    moods = [m.args for m in msgs if m.address == "/feature/mood"]
    assert all(types(a) == "i" for a in moods)


def test_the_config_stream_sends_changes_only_when_asked() -> None:
    every, changes = play_config_stream(False), play_config_stream(True)
    assert len(changes) < len(every)
    per_address = Counter(m.address for m in changes)
    assert per_address["/feature/mood/label"] == per_address["/feature/mood"]  # together
    last: dict[str, tuple[object, ...]] = {}
    for m in changes:  # never the same value twice in a row at one address
        assert last.get(m.address) != m.args
        last[m.address] = m.args
