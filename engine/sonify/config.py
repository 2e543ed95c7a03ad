"""Runtime configuration: configs/*.toml validated once into typed settings, with named errors.

Size (about 530 lines): one model per config section, in the order configs/default.toml reads,
so the file is the settings' reference; each section is short and splitting would scatter it.

Environment variables only pick devices (``SONIFY_MIDI_PORT``, as mido's
``MIDO_DEFAULT_OUTPUT`` does); everything else comes from the file and the command line.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sonify.features.registry import MOOD_LABELS, SCALAR_NAMES, SOURCE_NAME
from sonify.limits import TEMPO_RANGE_BPM
from sonify.resources import shipped
from sonify.scene.schema import ZoneSpec
from sonify.util import tomlfile
from sonify.util.net import is_loopback, parse_allow_entry

if TYPE_CHECKING:
    from sonify.features.vision import VisionConfig
    from sonify.timing.hours import OpeningHours

CONFIG_DIR = shipped("configs")
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, the keys and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExtraSourceConfig(_Model):
    """``[[source.extra]]``: one more source, read and analysed beside the main one; scenes
    read its features as ``<name>:<feature>``. Size, rate and the camera watch follow
    ``[source]`` unless given here."""

    name: str
    input: str
    width: Annotated[int, Field(ge=16, le=7680)] | None = None
    height: Annotated[int, Field(ge=16, le=4320)] | None = None
    fps: Annotated[float, Field(gt=0, le=240)] | None = None
    hold_s: Annotated[float, Field(ge=0.0, le=86400.0)] = 0.0

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SOURCE_NAME.match(v) or v in ("param", "zone", "wek"):
            raise ValueError(f"{v!r}: a source name is letters, digits and _ (not starting with a "
                             f"digit, and not 'param', 'zone' or 'wek'), e.g. \"cam1\"; scenes "
                             f"read \"cam1:motion\"")
        return v

    @field_validator("input")
    @classmethod
    def _input(cls, v: str) -> str:
        if not v.strip() or v.strip() == "auto":
            raise ValueError("name the source itself (camera:1, /dev/video2, rtsp://..., a "
                             "folder, demo:night ...): \"auto\" is for the main source only")
        return v


class SourceConfig(_Model):
    input: str = "auto"
    width: Annotated[int, Field(ge=16, le=7680)] = 1280
    height: Annotated[int, Field(ge=16, le=4320)] = 720
    fps: Annotated[float, Field(gt=0, le=240)] = 30.0
    loop: bool = True
    seed: int = 0
    stall_s: Annotated[float, Field(gt=0.0, le=60.0)] = 1.0
    stale_s: Annotated[float, Field(ge=0.0, le=600.0)] = 1.5
    retry_initial_s: Annotated[float, Field(gt=0.0, le=60.0)] = 0.25
    retry_max_s: Annotated[float, Field(gt=0.0, le=600.0)] = 5.0
    wait_for_camera: bool = False
    idle: str = "hold"
    hold_s: Annotated[float, Field(ge=0.0, le=86400.0)] = 0.0
    extra: list[ExtraSourceConfig] = []

    @field_validator("extra")
    @classmethod
    def _unique(cls, v: list[ExtraSourceConfig]) -> list[ExtraSourceConfig]:
        names = [x.name for x in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two extra sources are named {', '.join(twice)}: give each its "
                             f"own name")
        return v


class AnalysisConfig(_Model):
    width: Annotated[int, Field(ge=0, le=7680)] = 480
    threads: Annotated[int, Field(ge=1, le=64)] = 1
    smoothing_s: dict[str, Annotated[float, Field(ge=0, le=600)]] = {}
    # the room's geometry: a zone here moves a scene's [[zones]] of the same name, or adds one
    zones: list[ZoneSpec] = []

    @field_validator("smoothing_s")
    @classmethod
    def _features(cls, v: dict[str, float]) -> dict[str, float]:
        # the same registry the analyser checks against: a key it would refuse is refused here
        bad = [k for k in v if k not in SCALAR_NAMES]
        if bad:
            hints = [f"{k!r} (did you mean {close[0]!r}?)" if close else repr(k)
                     for k in bad for close in [difflib.get_close_matches(k, SCALAR_NAMES, 1)]]
            raise ValueError(f"unknown feature(s) {', '.join(hints)}: smoothing can be set for "
                             f"{', '.join(SCALAR_NAMES)} (`sonify features --list`)")
        return v


class VisionSettings(_Model):
    """``[vision]``: how people, faces and flow are found (only when a scene reads them; see
    ``sonify.features.vision.VisionConfig`` for what each setting does)."""

    width: Annotated[int, Field(ge=32, le=3840)] = 320
    detector: Literal["blobs", "hog", "both"] = "blobs"
    hog_every: Annotated[int, Field(ge=1, le=300)] = 10
    faces: bool = True
    flow: Literal["dis", "farneback"] = "dis"
    background: Literal["mog2", "knn"] = "mog2"
    max_people: Annotated[int, Field(ge=1, le=4)] = 4

    def settings(self) -> VisionConfig:
        from sonify.features.vision import VisionConfig

        return VisionConfig(width=self.width, detector=self.detector, hog_every=self.hog_every,
                            faces=self.faces, flow=self.flow, background=self.background,
                            max_people=self.max_people)


QUANTIZE = ("now", "beat", "bar", "phrase")


class SceneConfig(_Model):
    name: str = "gallery"
    seed: int = 0
    panic_on_change: bool = True
    quantize: str = "bar"
    phrase_bars: Annotated[int, Field(ge=1, le=64)] = 4
    crossfade_s: Annotated[float, Field(ge=0.0, le=60.0)] = 2.0
    watch: bool = True

    @field_validator("quantize")
    @classmethod
    def _quantize(cls, v: str) -> str:
        if v not in QUANTIZE:
            raise ValueError(f"must be one of {', '.join(QUANTIZE)}")
        return v


class AutoConfig(_Model):
    enabled: bool = False
    scenes: dict[str, str] = {"calm": "calm", "sad": "calm", "happy": "gallery",
                              "energetic": "energize", "tense": "city"}
    hold_s: Annotated[float, Field(ge=0.0, le=3600)] = 10.0
    dwell_s: Annotated[float, Field(ge=0.0, le=86400)] = 60.0

    @field_validator("scenes")
    @classmethod
    def _moods(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(v) - set(MOOD_LABELS))
        if bad:
            raise ValueError(f"unknown mood(s) {', '.join(bad)}: moods are "
                             f"{', '.join(MOOD_LABELS)}")
        return v


# -- [control.midi]: MIDI controllers (sonify.control.midi_in) --------------------------------

MIDI_CONTROL_VIRTUAL = "sonify-control"
MIDI_TEMPO_KNOB_BPM = (40.0, 200.0)  # a tempo knob's sweep; within TEMPO_RANGE_BPM


class CcBindingConfig(_Model):
    channel: Annotated[int, Field(ge=0, le=16)] = 0
    cc: Annotated[int, Field(ge=0, le=127)]
    param: Annotated[str, Field(min_length=1)]
    lo: float | None = None
    hi: float | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> CcBindingConfig:
        if (self.lo is None) != (self.hi is None):
            raise ValueError("give both lo and hi, or neither")
        return self


class MidiControlConfig(_Model):
    enabled: bool = False
    api: Literal["auto", "alsa", "jack", "coremidi", "winmm"] = "auto"
    port: str = ""  # name pattern of a MIDI source; "" = the virtual port below
    virtual: str = MIDI_CONTROL_VIRTUAL
    wait_for_port: bool = False
    channel: Annotated[int, Field(ge=0, le=16)] = 0
    notes: Literal["off", "transpose", "trigger"] = "off"
    transpose_root: Annotated[int, Field(ge=0, le=127)] = 60
    program_scenes: list[str] = []
    tempo_range_bpm: tuple[float, float] = MIDI_TEMPO_KNOB_BPM
    learn_file: str = ""  # "" = learned bindings last until the engine stops
    learn_timeout_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 30.0
    cc: list[CcBindingConfig] = []

    @field_validator("tempo_range_bpm")
    @classmethod
    def _tempo(cls, v: tuple[float, float]) -> tuple[float, float]:
        check_tempo_range(v)
        return v

    @model_validator(mode="after")
    def _port_or_virtual(self) -> MidiControlConfig:
        if not self.port.strip() and not self.virtual.strip():
            raise ValueError("give port (a MIDI source name pattern) or virtual (a port name)")
        return self


def check_tempo_range(v: Sequence[float]) -> None:
    lo, hi = TEMPO_RANGE_BPM
    if len(v) != 2 or not all(lo <= x <= hi for x in v) or v[0] == v[1]:
        raise ValueError(f"tempo range {tuple(v)} must be two different tempos within "
                         f"{lo:g}..{hi:g} bpm")



class ControlConfig(_Model):
    port: Annotated[int, Field(ge=0, le=65535)] = 9000
    host: str = "127.0.0.1"
    allow: list[str] = []
    allow_any: bool = False
    max_future_s: Annotated[float, Field(ge=0.0, le=3600)] = 10.0
    oscquery_port: Annotated[int, Field(ge=0, le=65535)] = 9001
    trigger_channel: Annotated[int, Field(ge=1, le=16)] = 1
    trigger_length_s: Annotated[float, Field(gt=0.0, le=10.0)] = 0.25
    midi: MidiControlConfig = MidiControlConfig()

    @field_validator("allow")
    @classmethod
    def _allow(cls, v: list[str]) -> list[str]:
        for entry in v:
            parse_allow_entry(entry)  # the rule the OSC control server applies (sonify.util.net)
        return v

    @model_validator(mode="after")
    def _exposure(self) -> ControlConfig:
        # Checked whatever the port: --control-port can turn the server on after loading.
        if self.allow_any and self.allow:
            raise ValueError("control.allow_any = true obeys every sender, so control.allow "
                             "would be ignored: keep one of them")
        if not is_loopback(self.host) and not self.allow and not self.allow_any:
            raise ValueError(
                f"control.host = {self.host!r} can be reached from other machines, and with "
                "an empty allow list any of them could take control (scene, tempo, panic), "
                "with no password; the OSCQuery description binds there too: list the "
                "senders in control.allow (addresses or networks, e.g. [\"192.168.1.0/24\"]), "
                "or set control.allow_any = true to accept anyone, or bind 127.0.0.1")
        return self

    @property
    def exposed(self) -> bool:
        """Whether the control server (and OSCQuery with it) can be reached from elsewhere."""
        return bool(self.port) and not is_loopback(self.host)


SYNC_SOURCES = ("none", "midi_clock", "link")


class SyncConfig(_Model):
    source: str = "none"
    clock_out: bool = False
    clock_in_port: str = ""
    clock_in_virtual: str = "sonify-clock-in"
    clock_in_latency_ms: Annotated[float, Field(ge=0.0, le=500.0)] = 0.0
    link_quantum: Annotated[float, Field(gt=0.0, le=64.0)] = 4.0

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v not in SYNC_SOURCES:
            raise ValueError(f"must be one of {', '.join(SYNC_SOURCES)}")
        return v


class MusicConfig(_Model):
    lookahead_s: Annotated[float, Field(ge=0.0, le=2.0)] = 0.05
    block_s: Annotated[float, Field(gt=0.0, le=0.5)] = 0.01
    realtime_priority: bool = True


class MidiConfig(_Model):
    enabled: bool = True
    port: str = ""
    virtual: str = "sonify"
    api: str = "auto"
    wait_for_port: bool = True
    startup_sweep: bool = True

    @field_validator("api")
    @classmethod
    def _api(cls, v: str) -> str:
        allowed = ("auto", "alsa", "jack", "coremidi", "winmm")
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return v


class OscConfig(_Model):
    targets: list[str] = []
    prefix: str = "/sonify"
    bundle_latency_s: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    notes: bool = True
    note_offs: bool = False
    note_velocity: Literal["float", "int"] = "float"
    midi_as_osc: bool = False
    stream_features_hz: Annotated[float, Field(ge=0.0, le=200.0)] = 0.0
    stream_changes_only: bool = False

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        for t in v:
            parse_host_port(t)
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if v and not v.startswith("/"):
            raise ValueError("must start with '/' (or be empty)")
        return v.rstrip("/")


class WekinatorConfig(_Model):
    """``[wekinator]``: sonify in Wekinator's place (``sonify.control.wekinator``)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 6448
    out_host: str = "127.0.0.1"
    out_port: Annotated[int, Field(ge=1, le=65535)] = 12000


class RecordConfig(_Model):
    midi_file: str = ""
    fallback_midi_file: str = "sonify-recording.mid"
    split: str = "none"  # a new file every "hour", every "day" (at midnight), or "none"

    @field_validator("midi_file", "fallback_midi_file")
    @classmethod
    def _template(cls, v: str) -> str:
        if "%" in os.path.dirname(v):
            raise ValueError("strftime fields (%Y, %m, %d ...) may be in the file name only, "
                             "not in its folder")
        return v

    @field_validator("split")
    @classmethod
    def _split(cls, v: str) -> str:
        if v not in ("none", "hour", "day"):
            raise ValueError(f"must be one of 'none', 'hour', 'day', got {v!r}")
        return v


SYNTH_DRIVERS = ("auto", "jack", "pulseaudio", "pipewire", "alsa", "file")
"""``[synth] driver`` (as ``sonify.outputs.fluid.DRIVERS``)."""


class SynthConfig(_Model):
    """``sonify run --synth``: FluidSynth (or the built-in synth) plays the music
    (``sonify.outputs.fluid.open_synth``)."""

    enabled: bool = False
    soundfont: str = ""  # "" or "auto": the first General MIDI soundfont found
    driver: str = "auto"
    gain: Annotated[float, Field(gt=0.0, le=10.0)] = 0.5
    wav_file: str = "sonify-synth.wav"

    @field_validator("driver")
    @classmethod
    def _driver(cls, v: str) -> str:
        if v not in SYNTH_DRIVERS:
            raise ValueError(f"must be one of {', '.join(SYNTH_DRIVERS)}")
        return v

    @field_validator("wav_file")
    @classmethod
    def _wav(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("give a file name for the WAV (e.g. \"sonify-synth.wav\")")
        if "%" in os.path.dirname(v):
            raise ValueError("strftime fields (%Y, %m, %d ...) may be in the file name only, "
                             "not in its folder")
        return v


class StatusConfig(_Model):
    interval_s: Annotated[float, Field(ge=0.0, le=3600)] = 1.0


MIN_TOKEN_LENGTH = 16
"""Shortest accepted http.token (sonify.install.health.server.MIN_TOKEN_LENGTH says the same)."""


class HttpConfig(_Model):
    port: Annotated[int, Field(ge=0, le=65535)] = 8765
    host: str = "127.0.0.1"
    token: str = ""  # required when host is not a loopback address

    @field_validator("token")
    @classmethod
    def _token_text(cls, v: str) -> str:
        if not v:
            return v
        if len(v) < MIN_TOKEN_LENGTH:
            raise ValueError(f"is {len(v)} characters long: use at least {MIN_TOKEN_LENGTH} "
                             "(e.g. the output of `python3 -c \"import secrets; "
                             "print(secrets.token_urlsafe(24))\"`)")
        if not (v.isascii() and v.isprintable()) or any(c.isspace() for c in v):
            raise ValueError("must be printable ASCII without spaces (it travels in an HTTP "
                             "header)")
        return v

    @model_validator(mode="after")
    def _token(self) -> HttpConfig:
        if self.port and not is_loopback(self.host) and not self.token:
            raise ValueError(f"host {self.host!r} can be reached from other machines: set "
                             f"http.token (requests then need it) or bind 127.0.0.1")
        return self


class ServiceConfig(_Model):
    watchdog: bool = True
    capture_stall_s: Annotated[float, Field(gt=0.0, le=3600)] = 30.0
    dispatch_stall_s: Annotated[float, Field(gt=0.0, le=3600)] = 5.0
    notify_status_s: Annotated[float, Field(ge=0.0, le=3600)] = 5.0


class HealthConfig(_Model):
    """When /health (and systemd's STATUS=) turn not-ok: see ``sonify.install.health.monitor``."""

    max_lateness_ms: Annotated[float, Field(gt=0.0, le=60_000.0)] = 20.0
    window_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 5.0
    music_stall_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 2.0


class HoursConfig(_Model):
    enabled: bool = False
    timezone: str = ""
    fade_s: Annotated[float, Field(ge=0.0, le=21600)] = 60.0
    fade_control: Annotated[int, Field(ge=0, le=119)] = 11
    week: dict[str, str] = {}
    dates: dict[str, str] = {}

    @model_validator(mode="after")
    def _hours(self) -> HoursConfig:
        if self.enabled:
            self.opening_hours()  # HoursError (a ValueError) names the key
        return self

    def opening_hours(self) -> OpeningHours:
        from sonify.timing.hours import OpeningHours

        return OpeningHours.from_settings(self.week, dates=self.dates, fade_s=self.fade_s,
                                          timezone=self.timezone, where="hours")


class Config(_Model):
    source: SourceConfig = SourceConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    vision: VisionSettings = VisionSettings()
    scene: SceneConfig = SceneConfig()
    auto: AutoConfig = AutoConfig()
    control: ControlConfig = ControlConfig()
    http: HttpConfig = HttpConfig()
    sync: SyncConfig = SyncConfig()
    service: ServiceConfig = ServiceConfig()
    health: HealthConfig = HealthConfig()
    hours: HoursConfig = HoursConfig()
    music: MusicConfig = MusicConfig()
    midi: MidiConfig = MidiConfig()
    osc: OscConfig = OscConfig()
    wekinator: WekinatorConfig = WekinatorConfig()
    record: RecordConfig = RecordConfig()
    synth: SynthConfig = SynthConfig()
    status: StatusConfig = StatusConfig()


def parse_host_port(text: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); a ValueError that says what is expected otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:57120)")
    return host.strip("[]"), int(port)


def _format_errors(path: Path, exc: ValidationError) -> str:
    """One line for one error; a heading and a line per error otherwise."""
    found = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting (see configs/default.toml for every setting)"
        elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
            msg = str(err["ctx"]["error"])  # our own words, without pydantic's "Value error, "
        found.append(f"{key}: {msg}")
    if len(found) == 1:
        return f"{path}: invalid setting {found[0]}"
    return "\n  ".join([f"{path}: {len(found)} invalid settings:", *found])


def exposure_warnings(config: Config) -> list[str]:
    """What the config opens to other machines without a password, in words for the start-up
    log and ``sonify doctor`` (empty when nothing is)."""
    c = config.control
    if not (c.exposed and c.allow_any):
        return []
    where = f"{c.host}:{c.port}"
    query = f" and its OSCQuery description on TCP {c.host}:{c.oscquery_port}" \
        if c.oscquery_port else ""
    return [f"control.allow_any = true: OSC control on UDP {where}{query} can be reached from "
            "other machines, and any of them can switch scenes, change the tempo or panic, "
            "with no password; list the senders in control.allow instead"]


def load_config(path: str | Path | None = None) -> Config:
    """The config in ``path`` (default: configs/default.toml, or built-in defaults when that
    file is absent, e.g. in an installed wheel), validated; ConfigError on any problem."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return Config()
        path = DEFAULT_CONFIG
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from None
    try:
        data: dict[str, Any] = tomlfile.loads(tomlfile.decode(raw))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except tomlfile.TomlContentError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(p, exc)) from None
    env_port = os.environ.get("SONIFY_MIDI_PORT")
    if env_port:
        config.midi.port = env_port
    return config
