"""The status page in a real headless Chromium (Debian's, driven by Playwright).

Playwright never downloads a browser here: it launches /usr/bin/chromium (package
``chromium``). Missing chromium or playwright skips locally and fails under CI=true.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sonify.commands import Mute, Panic, SetScene
from sonify.install.health.metrics import Metrics
from sonify.install.health.server import HealthServer
from tests.conftest import IN_CI, require_program, wait_until
from tests.health.fakes import FakeEngine

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
TOKEN = "page-token-0123456789"  # at least MIN_TOKEN_LENGTH (16)


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install playwright; no 'playwright install')"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return sync_playwright


def expect(locator: Any) -> Any:
    # Playwright's expect polls in its own injected script, which the page's CSP (no eval)
    # allows; page.wait_for_function(string) would need 'unsafe-eval'.
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_program("chromium", "chromium")
    sync_playwright = _playwright()
    with sync_playwright() as pw:
        # Playwright gives the browser a fresh temporary profile (--user-data-dir) itself
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


def start(engine: FakeEngine, token: str | None = None) -> HealthServer:
    return HealthServer("127.0.0.1", 0, health=engine.health, state=engine.state,
                        thumbnail=engine.thumbnail, command=engine.command, metrics=Metrics(),
                        scenes=engine.scenes, token=token, poll_interval_s=0.02).start()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    try:
        yield pg
    finally:
        context.close()


def test_page_shows_live_values_and_switches_scene(page: Any, engine: FakeEngine,
                                                   tmp_path: Path) -> None:
    server = start(engine)
    try:
        page.goto(server.url)
        expect(page.locator("#conn")).to_have_text("live")
        assert page.inner_text("#scene-name") == "calm"
        assert page.inner_text("#mood") == "serene"
        # live: the frame count and a feature move while we watch (polled every 500 ms)
        frames0 = int(page.inner_text("#frames"))
        bright0 = page.inner_text("#feature-brightness")
        assert wait_until(lambda: int(page.inner_text("#frames")) > frames0, 5.0)
        assert wait_until(lambda: page.inner_text("#feature-brightness") != bright0, 5.0)
        assert page.inner_text("#feature-motion") == "-"  # NaN came through as null
        # the thumbnail is a real picture
        expect(page.locator("#thumb")).to_have_js_property("naturalWidth", 64)
        # outputs: one waiting
        assert "osc 127.0.0.1:9000 (waiting)" in page.inner_text("#outputs")

        # scene switch: pick "storm", click, the command sink sees it and the page shows it
        expect(page.locator("#scene-select option")).to_have_count(3)
        page.select_option("#scene-select", "storm")
        page.click("#scene-switch")
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
        expect(page.locator("#scene-select option")).to_have_count(3)
        page.select_option("#scene-select", "night")
        page.click("#scene-switch")
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
    the thumbnail is the frame, a button press switches the scene at the next beat."""
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
    c.scene.name = "calm"
    c.scene.quantize = "beat"
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
        expect(page.locator("#scene-name")).to_have_text("calm")
        frames0 = int(page.inner_text("#frames"))
        assert wait_until(lambda: int(page.inner_text("#frames")) > frames0 + 10, 10.0)
        expect(page.locator("#thumb")).to_have_js_property("naturalWidth", 320)
        page.select_option("#scene-select", "energize")
        page.click("#scene-switch")
        expect(page.locator("#scene-name")).to_have_text("energize", timeout=15_000)
        assert rt.scene.name == "energize"
        page.screenshot(path=str(tmp_path / "live-page.png"), full_page=True)
        assert page.console_errors == []
    finally:
        rt.stop()
        runner.join(10.0)
