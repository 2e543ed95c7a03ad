"""`sonify recommend`: a calm picture gets calm music, an energetic one energetic music."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import sonify.cli
from sonify.capture import SourceError
from sonify.cli import CliError
from sonify.tools import recommend

HEADER = "title,artist,valence,energy,tempo,tags\n"


def run_cli(*argv: str) -> int:
    """Run `sonify recommend ...` as the CLI would, reporting errors without ending the test."""
    args = sonify.cli.build_parser().parse_args(["recommend", *argv])
    try:
        return recommend.run(args)
    except (CliError, SourceError) as exc:
        print(f"sonify: error: {exc}", file=sys.stderr)
        return 2


def calm_cool_picture() -> np.ndarray:
    """A dark blue night-sky gradient, blurred: no edges, little colour, no contrast."""
    t = np.linspace(0.0, 1.0, 240)[:, None]
    top, bottom = np.array([60, 20, 5]), np.array([120, 50, 15])  # BGR
    rows = (top + (bottom - top) * t).astype(np.uint8)
    img = np.ascontiguousarray(np.repeat(rows[:, None, :], 320, axis=1))
    return cv2.GaussianBlur(img, (0, 0), 8)


def energetic_warm_picture() -> np.ndarray:
    """Saturated orange ground crowded with red, yellow and black blocks: busy, hard contrast."""
    rng = np.random.default_rng(1)
    img = np.full((240, 320, 3), (0, 60, 255), np.uint8)
    colours = [(0, 0, 0), (0, 230, 255), (0, 0, 230), (20, 140, 255)]
    for _ in range(60):
        x, y = int(rng.integers(0, 320)), int(rng.integers(0, 240))
        w, h = int(rng.integers(5, 40)), int(rng.integers(5, 40))
        cv2.rectangle(img, (x, y), (x + w, y + h), colours[int(rng.integers(0, 4))], -1)
    return img


@pytest.fixture
def pictures(tmp_path: Path) -> tuple[str, str]:
    calm, busy = tmp_path / "night.png", tmp_path / "carnival.png"
    assert cv2.imwrite(str(calm), calm_cool_picture())
    assert cv2.imwrite(str(busy), energetic_warm_picture())
    return str(calm), str(busy)


def top(capsys: pytest.CaptureFixture[str], image: str, *args: str) -> list[dict]:
    assert run_cli(image, "--json", *args) == 0
    return json.loads(capsys.readouterr().out)


# -- ranking -----------------------------------------------------------------------------------

def test_the_pictures_really_differ_in_mood(pictures: tuple[str, str]) -> None:
    calm, busy = (recommend.analyse_image(p) for p in pictures)
    assert calm["arousal"] < busy["arousal"] - 0.15  # measured 0.31 vs 0.53
    assert calm["warmth"] < 0.3 < 0.7 < busy["warmth"]


def test_calm_cool_picture_gets_lower_energy_than_energetic_warm_one(
        pictures: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    calm = top(capsys, pictures[0], "-n", "5")
    busy = top(capsys, pictures[1], "-n", "5")
    calm_energy = [t["energy"] for t in calm]
    busy_energy = [t["energy"] for t in busy]
    assert max(calm_energy) < min(busy_energy)
    assert np.mean(busy_energy) - np.mean(calm_energy) > 0.3
    assert all("minor" in t["tags"] for t in calm[:3])
    assert all("major" in t["tags"] for t in busy[:3])
    assert "cool colours" in calm[0]["why"] and "low energy" in calm[0]["why"]
    assert "warm colours" in busy[0]["why"]


def test_json_has_the_catalogue_fields_plus_score_and_why(
        pictures: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    result = top(capsys, pictures[0], "-n", "3")
    assert len(result) == 3
    for item in result:
        assert set(item) == {"title", "artist", "valence", "energy", "tempo", "tags", "score",
                             "why"}
        assert isinstance(item["tags"], list) and 0.0 <= item["score"] <= 1.0
        assert " → " in item["why"]
    scores = [t["score"] for t in result]
    assert scores == sorted(scores, reverse=True)


def test_plain_output_is_a_numbered_table(pictures: tuple[str, str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(pictures[1], "-n", "4") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "warm colours" in lines[0]
    assert lines[1].split()[:3] == ["#", "score", "track"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3", "4"]


def test_equal_scores_are_ordered_by_title(tmp_path: Path, pictures: tuple[str, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "twins.csv"
    catalog.write_text(HEADER + "Zebra,A,0.5,0.5,100,\nApple,B,0.5,0.5,100,\n"
                       "Mango,C,0.5,0.5,100,\n", encoding="utf-8")
    titles = [t["title"] for t in top(capsys, pictures[0], "--catalog", str(catalog))]
    assert titles == ["Apple", "Mango", "Zebra"]


def test_shipped_catalogue_is_complete_and_clean() -> None:
    tracks, problems = recommend.read_catalog(None)
    assert problems == []
    assert len(tracks) >= 40
    assert len({(t.title, t.artist) for t in tracks}) == len(tracks)
    assert {"Gymnopédie No. 1", "Greensleeves", "Peer Gynt: Morning Mood"} <= {
        t.title for t in tracks}


# -- the catalogue file ---------------------------------------------------------------------------

def test_bad_rows_are_reported_by_line_number_and_skipped(
        tmp_path: Path, pictures: tuple[str, str], capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    catalog = tmp_path / "mine.csv"
    catalog.write_text(
        "# my tracks\n"                                    # line 1
        "Title,Artist,Valence,Energy,Tempo,Tags,Year\n"    # 2: any case, an extra column
        "Good,Someone,0.2,0.1,60,minor;slow,1890\n"        # 3
        "Too bright,Someone,1.4,0.1,60,major,1890\n"       # 4: out of range
        "\n"                                               # 5
        "Short,Someone,0.2,0.1,60\n"                       # 6: a field missing
        ",Someone,0.2,0.1,60,minor,1890\n"                 # 7: no title
        "Words,Someone,0.2,loud,60,minor,1890\n"           # 8: not a number
        '"Also good, quoted",Other,0.3,0.2,70,,1900\n',    # 9: a comma in quotes, no tags
        encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="sonify.tools.recommend"):
        result = top(capsys, pictures[0], "--catalog", str(catalog))
    assert sorted(t["title"] for t in result) == ["Also good, quoted", "Good"]
    warnings = [r.getMessage() for r in caplog.records]
    assert [w.split(":")[0] for w in warnings] == [
        f"{catalog} line {n}" for n in (4, 6, 7, 8)]
    assert "valence 1.4 is outside 0..1" in warnings[0]
    assert "5 fields where the header has 7" in warnings[1]
    assert "no title" in warnings[2]
    assert "energy 'loud' is not a number" in warnings[3]


def test_missing_catalogue_exits_2(pictures: tuple[str, str], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(pictures[0], "--catalog", str(tmp_path / "nope.csv")) == 2
    err = capsys.readouterr().err
    assert "no such catalogue file" in err and "nope.csv" in err


@pytest.mark.parametrize(("text", "message"), [
    ("", "no header row"),
    ("# only comments\n\n", "no header row"),
    ("title,artist,valence\nA,B,0.5\n", "line 1: the header lacks energy, tempo, tags"),
])
def test_catalogue_without_a_header_exits_2(
        pictures: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        text: str, message: str) -> None:
    catalog = tmp_path / "bad.csv"
    catalog.write_text(text, encoding="utf-8")
    assert run_cli(pictures[0], "--catalog", str(catalog)) == 2
    assert message in capsys.readouterr().err


def test_catalogue_with_no_usable_row_exits_2(pictures: tuple[str, str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "bad.csv"
    catalog.write_text(HEADER + "A,B,2,0.5,100,\n", encoding="utf-8")
    assert run_cli(pictures[0], "--catalog", str(catalog)) == 2
    assert "no usable tracks" in capsys.readouterr().err


def test_unreadable_picture_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    assert run_cli(str(bad)) == 2
    assert "cannot read image" in capsys.readouterr().err


@pytest.mark.skipif("recommend" not in sonify.cli.COMMANDS,
                    reason="recommend is not registered in sonify.cli yet")
def test_through_the_real_cli(pictures: tuple[str, str],
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert sonify.cli.main(["recommend", pictures[0], "--json", "-n", "2"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert sonify.cli.main(["recommend", pictures[0], "--catalog", "/nonexistent.csv"]) == 2
