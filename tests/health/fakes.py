"""A fake engine for the health server: changing state, a command sink, a thumbnail."""

from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np

from sonify.commands import Command, Freeze, Mute, SetScene, SetTempo

SCENES = ["calm", "storm", "night"]
VOICES = ["bass", "lead"]


def jpeg(width: int = 64, height: int = 48) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (40, 120, 220)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


class FakeEngine:
    """Stands in for the Runtime: ``state()`` changes over time (frames, a feature), and the
    command sink applies scene, mute and freeze as the runtime would, so the page shows them."""

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

    def _maybe_fail(self, what: str) -> None:
        if what in self.fail:
            raise RuntimeError(f"{what} exploded")

    def state(self) -> dict[str, Any]:
        self._maybe_fail("state")
        elapsed = time.monotonic() - self.t0
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
            }

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
                case SetScene(name):
                    self.scene = name
                case Mute(voice, muted):
                    (self.muted.add if muted else self.muted.discard)(voice)
                case Freeze(on):
                    self.frozen = on
                case SetTempo(bpm):
                    self.tempo_bpm = bpm

    def seen(self) -> list[Command]:
        with self._lock:
            return list(self.commands)
