"""The page as an instrument, in a real headless Chromium (``tests/health/conftest.py``), with
the fake engine behind it: pushed state, sliders, XY pads, the launch grid with its pending
switch, mute and solo, learn, tap tempo, the scopes and the piano roll, and a phone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sonify.commands import Learn, Mute, SetMaster, SetParam, SetScene, SetTempo, Teach
from tests.conftest import wait_until
from tests.health.conftest import PHONE, expect, open_page, start
from tests.health.fakes import PARAMS, FakeEngine


def params_seen(engine: FakeEngine) -> dict[str, float]:
    """The last value each parameter was set to."""
    return {c.name: c.value for c in engine.seen() if isinstance(c, SetParam)}


def drawn_pixels(locator: Any) -> int:
    """Pixels of an element's screenshot that are not its background (a canvas drew them)."""
    image = cv2.imdecode(np.frombuffer(locator.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    return int((image.max(axis=2) > 40).sum())


def test_the_state_is_pushed_not_polled(page: Any, engine: FakeEngine) -> None:
    server = start(engine)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url.removeprefix(server.url)))
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        frames0 = int(page.inner_text("#frames"))
        assert wait_until(lambda: int(page.inner_text("#frames")) > frames0 + 30, 5.0)
        assert requests.count("api/stream") == 1 and "api/state" not in requests
        assert server.push.pushed > 5  # (ten a second) one stream, many events
    finally:
        server.stop()


def test_a_slider_sets_its_param_within_its_range(page: Any, engine: FakeEngine) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        expect(page.locator("#params input[type=range]")).to_have_count(len(PARAMS))
        cutoff = page.locator("#param-cutoff")
        expect(cutoff).to_have_attribute("min", "200")
        expect(cutoff).to_have_attribute("max", "8000")
        expect(cutoff).to_have_value("1000")  # the engine's value, from the state
        cutoff.press("End")
        assert wait_until(lambda: params_seen(engine).get("cutoff") == 8000.0, 5.0)
        page.locator("#param-density").press("Home")
        assert wait_until(lambda: params_seen(engine).get("density") == 0.0, 5.0)
        expect(page.locator("#param-density-value")).to_have_text("0.00")
        # the level is a slider too
        page.locator("#master").press("Home")
        assert wait_until(lambda: SetMaster(0.0) in engine.seen(), 5.0)
        assert page.console_errors == []
    finally:
        server.stop()


def test_an_xy_pad_sets_two_params_at_once(page: Any, engine: FakeEngine) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        # three parameters: density x cutoff, and the odd one out with the level
        expect(page.locator("#pads .pad")).to_have_count(2)
        expect(page.locator("#pad-space-master")).to_be_visible()
        box = page.locator("#pad-density-cutoff").bounding_box()
        page.mouse.click(box["x"] + 0.25 * box["width"], box["y"] + 0.25 * box["height"])
        assert wait_until(lambda: {"density", "cutoff"} <= set(params_seen(engine)), 5.0)
        seen = params_seen(engine)
        assert abs(seen["density"] - 0.25) < 0.02  # a quarter across
        assert abs(seen["cutoff"] - (200 + 0.75 * 7800)) < 0.02 * 7800  # three quarters up
        # a drag sends the values on the way; the last one is where the pointer let go
        page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.9 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + 0.9 * box["width"], box["y"] + 0.1 * box["height"],
                        steps=8)
        page.mouse.up()
        assert wait_until(lambda: abs(params_seen(engine)["density"] - 0.9) < 0.02, 5.0)
        assert wait_until(lambda: abs(params_seen(engine)["cutoff"] - 7220) < 160, 5.0)
        assert page.console_errors == []
    finally:
        server.stop()


def test_a_launch_shows_the_pending_switch_and_the_bar_it_lands_on(
        page: Any, engine: FakeEngine) -> None:
    engine.hold_switch = True  # the switch waits for the bar line, until land()
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        expect(page.locator("#launch-calm")).to_have_class("current")
        page.click("#launch-storm")
        expect(page.locator("#launch-storm")).to_have_class("pending")
        bar = engine.next_bar
        assert engine.next_scene == "storm" and bar is not None
        expect(page.locator("#pending")).to_have_text(f"next: storm at bar {bar}")
        assert page.inner_text("#scene-name") == "calm"  # not yet
        engine.land()
        expect(page.locator("#scene-name")).to_have_text("storm")
        expect(page.locator("#launch-storm")).to_have_class("current")
        expect(page.locator("#pending")).to_have_text("")
        expect(page.locator("#landed")).to_have_text(f"storm came in at bar {bar} (requested)")
        assert engine.seen() == [SetScene("storm")]
    finally:
        server.stop()


def test_mute_and_solo_per_voice(page: Any, engine: FakeEngine) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        page.click("#solo-lead")  # solo: every other voice muted
        expect(page.locator("#solo-lead")).to_have_class("solo on")
        expect(page.locator("#mute-bass")).to_have_text("unmute bass")
        page.click("#solo-lead")  # and back
        expect(page.locator("#solo-lead")).to_have_class("solo")
        expect(page.locator("#mute-bass")).to_have_text("mute bass")
        assert engine.seen() == [Mute("bass", True), Mute("bass", False)]
    finally:
        server.stop()


def test_learn_buttons_show_while_midi_control_is_on(page: Any, engine: FakeEngine) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#learn-density")).to_be_visible()
        page.click("#learn-density")
        page.click("#learn-tempo")
        assert wait_until(lambda: engine.seen() == [Learn("density"), Learn("tempo")], 5.0)
        expect(page.locator("#message")).to_contain_text("move a MIDI knob")
        engine.learn = False
        expect(page.locator("#learn-density")).to_be_hidden()
        expect(page.locator("#learn-tempo")).to_be_hidden()
    finally:
        server.stop()


def test_the_teach_box_records_trains_and_runs(page: Any, engine: FakeEngine) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        expect(page.locator("#teach-box")).to_be_hidden()  # a scene without [teach]
        engine.teach = {"examples": 0, "recording": False, "running": False, "model": None,
                        "last": None, "error": None, "message": "", "training": False,
                        "outputs": ["param:density", "tempo"], "inputs": ["brightness"]}
        expect(page.locator("#teach-box")).to_be_visible()
        expect(page.locator("#teach-run")).to_be_disabled()  # nothing trained yet
        page.click("#teach-record")
        expect(page.locator("#teach-record")).to_have_text("Stop recording")
        page.click("#teach-snapshot")
        page.click("#teach-record")
        expect(page.locator("#teach-record")).to_have_text("Record")
        page.click("#teach-train")
        expect(page.locator("#teach-status")).to_contain_text("model: knn on 1 examples")
        page.click("#teach-run")
        expect(page.locator("#teach-run")).to_have_text("Stop running")
        expect(page.locator("#teach-status")).to_contain_text("outputs: param:density, tempo")
        assert [c for c in engine.seen() if isinstance(c, Teach)] == [
            Teach("record"), Teach("snapshot"), Teach("stop_recording"), Teach("train"),
            Teach("run")]
    finally:
        server.stop()


def test_tapping_sets_the_tempo(page: Any, engine: FakeEngine) -> None:
    page.clock.install(time=datetime(2026, 1, 1, 20, 0))
    server = start(engine)
    try:
        page.goto(server.url)
        # from here the page's clock steps only when told: taps exactly 500 ms apart
        page.clock.pause_at(datetime(2026, 1, 1, 20, 1))
        for _ in range(4):
            page.click("#tap")
            page.clock.run_for(500)
        assert wait_until(lambda: SetTempo(120.0) in engine.seen(), 5.0)
        expect(page.locator("#tap")).to_have_text("Tap 120.0")
    finally:
        server.stop()


def test_scopes_and_the_piano_roll_draw(page: Any, engine: FakeEngine) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        roll = page.locator("#roll")
        assert wait_until(lambda: int(roll.get_attribute("data-notes") or 0) > 20, 5.0)
        assert drawn_pixels(roll) > 500
        scope = page.locator("#scope-brightness")
        assert wait_until(lambda: drawn_pixels(scope) > 50, 5.0)  # a few seconds of history
        assert drawn_pixels(page.locator("#scope-motion")) == 0  # NaN: nothing to draw
    finally:
        server.stop()


def test_the_page_plays_on_a_phone(browser: Any, engine: FakeEngine, tmp_path: Path) -> None:
    server = start(engine)
    ctx, page = open_page(browser, viewport=PHONE, is_mobile=True, has_touch=True,
                          device_scale_factor=2)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        # one column: nothing wider than the screen, the launch buttons big enough for a thumb
        for section in page.locator("section:visible").all():
            box = section.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert page.locator("#launch-night").bounding_box()["height"] >= 44
        page.tap("#launch-night")
        expect(page.locator("#scene-name")).to_have_text("night")
        pad = page.locator("#pad-density-cutoff")
        pad.scroll_into_view_if_needed()
        box = pad.bounding_box()
        page.touchscreen.tap(box["x"] + 0.75 * box["width"], box["y"] + 0.5 * box["height"])
        assert wait_until(lambda: abs(params_seen(engine).get("density", -1) - 0.75) < 0.03,
                          5.0)
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
        assert page.console_errors == []
    finally:
        ctx.close()
        server.stop()
