"""A fake engine for the health server: changing state, a command sink, a thumbnail."""

from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np

from sonify.commands import (
    Command,
    Freeze,
    Mute,
    SetMaster,
    SetParam,
    SetScene,
    SetTempo,
    Teach,
)

SCENES = ["calm", "storm", "night"]
VOICES = ["bass", "lead"]
PARAMS = {"density": (0.0, 1.0), "cutoff": (200.0, 8000.0), "space": (0.0, 1.0)}
BEATS_PER_BAR = 4


def jpeg(width: int = 64, height: int = 48) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (40, 120, 220)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


class FakeEngine:
    """Stands in for the Runtime: ``state()`` changes over time (frames, a feature, the beat,
    the notes played), and the command sink applies scene, mute, freeze, tempo, params and the
    level as the runtime would, so the page shows them. With ``hold_switch`` a scene change
    waits (``next_scene``, at the next bar) until ``land()``, as a quantised switch does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.t0 = time.monotonic()
        self.scene = "calm"
        self.muted: set[str] = set()
        self.frozen = False
        self.tempo_bpm = 96.0
        self.commands: list[Command] = []
        self.ok = True
        self.problems: list[str] = []
        self.midi_problem: str | None = None
        self.thumb: bytes | None = jpeg()
        self.fail: set[str] = set()  # callbacks that raise
        self.params = {"density": 0.5, "cutoff": 1000.0, "space": 0.2}
        self.master = 1.0
        self.learn = True  # MIDI control is on: learn buttons show
        self.hold_switch = False
        self.next_scene: str | None = None
        self.next_bar: int | None = None
        self.last_change: dict[str, Any] | None = None
        self.teach: dict[str, Any] | None = None  # a scene with [teach]: the Teach box shows

    def _maybe_fail(self, what: str) -> None:
        if what in self.fail:
            raise RuntimeError(f"{what} exploded")

    def state(self) -> dict[str, Any]:
        self._maybe_fail("state")
        elapsed = time.monotonic() - self.t0
        beat = elapsed * self.tempo_bpm / 60.0
        with self._lock:
            return {
                "scene": self.scene, "mood": "serene", "tempo_bpm": self.tempo_bpm,
                "fps": 29.7, "frames": int(elapsed * 30), "notes": int(elapsed * 4),
                "lateness_p99_ms": 0.42, "frozen": self.frozen, "muted": sorted(self.muted),
                "voices": list(VOICES),
                "features": {"brightness": round(0.5 + 0.4 * np.sin(elapsed * 3), 4),
                             "warmth": 0.25, "motion": float("nan")},
                "outputs": [{"name": "midi", "connected": True, "dropped": 0,
                             "problem": self.midi_problem},
                            {"name": "osc 127.0.0.1:9000", "connected": False, "dropped": 3}],
                "problems": list(self.problems),
                "params": dict(self.params), "param_ranges": {k: list(v) for k, v in
                                                              PARAMS.items()},
                "master": self.master, "learn": self.learn, "beats_per_bar": BEATS_PER_BAR,
                "beat": round(beat, 3), "bar": _bar(beat), "next_scene": self.next_scene,
                "next_scene_bar": self.next_bar, "last_change": self.last_change,
                "clock_s": round(elapsed, 3), "recent_notes": _notes(elapsed),
                "teach": dict(self.teach) if self.teach is not None else None,
            }

    def land(self) -> None:
        """The pending scene comes in (at the bar it was announced for)."""
        with self._lock:
            assert self.next_scene is not None, "no scene is pending"
            self.scene = self.next_scene
            self.last_change = {"scene": self.scene, "bar": self.next_bar, "why": "requested"}
            self.next_scene = self.next_bar = None

    def health(self) -> dict[str, Any]:
        self._maybe_fail("health")
        return {"ok": self.ok, "uptime_s": time.monotonic() - self.t0,
                "source": {"name": "demo", "ok": True}, "outputs": [], "errors": []}

    def thumbnail(self) -> bytes | None:
        self._maybe_fail("thumbnail")
        return self.thumb

    def scenes(self) -> list[str]:
        self._maybe_fail("scenes")
        return list(SCENES)

    def command(self, cmd: Command) -> None:
        self._maybe_fail("command")
        with self._lock:
            self.commands.append(cmd)
            match cmd:
                case SetScene(name) if self.hold_switch:
                    self.next_scene = name
                    self.next_bar = _bar((time.monotonic() - self.t0) * self.tempo_bpm / 60) + 1
                case SetScene(name):
                    self.scene = name
                case SetParam(name, value):
                    self.params[name] = value
                case SetMaster(level):
                    self.master = level
                case Mute(voice, muted):
                    (self.muted.add if muted else self.muted.discard)(voice)
                case Freeze(on):
                    self.frozen = on
                case SetTempo(bpm):
                    self.tempo_bpm = bpm
                case Teach(action) if self.teach is not None:
                    t = self.teach
                    if action in ("record", "stop_recording"):
                        t["recording"] = action == "record"
                    elif action in ("run", "stop_running"):
                        t["running"] = action == "run"
                    elif action == "snapshot":
                        t["examples"] += 1
                    elif action == "train":
                        t["model"] = {"algorithm": "knn", "examples": t["examples"],
                                      "trained_at": "2026-11-30 05:30:00", "train_ms": 4.0}
                    t["message"] = f"did {action}"

    def seen(self) -> list[Command]:
        with self._lock:
            return list(self.commands)


def _bar(beat: float) -> int:
    return int(beat // BEATS_PER_BAR) + 1


def _notes(elapsed: float) -> list[list[Any]]:
    """Eight seconds of notes, four a second, up to half a second ahead (a lookahead)."""
    last = int((elapsed + 0.5) * 4)
    return [[k / 4, 0.2, 60 + (k * 5) % 12, 100, VOICES[k % 2]]
            for k in range(max(0, last - 32), last + 1)]
