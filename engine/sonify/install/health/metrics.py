"""Prometheus metrics for the running engine, on a registry of its own.

The registry is private (not prometheus-client's global ``REGISTRY``), so two engines in one
process (tests) never collide, and nothing another library registers globally leaks into
``/metrics``. The health server serves ``render()``; prometheus-client's ``start_http_server``
is never used (it binds every interface).

Metric names carry the ``sonify_`` namespace: ``sonify_frames_total``, ``sonify_notes_total``,
``sonify_drops_total{output}``, ``sonify_reconnects_total{output}``,
``sonify_control_rejected_total{reason}``, ``sonify_analysis_seconds`` (histogram),
``sonify_dispatch_lateness_seconds`` (histogram), ``sonify_fps``, ``sonify_uptime_seconds``,
``sonify_output_connected{output}``.

Who calls what, and how often (every method is thread-safe):

- ``frame(analysis_s)``: the capture thread, once per analysed frame (camera rate, ~30 Hz;
  a counter increment and a histogram observation, about a microsecond each).
- ``observe_lateness_batch(values_s)`` or ``observe_lateness_ring(ring, total)``: the music
  thread, about once a second. Dispatch lateness comes at up to 1 kHz, so it is never observed
  one event at a time from the dispatch thread: the scheduler already keeps every lateness in a
  ring buffer, and the batch is binned here with NumPy in one pass (a few microseconds for a
  thousand values) into a histogram this module exposes itself.
- ``notes(total)``, ``output(name, connected, dropped, reconnects)``, ``fps(value)``,
  ``control_rejections(by_reason)``: the music thread, at its status interval, with the
  *cumulative* counts the parts already keep (``Scheduler.notes_sent``, ``Output.stats``, the
  OSC server's ``stats.rejected``); the counters advance by the difference since the last call,
  so nothing on a hot path has to know about Prometheus.
- ``control_rejected(reason)``: one rejected control request (the health server calls it for
  its own rejections).

``uptime`` is computed when scraped, from the moment the Metrics object was made (or
``start()``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily, Metric

NAMESPACE = "sonify"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Analysis of one frame: ~1 ms on a small frame, a frame period (33 ms) is the budget at 30 fps.
ANALYSIS_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25, 1.0)
# Dispatch lateness: 0.05 ms (a good real-time thread) to 50 ms (audibly late).
LATENESS_BUCKETS_S = (0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


class _BatchHistogram:
    """A histogram fed in batches with NumPy, exposed through a custom collector: one
    ``searchsorted`` + ``bincount`` per batch instead of a locked Python call per value."""

    def __init__(self, name: str, documentation: str, buckets_s: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self._upper = np.asarray(buckets_s, dtype=np.float64)
        self._counts = np.zeros(len(buckets_s) + 1, dtype=np.int64)  # last bin is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values_s: Sequence[float] | np.ndarray) -> None:
        values = np.asarray(values_s, dtype=np.float64).ravel()
        if values.size == 0:
            return
        values = values[np.isfinite(values)]
        # Prometheus buckets are "less than or equal": side="left" puts v == bound in that bin
        bins = np.searchsorted(self._upper, values, side="left")
        counts = np.bincount(bins, minlength=len(self._counts))
        total = float(values.sum())
        with self._lock:
            self._counts += counts
            self._sum += total

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        buckets = [(_le(b), float(c)) for b, c in zip(self._upper, cumulative[:-1], strict=True)]
        buckets.append(("+Inf", float(cumulative[-1])))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets,
                                    sum_value=total)

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation)


def _le(bound: float) -> str:
    return repr(float(bound))


class Metrics:
    """The engine's metrics on their own ``CollectorRegistry``; ``render()`` is the text that
    ``/metrics`` serves."""

    def __init__(self, namespace: str = NAMESPACE) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r, ns = self.registry, namespace
        self._frames = Counter("frames", "Frames analysed.", namespace=ns, registry=r)
        self._notes = Counter("notes", "Notes sent (note-ons dispatched).", namespace=ns,
                              registry=r)
        self._drops = Counter("drops", "Events an output failed to transmit.", ["output"],
                              namespace=ns, registry=r)
        self._reconnects = Counter("reconnects", "Times an output got its peer back.",
                                   ["output"], namespace=ns, registry=r)
        self._rejected = Counter("control_rejected", "Control requests refused, by reason.",
                                 ["reason"], namespace=ns, registry=r)
        self._commands = Counter("commands", "Control commands by kind and what became of "
                                 "them: applied, coalesced (replaced by a newer one of the "
                                 "same key) or dropped (rate limit, queue full).",
                                 ["kind", "outcome"], namespace=ns, registry=r)
        self._healthy = Gauge("healthy", "1 while /health is ok, 0 while it lists a problem.",
                              namespace=ns, registry=r)
        self._analysis = Histogram("analysis_seconds", "Time to analyse one frame.",
                                   namespace=ns, registry=r, buckets=ANALYSIS_BUCKETS_S)
        self._lateness = _BatchHistogram(
            f"{ns}_dispatch_lateness_seconds",
            "How late events were sent after their scheduled time.", LATENESS_BUCKETS_S)
        r.register(self._lateness)
        self._fps = Gauge("fps", "Frames analysed per second (recent average).", namespace=ns,
                          registry=r)
        self._uptime = Gauge("uptime_seconds", "Seconds since the engine started.",
                             namespace=ns, registry=r)
        self._connected = Gauge("output_connected", "1 while an output's peer is there.",
                                ["output"], namespace=ns, registry=r)
        self._started = time.monotonic()
        self._uptime.set_function(lambda: time.monotonic() - self._started)
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}  # cumulative counts already counted
        self._ring_seen = 0
        self._children: dict[tuple[object, ...], Any] = {}

    # -- hot-ish paths ------------------------------------------------------------------------

    def frame(self, analysis_s: float) -> None:
        """One analysed frame and how long its analysis took (capture thread, per frame)."""
        self._frames.inc()
        self._analysis.observe(analysis_s)

    def observe_lateness_batch(self, values_s: Sequence[float] | np.ndarray) -> None:
        """Dispatch lateness values (seconds) since the last call; call about once a second."""
        self._lateness.observe_many(values_s)

    def observe_lateness_ring(self, ring_s: np.ndarray, total: int) -> int:
        """Observe the values a ring buffer received since the last call.

        ``ring_s[i % len(ring_s)]`` holds the i-th value and ``total`` is how many were ever
        written (the Scheduler's lateness window and its count). Values overwritten before this
        call saw them are skipped; returns how many were. Call from one thread, about once a
        second, so that at 1 kHz nothing is lost from a 4096-entry ring.
        """
        size = len(ring_s)
        with self._lock:
            seen = self._ring_seen
            if total < seen:  # a new scheduler (restart): start over
                seen = 0
            self._ring_seen = total
        new = total - seen
        if new <= 0 or size == 0:
            return 0
        skipped = max(0, new - size)
        start = max(seen, total - size)
        idx = np.arange(start, total) % size
        self._lateness.observe_many(ring_s[idx])
        return skipped

    # -- status interval (cumulative counts) --------------------------------------------------

    def notes(self, total: int) -> None:
        """The cumulative number of notes sent (``Scheduler.notes_sent``)."""
        self._advance(self._notes, ("notes", ""), total)

    def output(self, name: str, *, connected: bool, dropped: int, reconnects: int) -> None:
        """One output's state and cumulative counts (``Output.connected``, ``Output.stats``)."""
        self._child(self._connected, output=name).set(1.0 if connected else 0.0)
        self._advance(self._child(self._drops, output=name), ("drops", name), dropped)
        self._advance(self._child(self._reconnects, output=name), ("reconnects", name),
                      reconnects)

    def fps(self, value: float) -> None:
        self._fps.set(value)

    def control_rejected(self, reason: str, count: int = 1) -> None:
        """``count`` control requests refused for ``reason`` (e.g. ``unknown_scene``)."""
        if count > 0:
            self._rejected.labels(reason=reason).inc(count)

    def control_rejections(self, by_reason: Mapping[str, int]) -> None:
        """Cumulative rejection counts by reason (the OSC server's ``stats.rejected``)."""
        for reason, total in by_reason.items():
            self._advance(self._child(self._rejected, reason=reason), ("rejected", reason),
                          total)

    def commands(self, by_kind: Mapping[str, tuple[int, int, int]]) -> None:
        """Cumulative (applied, coalesced, dropped) per command kind (``CommandQueue.stats``)."""
        for kind, counts in by_kind.items():
            for outcome, total in zip(("applied", "coalesced", "dropped"), counts, strict=True):
                self._advance(self._child(self._commands, kind=kind, outcome=outcome),
                              (f"commands:{outcome}", kind), total)

    def healthy(self, ok: bool) -> None:
        self._healthy.set(1.0 if ok else 0.0)

    def start(self) -> None:
        """Restart the uptime clock (when the engine actually starts playing)."""
        self._started = time.monotonic()

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    # -- exposition ---------------------------------------------------------------------------

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (serve with ``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def _child(self, metric: Any, **labels: str) -> Any:
        """``metric.labels(**labels)``, looked up once (prometheus-client's labels() is slow
        for something called every second for every output and command kind)."""
        key = (id(metric), *sorted(labels.items()))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child

    def _advance(self, counter: Counter, key: tuple[str, str], total: float) -> None:
        with self._lock:
            last = self._last.get(key, 0.0)
            # a count that went down belongs to a new object (an output rebuilt): count it anew
            delta = total - last if total >= last else total
            self._last[key] = total
        if delta > 0:
            counter.inc(delta)

