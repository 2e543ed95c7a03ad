"""``sonify teach``: mapping by example from the command line.

The actions that need the camera (``record``, ``stop``, ``snapshot``, ``run``,
``stop-running``, ``clear``, ``outputs``, and ``train`` of a running engine) go to the running
engine's OSC control port (``/sonify/teach/...``, the same addresses a controller sends;
``--to`` or the config's ``[control]`` port). ``show`` and ``train --offline`` work on the
files a scene's ``[teach]`` keeps (its examples and its model), with no engine running.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sonify.cli.args import CONFIG_HELP
from sonify.errors import CliError

if TYPE_CHECKING:
    from sonify.cli.parser import Subparsers

# action -> (OSC address under /sonify/teach, its argument)
ACTIONS: dict[str, tuple[str, tuple[int, ...]]] = {
    "record": ("record", (1,)), "stop": ("record", (0,)), "snapshot": ("snapshot", ()),
    "train": ("train", ()), "run": ("run", (1,)), "stop-running": ("run", (0,)),
    "clear": ("clear", ()), "outputs": ("outputs", ()),
}


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "teach", help="record examples, train and run a learned mapping (a scene's [teach])",
        description="Mapping by example: record what the camera sees paired with the music's "
                    "settings, train a model, let it play. record/stop/snapshot/train/run/"
                    "stop-running/clear/outputs go to the running engine's OSC control port; "
                    "show and train --offline read the scene's files.")
    p.add_argument("action", choices=[*ACTIONS, "show"])
    p.add_argument("values", nargs="*", type=float, default=[],  # default: not "required"
                   help="with outputs: the values, in the order of the scene's [teach] outputs")
    p.add_argument("--to", metavar="HOST:PORT",
                   help="the engine's OSC control port (default: the config's [control])")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--scene", help="with show or --offline: the scene (a name or a .toml)")
    p.add_argument("--offline", action="store_true",
                   help="with train: train from the scene's examples file, no engine needed")


def run(args: argparse.Namespace) -> int:
    if args.action == "show" or (args.action == "train" and args.offline):
        return _files(args)
    if args.offline:
        raise CliError(f"--offline works with train only, not {args.action}")
    if args.action == "outputs" and not args.values:
        raise CliError("outputs needs the values: sonify teach outputs 0.5 120")
    if args.values and args.action != "outputs":
        raise CliError(f"{args.action} takes no values")
    from pythonosc.udp_client import SimpleUDPClient

    from sonify.config import ConfigError, load_config, parse_host_port

    if args.to:
        try:
            host, port = parse_host_port(args.to)
        except ValueError as exc:
            raise CliError(f"--to: {exc}") from None
    else:
        try:
            control = load_config(args.config).control
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        host = "127.0.0.1" if control.host in ("0.0.0.0", "::", "") else control.host
        port = control.port
    leaf, arg = ACTIONS[args.action]
    values = list(args.values) if args.action == "outputs" else list(arg)
    address = f"/sonify/teach/{leaf}"
    SimpleUDPClient(host, port).send_message(address, values)
    shown = " ".join(f"{v:g}" for v in values)
    print(f"sent {address}{' ' + shown if shown else ''} to {host}:{port} (the engine logs "
          f"what it did; the page's Teach box shows the examples and the model)")
    return 0


def _files(args: argparse.Namespace) -> int:
    from sonify.learn.errors import LearnError
    from sonify.learn.learner import Learner
    from sonify.performance.teach import teach_files
    from sonify.scene.schema import SceneError, load_scene, resolve_scene

    if not args.scene:
        raise CliError(f"{args.action} needs --scene (a name or a .toml file)")
    try:
        path = resolve_scene(args.scene)
        scene = load_scene(path)
    except SceneError as exc:
        raise CliError(str(exc)) from None
    if scene.teach is None:
        raise CliError(f"scene {scene.name!r} has no [teach] table (see the README, 'Teach it "
                       f"by example')")
    examples, model = teach_files(scene, path)
    learner = Learner(scene.teach, examples, model)
    if args.action == "train":
        if not examples.exists():
            raise CliError(f"no examples yet: {examples} does not exist (record some first)")
        try:
            print(learner.command("train"))
        except LearnError as exc:
            raise CliError(str(exc)) from None
        return 1 if learner.error else 0
    status = learner.status()
    print(f"scene {scene.name}: {status['examples']} examples ({examples})")
    m = status["model"]
    print(f"model: {m['algorithm']} on {m['examples']} examples, trained {m['trained_at']} in "
          f"{m['train_ms']:.0f} ms ({model})" if m else f"model: none ({model})")
    print(f"inputs: {', '.join(scene.teach.inputs)}")
    print(f"outputs: {', '.join(o.name for o in scene.teach.outputs)}")
    if status["error"]:
        print(f"error: {status['error']}")
        return 1
    return 0
