"""`sonify bench`: the rows against the tuned peer, and the targets of issue 15 with their shape,
measured small (tiny frames, one round, a short render) so the test runs in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sonify.cli import main
from sonify.tools import targets
from sonify.tools.bench import BenchRow, format_table, run_analysis_bench

PHOTO = Path(__file__).parent / "data" / "photos" / "coffee.jpg"
TINY = {"1080p": (192, 108), "4k": (384, 216)}
TARGET_KEYS = {"figure", "value", "unit", "op", "target", "passed", "note"}
NAMES = {"engine_vs_peer_1080p", "engine_vs_floor_1080p", "engine_2_threads_vs_1_4k",
         "live_path_ms_4k", "live_path_ms_1080p", "python_thread_kept", "help_vs_python",
         "render_process_realtime"}


def row(resolution: str = "1080p", **kw: float | None) -> BenchRow:
    base: dict = dict(engine_ms=5.0, engine_2t_ms=3.0, peer_ms=20.0, reference_ms=50.0,
                      default_ms=2.0, floor_ms=0.5, speedup=4.0, reference_speedup=10.0,
                      floor_ratio=10.0, threads_speedup=5.0 / 3.0)
    base.update(kw)
    return BenchRow(resolution, **base)


@pytest.fixture(scope="module")
def measured() -> dict:
    rows = run_analysis_bench(["1080p", "4k"], rounds=1, sizes=TINY)
    startup = targets.help_vs_python(rounds=1)
    render = targets.render_process_speed(seconds=2.0, rounds=1, image=str(PHOTO))
    gil = targets.gil_kept(TINY["1080p"], 0.5)
    found = targets.collect(rows, startup, render, gil)
    return {"rows": rows, "startup": startup, "render": render, "targets": found,
            "json": json.loads(json.dumps(targets.targets_json(found)))}


def test_rows_time_the_engine_against_the_peer_and_the_reference(measured: dict) -> None:
    for r in measured["rows"]:
        assert min(r.engine_ms, r.peer_ms, r.reference_ms, r.default_ms, r.floor_ms) > 0
        assert r.speedup == pytest.approx(r.peer_ms / r.engine_ms, rel=0.02)
        assert r.reference_speedup == pytest.approx(r.reference_ms / r.engine_ms, rel=0.02)
        assert r.floor_ratio == pytest.approx(r.engine_ms / r.floor_ms, rel=0.05)
        # the yardstick: OpenCV's SIMD primitives for the luma part, against the same floor
        assert r.luma_simd_ms is not None and r.luma_simd_ms > 0
        assert r.luma_simd_floor_ratio == pytest.approx(r.luma_simd_ms / r.floor_ms, rel=0.05)
        if r.engine_2t_ms is not None:
            assert r.threads_speedup == pytest.approx(r.engine_ms / r.engine_2t_ms, rel=0.02,
                                                      abs=0.01)
    table = format_table(measured["rows"])
    assert "peer ms" in table and "vs peer" in table and "1080p" in table
    assert "luma simd/floor" in table
    floor = measured["targets"]["engine_vs_floor_1080p"]
    assert floor.note.startswith("OpenCV's SIMD primitives for the luma part"), floor.note


def test_every_target_of_the_issue_is_in_the_json_with_one_shape(measured: dict) -> None:
    got = measured["json"]
    assert set(got) == NAMES
    for name, t in got.items():
        assert set(t) == TARGET_KEYS, name
        assert t["op"] in (">=", "<=", "<") and t["unit"] in ("x", "ms", "share")
        assert isinstance(t["target"], float | int)
        if t["value"] is None:
            assert t["passed"] is None and t["note"].startswith(("not available", "not measured"))
        else:
            assert isinstance(t["value"], float | int) and isinstance(t["passed"], bool)
    # everything is measured (the kernel's thread setting and gilbench are there)
    assert [n for n, t in got.items() if t["value"] is None] == []
    assert 0 < got["python_thread_kept"]["value"] <= 1.5


def test_process_figures_are_timed_from_outside(measured: dict) -> None:
    s = measured["startup"]
    assert s["python_ms"] > 0 and s["help_ms"] > 0
    assert s["ratio"] == pytest.approx(s["help_ms"] / s["python_ms"], rel=0.02)
    r = measured["render"]
    assert r["music_s"] == 2.0 and r["speed"] == pytest.approx(2.0 / r["wall_s"], rel=0.02)


def test_pass_and_fail_follow_the_targets() -> None:
    good = targets.collect([row("1080p"), row("4k")], {"python_ms": 10.0, "help_ms": 25.0,
                           "ratio": 2.5}, {"music_s": 60.0, "wall_s": 2.0, "speed": 30.0},
                           (0.9, "1080p"))
    assert all(t.passed for t in good.values()), [n for n, t in good.items() if not t.passed]
    bad = targets.collect([row("1080p", speedup=1.7, floor_ratio=28.0, default_ms=3.0),
                           row("4k", threads_speedup=1.2, default_ms=8.1)],
                          {"python_ms": 10.0, "help_ms": 40.0, "ratio": 4.0},
                          {"music_s": 60.0, "wall_s": 4.0, "speed": 15.0}, (0.3, "1080p"))
    assert not any(t.passed for t in bad.values()), [n for n, t in bad.items() if t.passed]
    text = targets.format_targets(bad)
    assert text.count("FAIL") == len(NAMES) and "1.70x" in text


def test_missing_measurements_say_why() -> None:
    got = targets.collect([row("480p")])
    assert got["engine_vs_peer_1080p"].note == "not measured: 1080p not in --resolutions"
    assert got["render_process_realtime"].note == "not measured (--quick)"
    no_threads = targets.collect([row("4k", engine_2t_ms=None, threads_speedup=None)])
    assert no_threads["engine_2_threads_vs_1_4k"].note.startswith("not available")
    assert "n/a" in targets.format_targets(got)


def test_cli_json_is_one_object_with_rows_targets_and_machine(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--json", "--quick", "--rounds", "1", "--resolutions", "480p"])
    out = capsys.readouterr().out
    assert code == 0
    got = json.loads(out)
    assert set(got) == {"rows", "targets", "machine"}
    assert [r["resolution"] for r in got["rows"]] == ["480p"]
    assert set(got["targets"]) == NAMES
    assert got["targets"]["help_vs_python"]["passed"] is None  # --quick
    assert got["machine"]["cpus"] >= 1


def test_readme_bench_section_documents_the_json_and_its_commands_parse() -> None:
    import re
    import shlex

    from sonify.cli import build_parser

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("\n## Benchmark\n", 1)[1].split("\n## ", 1)[0]
    for name in (*NAMES, *BenchRow.__dataclass_fields__, "rows", "targets", "machine"):
        assert f"`{name}`" in section, name
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    commands = [shlex.split(line.split(">")[0]) for line in block.group(1).splitlines() if line]
    assert [c[:2] for c in commands] == [["sonify", "bench"]] * 2
    quick = build_parser().parse_args(commands[0][1:])
    assert (quick.command, quick.quick, quick.resolutions, quick.rounds) == (
        "bench", True, "1080p", 3)
    full = build_parser().parse_args(commands[1][1:])
    assert (full.command, full.json, full.quick) == ("bench", True, False)
