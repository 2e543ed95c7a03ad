"""`sonify features` and `sonify bench` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sonify.cli import main
from sonify.features.registry import FEATURES, SCALAR_NAMES
from tests.features import images


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_documents_every_feature(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "features", "--list")
    assert code == 0
    for name in FEATURES:
        assert f"  {name} " in out
    assert "calm, happy, energetic, tense, sad" in out


def test_image_features_as_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sunset.png"
    cv2.imwrite(str(path), images.gradient(320, 180, warm=True))
    code, out, _ = run(capsys, "features", str(path))
    assert code == 0
    assert "1 frame(s) analysed at 320x180" in out
    warmth = next(line for line in out.splitlines() if line.strip().startswith("warmth"))
    assert float(warmth.split()[1]) > 0.8


def test_image_features_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "night.jpg"
    cv2.imwrite(str(path), images.gradient(320, 180, warm=False))
    code, out, _ = run(capsys, "features", str(path), "--json")
    assert code == 0
    (line,) = out.splitlines()
    obj = json.loads(line)
    assert set(SCALAR_NAMES) <= set(obj)
    assert obj["warmth"] < 0.2 and obj["mood"] in ("calm", "happy", "energetic", "tense", "sad")
    assert len(obj["grid"]) == 8 and len(obj["star_points"]) == 16


def test_sequence_json_is_one_object_per_frame(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"img{i + 1}.png"), images.block(20 + 40 * i, 50, w=320, h=180))
    code, out, _ = run(capsys, "features", str(tmp_path), "--json", "--raw")
    assert code == 0
    frames = [json.loads(line) for line in out.splitlines()]
    assert [f["index"] for f in frames] == [0, 1, 2, 3, 4]
    assert frames[0]["motion"] == 0.0 and all(f["motion"] > 0 for f in frames[1:])


def test_demo_features(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "features", "demo:night", "--frames", "3", "--json")
    assert code == 0
    frames = [json.loads(line) for line in out.splitlines()]
    assert len(frames) == 3 and all(f["stars"] > 20 for f in frames)


def test_missing_path_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.png"
    code, out, err = run(capsys, "features", str(missing))
    assert code == 2 and out == ""
    assert "nope.png" in err and err.startswith("sonify: error:")


def test_folder_without_images_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a picture")
    code, _, err = run(capsys, "features", str(tmp_path))
    assert code == 2
    assert str(tmp_path) in err and ".png" in err


def test_corrupt_image_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    code, _, err = run(capsys, "features", str(bad))
    assert code == 2 and "broken.png" in err


def test_features_without_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "features")
    assert code == 2 and "--list" in err


def test_bench_json_has_the_documented_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "bench", "--json", "--quick", "--rounds", "1",
                       "--resolutions", "480p")
    assert code == 0
    (row,) = json.loads(out)["rows"]
    assert set(row) == {"resolution", "engine_ms", "engine_2t_ms", "peer_ms", "reference_ms",
                        "default_ms", "floor_ms", "speedup", "reference_speedup",
                        "floor_ratio", "threads_speedup", "luma_simd_ms",
                        "luma_simd_floor_ratio"}
    assert row["resolution"] == "480p"
    assert row["speedup"] == pytest.approx(row["peer_ms"] / row["engine_ms"], rel=0.02)
    assert all(row[k] > 0 for k in ("engine_ms", "peer_ms", "reference_ms", "default_ms",
                                    "floor_ms", "luma_simd_ms"))


def test_bench_rejects_unknown_resolution(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "bench", "--resolutions", "8k")
    assert code == 2 and "8k" in err and "1080p" in err


def test_console_script_is_installed_and_exits_2_on_bad_input(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("sonify")  # this environment's, not another on PATH
    assert exe.is_file(), "the console script is not installed next to the interpreter"
    cmd = [str(exe)]
    done = subprocess.run([*cmd, "features", str(tmp_path / "missing.mp4")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "missing.mp4" in done.stderr
    assert "Traceback" not in done.stderr


def test_grayscale_16bit_image_is_analysed(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.full((90, 160), 65535, np.uint16))
    code, out, _ = run(capsys, "features", str(path), "--json")
    assert code == 0 and json.loads(out)["brightness"] == pytest.approx(1.0)
