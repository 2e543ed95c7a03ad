"""Scenes: TOML files that map features onto music (``schema``), the mapping primitives
(``mapping``) and the player that turns a scene and the latest features into Events
(``player``)."""

from sonify.scene.player import KeyState, ScenePlayer
from sonify.scene.schema import Scene, SceneError, available_scenes, load_scene, parse_scene

__all__ = [
    "KeyState",
    "Scene",
    "SceneError",
    "ScenePlayer",
    "available_scenes",
    "load_scene",
    "parse_scene",
]
