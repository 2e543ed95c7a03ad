"""A scene's validation errors as one line each: ``key.path: what is wrong; what is allowed``
(tagged unions shown by their tag, the voice or control named, the keys a model allows)."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError


class LocatedError(ValueError):
    """A check that spans the whole scene but is about one key: ``where`` names that key, so
    the message reads ``teach.inputs: ...`` rather than ``(top level): ...``."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
            else:
                return tp
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_type(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _walk(loc: tuple[int | str, ...], root: type[BaseModel]) -> tuple[str, Any]:
    """The display path of a pydantic ``loc`` (tags of tagged unions dropped) and the type there."""
    tp: Any = root
    text = ""
    for comp in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if origin in (Union, types.UnionType) and isinstance(comp, str):
            members = {typing.get_args(_unwrap(m.model_fields["kind"].annotation))[0]: m
                       for m in typing.get_args(tp)
                       if _is_model(m) and "kind" in m.model_fields}
            if comp in members:
                tp = members[comp]
                continue
        if isinstance(comp, int):
            text += f"[{comp}]"
            args = typing.get_args(tp)
            if origin is tuple and args:
                tp = args[min(comp, len(args) - 1)]
            elif origin is list and args:
                tp = args[0]
            else:
                tp = None
            continue
        text += f".{comp}" if text else str(comp)
        if _is_model(tp):
            tp = _field_type(tp, comp)
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            tp = None
    return text, _unwrap(tp)


def _allowed_keys(model: Any) -> str:
    if not _is_model(model):
        return ""
    return ", ".join(info.alias or name for name, info in model.model_fields.items())


def _quoted_list(expected: str) -> str:
    return ", ".join(re.findall(r"'([^']*)'", expected)) or expected


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _voice_hint(loc: tuple[int | str, ...], data: Any) -> str:
    if len(loc) >= 2 and loc[0] in ("voices", "controls") and isinstance(loc[1], int):
        try:
            name = data[loc[0]][loc[1]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            return ""
        if isinstance(name, str):
            return f" ({loc[0][:-1]} {name!r})"
    return ""


def describe_errors(exc: ValidationError, data: Any, root: type[BaseModel],
                    kinds: Sequence[str] = ()) -> list[str]:
    """One line per error: ``key.path: what is wrong; what is allowed``."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        ctx = err.get("ctx") or {}
        where, _ = _walk(loc, root)
        hint = _voice_hint(loc, data)
        if kind == "extra_forbidden":
            _, parent = _walk(loc[:-1], root)
            allowed = _allowed_keys(parent)
            msg = f"unknown key{'; allowed keys here: ' + allowed if allowed else ''}"
        elif kind == "missing":
            msg = "missing (required)"
        elif kind == "literal_error":
            msg = (f"must be one of {_quoted_list(str(ctx.get('expected', '')))} "
                   f"(got {_short(err.get('input'))})")
        elif kind == "union_tag_invalid":
            where += ".kind" if where else "kind"
            msg = (f"unknown kind {_short(ctx.get('tag'))}: one of "
                   f"{_quoted_list(str(ctx.get('expected_tags', '')))}")
        elif kind == "union_tag_not_found":
            where += ".kind" if where else "kind"
            msg = f"missing (required): one of {', '.join(kinds)}"
        elif kind == "value_error":
            msg = str(err["msg"]).removeprefix("Value error, ")
            located = ctx.get("error")
            if isinstance(located, LocatedError):
                where = ".".join(x for x in (where, located.where) if x)
        else:
            msg = f"{err['msg'][0].lower()}{err['msg'][1:]} (got {_short(err.get('input'))})"
        lines.append(f"{where or '(top level)'}{hint}: {msg}")
    return lines
