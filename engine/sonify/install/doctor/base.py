"""What every check returns (``Check``) and shares: the statuses and the context (the
config and how a fix names its file)."""

from __future__ import annotations

from dataclasses import dataclass

from sonify.config import Config

OK, WARN, FAIL = "ok", "warn", "fail"
_RANK = {OK: 0, WARN: 1, FAIL: 2}
SYMBOLS = {OK: "✓", WARN: "!", FAIL: "✗"}
ASCII_SYMBOLS = {OK: "ok", WARN: "!!", FAIL: "XX"}


@dataclass
class Check:
    """One finding: ``status`` ok / warn / fail; ``detail`` what was seen (first line a
    summary); ``fix`` what to do, empty when ok."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class _Context:
    config: Config
    where: str  # how fixes name the config file
