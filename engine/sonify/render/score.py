"""The score picture: a render's PNG, so a reader sees the piece's form at a glance.

From top to bottom, on one time axis (seconds):

1. the picture with the eye's path over it, and the mood over time beside it;
2. the feature curves (brightness, warmth, chroma, motion, valence, arousal);
3. the form, from the render's ``Marker`` events: the **sections** as coloured bands labelled
   A, B, A' (else the sections at cuts, numbered), the **key** and each change of it, the
   **chords** by name (each at its change; names that would overlap are thinned), the
   **phrases** as ticks and the **cadences** as marks (``|`` half, ``||`` authentic, ``|||``
   final);
4. the **tempo** curve from the ``Tempo`` events, with its lowest and highest BPM;
5. the piano roll, a colour per voice, under vertical lines at each section.

Markers are optional: a piece without them gets the sections at cuts and no key/chord rows'
labels, as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from sonify.capture.travel import window_at
from sonify.events import Marker, Tempo

if TYPE_CHECKING:
    from sonify.render.core import RenderResult

CURVES = (("brightness", (255, 255, 255)), ("warmth", (60, 140, 255)),
          ("chroma", (200, 80, 255)), ("motion", (80, 220, 80)),
          ("valence", (255, 200, 60)), ("arousal", (60, 60, 240)))
FONT = cv2.FONT_HERSHEY_SIMPLEX
SECTION_COLOURS = ((90, 60, 40), (40, 80, 60), (60, 50, 90), (80, 80, 40))  # BGR, dark
TEXT = (230, 230, 230)
DIM = (150, 150, 150)
CADENCE_BARS = {"half": 1, "authentic": 2, "final": 3}


def _voice_colour(i: int) -> tuple[int, int, int]:
    hue = (i * 47) % 180
    hsv = np.array([[[hue, 170, 255]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def _put(img: np.ndarray, text: str, xy: tuple[int, int], scale: float = 0.5,
         colour: tuple[int, int, int] = TEXT) -> None:
    cv2.putText(img, text, xy, FONT, scale, colour, 1, cv2.LINE_AA)


def _text_w(text: str, scale: float = 0.5) -> int:
    return int(cv2.getTextSize(text, FONT, scale, 1)[0][0])


class _Axis:
    def __init__(self, margin: int, plot_w: int, duration_s: float) -> None:
        self.margin, self.plot_w, self.dur = margin, plot_w, max(duration_s, 1e-6)

    def x(self, t: float) -> int:
        return self.margin + int(self.plot_w * min(max(t / self.dur, 0.0), 1.0))


def _markers(result: RenderResult, kind: str) -> list[Marker]:
    return [ev for ev in result.events if isinstance(ev, Marker) and ev.kind == kind]


def _key_label(m: Marker) -> str:
    f = m.fields()
    return f"{f.get('root', '?')} {f.get('scale', '').replace('_', ' ')}".strip()


def _draw_thumbnail(img: np.ndarray, result: RenderResult, y0: int, margin: int, thumb_h: int,
                    width: int) -> None:
    if result.thumbnail is None:
        return
    th = result.thumbnail
    scale = thumb_h / th.shape[0]
    tw = min(int(th.shape[1] * scale), width // 2)
    img[y0:y0 + thumb_h, margin:margin + tw] = cv2.resize(th, (tw, thumb_h),
                                                          interpolation=cv2.INTER_AREA)
    if result.path:
        steps = 200
        pts = []
        for k in range(steps + 1):
            w = window_at(result.path, result.duration_s * k / steps)
            pts.append((margin + int(w.cx * tw), y0 + int(w.cy * thumb_h)))
        cv2.polylines(img, [np.array(pts, np.int32)], False, (0, 255, 255), 2, cv2.LINE_AA)
        for key in result.path:
            hw, hh = key.size * tw / 2, key.size * thumb_h / 2
            cx, cy = margin + key.cx * tw, y0 + key.cy * thumb_h
            cv2.rectangle(img, (int(cx - hw), int(cy - hh)), (int(cx + hw), int(cy + hh)),
                          (0, 200, 255), 1, cv2.LINE_AA)
        cv2.circle(img, pts[0], 6, (80, 255, 80), -1, cv2.LINE_AA)
    tx = margin + tw + 30
    _put(img, "mood over time", (tx, y0 + 24), 0.6)
    for i, (a, b, label) in enumerate(result.mood_spans()[:10]):
        _put(img, f"{a:6.1f} - {b:6.1f} s  {label}", (tx, y0 + 54 + 24 * i), 0.55, (200, 200, 200))


def _draw_curves(img: np.ndarray, result: RenderResult, ax: _Axis, y1: int, h: int) -> None:
    cv2.rectangle(img, (ax.margin, y1), (ax.margin + ax.plot_w, y1 + h), (60, 60, 60), 1)
    for j, (name, colour) in enumerate(CURVES):
        pts = [(ax.x(t), y1 + h - int(h * min(max(v[name], 0.0), 1.0)))
               for t, v, _ in result.timeline]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 1, cv2.LINE_AA)
        _put(img, name, (ax.margin + 130 * j, y1 - 8), 0.5, colour)


def _spans(starts: list[tuple[float, str]], end: float) -> list[tuple[float, float, str]]:
    return [(t, starts[i + 1][0] if i + 1 < len(starts) else end, label)
            for i, (t, label) in enumerate(starts)]


def _draw_form(img: np.ndarray, result: RenderResult, ax: _Axis, y: int) -> int:
    """Sections, key, chords, phrases and cadences; returns the y below them."""
    row = 26
    sections = [(m.t, m.fields().get("name", "?")) for m in _markers(result, "section")]
    if not sections:
        sections = [(t, str(i + 1)) for i, t in enumerate(result.sections)]
    _put(img, "section", (8, y + 18), 0.45, DIM)
    for i, (a, b, label) in enumerate(_spans(sections, result.duration_s)):
        colour = SECTION_COLOURS[i % len(SECTION_COLOURS)]
        cv2.rectangle(img, (ax.x(a), y), (max(ax.x(b) - 1, ax.x(a) + 1), y + row - 2), colour, -1)
        _put(img, label, (ax.x(a) + 6, y + 18), 0.6)
    y += row
    keys = [(m.t, _key_label(m)) for m in _markers(result, "key")]
    _put(img, "key", (8, y + 18), 0.45, DIM)
    last = None
    for a, b, label in _spans(keys, result.duration_s):
        cv2.line(img, (ax.x(a), y + 2), (ax.x(a), y + row - 4), (120, 200, 255), 2)
        cv2.line(img, (ax.x(a), y + row - 4), (ax.x(b), y + row - 4), (70, 110, 140), 1)
        if label != last:
            _put(img, label, (ax.x(a) + 5, y + 17), 0.5, (120, 200, 255))
        last = label
    y += row
    _put(img, "chord", (8, y + 18), 0.45, DIM)
    free_x = 0
    for m in _markers(result, "chord"):
        x = ax.x(m.t)
        cv2.line(img, (x, y + 2), (x, y + row - 2), (90, 90, 90), 1)
        name = m.fields().get("name", "?")
        if x + 3 >= free_x:
            _put(img, name, (x + 3, y + 17), 0.45)
            free_x = x + 3 + _text_w(name, 0.45) + 4
    y += row
    _put(img, "phrase", (8, y + 16), 0.45, DIM)
    for m in _markers(result, "phrase"):
        x = ax.x(m.t)
        cv2.line(img, (x, y + 2), (x, y + row - 4), (200, 200, 120), 2)
    for m in _markers(result, "cadence"):
        kind = m.fields().get("type", "")
        x = ax.x(m.t)
        for k in range(CADENCE_BARS.get(kind, 1)):
            cv2.line(img, (x - 6 + 4 * k, y + 4), (x - 6 + 4 * k, y + row - 4), (80, 200, 255), 1)
        _put(img, "auth" if kind == "authentic" else kind, (x + 6, y + 16), 0.4, (80, 200, 255))
    return y + row


def _draw_tempo(img: np.ndarray, result: RenderResult, ax: _Axis, y: int, h: int) -> None:
    cv2.rectangle(img, (ax.margin, y), (ax.margin + ax.plot_w, y + h), (60, 60, 60), 1)
    _put(img, "tempo", (8, y + 16), 0.45, DIM)
    changes = [(ev.t, ev.bpm) for ev in result.events if isinstance(ev, Tempo)]
    if not changes:
        changes = [(0.0, result.tempo_bpm)]
    lo, hi = min(b for _, b in changes), max(b for _, b in changes)
    span = max(hi - lo, 4.0)  # a steady tempo draws as a flat line mid-strip, not as noise
    mid = (hi + lo) / 2

    def y_of(bpm: float) -> int:
        return y + h // 2 - int((bpm - mid) / span * (h - 16))

    pts: list[tuple[int, int]] = []
    for t, bpm in changes:
        if pts:
            pts.append((ax.x(t), pts[-1][1]))  # a step: a tempo holds until the next
        pts.append((ax.x(t), y_of(bpm)))
    pts.append((ax.x(result.duration_s), pts[-1][1]))
    cv2.polylines(img, [np.array(pts, np.int32)], False, (80, 220, 255), 2, cv2.LINE_AA)
    label = f"{lo:.0f} BPM" if hi - lo < 0.5 else f"{lo:.0f}-{hi:.0f} BPM"
    _put(img, label, (ax.margin + ax.plot_w - _text_w(label) - 6, y + 16), 0.5, (80, 220, 255))


def _draw_roll(img: np.ndarray, result: RenderResult, ax: _Axis, y2: int, h: int) -> None:
    cv2.rectangle(img, (ax.margin, y2), (ax.margin + ax.plot_w, y2 + h), (60, 60, 60), 1)
    if not result.notes:
        return
    lo = min(n["pitch"] for n in result.notes) - 1
    hi = max(n["pitch"] for n in result.notes) + 1
    row = h / max(1, hi - lo + 1)
    voices = sorted({n["voice"] for n in result.notes})
    colour_of = {v: _voice_colour(i) for i, v in enumerate(voices)}
    for n in result.notes:
        x_a = ax.x(n["t"])
        x_b = max(ax.x(n["t"] + n["duration_s"]), x_a + 1)
        y_b = y2 + h - int((n["pitch"] - lo) * row)
        cv2.rectangle(img, (x_a, y_b - max(1, int(row))), (x_b, y_b), colour_of[n["voice"]], -1)
    for i, v in enumerate(voices[:10]):
        _put(img, v or "-", (ax.margin + 10 + 150 * i, y2 + h + 22), 0.5, colour_of[v])


def draw_piece(result: RenderResult, width: int = 1600) -> np.ndarray:
    """The score picture (see the module docstring), ``width`` pixels wide, BGR."""
    margin = 70
    plot_w = width - 2 * margin
    thumb_h, curves_h, form_h, tempo_h, roll_h = 300, 200, 4 * 26, 70, 360
    height = 40 + thumb_h + 40 + curves_h + 16 + form_h + 8 + tempo_h + 12 + roll_h + 50
    img = np.full((height, width, 3), 24, np.uint8)
    ax = _Axis(margin, plot_w, result.duration_s)
    _put(img, f"{Path(result.input).name}  |  scene {result.scene}  |  {result.duration_s:.1f} s"
              f"  |  {len(result.notes)} notes  |  seed {result.seed}", (margin, 28), 0.7)
    y0 = 40
    _draw_thumbnail(img, result, y0, margin, thumb_h, width)
    y1 = y0 + thumb_h + 40
    _draw_curves(img, result, ax, y1, curves_h)
    y_form = y1 + curves_h + 16
    y_tempo = _draw_form(img, result, ax, y_form) + 8
    _draw_tempo(img, result, ax, y_tempo, tempo_h)
    y_roll = y_tempo + tempo_h + 12
    for s in result.sections[1:]:
        cv2.line(img, (ax.x(s), y1), (ax.x(s), y_roll + roll_h), (90, 90, 160), 1)
    _draw_roll(img, result, ax, y_roll, roll_h)
    dur = result.duration_s
    for k in range(0, int(dur) + 1, max(1, int(dur // 10) or 1)):
        _put(img, f"{k}s", (ax.x(k) - 8, height - 8), 0.45, DIM)
    return img
