"""``sonify.tools.startbench``: a whole render process, timed as a user waits for it (the
figures only: wall-clock targets are for ``sonify bench``, not for tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sonify.tools import startbench


def test_a_whole_render_process_is_timed_and_its_files_made() -> None:
    figures = startbench.render_process_speed(seconds=2.0, rounds=1)
    assert figures["seconds"] == 2.0 and figures["rounds"] == 1
    assert figures["image"] == "coffee.jpg"  # the photograph, in a checkout
    assert figures["wall_s"] > 0 and figures["cpu_s"] > 0
    assert figures["realtime_x"] == pytest.approx(2.0 / figures["wall_s"], rel=0.01)


def test_a_picture_is_drawn_when_no_photograph_is_at_hand(tmp_path: Path) -> None:
    import cv2

    path = startbench._drawn_picture(str(tmp_path))
    image = cv2.imread(path)
    assert image is not None
    assert image.shape == (360, 480, 3) and image.std() > 20


def test_a_failing_process_says_what_failed() -> None:
    with pytest.raises(RuntimeError, match="failed"):
        startbench._run([*startbench.sonify_command(), "render", "/no/such.png", "-o", "x.mid"])


def test_rounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rounds"):
        startbench.help_vs_python(0)
    with pytest.raises(ValueError, match="rounds"):
        startbench.render_process_speed(rounds=0)


def test_the_readme_example_calls_these_functions() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    line = ('python -c "from sonify.tools.startbench import help_vs_python, '
            'render_process_speed; print(help_vs_python(9)); print(render_process_speed(60))"')
    assert line in readme
    code = line.split('"')[1]
    compile(code, "<readme>", "exec")  # the tests above run both functions, shorter
    assert callable(startbench.help_vs_python) and callable(startbench.render_process_speed)
