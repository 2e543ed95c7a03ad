from __future__ import annotations

from pathlib import Path

import pytest

from sonify.config import Config, ConfigError, exposure_warnings, load_config, parse_host_port


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


# -- exposure: control beyond loopback needs an allow list (or an explicit allow_any) ------------

def write(tmp_path: Path, text: str, name: str = "sonify.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", ""])
def test_control_beyond_loopback_needs_an_allow_list(tmp_path: Path, host: str) -> None:
    msg = error_of(write(tmp_path, f'[control]\nhost = "{host}"\n'))
    assert "\n" not in msg  # one line
    assert f"control.host = {host!r} can be reached from other machines" in msg
    assert "control.allow" in msg and "allow_any = true" in msg and "127.0.0.1" in msg
    # the port does not matter: --control-port can switch the server on after loading
    assert "control.host" in error_of(write(tmp_path, f'[control]\nhost = "{host}"\nport = 0\n'))


def test_an_allow_list_or_allow_any_opens_it(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, '[control]\nhost = "0.0.0.0"\n'
                                    'allow = ["192.168.1.20", "10.0.0.0/24", "fd00::/8"]\n'))
    assert c.control.exposed and exposure_warnings(c) == []
    c = load_config(write(tmp_path, '[control]\nhost = "0.0.0.0"\nallow_any = true\n'))
    [warning] = exposure_warnings(c)
    assert "0.0.0.0:9000" in warning and "0.0.0.0:9001" in warning  # control and OSCQuery
    assert "no password" in warning
    # loopback: nothing exposed, nothing to warn about, allow_any or not
    assert exposure_warnings(load_config(write(tmp_path, "[control]\nallow_any = true\n"))) == []
    assert Config().control.allow_any is False


def test_allow_any_and_an_allow_list_contradict(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, '[control]\nhost = "0.0.0.0"\nallow_any = true\n'
                                   'allow = ["10.0.0.1"]\n'))
    assert "allow_any = true obeys every sender" in msg


@pytest.mark.parametrize(("entry", "words"), [
    ("not-an-ip", "'not-an-ip' is not an IP address or network"),
    ("box.local", "host names are not accepted"),
    ("192.168.1.5/24", "host bits set: write the network as 192.168.1.0/24"),
    ("300.1.1.1", "'300.1.1.1' is not an IP address or network"),
    ("", "'' is not an IP address or network"),
])
def test_a_bad_allow_entry_is_named(tmp_path: Path, entry: str, words: str) -> None:
    msg = error_of(write(tmp_path, f'[control]\nallow = ["127.0.0.1", "{entry}"]\n'))
    assert msg.startswith(f"{tmp_path / 'sonify.toml'}: invalid setting control.allow: ")
    assert words in msg


# -- the rest of what `run` refused with a traceback ---------------------------------------------

def test_an_unknown_smoothing_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[analysis]\nsmoothing_s = { brightnes = 1.0, "
                                   "motion = 0.1 }\n"))
    assert "analysis.smoothing_s: unknown feature(s) 'brightnes' (did you mean " \
           "'brightness'?)" in msg
    assert "motion_x" in msg  # the known ones are listed
    c = load_config(write(tmp_path, "[analysis]\nsmoothing_s = { motion = 0.1 }\n"))
    assert c.analysis.smoothing_s == {"motion": 0.1}


def test_a_config_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[scene]\nname = "café"\n'.encode("latin-1"))
    msg = error_of(path)
    assert msg == (f"{path}: not UTF-8 text: byte 0xe9 on line 2, column 12 is not valid UTF-8 "
                   "(the file was saved in another encoding, such as Latin-1 or UTF-16): save "
                   "it as UTF-8")


@pytest.mark.parametrize("value", [
    "[" * 5000 + "]" * 5000,                 # tomllib itself recurses: RecursionError
    "{a=" * 5000 + "1" + "}" * 5000,
    "[" * 40 + "]" * 40,                     # parses, but deeper than anything needs
])
def test_deep_nesting_is_one_clear_error(tmp_path: Path, value: str) -> None:
    msg = error_of(write(tmp_path, f"[source]\ninput = {value}\n"))
    assert "nested" in msg and "32 levels" in msg and "\n" not in msg


def test_deep_dotted_keys_are_one_clear_error(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[analysis]\nsmoothing_s." + ".".join(["a"] * 3000)
                         + " = 1\n"))
    assert "nested more than 32 levels deep (under analysis.smoothing_s.a" in msg


@pytest.mark.parametrize(("token", "words"), [
    ("a", "http.token: is 1 characters long: use at least 16"),
    ("x" * 15, "http.token: is 15 characters long"),
    ("sixteen chars ok", "http.token: must be printable ASCII without spaces"),
])
def test_a_weak_http_token_is_refused_naming_the_setting(tmp_path: Path, token: str,
                                                         words: str) -> None:
    assert words in error_of(write(tmp_path, f'[http]\ntoken = "{token}"\n'))


def test_a_good_http_token_is_accepted(tmp_path: Path) -> None:
    token = "Vq3-xyZ_0123456789ab"
    c = load_config(write(tmp_path, f'[http]\nhost = "0.0.0.0"\ntoken = "{token}"\n'))
    assert c.http.token == token


def test_several_errors_are_listed_one_per_line(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, '[control]\nallow = ["x"]\n[http]\ntoken = "a"\n'))
    lines = msg.splitlines()
    assert lines[0].endswith("2 invalid settings:")
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["control.allow", "http.token"]
