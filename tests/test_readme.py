"""The README stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from sonify.capture import DEMO_LOOKS
from sonify.features.registry import FEATURES

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_names_every_feature() -> None:
    missing = [name for name in FEATURES if f"`{name}`" not in README]
    assert not missing, f"README does not mention {missing}"


def test_readme_names_every_demo_look() -> None:
    for look in DEMO_LOOKS:
        if look != "cycle":
            assert f"demo:{look}" in README


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].endswith("sonify run") and commands[1] == "bash scripts/test.sh"
