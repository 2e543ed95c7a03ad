"""Checks of the config file (through ``sonify.config.load_config``, the validation ``sonify run``
applies) and of the configured scene and every scene found."""

from __future__ import annotations

import os

from sonify.config import DEFAULT_CONFIG, Config, ConfigError, load_config
from sonify.install.doctor.base import FAIL, OK, WARN, Check, _Context


def _check_config(config_path: str | None) -> tuple[_Context, Check]:
    if config_path is None and not DEFAULT_CONFIG.exists():
        ctx = _Context(Config(), "a config file (pass it with --config)")
        return ctx, Check("config", OK, "no config file: the built-in defaults apply")
    path = config_path or str(DEFAULT_CONFIG)
    where = path if config_path else f"{path} (or the copy you pass with --config)"
    try:
        config = load_config(path)
    except ConfigError as exc:
        ctx = _Context(Config(), where)
        if "not found" in str(exc) or "cannot read" in str(exc):
            fix = f"check the path given to --config ({path}); configs/default.toml is a start"
        else:
            fix = (f"correct the settings named above in {path}; configs/default.toml lists "
                   "every setting with its default")
        detail = f"{exc}\n(the other checks below use the built-in defaults)"
        return ctx, Check("config", FAIL, detail, fix)
    detail = f"{path} is valid"
    env_port = os.environ.get("SONIFY_MIDI_PORT")
    if env_port:
        detail += f"\nSONIFY_MIDI_PORT={env_port!r} overrides [midi] port"
    return _Context(config, where), Check("config", OK, detail)


def _check_scene(ctx: _Context) -> Check:
    from sonify.scene.schema import SceneError, available_scenes, load_scene, resolve_scene

    name = ctx.config.scene.name
    try:
        path = resolve_scene(name)
    except SceneError as exc:
        names = ", ".join(available_scenes()) or "none"
        return Check("scene", FAIL, str(exc),
                     f"set [scene] name in {ctx.where} to one of: {names} (or a path to a "
                     f".toml scene file)")
    try:
        load_scene(path)
    except SceneError as exc:
        return Check("scene", FAIL, str(exc),
                     f"correct the keys named above in {path} (scenes/README.md documents "
                     f"every key), or set [scene] name in {ctx.where} to another scene")
    return Check("scene", OK, f"{name!r} ({path}) is valid")


def _check_all_scenes(ctx: _Context) -> Check:
    from sonify.scene.schema import SceneError, available_scenes, load_scene, scene_dirs

    scenes = available_scenes()
    where = ", ".join(str(d) for d in scene_dirs())
    bad: list[str] = []
    for _name, path in scenes.items():
        try:
            load_scene(path)
        except SceneError as exc:
            bad.append(str(exc))
    if not scenes:
        return Check("scenes", WARN, f"no scene files found (looked in {where})",
                     "put scene .toml files in one of those folders, or point SONIFY_SCENES "
                     "at a folder of scenes")
    if not bad:
        return Check("scenes", OK, f"all {len(scenes)} scenes are valid: {', '.join(scenes)}")
    detail = f"{len(bad)} of {len(scenes)} scene files cannot be loaded (a switch to one fails):"
    detail += "\n" + "\n".join(bad)
    return Check("scenes", WARN, detail,
                 "correct the keys named above in each file (scenes/README.md documents every "
                 "key), or move the file out of the scene folders (" + where + ")")
