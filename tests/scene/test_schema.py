"""Scene files: every shipped scene loads, and bad ones say file, key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sonify.features.registry import SCALAR_NAMES
from sonify.scene import Scene, SceneError, available_scenes, load_scene, parse_scene
from sonify.scene.schema import NotesVoice, scene_dirs

SHIPPED = ("gallery", "starry", "city", "calm", "energize", "scan", "vj")
SCENES_DIR = Path(__file__).resolve().parents[2] / "scenes"

BAD_SCENE = """\
name = "bad"
colour = "red"

[tempo]
bpm = { feature = "motion", out = [90, 400] }

[key]
scale = { feature = "valence", choices = ["minor", "bebop"] }

[[voices]]
name = "ok"
kind = "notes"
channel = 1

[[voices]]
name = "lead"
kind = "notes"
channel = 17
pitch = { feature = "warmth", curve = "cubic" }
wobble = 3

[[voices]]
name = "strings"
kind = "violins"
channel = 1

[[triggers]]
on = "clap_onset"
osc = { address = "/x" }
"""


def write(tmp_path: Path, text: str, name: str = "scene.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | str) -> str:
    with pytest.raises(SceneError) as info:
        load_scene(path)
    return str(info.value)


def test_every_shipped_scene_loads() -> None:
    found = available_scenes()
    for name in SHIPPED:
        assert name in found, f"scenes/{name}.toml missing"
        scene = load_scene(name)
        assert isinstance(scene, Scene)
        assert scene.name == name
        assert scene.description


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scene_explains_itself_in_a_comment_header(name: str) -> None:
    first = (SCENES_DIR / f"{name}.toml").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(f"# {name}:")


def test_a_scene_loads_by_path_too() -> None:
    assert load_scene(SCENES_DIR / "calm.toml").name == "calm"
    assert load_scene(str(SCENES_DIR / "calm.toml")).name == "calm"


def test_an_invalid_scene_reports_every_error_with_file_key_and_allowed_values(
        tmp_path: Path) -> None:
    path = write(tmp_path, BAD_SCENE)
    msg = error_of(path)
    assert str(path) in msg.splitlines()[0]
    assert "errors" in msg.splitlines()[0]
    lines = msg.splitlines()[1:]
    by_key = {line.strip().split(":")[0].split(" (")[0]: line for line in lines}
    curve = by_key["voices[1].pitch.curve"]
    assert "must be one of linear, exp, log, s-curve (got 'cubic')" in curve
    assert "16" in by_key["voices[1].channel"]
    assert "voice 'lead'" in by_key["voices[1].channel"]
    assert "unknown key" in by_key["voices[1].wobble"]
    assert "allowed keys here:" in by_key["voices[1].wobble"]
    assert "spread_steps" in by_key["voices[1].wobble"]
    assert "one of notes, chords, sparkle, scan, drums" in by_key["voices[2].kind"]
    assert "one of motion_onset, cut_onset, stars_onset" in by_key["triggers[0].on"]
    assert "'bebop': not a scale" in by_key["key.scale"] and "dorian" in by_key["key.scale"]
    assert "outside 20..300" in by_key["tempo.bpm"]
    assert "unknown key" in by_key["colour"] and "voices" in by_key["colour"]
    assert len(lines) == 8  # every error at once


def test_an_unknown_feature_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, """
name = "x"
[[voices]]
name = "v"
kind = "notes"
channel = 1
velocity = { feature = "brightnes", out = [40, 100] }
""")
    msg = error_of(path)
    assert "voices[0].velocity.feature" in msg
    assert "unknown feature 'brightnes'" in msg
    assert "did you mean 'brightness'" in msg
    for name in SCALAR_NAMES:
        assert name in msg


def test_a_toml_syntax_error_gives_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\n[tempo]\nbpm = = 3\n')
    msg = error_of(path)
    assert str(path) in msg
    assert "TOML syntax error" in msg
    assert "line 3" in msg and "column" in msg


def test_an_unknown_scene_name_lists_the_available_scenes() -> None:
    msg = error_of("no-such-scene")
    assert "unknown scene 'no-such-scene'" in msg
    for name in SHIPPED:
        assert name in msg


def test_a_missing_scene_file_is_named(tmp_path: Path) -> None:
    assert "not found" in error_of(tmp_path / "nope.toml")


def test_sonify_scenes_folders_come_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, 'name = "my calm"\ndescription = "mine"\n', "calm.toml")
    write(tmp_path, 'name = "extra"\n', "extra.toml")
    monkeypatch.setenv("SONIFY_SCENES", str(tmp_path))
    assert scene_dirs()[0] == tmp_path
    assert load_scene("calm").name == "my calm"
    assert load_scene("extra").name == "extra"
    assert load_scene("gallery").name == "gallery"


def test_key_numerals_progressions_and_voices_are_checked() -> None:
    bad = """
name = "x"
[key]
root = "H"
[harmony.progressions]
default = ["I", "VIII"]
[[voices]]
name = "d"
kind = "drums"
parts = [{ sound = "cowbel", rhythm = { steps = "x" } }]
[[voices]]
name = "s"
kind = "sparkle"
osc = "no-slash"
rhythm = { steps = "x", euclid = { pulses = 3 } }
"""
    with pytest.raises(SceneError) as info:
        parse_scene(bad, "inline.toml")
    msg = str(info.value)
    assert msg.startswith("scene file inline.toml: ")
    assert "key.root" in msg and "'H': not a key root" in msg
    assert "harmony.progressions.default[1]" in msg and "roman numeral" in msg
    assert "voices[0].parts[0].sound" in msg and "unknown drum 'cowbel'" in msg
    assert "voices[1].osc" in msg and "start with '/'" in msg
    assert "voices[1].rhythm" in msg and "either 'steps'" in msg


def test_a_voice_needs_somewhere_to_play() -> None:
    with pytest.raises(SceneError, match=r"voices\[0\].*give a MIDI 'channel'"):
        parse_scene('name = "x"\n[[voices]]\nname = "v"\nkind = "notes"\n')


def test_voice_names_are_unique() -> None:
    text = 'name = "x"\n' + '[[voices]]\nname = "v"\nkind = "scan"\nchannel = 1\n' * 2
    with pytest.raises(SceneError, match="voice names must be unique: v"):
        parse_scene(text)


def test_scene_files_are_data_only() -> None:
    # anything that is not a known key or value is refused, never evaluated
    with pytest.raises(SceneError, match="unknown feature"):
        parse_scene('name = "x"\n[tempo]\nbpm = { feature = "__import__(\'os\')" }\n')
    with pytest.raises(SceneError, match="expected a number"):
        parse_scene('name = "x"\n[tempo]\nbpm = "6 * 20"\n')


def test_mapping_defaults_and_note_names() -> None:
    scene = parse_scene("""
name = "x"
[[voices]]
name = "v"
kind = "notes"
channel = 1
pitch = { feature = "warmth", out = ["C3", "C5"], quantise = "chord" }
register = ["C2", "C6"]
""")
    voice = scene.voices[0]
    assert isinstance(voice, NotesVoice)
    assert voice.pitch.out == (48.0, 72.0)
    assert voice.pitch.quantise == "chord"
    assert voice.register_ == (36, 84)
    assert voice.pitch.input_range() == (0.0, 1.0)


def test_the_scenes_readme_lists_every_shipped_scene() -> None:
    readme = (SCENES_DIR / "README.md").read_text(encoding="utf-8")
    for path in sorted(SCENES_DIR.glob("*.toml")):
        assert f"| `{path.stem}` |" in readme, f"scenes/README.md does not list {path.stem}"


def test_the_format_example_in_the_scenes_readme_is_a_valid_scene() -> None:
    readme = (SCENES_DIR / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    scene = parse_scene(example, "scenes/README.md")
    assert scene.voices[0].name == "lead"


# -- hostile input: deep nesting, infinite parameter bounds ----------------------------------------

PARAM_SCENE = """\
name = "knobs"
[[voices]]
name = "lead"
kind = "notes"
channel = 1
[params.speed]
{bounds}
"""


@pytest.mark.parametrize("value", [
    "[" * 5000 + "]" * 5000,               # tomllib's own recursion: RecursionError before
    "{a=" * 5000 + "1" + "}" * 5000,
    "[" * 40 + "]" * 40,                   # parses, and is still far deeper than a scene needs
])
def test_deep_nesting_is_one_clear_error(value: str) -> None:
    with pytest.raises(SceneError) as err:
        parse_scene(f'name = "deep"\ndescription = {value}\n', "deep.toml")
    msg = str(err.value)
    assert msg.startswith("scene file deep.toml: arrays or tables are nested")
    assert "32 levels" in msg and "\n" not in msg


@pytest.mark.parametrize(("bounds", "words"), [
    ("min = 0\nmax = inf", "params.speed.max: input should be a finite number (got inf)"),
    ("min = -inf\nmax = 1", "params.speed.min: input should be a finite number (got -inf)"),
    ("min = 0\nmax = nan", "params.speed.max: input should be a finite number (got nan)"),
    ("min = 0\nmax = 1\nvalue = nan", "params.speed.value: input should be a finite number"),
    ("min = -1e308\nmax = 1e308", "too far apart"),
])
def test_param_bounds_must_be_finite(bounds: str, words: str) -> None:
    with pytest.raises(SceneError) as err:
        parse_scene(PARAM_SCENE.format(bounds=bounds), "knobs.toml")
    msg = str(err.value)
    assert words in msg
    assert msg.startswith("scene file knobs.toml: params.speed") and "\n" not in msg  # one error


def test_finite_param_bounds_still_load() -> None:
    scene = parse_scene(PARAM_SCENE.format(bounds="min = -5e3\nmax = 5e3\nvalue = 1"))
    assert scene.params["speed"].start == 1.0
    assert scene.params["speed"].normalise(0.0) == 0.5


TEACH_SCENE = """
name = "t"
[params.intensity]
min = 0.0
max = 1.0
value = 0.5
[teach]
inputs = {inputs}
[[teach.outputs]]
name = "tempo"
[[teach.outputs]]
{output}
[[voices]]
name = "lead"
kind = "notes"
channel = 1
"""


@pytest.mark.parametrize(("inputs", "output", "where", "what"), [
    ('["brightness", "nosuch"]', 'name = "master"', "teach.inputs", "unknown feature 'nosuch'"),
    ('["motion"]', 'name = "param:nothing"', r"teach.outputs\[1\]",
     r"the scene declares no parameter 'nothing' \(it has intensity\)"),
    ('["motion"]', 'name = "mute:bass"', r"teach.outputs\[1\]",
     r"the scene has no voice 'bass' \(it has lead\)"),
    ('["motion"]', 'name = "scene"', r"teach.outputs\[1\]", "give choices"),
    ('["motion"]', 'name = "volume"', r"teach.outputs\[1\]", "use param:<name>, mute:<voice>"),
])
def test_teach_errors_name_the_key_they_are_about(inputs: str, output: str, where: str,
                                                  what: str) -> None:
    """A [teach] table checked against the rest of the scene says which input or output is
    wrong, not "(top level)"."""
    with pytest.raises(SceneError, match=rf"scene file inline: {where}: .*{what}") as info:
        parse_scene(TEACH_SCENE.format(inputs=inputs, output=output), "inline")
    assert "(top level)" not in str(info.value)
    ok = parse_scene(TEACH_SCENE.format(inputs='["motion", "param:intensity"]',
                                        output='name = "param:intensity"'), "inline")
    assert ok.teach is not None and [o.name for o in ok.teach.outputs] == [
        "tempo", "param:intensity"]
