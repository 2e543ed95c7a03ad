"""The GIL benchmark runs both threads and reports both rates (figures are not asserted: this
machine is shared; ``sonify bench`` reports them)."""

from __future__ import annotations

import math

from sonify.tools.gilbench import demo_frames, live_path_ms, run_gil_bench


def test_gil_bench_reports_both_threads_alone_and_together() -> None:
    r = run_gil_bench((320, 180), seconds=0.8, rounds=2)
    assert r["resolution"] == "320x180"
    for key in ("python_rate_alone", "python_rate_beside", "analysis_fps_alone",
                "analysis_fps_beside"):
        assert r[key] > 0, key  # each thread made progress in each phase
    assert r["python_ratio"] == round(r["python_rate_beside"] / r["python_rate_alone"], 3)
    assert 0 < r["python_ratio_cpu_only"] and r["target_python_ratio"] == 0.8


def test_live_path_is_timed_on_demo_frames_at_the_asked_size() -> None:
    frames = demo_frames((640, 360), n=2)
    assert [f.shape for f in frames] == [(360, 640, 3)] * 2
    assert not (frames[0] == frames[1]).all()  # consecutive frames of an animation
    ms = live_path_ms((640, 360), rounds=3)
    assert math.isfinite(ms) and ms > 0


def test_readme_example_calls_what_exists() -> None:
    import inspect
    import re
    from pathlib import Path

    from sonify.tools import gilbench

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```python\n(from sonify.tools.gilbench import .*?)```", readme, re.S)
    assert block is not None
    calls = re.findall(r"(live_path_ms|run_gil_bench)\(([^()]*)\)", block.group(1))
    assert {name for name, _ in calls} == {"live_path_ms", "run_gil_bench"}
    for name, args in calls:  # each call binds to the function's signature as written
        eval(f"inspect.signature(gilbench.{name}).bind({args})", {"inspect": inspect,
                                                                    "gilbench": gilbench})
        for res in re.findall(r'"(\w+)"', args):
            assert res in gilbench.RESOLUTIONS
