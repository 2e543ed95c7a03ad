"""Ableton Link through ``aalink``: two real Link peers in two processes, and the timeline maths.

The two-process tests run both peers in a private network namespace that holds only a loopback
interface (with multicast switched on), so Link's discovery multicast never leaves this
machine: Link announces itself on every interface that is up, and the tests must not talk to
the network. Making the namespace needs root (CI and the dev machines run as root) or
unprivileged user namespaces.

aalink is an optional extra (``pip install 'sonify-engine[link]'``): without it these tests
skip locally and fail under CI (CI=true), where it is installed.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sonify.timing.link import INSTALL_HINT, LinkSync, LinkUnavailableError
from tests.conftest import IN_CI, stop_process, wait_until

REPO = Path(__file__).resolve().parents[2]
PEER_SCRIPT = Path(__file__).with_name("link_peer.py")
QUANTUM = 4.0
# Link carries tempo between peers as whole microseconds per beat: 130 BPM comes back as
# 130.00013, so tempos are compared within this.
TEMPO_TOL_BPM = 0.01
# The same moment on two peers: Link's own clock sync is good to tens of microseconds on one
# machine; 0.002 beats is 1 ms at 120 BPM (a JACK period at 48 kHz/64 frames is 1.3 ms).
PHASE_TOL_BEATS = 0.002
CONVERGE_S = 2.0


def _need_aalink() -> None:
    """Skip without aalink locally (as ``pytest.importorskip`` would, but for any ImportError,
    a broken build too); fail under CI, which installs the extra."""
    try:
        import aalink  # noqa: F401
    except ImportError as exc:
        reason = f"aalink is not importable ({exc}); {INSTALL_HINT}"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# -- the private network ------------------------------------------------------------------

NETNS_SETUP = ("ip link set lo up && ip link set lo multicast on && "
               "ip route add 224.0.0.0/4 dev lo && echo ready && exec sleep 120")


@pytest.fixture(scope="module")
def netns() -> Iterator[list[str]]:
    """A network namespace with only loopback; yields the command prefix that runs a
    program inside it. Its holder process is stopped by PID in teardown."""
    _need_aalink()
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed (Debian packages util-linux, iproute2)")
    root = os.geteuid() == 0
    unshare = ["unshare", "--net"] if root else ["unshare", "--user", "--map-root-user",
                                                 "--net"]
    holder = subprocess.Popen([*unshare, "sh", "-c", NETNS_SETUP], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([holder.stdout], [], [], 5.0)
        line = holder.stdout.readline() if ready and holder.stdout else ""
        if line.strip() != "ready":
            stop_process(holder)
            err = holder.stderr.read() if holder.stderr else ""
            _unavailable(f"cannot make a private network namespace for Link ({err.strip()})")
        enter = ["nsenter", "-t", str(holder.pid), "-n"]
        if not root:
            enter[1:1] = ["-U", "--preserve-credentials"]
        yield enter
    finally:
        stop_process(holder)


class Peer:
    """A ``link_peer.py`` process, asked one JSON answer per command."""

    def __init__(self, enter: list[str], bpm: float) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [*enter, sys.executable, str(PEER_SCRIPT), str(bpm), str(QUANTUM)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.hello = self._read(10.0)

    def _read(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"Link peer gave no answer in {timeout_s} s "
                                 f"(exit code {self.proc.poll()})")
        reply: dict[str, Any] = json.loads(line)
        assert "error" not in reply, reply
        return reply

    def ask(self, command: str, timeout_s: float = 5.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read(timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(5.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        stop_process(self.proc)


@pytest.fixture(scope="module")
def pair(netns: list[str]) -> Iterator[tuple[Peer, Peer, float]]:
    """Two peers offering different tempos (100 and 130 BPM), once they have found each
    other; the third item is how long that took from the first one's start."""
    started = time.perf_counter()
    a = Peer(netns, 100.0)
    b = Peer(netns, 130.0)
    try:
        found = wait_until(lambda: a.ask("peers")["peers"] >= 1 and b.ask("peers")["peers"] >= 1,
                           timeout_s=5.0, interval_s=0.02)
        assert found, "the two Link peers did not find each other within 5 s"
        yield a, b, time.perf_counter() - started
    finally:
        a.close()
        b.close()


def at_same_moment(a: Peer, b: Peer, lead_s: float = 0.05) -> tuple[dict[str, Any],
                                                                      dict[str, Any]]:
    """Both peers' timelines read at one shared moment (perf_counter is system-wide)."""
    t = time.perf_counter() + lead_s
    return a.ask(f"timeline {t!r}"), b.ask(f"timeline {t!r}")


def phase_gap(beat_a: float, beat_b: float) -> float:
    """Distance between two beats modulo the quantum (0 when their bars line up)."""
    gap = (beat_a - beat_b) % QUANTUM
    return min(gap, QUANTUM - gap)


def until_both_at(a: Peer, b: Peer, bpm: float) -> float:
    """Seconds until both peers report ``bpm``; fails after CONVERGE_S."""
    started = time.perf_counter()
    while True:
        ta, tb = at_same_moment(a, b, lead_s=0.0)
        if abs(ta["bpm"] - bpm) < TEMPO_TOL_BPM and abs(tb["bpm"] - bpm) < TEMPO_TOL_BPM:
            return time.perf_counter() - started
        assert time.perf_counter() - started < CONVERGE_S, (
            f"tempo did not reach {bpm} on both peers in {CONVERGE_S} s: "
            f"{ta['bpm']:.4f} and {tb['bpm']:.4f}")
        time.sleep(0.01)


# -- two processes ------------------------------------------------------------------------

def test_two_processes_find_each_other_and_settle_on_one_tempo(pair: tuple[Peer, Peer, float]
                                                               ) -> None:
    a, b, found_s = pair
    assert a.hello["bpm"] == 100.0 and b.hello["bpm"] == 130.0
    ta, tb = at_same_moment(a, b)
    # the peer that joins takes the session's tempo: one of the two offered, on both
    assert abs(ta["bpm"] - tb["bpm"]) < TEMPO_TOL_BPM
    assert min(abs(ta["bpm"] - 100.0), abs(ta["bpm"] - 130.0)) < TEMPO_TOL_BPM
    print(f"\nLink peers found each other {found_s:.2f} s after start, at {ta['bpm']:.4f} BPM")


def test_beats_agree_modulo_the_quantum_at_the_same_moment(pair: tuple[Peer, Peer, float]
                                                          ) -> None:
    a, b, _ = pair
    gaps = [phase_gap(ta["beat"], tb["beat"]) for ta, tb in
            (at_same_moment(a, b) for _ in range(5))]
    assert max(gaps) < PHASE_TOL_BEATS, gaps
    print(f"\nphase gap over 5 shared moments: max {max(gaps):.6f} beats")


def test_a_tempo_change_from_either_side_reaches_the_other(pair: tuple[Peer, Peer, float]
                                                           ) -> None:
    a, b, _ = pair
    a.ask(f"propose 117 {time.perf_counter() + 0.02!r}")
    a_to_b = until_both_at(a, b, 117.0)
    b.ask(f"propose 90.5 {time.perf_counter()!r}")
    b_to_a = until_both_at(a, b, 90.5)
    ta, tb = at_same_moment(a, b)
    assert phase_gap(ta["beat"], tb["beat"]) < PHASE_TOL_BEATS
    print(f"\ntempo change a->b in {a_to_b:.3f} s, b->a in {b_to_a:.3f} s; "
          f"phase gap after {phase_gap(ta['beat'], tb['beat']):.6f} beats")


def test_a_quantised_start_lands_both_on_the_same_bar_line(pair: tuple[Peer, Peer, float]
                                                           ) -> None:
    a, b, _ = pair
    t = time.perf_counter() + 0.1
    sa, sb = a.ask(f"start {t!r}"), b.ask(f"start {t!r}")
    beat_s = 60.0 / at_same_moment(a, b, lead_s=0.0)[0]["bpm"]
    assert t <= sa["at"] < t + QUANTUM * beat_s + 0.01
    assert abs(sa["at"] - sb["at"]) < PHASE_TOL_BEATS * beat_s
    for start in (sa, sb):
        assert start["origin_beat"] % QUANTUM == 0
    # at the start each engine is at its beat 0, which is a bar line in Link's session
    ta = a.ask(f"timeline {sa['at']!r}", timeout_s=QUANTUM * beat_s + 5.0)
    tb = b.ask(f"timeline {sa['at']!r}", timeout_s=5.0)
    for tl in (ta, tb):
        assert abs(tl["beat"]) < PHASE_TOL_BEATS
        assert phase_gap(tl["raw_beat"], 0.0) < PHASE_TOL_BEATS
    # start/stop sync: the session's transport started with them
    ta, tb = at_same_moment(a, b)
    assert ta["playing"] and tb["playing"]
    print(f"\nquantised start: {sa['at'] - t:.3f} s after the request, peers "
          f"{abs(sa['at'] - sb['at']) * 1e6:.0f} us apart, Link beats {sa['origin_beat']:g} "
          f"and {sb['origin_beat']:g}")


# -- one process, Link kept local (enabled=False: nothing on the network) -------------------

@pytest.fixture
def local() -> Iterator[LinkSync]:
    _need_aalink()
    link = LinkSync(120.0, quantum=QUANTUM, enabled=False)
    yield link
    link.close()


def test_alone_the_timeline_is_links_own_and_runs_at_its_tempo(local: LinkSync) -> None:
    t0 = time.perf_counter()
    first = local.timeline(t0)
    time.sleep(0.1)
    t1 = time.perf_counter()
    second = local.timeline(t1)
    assert first.bpm == second.bpm == 120.0
    assert second.beat - first.beat == pytest.approx((t1 - t0) * 2.0, abs=1e-4)
    # a time ahead is the same line, extrapolated
    assert local.timeline(t1 + 1.0).beat == pytest.approx(second.beat + 2.0, abs=1e-4)


def test_next_downbeat_is_a_bar_line_at_or_after_the_moment(local: LinkSync) -> None:
    now = time.perf_counter()
    down = local.next_downbeat(now)
    assert now <= down < now + QUANTUM * 0.5 + 1e-6
    # Link reads its clock in whole microseconds: a few microbeats of noise
    assert phase_gap(local.timeline(down).beat, 0.0) < 1e-5
    assert local.next_downbeat(down) == pytest.approx(down, abs=1e-5)


def test_start_makes_the_next_bar_line_beat_zero(local: LinkSync) -> None:
    now = time.perf_counter()
    expected = local.next_downbeat(now)
    at = local.start(now)
    # Link keeps its timeline in whole microseconds: starting re-stamps it
    assert at == pytest.approx(expected, abs=1e-5)
    assert local.origin_beat % QUANTUM == 0
    assert local.timeline(at).beat == pytest.approx(0.0, abs=1e-4)
    assert local.timeline(at).playing


def test_a_tempo_proposed_ahead_takes_effect_at_its_time(local: LinkSync) -> None:
    now = time.perf_counter()
    change_at = now + 0.15
    before = local.timeline(change_at)
    local.propose_tempo(140.0, change_at)
    assert local.timeline(change_at - 0.01).bpm == 120.0
    later = local.timeline(change_at + 0.5)
    assert later.bpm == 140.0
    # the beat grid is continuous through the change
    assert later.beat == pytest.approx(before.beat + 0.5 * 140.0 / 60.0, abs=1e-4)
    time.sleep(0.25)
    assert local._link.tempo == pytest.approx(140.0)  # committed to Link itself by now
    assert local.timeline(change_at + 0.5).beat == pytest.approx(later.beat, abs=0.003)
    local.propose_tempo(5.0, time.perf_counter())  # below Link's range: clamped, not raised
    assert local.timeline(time.perf_counter()).bpm == 20.0


def test_a_later_proposal_replaces_a_pending_one(local: LinkSync) -> None:
    now = time.perf_counter()
    local.propose_tempo(150.0, now + 0.1)
    local.propose_tempo(90.0, now + 0.05)
    time.sleep(0.2)
    assert local.timeline(time.perf_counter()).bpm == pytest.approx(90.0)


def test_close_is_idempotent_and_a_closed_link_says_so() -> None:
    _need_aalink()
    link = LinkSync(100.0, enabled=False)
    link.close()
    link.close()
    with pytest.raises(RuntimeError, match="closed"):
        link.timeline(time.perf_counter())
    link.propose_tempo(120.0, 0.0)  # ignored, not raised: the runtime may race its close


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="1000"):
        LinkSync(1000.0, enabled=False)
    with pytest.raises(ValueError, match="quantum"):
        LinkSync(120.0, quantum=0.0, enabled=False)


def test_without_aalink_link_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setitem(sys.modules, "aalink", None)  # import aalink -> ImportError
    with pytest.raises(LinkUnavailableError, match=r"pip install 'sonify-engine\[link\]'"):
        LinkSync(120.0)
