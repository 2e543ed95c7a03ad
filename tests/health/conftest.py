"""The health page's browser: Debian's headless Chromium, driven by Playwright.

Playwright never downloads a browser here: it launches /usr/bin/chromium (package
``chromium``). Missing chromium or playwright skips locally and fails under CI=true.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sonify.install.health.metrics import Metrics
from sonify.install.health.server import HealthServer
from tests.conftest import IN_CI, require_program
from tests.health.fakes import FakeEngine

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
DESKTOP = {"width": 1000, "height": 700}
PHONE = {"width": 390, "height": 844}  # a phone held upright


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


def start(engine: FakeEngine, token: str | None = None, **kw: Any) -> HealthServer:
    return HealthServer("127.0.0.1", 0, health=engine.health, state=engine.state,
                        thumbnail=engine.thumbnail, command=engine.command, metrics=Metrics(),
                        scenes=engine.scenes, token=token, poll_interval_s=0.02, **kw).start()


def open_page(browser: Any, **context: Any) -> tuple[Any, Any]:
    """A fresh context (its own cookies) and a page in it that records console errors."""
    ctx = browser.new_context(**{"viewport": DESKTOP, **context})
    pg = ctx.new_page()
    pg.set_default_timeout(10_000)
    pg.console_errors = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    return ctx, pg


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx, pg = open_page(browser)
    try:
        yield pg
    finally:
        ctx.close()
