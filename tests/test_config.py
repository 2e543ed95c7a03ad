from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Config, ConfigError, load_config, parse_host_port


def test_default_file_holds_exactly_the_built_in_defaults() -> None:
    assert load_config().model_dump() == Config().model_dump()


def test_every_error_is_named_with_its_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[midi]\napi = "oss"\nportt = "x"\n[music]\nlookahead_s = -1\n')
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert str(bad) in text and "3 invalid" in text
    assert "midi.api: " in text and "alsa, jack" in text
    assert "midi.portt: unknown setting" in text
    assert "music.lookahead_s" in text


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[source\ninput = 1\n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_config(bad)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_osc_targets_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "osc.toml"
    bad.write_text('[osc]\ntargets = ["localhost"]\n')
    with pytest.raises(ConfigError, match="HOST:PORT"):
        load_config(bad)
    assert parse_host_port("127.0.0.1:57120") == ("127.0.0.1", 57120)


def test_environment_picks_the_midi_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONIFY_MIDI_PORT", "fluid")
    assert load_config().midi.port == "fluid"
