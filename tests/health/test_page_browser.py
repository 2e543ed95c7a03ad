"""The page as a health monitor, in a real headless Chromium (``tests/health/conftest.py``):
live values, commands, the token, problems, a lost engine, and the real engine behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sonify.commands import Mute, Panic, SetScene
from tests.conftest import wait_until
from tests.health.conftest import expect, start
from tests.health.fakes import FakeEngine

TOKEN = "page-token-0123456789"  # at least MIN_TOKEN_LENGTH (16)


def test_page_shows_live_values_and_switches_scene(page: Any, engine: FakeEngine,
                                                   tmp_path: Path) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        assert page.inner_text("#scene-name") == "calm"
        assert page.inner_text("#mood") == "serene"
        # live: the frame count and a feature move while we watch (pushed, never polled)
        frames0 = int(page.inner_text("#frames"))
        bright0 = page.inner_text("#feature-brightness")
        assert wait_until(lambda: int(page.inner_text("#frames")) > frames0, 5.0)
        assert wait_until(lambda: page.inner_text("#feature-brightness") != bright0, 5.0)
        assert page.inner_text("#feature-motion") == "-"  # NaN came through as null
        # the thumbnail is a real picture
        expect(page.locator("#thumb")).to_have_js_property("naturalWidth", 64)
        # outputs: one waiting
        assert "osc 127.0.0.1:9000 (waiting)" in page.inner_text("#outputs")

        # scene launch: press "storm", the command sink sees it and the page shows it
        expect(page.locator("#launch button")).to_have_count(3)
        page.click("#launch-storm")
        assert wait_until(lambda: SetScene("storm") in engine.seen(), 5.0)
        expect(page.locator("#scene-name")).to_have_text("storm")
        assert page.inner_text("#message") == "scene sent"

        # mute a voice: the button turns into "unmute"
        page.click("#mute-bass")
        expect(page.locator("#mute-bass")).to_have_text("unmute bass")
        page.click("#panic")
        assert wait_until(lambda: Panic() in engine.seen(), 5.0)
        page.screenshot(path=str(tmp_path / "health-page.png"), full_page=True)
        assert engine.seen()[:3] == [SetScene("storm"), Mute("bass", True),
                                     Panic()]
        assert page.console_errors == []
    finally:
        server.stop()


def test_page_reports_a_refused_command(page: Any, engine: FakeEngine) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        page.fill("#tempo-input", "999")
        page.click("#tempo-set")
        expect(page.locator("#message")).to_contain_text("20..300")
        assert engine.seen() == []
    finally:
        server.stop()


def test_page_carries_its_token_into_every_request(page: Any, engine: FakeEngine) -> None:
    server = start(engine, token=TOKEN)
    try:
        response = page.goto(server.url)
        assert response.status == 401
        page.goto(f"{server.url}?token={TOKEN}")
        # the server traded the token for a cookie and sent the browser on without it
        assert page.url == server.url and TOKEN not in page.url
        expect(page.locator("#conn")).to_have_text("live")
        page.reload()  # the cookie alone opens the page again
        expect(page.locator("#conn")).to_have_text("live")
        expect(page.locator("#thumb")).to_have_js_property("naturalWidth", 64)
        expect(page.locator("#launch button")).to_have_count(3)
        page.click("#launch-night")
        expect(page.locator("#scene-name")).to_have_text("night")
        assert engine.seen() == [SetScene("night")]
    finally:
        server.stop()


def test_page_shows_what_is_wrong_and_when_all_is_well_again(page: Any,
                                                              engine: FakeEngine) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#health")).to_have_text("healthy")
        engine.problems = ["notes are late: dispatch lateness p99 34.0 ms over the last 5 s "
                           "(limit 20 ms)", "midi:fluid: JACK server is gone"]
        engine.midi_problem = "JACK server is gone"
        expect(page.locator("#health")).to_have_text("2 problems")
        expect(page.locator("#problems li")).to_have_count(2)
        assert "JACK server is gone" in page.inner_text("#problems")
        expect(page.locator("#outputs li").first).to_have_text("midi: JACK server is gone")
        expect(page.locator("#outputs li").first).to_have_class("bad")
        engine.problems, engine.midi_problem = [], None
        expect(page.locator("#health")).to_have_text("healthy")
        expect(page.locator("#problems")).to_have_text("all well")
        assert page.console_errors == []
    finally:
        server.stop()


def test_page_says_when_the_engine_is_gone(page: Any, engine: FakeEngine) -> None:
    server = start(engine)
    page.goto(server.url)
    expect(page.locator("#conn")).to_have_text("live")
    server.stop()
    expect(page.locator("#conn")).to_have_text("engine unreachable")


def test_page_of_a_running_engine(page: Any, tmp_path: Path) -> None:
    """The real engine (demo source, a recording output) behind the page: live values move,
    the thumbnail is the frame, a slider sets the scene's parameter, the notes played scroll
    by, and a launch switches the scene on the bar line the page announced."""
    import socket
    import threading

    from sonify.config import Config
    from sonify.live.runtime import Runtime
    from sonify.outputs.recording import RecordingOutput

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 640, 360
    c.scene.name = "gallery"  # it has a parameter: activity, 0..1
    c.scene.quantize = "bar"
    c.scene.watch = False
    c.control.port = 0
    c.http.port = port
    rt = Runtime(c, [RecordingOutput()])
    runner = threading.Thread(target=rt.run, args=(60.0,), daemon=True)
    runner.start()

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        assert wait_until(listening, 30.0)
        page.goto(f"http://127.0.0.1:{port}/")
        expect(page.locator("#conn")).to_have_text("live")
        expect(page.locator("#scene-name")).to_have_text("gallery")
        frames0 = int(page.inner_text("#frames"))
        assert wait_until(lambda: int(page.inner_text("#frames")) > frames0 + 10, 10.0)
        expect(page.locator("#thumb")).to_have_js_property("naturalWidth", 320)

        # the slider over the scene's parameter: its range, and a key press sets it
        slider = page.locator("#param-activity")
        expect(slider).to_have_attribute("max", "1")
        slider.press("Home")
        assert wait_until(lambda: rt.performance.player.params["activity"] == 0.0, 10.0)
        expect(page.locator("#param-activity-value")).to_have_text("0.00")

        # the piano roll draws the notes the engine played
        assert wait_until(lambda: int(page.locator("#roll").get_attribute("data-notes") or 0)
                          > 0, 15.0)

        # a launch waits for the bar line, and the page says which bar it came in at
        page.click("#launch-energize")
        expect(page.locator("#scene-name")).to_have_text("energize", timeout=15_000)
        expect(page.locator("#landed")).to_contain_text("energize came in at bar")
        assert rt.scene.name == "energize"
        at_s, beat, name, why = rt.scene_changes[-1]
        bar = int(page.inner_text("#landed").split("at bar ")[1].split()[0])
        assert name == "energize" and abs(beat - 4 * (bar - 1)) < 1e-3  # that bar's line
        page.screenshot(path=str(tmp_path / "live-page.png"), full_page=True)
        assert page.console_errors == []
    finally:
        rt.stop()
        runner.join(10.0)
