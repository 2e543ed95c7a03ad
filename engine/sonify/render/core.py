"""``sonify render``: a photo, a folder of images or a video becomes a piece of music, as files.

The live parts on a virtual clock (as ``offline.py``): the same analyzer, scene player, driver
and scheduler, with a file source. A still picture is travelled (``capture/travel.py``) so the
piece has a shape: an opening that grows louder as the eye closes in, a development over the
picture's regions, and an ending that draws back out, softer and slower. A video is analysed
frame by frame on its own timeline; each scene cut starts a new section (the scene's harmony
starts afresh) and the cut's trigger sounds within one frame of it, so the WAV can be laid under
the video.

Outputs by extension: ``.mid`` (type 1, a track per voice), ``.wav`` (the built-in synth),
``.png`` (a picture of the piece) and ``.json`` (the event list). The files are written only
when the whole piece has rendered, all or nothing (``atomicio.staged``): each to a temporary
file beside it, renamed into place only when every one of them was written, so a full disk
leaves no file, partial or whole (``RenderWriteError``).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sonify.capture import SourceError, open_source
from sonify.capture.base import Frame, Source
from sonify.capture.convert import is_image_path, read_image
from sonify.capture.factory import is_sequence_spec
from sonify.capture.files import list_images
from sonify.capture.travel import Keyframe, TravelSource
from sonify.commands import TEMPO_RANGE_BPM
from sonify.config import Config
from sonify.events import (
    ControlChange,
    Event,
    Marker,
    NoteOff,
    NoteOn,
    OscMessage,
    PitchBend,
    ProgramChange,
)
from sonify.features.analyzer import Analyzer, Features
from sonify.outputs.base import Output
from sonify.outputs.recording import RecordingOutput
from sonify.performance import Form, Performance, Script, play
from sonify.performance.vision import VisionStage
from sonify.render.ahead import AnalysisAhead
from sonify.render.score import CURVES, draw_piece
from sonify.scene import load_scene
from sonify.scene.schema import resolve_scene
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler
from sonify.util.atomicio import atomic_write, staged

OUTPUT_KINDS = {".mid": "midi", ".midi": "midi", ".wav": "wav", ".png": "png", ".json": "json"}
IMAGE_DEFAULT_S = 60.0
HOLD_DEFAULT_S = 5.0  # each image of a folder, when neither --hold nor --duration says
MAX_DURATION_S = 3600.0
TRAVEL_FPS = 15.0
BLOCK_S = 0.01


class RenderError(Exception):
    """A render that cannot be done as asked (exit status 2)."""


@dataclass
class RenderResult:
    input: str
    scene: str
    seed: int
    duration_s: float
    tempo_bpm: float
    notes: list[dict] = field(default_factory=list)
    controls: list[dict] = field(default_factory=list)
    osc: list[dict] = field(default_factory=list)
    markers: list[dict] = field(default_factory=list)  # key, chord, section... (events.Marker)
    timeline: list[tuple[float, dict[str, float], str]] = field(default_factory=list)
    sections: list[float] = field(default_factory=list)  # section start times
    events: list[Event] = field(default_factory=list)  # every event sent, in order
    path: list[Keyframe] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    thumbnail: np.ndarray | None = None
    elapsed_s: float = 0.0

    def mood_spans(self) -> list[tuple[float, float, str]]:
        """(start, end, label) of each stretch of one mood, merging stretches under 2 s."""
        spans: list[list] = []
        for t, _, label in self.timeline:
            if spans and spans[-1][2] == label:
                continue
            if spans:
                spans[-1][1] = t
            spans.append([t, self.duration_s, label])
        merged: list[list] = []
        for s in spans:
            if merged and (s[1] - s[0] < 2.0 or merged[-1][2] == s[2]):
                merged[-1][1] = s[1]
            else:
                merged.append(s)
        return [(a, b, c) for a, b, c in merged]


def check_outputs(paths: list[str]) -> list[tuple[Path, str]]:
    if not paths:
        raise RenderError("render needs at least one -o OUT (.mid, .wav, .png or .json)")
    out = []
    for p in paths:
        path = Path(p)
        kind = OUTPUT_KINDS.get(path.suffix.lower())
        if kind is None:
            raise RenderError(f"cannot write {p!r}: the extension must be one of "
                              f"{', '.join(OUTPUT_KINDS)}")
        blocker = _file_in_the_way(path.parent)
        if blocker is not None:
            raise RenderError(f"cannot write {p!r}: {str(blocker)!r} is a file, not a folder")
        out.append((path, kind))
    return out


def _file_in_the_way(folder: Path) -> Path | None:
    """The first part of ``folder`` that exists and is not a folder (the output's folder, made
    when the files are written, cannot be made there), or None."""
    for part in (folder, *folder.parents):
        if part.exists():
            return None if part.is_dir() else part
    return None


def _video_length_s(path: str) -> float | None:
    cap = cv2.VideoCapture(path)
    try:
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    if frames > 0 and fps and math.isfinite(fps) and fps > 0:
        return float(frames / fps)
    return None


def open_input(spec: str, duration_s: float | None, seed: int, hold_s: float | None = None
               ) -> tuple[Source, float, np.ndarray | None, bool]:
    """(source, duration, thumbnail or None, is_still) for a render input; SourceError when it
    cannot be read.

    A folder or glob of images is a slideshow: each image held ``hold_s`` (default: the
    duration shared out between the images, else ``HOLD_DEFAULT_S``) and dissolving into the
    next, and the piece lasts the images times the hold unless ``duration_s`` says otherwise."""
    path = Path(spec)
    if hold_s is not None and not is_sequence_spec(spec):
        raise RenderError(f"--hold is for a folder or glob of images; {spec!r} is not one")
    if is_sequence_spec(spec):
        return _slideshow(spec, duration_s, seed, hold_s)
    if path.is_file() and is_image_path(spec):
        image = read_image(spec)
        if image is None:
            raise SourceError(f"cannot read the image {spec!r}: the file is empty, truncated or "
                              "not an image OpenCV can decode")
        duration = duration_s or IMAGE_DEFAULT_S
        src = TravelSource(image, duration_s=duration, fps=TRAVEL_FPS, seed=seed,
                           name=path.name)
        return src, duration, image, True
    source = open_source(spec, realtime=False, loop=False, seed=seed)
    if path.is_file():  # a video
        length = duration_s or _video_length_s(spec)
        if length is None:
            raise RenderError(f"{spec!r} does not state its length: give --duration")
        return source, length, None, False
    if duration_s is not None:
        return source, duration_s, None, False
    return source, 30.0, None, False  # the demo


def _slideshow(spec: str, duration_s: float | None, seed: int, hold_s: float | None
               ) -> tuple[Source, float, np.ndarray | None, bool]:
    count = len(list_images(spec))
    if hold_s is None:
        hold_s = duration_s / count if duration_s is not None else HOLD_DEFAULT_S
    duration = duration_s if duration_s is not None else count * hold_s
    if duration > MAX_DURATION_S:
        raise RenderError(f"{count} images held {hold_s:g} s each make {duration:g} s, longer "
                          f"than a render can be ({MAX_DURATION_S:g} s): give a shorter --hold "
                          f"or a --duration")
    source = open_source(spec, realtime=False, loop=False, seed=seed, hold_s=hold_s,
                         fps=TRAVEL_FPS)
    return source, duration, None, False


def _make_outputs(files: list[tuple[Path, str]], duration_s: float, loudness_lufs: float,
                  fluid: tuple[str, Path] | None = None) -> tuple[list[Output], RecordingOutput]:
    """The WAV renderers (at the scene's loudness; FluidSynth's when ``fluid`` gives its
    program and soundfont) and the recording every other file is made from (the .mid too: a
    render's events are in memory anyway, so nothing is spooled beside the target)."""
    outputs: list[Output] = []
    for path, kind in files:
        if kind == "wav" and fluid is not None:
            from sonify.outputs.fluidrender import FluidWavRenderer

            outputs.append(FluidWavRenderer(path, program=fluid[0], soundfont=fluid[1],
                                            strict=True, start_s=0.0, duration_s=duration_s,
                                            loudness_lufs=loudness_lufs))
        elif kind == "wav":
            from sonify.outputs.synth import WavRenderer

            outputs.append(WavRenderer(path, start_s=0.0, duration_s=duration_s,
                                       loudness_lufs=loudness_lufs))
    recording = RecordingOutput()
    outputs.append(recording)
    return outputs, recording


def render(spec: str, out_paths: list[str], *, scene: str = "gallery",
           duration_s: float | None = None, tempo_bpm: float | None = None, seed: int = 0,
           progress: Callable[[float, float], None] | None = None,
           script: Script = (), soundfont: str | None = None,
           hold_s: float | None = None) -> RenderResult:
    """Render ``spec`` into every file of ``out_paths``; see the module docstring. ``script``
    issues commands at their times, as a performer would live: ``(seconds, name, arg)``.
    ``soundfont`` (a .sf2/.sf3 path, or "auto"): FluidSynth renders the .wav with it.
    ``hold_s``: each image of a folder or glob held that long (``open_input``)."""
    started = time.perf_counter()
    files = check_outputs(out_paths)
    lo, hi = TEMPO_RANGE_BPM
    if tempo_bpm is not None and not lo <= tempo_bpm <= hi:
        raise RenderError(f"--tempo must be {lo:g}..{hi:g} BPM, got {tempo_bpm:g}")
    if duration_s is not None and not 0 < duration_s <= MAX_DURATION_S:
        raise RenderError(f"--duration must be more than 0 and at most {MAX_DURATION_S:g} s, "
                          f"got {duration_s:g}")
    if hold_s is not None and not 0 < hold_s <= MAX_DURATION_S:
        raise RenderError(f"--hold must be more than 0 and at most {MAX_DURATION_S:g} s, "
                          f"got {hold_s:g}")
    fluid = _fluidsynth(soundfont, files) if soundfont else None
    scene_obj = load_scene(scene)
    source, duration, still, is_still = open_input(spec, duration_s, seed, hold_s)
    outputs, recording = _make_outputs(files, duration, scene_obj.render.loudness_lufs, fluid)
    clock = ManualTime(0.0)
    scheduler = Scheduler(outputs, clock)
    form = Form(duration_s=duration, arc=is_still, sections_at_cuts=not is_still, ending=True)
    config = Config()
    config.scene.name = scene_obj.name
    performance = Performance(config, scheduler, scene=scene_obj, seed=seed,
                              tempo_bpm=tempo_bpm, form=form,
                              scene_path=resolve_scene(scene))
    driver = performance.start(0.0)
    result = RenderResult(spec, scene_obj.name, seed, duration, driver.tempo.bpm,
                          thumbnail=still, sections=form.sections)
    if isinstance(source, TravelSource):
        result.path = source.keyframes
    analyzer = Analyzer()
    vision = VisionStage(performance.vision)  # people, flow, zones: only what the scene reads

    def analyze(frame: Frame) -> Features:
        # analyzer.analyze(frame), done ahead on a worker thread (render/ahead.py)
        features = vision(frame, ahead.analyze(frame))
        result.timeline.append((frame.t, {k: features.values[k] for k, _ in CURVES},
                                features.mood))
        return features

    next_progress = [0.0]

    def show_progress(now: float, events: list[Event], features: Features | None) -> None:
        if progress is not None and now >= next_progress[0]:
            progress(now, duration)
            next_progress[0] = now + duration / 200

    with source:
        frames = iter(source)
        first = next(frames, None)
        if first is None:
            raise SourceError(f"no frame could be read from {spec!r}")
        if result.thumbnail is None:
            result.thumbnail = first.image.copy()
        with AnalysisAhead(itertools.chain([first], frames), analyzer.analyze) as ahead:
            play(iter(ahead), performance, clock, analyze=analyze, start_s=0.0,
                 duration_s=duration, block_s=BLOCK_S, lookahead_s=BLOCK_S, script=script,
                 after_block=show_progress)
    scheduler.stop(panic=True)
    _collect(result, recording)
    result.files = [str(p) for p in _write_files(files, outputs, recording, result, duration)]
    result.elapsed_s = time.perf_counter() - started
    if progress is not None:
        progress(duration, duration)
    return result


def _fluidsynth(soundfont: str, files: list[tuple[Path, str]]) -> tuple[str, Path]:
    """The fluidsynth program and the soundfont for ``--soundfont``; RenderError if either
    is missing, or when no .wav is asked for."""
    from sonify.outputs.fluid import SynthError, find_fluidsynth, find_soundfont

    if not any(kind == "wav" for _, kind in files):
        raise RenderError("--soundfont renders the .wav: add -o FILE.wav")
    program = find_fluidsynth()
    if program is None:
        raise RenderError("--soundfont needs FluidSynth, which is not installed (apt install "
                          "fluidsynth fluid-soundfont-gm); without --soundfont the built-in "
                          "synth renders the .wav")
    try:
        return program, find_soundfont(soundfont)
    except SynthError as exc:
        raise RenderError(f"--soundfont: {exc}") from None


def _collect(result: RenderResult, recording: RecordingOutput) -> None:
    result.events = list(recording.events)
    starts: dict[int, NoteOn] = {}
    for ev in recording.events:
        if isinstance(ev, NoteOn):
            starts[ev.note_id] = ev
        elif isinstance(ev, NoteOff) and ev.note_id in starts:
            on = starts.pop(ev.note_id)
            result.notes.append({"t": round(on.t, 6), "duration_s": round(ev.t - on.t, 6),
                                 "channel": on.channel + 1, "pitch": on.pitch,
                                 "velocity": on.velocity, "voice": on.voice})
        elif isinstance(ev, ControlChange):
            result.controls.append({"t": round(ev.t, 6), "channel": ev.channel + 1,
                                    "control": ev.control, "value": ev.value, "voice": ev.voice})
        elif isinstance(ev, PitchBend):
            result.controls.append({"t": round(ev.t, 6), "channel": ev.channel + 1,
                                    "pitch_bend": ev.value, "voice": ev.voice})
        elif isinstance(ev, ProgramChange):
            result.controls.append({"t": round(ev.t, 6), "channel": ev.channel + 1,
                                    "program": ev.program + 1, "voice": ev.voice})
        elif isinstance(ev, OscMessage):
            result.osc.append({"t": round(ev.t, 6), "address": ev.address,
                               "args": list(ev.args)})
        elif isinstance(ev, Marker):
            result.markers.append({"t": round(ev.t, 6), "kind": ev.kind, "text": ev.text})
    result.notes.sort(key=lambda n: (n["t"], n["channel"], n["pitch"]))


def to_json(result: RenderResult) -> dict:
    return {
        "input": result.input, "scene": result.scene, "seed": result.seed,
        "duration_s": round(result.duration_s, 6), "tempo_bpm": round(result.tempo_bpm, 3),
        "sections": [round(s, 6) for s in result.sections],
        "mood": [{"t0": round(a, 3), "t1": round(b, 3), "label": c}
                 for a, b, c in result.mood_spans()],
        "path": [{"t": round(k.t, 3), "cx": round(k.cx, 4), "cy": round(k.cy, 4),
                  "size": round(k.size, 4)} for k in result.path],
        "notes": result.notes, "controls": result.controls, "osc": result.osc,
        "markers": result.markers,
    }


class RenderWriteError(RenderError):
    """An output file could not be written (a full or read-only disk): none was (exit 1)."""


def _write_files(files: list[tuple[Path, str]], outputs: list[Output],
                 recording: RecordingOutput, result: RenderResult,
                 duration_s: float) -> list[Path]:
    """Write every output file, all or nothing: each goes to a temporary file beside it
    first, and only when all of them are written are they renamed into place."""
    from sonify.outputs.smf import encode_midi_file
    from sonify.outputs.synth import WavRenderer

    wavs = {out.path: out for out in outputs if isinstance(out, WavRenderer)}
    with staged() as batch:
        try:
            for path, _ in files:  # `-o out/piece.mid` makes out/ (checked in check_outputs)
                path.parent.mkdir(parents=True, exist_ok=True)
            for path, kind in files:
                if kind == "wav":  # written into the batch
                    wavs[path].save(end_s=duration_s)
                elif kind == "midi":
                    atomic_write(path, encode_midi_file(recording.events, start_s=0.0,
                                                        end_s=duration_s))
                elif kind == "json":
                    atomic_write(path, json.dumps(to_json(result), indent=1).encode())
                elif kind == "png":
                    ok, png = cv2.imencode(".png", draw_piece(result))
                    if not ok:
                        raise RenderError(f"could not encode {path}")
                    atomic_write(path, png.tobytes())
            return batch.commit()
        except OSError as exc:
            raise RenderWriteError(f"{_write_error(exc)}; no output file was written") from exc
        finally:
            for out in outputs:
                if not isinstance(out, WavRenderer):  # a WAV renderer's close would write
                    out.close()


def _write_error(exc: OSError) -> str:
    if exc.filename is not None:
        return f"cannot write {exc.filename}: {exc.strerror or exc}"
    return str(exc) if str(exc).startswith("cannot") else f"cannot write the output: {exc}"


def summary(result: RenderResult) -> str:
    moods = ", ".join(f"{label} {a:.0f}-{b:.0f} s" for a, b, label in result.mood_spans())
    speed = result.duration_s / result.elapsed_s if result.elapsed_s > 0 else 0.0
    lines = [f"rendered {result.duration_s:.1f} s of {result.scene} from {result.input} in "
             f"{result.elapsed_s:.1f} s ({speed:.0f}x real time)",
             f"  notes: {len(result.notes)} ({len({n['voice'] for n in result.notes})} voices), "
             f"sections: {len(result.sections)}",
             f"  mood: {moods or '-'}"]
    lines += [f"  wrote {f}" for f in result.files]
    return "\n".join(lines)


def progress_bar(stream: object = sys.stderr) -> Callable[[float, float], None]:
    def show(t: float, total: float) -> None:
        frac = 0.0 if total <= 0 else min(1.0, t / total)
        bar = "#" * int(30 * frac)
        print(f"\r[{bar:<30}] {100 * frac:3.0f}%  {t:6.1f}/{total:.1f} s", end="",
              file=stream, flush=True)  # type: ignore[call-overload]
        if frac >= 1.0:
            print(file=stream)  # type: ignore[call-overload]
    return show
