"""Metrics (own registry, Prometheus text that parses, cheap batched lateness) and the
thumbnailer."""

from __future__ import annotations

import time

import numpy as np
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sonify.install.health.metrics import LATENESS_BUCKETS_S, Metrics


def families(m: Metrics) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(m.render().decode())}


def sample(m: Metrics, name: str, **labels: str) -> float:
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise KeyError((name, labels))


def test_every_metric_is_exposed_and_parses() -> None:
    m = Metrics()
    m.frame(0.004)
    m.output("midi", connected=True, dropped=0, reconnects=0)
    m.control_rejected("unknown_scene")
    names = set(families(m))
    assert {"sonify_frames", "sonify_notes", "sonify_drops", "sonify_reconnects",
            "sonify_control_rejected", "sonify_analysis_seconds",
            "sonify_dispatch_lateness_seconds", "sonify_fps", "sonify_uptime_seconds",
            "sonify_output_connected"} <= names


def test_two_engines_do_not_share_the_global_registry() -> None:
    a, b = Metrics(), Metrics()
    a.frame(0.001)
    assert sample(a, "sonify_frames_total") == 1
    assert sample(b, "sonify_frames_total") == 0
    assert "sonify_frames_total" not in {s.name for f in REGISTRY.collect() for s in f.samples}


def test_cumulative_counts_advance_counters_by_the_difference() -> None:
    m = Metrics()
    m.notes(10)
    m.notes(25)
    m.output("osc", connected=False, dropped=2, reconnects=0)
    m.output("osc", connected=True, dropped=5, reconnects=1)
    m.control_rejections({"malformed": 3})
    m.control_rejections({"malformed": 4})
    assert sample(m, "sonify_notes_total") == 25
    assert sample(m, "sonify_drops_total", output="osc") == 5
    assert sample(m, "sonify_reconnects_total", output="osc") == 1
    assert sample(m, "sonify_output_connected", output="osc") == 1
    assert sample(m, "sonify_control_rejected_total", reason="malformed") == 4
    m.notes(3)  # a new scheduler started from zero: counted on top, never backwards
    assert sample(m, "sonify_notes_total") == 28


def test_analysis_histogram_and_fps_and_uptime() -> None:
    m = Metrics()
    for s in (0.0008, 0.003, 0.03):
        m.frame(s)
    m.fps(29.5)
    assert sample(m, "sonify_analysis_seconds_count") == 3
    assert sample(m, "sonify_analysis_seconds_bucket", le="0.001") == 1
    assert sample(m, "sonify_fps") == 29.5
    time.sleep(0.01)
    assert sample(m, "sonify_uptime_seconds") > 0


def test_lateness_batch_lands_in_the_right_buckets() -> None:
    m = Metrics()
    m.observe_lateness_batch([0.00003, 0.00005, 0.0003, 0.004, 0.2, float("nan")])
    assert LATENESS_BUCKETS_S[0] == 0.00005 and LATENESS_BUCKETS_S[-1] == 0.05
    assert sample(m, "sonify_dispatch_lateness_seconds_bucket", le="5e-05") == 2  # le is <=
    assert sample(m, "sonify_dispatch_lateness_seconds_bucket", le="0.0005") == 3
    assert sample(m, "sonify_dispatch_lateness_seconds_bucket", le="0.05") == 4
    assert sample(m, "sonify_dispatch_lateness_seconds_bucket", le="+Inf") == 5
    assert sample(m, "sonify_dispatch_lateness_seconds_count") == 5
    assert abs(sample(m, "sonify_dispatch_lateness_seconds_sum") - 0.20438) < 1e-9


def test_lateness_ring_reads_only_new_values_and_survives_wrapping() -> None:
    m = Metrics()
    ring = np.zeros(8)
    written = 0

    def write(values: list[float]) -> None:
        nonlocal written
        for v in values:
            ring[written % len(ring)] = v
            written += 1

    write([0.0001] * 5)
    assert m.observe_lateness_ring(ring, written) == 0
    write([0.01] * 6)  # wraps
    assert m.observe_lateness_ring(ring, written) == 0
    assert sample(m, "sonify_dispatch_lateness_seconds_count") == 11
    write([0.03] * 20)  # more than the ring holds between two reads: 12 are lost
    assert m.observe_lateness_ring(ring, written) == 12
    assert sample(m, "sonify_dispatch_lateness_seconds_count") == 19
    assert m.observe_lateness_ring(ring, written) == 0  # nothing new


def test_a_thousand_lateness_values_a_second_cost_little() -> None:
    m = Metrics()
    values = np.random.default_rng(1).exponential(0.0005, 1000)
    start = time.perf_counter()
    for _ in range(100):
        m.observe_lateness_batch(values)
    per_batch_s = (time.perf_counter() - start) / 100
    assert sample(m, "sonify_dispatch_lateness_seconds_count") == 100_000
    assert per_batch_s < 0.002, per_batch_s  # a second's worth of dispatches in < 2 ms


def test_thumbnailer_downscales_caches_and_handles_no_frame() -> None:
    import cv2

    from sonify.install.health.thumbnail import Thumbnailer

    frames: list[np.ndarray | None] = [None]
    calls = 0

    def latest() -> np.ndarray | None:
        nonlocal calls
        calls += 1
        return frames[-1]

    thumb = Thumbnailer(latest, width=160, max_age_s=0.05)
    assert thumb() is None
    frames.append(np.full((480, 640, 3), 200, np.uint8))
    time.sleep(0.06)
    jpeg = thumb()
    assert jpeg is not None and jpeg[:3] == b"\xff\xd8\xff"
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (120, 160, 3)
    before = calls
    assert thumb() is jpeg  # cached: many pages polling cost one encode
    assert calls == before


def test_recent_errors_keep_the_newest_warnings() -> None:
    import logging

    from sonify.install.health.recent import RecentErrors

    handler = RecentErrors.install("engine.test_recent", capacity=3)
    log = logging.getLogger("engine.test_recent")
    try:
        log.info("not kept")
        for i in range(5):
            log.warning("output %d dropped", i)
        snap = handler.snapshot()
        assert [r["message"] for r in snap] == ["output 2 dropped", "output 3 dropped",
                                                "output 4 dropped"]
        assert snap[-1]["level"] == "WARNING" and snap[-1]["where"] == "engine.test_recent"
        assert handler.snapshot(since_s=60) == snap
    finally:
        log.removeHandler(handler)
