"""The README's "Teach it by example from Python" runs as printed."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_readme_teach_example_runs_and_plays_the_second_look() -> None:
    section = README.split("### Teach it by example from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trained knn/knn on 20 examples in ")
    assert lines[1] == "{'param:intensity': 0.9, 'scene': 1.0}"
