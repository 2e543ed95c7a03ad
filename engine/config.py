"""Runtime configuration: configs/*.toml validated once into typed settings, with named errors.

Environment variables only pick devices (``SONIFY_MIDI_PORT``, as mido's
``MIDO_DEFAULT_OUTPUT`` does); everything else comes from the file and the command line.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.control.midi_in import MidiControlConfig
from engine.net import is_loopback

if TYPE_CHECKING:
    from engine.service.hours import OpeningHours

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, the keys and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class AnalysisConfig(_Model):
    width: Annotated[int, Field(ge=0, le=7680)] = 480
    smoothing_s: dict[str, Annotated[float, Field(ge=0, le=600)]] = {}


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


MOODS = ("calm", "happy", "energetic", "tense", "sad")


class AutoConfig(_Model):
    enabled: bool = False
    scenes: dict[str, str] = {"calm": "calm", "sad": "calm", "happy": "gallery",
                              "energetic": "energize", "tense": "city"}
    hold_s: Annotated[float, Field(ge=0.0, le=3600)] = 10.0
    dwell_s: Annotated[float, Field(ge=0.0, le=86400)] = 60.0

    @field_validator("scenes")
    @classmethod
    def _moods(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(v) - set(MOODS))
        if bad:
            raise ValueError(f"unknown mood(s) {', '.join(bad)}: moods are {', '.join(MOODS)}")
        return v


class ControlConfig(_Model):
    port: Annotated[int, Field(ge=0, le=65535)] = 9000
    host: str = "127.0.0.1"
    allow: list[str] = []
    max_future_s: Annotated[float, Field(ge=0.0, le=3600)] = 10.0
    oscquery_port: Annotated[int, Field(ge=0, le=65535)] = 9001
    trigger_channel: Annotated[int, Field(ge=1, le=16)] = 1
    trigger_length_s: Annotated[float, Field(gt=0.0, le=10.0)] = 0.25
    midi: MidiControlConfig = MidiControlConfig()


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
    stream_features_hz: Annotated[float, Field(ge=0.0, le=200.0)] = 0.0

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


class RecordConfig(_Model):
    midi_file: str = ""
    fallback_midi_file: str = "sonify-recording.mid"


class StatusConfig(_Model):
    interval_s: Annotated[float, Field(ge=0.0, le=3600)] = 1.0


class HttpConfig(_Model):
    port: Annotated[int, Field(ge=0, le=65535)] = 8765
    host: str = "127.0.0.1"
    token: str = ""  # required when host is not a loopback address

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
        from engine.service.hours import OpeningHours

        return OpeningHours.from_settings(self.week, dates=self.dates, fade_s=self.fade_s,
                                          timezone=self.timezone, where="hours")


class Config(_Model):
    source: SourceConfig = SourceConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    scene: SceneConfig = SceneConfig()
    auto: AutoConfig = AutoConfig()
    control: ControlConfig = ControlConfig()
    http: HttpConfig = HttpConfig()
    sync: SyncConfig = SyncConfig()
    service: ServiceConfig = ServiceConfig()
    hours: HoursConfig = HoursConfig()
    music: MusicConfig = MusicConfig()
    midi: MidiConfig = MidiConfig()
    osc: OscConfig = OscConfig()
    record: RecordConfig = RecordConfig()
    status: StatusConfig = StatusConfig()


def parse_host_port(text: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); a ValueError that says what is expected otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:57120)")
    return host.strip("[]"), int(port)


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: {exc.error_count()} invalid setting(s):"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting (see configs/default.toml for every setting)"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None) -> Config:
    """The config in ``path`` (default: configs/default.toml, or built-in defaults when that
    file is absent, e.g. in an installed wheel), validated; ConfigError on any problem."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return Config()
        path = DEFAULT_CONFIG
    p = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(p, exc)) from None
    env_port = os.environ.get("SONIFY_MIDI_PORT")
    if env_port:
        config.midi.port = env_port
    return config
