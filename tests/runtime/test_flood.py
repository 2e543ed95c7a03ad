"""Control traffic cannot break timing: floods of valid commands are coalesced and rate-limited,
and a flood of failing commands writes a handful of log lines, not thousands."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from sonify.capture.demo import DemoSource
from sonify.commands import Learn, SetScene
from sonify.config import Config
from sonify.live.runtime import Runtime, Status
from sonify.outputs.recording import RecordingOutput
from sonify.timing.clock import ManualTime
from sonify.tools.floodbench import run_flood_bench


def virtual_runtime(scene: str = "city", status_cb: Callable[[Status], None] | None = None
                    ) -> tuple[Runtime, RecordingOutput]:
    c = Config()
    c.scene.name = scene
    c.scene.watch = False
    c.control.port = 0
    c.http.port = 0
    out = RecordingOutput()
    rt = Runtime(c, [out], time_source=ManualTime(0.0), status_cb=status_cb,
                 source=DemoSource("city", width=160, height=90, fps=4.0, realtime=False))
    return rt, out


def test_a_flood_of_scene_requests_is_one_change_per_block_and_the_last_one_wins() -> None:
    flooded = []

    def flood(status: Status) -> None:  # once a virtual second: 2,000 requests at once
        if len(flooded) < 3:
            for i in range(2000):
                rt.command(SetScene(("energize", "gallery", "calm")[i % 3]))
            flooded.append(status)

    rt, out = virtual_runtime(status_cb=flood)
    rt.run_virtual(8.0, block_s=0.05)
    stats = rt.commands.stats().kinds["scene"]
    assert stats.received == 6000 and stats.dropped == 0
    assert stats.applied <= 10 and stats.coalesced >= 5990
    assert rt.scene.name == "gallery"  # the last request of the last flood (i = 1999)
    assert [c[2] for c in rt.scene_changes][-1] == "gallery"
    assert out.notes_on  # the music played on
    coalesced = [float(line.split()[-1]) for line in rt.metrics.render().decode().splitlines()
                 if line.startswith('sonify_commands_total{kind="scene",outcome="coalesced"}')]
    assert coalesced and coalesced[0] >= 5990  # and /metrics says so


def test_a_learn_flood_with_midi_control_off_logs_a_few_clear_lines(
        caplog: pytest.LogCaptureFixture) -> None:
    sent = []

    def flood(status: Status) -> None:
        for _ in range(5000):
            rt.command(Learn("stabs"))
        sent.append(5000)

    rt, _ = virtual_runtime(status_cb=flood)
    with caplog.at_level(logging.ERROR, logger="sonify"):
        rt.run_virtual(4.0, block_s=0.05)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum(sent) >= 15000
    assert 1 <= len(errors) <= 3, [r.getMessage() for r in errors]
    assert "[control.midi] enabled = true" in errors[0].getMessage()
    assert rt.commands.stats().kinds["learn"].dropped >= sum(sent) - 100  # rate-limited


def test_two_thousand_valid_messages_a_second_over_udp_keep_the_notes_on_time() -> None:
    """The real thing, end to end: another process floods the OSC control port of the live
    engine. The target (p99 < 1 ms) is the benchmark's (`sonify bench --flood`); the bound
    here holds on a loaded machine and is still far below what a flood did before (a p99 of
    321 ms at 60 messages a second, seconds at 2,000)."""
    b = run_flood_bench(seconds=2.0, rate_per_s=2000.0)
    assert b.sent >= 3000 and b.received >= 0.9 * b.sent
    assert b.coalesced > b.received / 2  # most scene/tempo/freeze requests were superseded
    assert b.flood_events >= 0.5 * b.quiet_events  # the music kept playing (before: 61 events
    assert b.flood_p99_ms < 30.0, b                # in 5 s, p99 1.1 s)
