"""What a scene may cost: checked when it loads (``Scene``'s validator calls ``check_cost``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sonify.scene.mapping import Mapping

if TYPE_CHECKING:
    from sonify.scene.schema import Rhythm, Scene


# A scene is rendered on the music thread every block, so its cost is bounded at load: a
# 200-voice scene once ran the engine at 4 fps with seconds of lateness. Rendering costs about
# 10-30 us per note here (2 cores), so 1,000 notes a second is a few per cent of a core; it is
# also more than a DIN MIDI cable carries (about 1,000 messages a second). The shipped scenes
# peak at 1-50 notes a second by this estimate (``peak_notes_per_s``).
MAX_VOICES = 32
MAX_CONTROLS = 64
MAX_TRIGGERS = 64
MAX_NOTES_PER_S = 1000.0  # at the scene's fastest tempo, every step that may play playing
MAX_CONTROL_RATE_HZ = 2000.0  # sum of the controls' and the stream's rate_hz
CHORD_NOTES_MAX = 5  # the most notes a chord voice plays at once


def _highest(m: Mapping) -> float:
    """The largest value a mapping can give (its constant, its ``out`` range, else its bounds)."""
    if m.value is not None:
        return float(m.value)
    if m.out is not None:
        return float(max(m.out))
    return float(m.BOUNDS[1])


def _steps_per_beat(r: Rhythm) -> float:
    """Notes per beat the rhythm may play at most (its hits per step times steps per beat)."""
    if r.steps is not None:
        share = sum(c in "xX" for c in r.steps) / max(1, len(r.steps))
    else:
        assert r.euclid is not None
        share = min(1.0, _highest(r.euclid.pulses) / r.euclid.steps)
    return share / r.step_beats


def peak_notes_per_s(scene: Scene) -> float:
    """An upper bound on the notes a second ``scene`` plays, at its fastest tempo."""
    beats_per_s = _highest(scene.tempo.bpm) / 60.0
    bar_beats = scene.harmony.beats_per_bar  # a chords voice without a rhythm: a step a bar
    total = 0.0
    for v in scene.voices:
        parts = getattr(v, "parts", None)  # a drums voice: each part steps on its own
        if parts is not None:
            total += sum(_steps_per_beat(p.rhythm) for p in parts) * beats_per_s
            continue
        per_step = {"notes": 1, "chords": CHORD_NOTES_MAX}.get(v.kind, getattr(v, "max_notes",
                                                                              1))
        step_beats = {"notes": 1.0, "chords": bar_beats, "sparkle": 0.5, "scan": 0.5}[v.kind]
        steps = _steps_per_beat(v.rhythm) if v.rhythm is not None else 1.0 / step_beats
        total += per_step * steps * beats_per_s
    return total


def check_cost(scene: Scene) -> None:
    """ValueError naming what is over the limit, and the limit (see ``MAX_*`` above)."""
    problems = []
    if len(scene.voices) > MAX_VOICES:
        problems.append(f"{len(scene.voices)} voices (at most {MAX_VOICES})")
    if len(scene.controls) > MAX_CONTROLS:
        problems.append(f"{len(scene.controls)} controls (at most {MAX_CONTROLS})")
    if len(scene.triggers) > MAX_TRIGGERS:
        problems.append(f"{len(scene.triggers)} triggers (at most {MAX_TRIGGERS})")
    rate = sum(c.rate_hz for c in scene.controls) + (scene.stream.rate_hz if scene.stream else 0)
    if rate > MAX_CONTROL_RATE_HZ:
        problems.append(f"controls sent {rate:g} times a second in all (at most "
                        f"{MAX_CONTROL_RATE_HZ:g}: lower their rate_hz)")
    if not problems:  # the note rate only means something for a scene of sane size
        notes = peak_notes_per_s(scene)
        if notes > MAX_NOTES_PER_S:
            problems.append(f"up to {notes:.0f} notes a second at its fastest tempo (at most "
                            f"{MAX_NOTES_PER_S:g}: fewer voices, longer step_beats or sparser "
                            f"rhythms)")
    if problems:
        raise ValueError("the scene costs more than the engine plays in real time: "
                         + "; ".join(problems))
