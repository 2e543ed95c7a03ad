"""Hot reload: a valid edit of the running scene goes to the command door as a Reload."""

from __future__ import annotations

from pathlib import Path

from sonify.commands import Command, Reload, check
from sonify.control.reload import SceneReloader
from sonify.resources import shipped


def test_a_valid_edit_becomes_a_checked_reload_and_a_broken_one_nothing(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text((shipped("scenes") / "calm.toml").read_text(encoding="utf-8"), encoding="utf-8")
    issued: list[Command] = []
    reloader = SceneReloader(issued.append, lambda: path)
    assert reloader.check([(1, str(path))])
    (cmd,) = issued
    assert isinstance(cmd, Reload) and cmd.path == path and cmd.kind == "reload"
    assert check(cmd) is cmd
    path.write_text("[voices\n", encoding="utf-8")
    assert not reloader.check([(2, str(path))])
    assert len(issued) == 1 and reloader.errors == 1 and "mine.toml" in reloader.last_error
