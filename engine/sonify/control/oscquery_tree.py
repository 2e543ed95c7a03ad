"""The OSCQuery tree: sonify's OSC address space as OSCQuery JSON nodes.

:class:`SonifyTree` builds it on every call from the static ``ADDRESS_SPACE`` of the OSC
control server (:mod:`sonify.control.osc_server`) and snapshot callbacks (scenes, params with
their current values, voices with their mute state, the runtime's ``state()`` and, when features
are streamed, their latest values), so values and the set of params and voices follow the
running scene. The OSCQuery server (:mod:`sonify.control.oscquery`) serves it over HTTP and
pushes the values of listened nodes over WebSocket (:mod:`sonify.control.oscquery_ws`).

Attributes per node (Vidvox's proposal, https://github.com/Vidvox/OSCQueryProposal):
``FULL_PATH``, ``CONTENTS`` (containers), ``TYPE``, ``ACCESS`` (0 none, 1 read, 2 write, 3
both), ``VALUE`` (a list, one item per type tag), ``RANGE`` (a list of ``{"MIN", "MAX"}`` or
``{"VALS"}``, one per type tag) and ``DESCRIPTION``.

Switches (``/sonify/mute/<voice>``, ``/sonify/freeze``) are typed ``"T"``, OSCQuery's boolean:
Chataigne, VDMX, ossia and VRChat-style tools make a toggle of ``T``/``F`` but an integer
slider or number box of ``"i"``, and the control server takes the ``T``/``F`` they then send
(as well as 0/1). ``/sonify/panic`` has no ``TYPE`` (it takes no argument, the proposal's way to
say so) and ACCESS 2; ``/sonify/status`` has no ``TYPE`` and ACCESS 0, its reply is described.

**Room for more addresses.** Addresses are described from data, so a new one needs no code
here. An address sonify *accepts* is an entry of ``ADDRESS_SPACE``: the known commands (scene,
tempo, freeze, panic, param, mute) take their values from the snapshots; any other entry is
described from its keys: ``types`` (OSC type tags), ``range`` (``(lo, hi)``, or a list of the
allowed values), ``access`` (default 2, write-only), ``description``, and ``value``: a function
of the state dict giving the VALUE list, or None when unknown (a ``/norm`` variant of the
tempo: ``lambda state: [(state["tempo_bpm"] - 20) / 280]``). A family (``{name}`` for the
scene's params, ``{voice}`` for its voices, e.g. ``/sonify/param/{name}/norm``) gets one node
per name; its ``value`` is a function of the name and its snapshot (``(lo, hi, value)`` for a
param, ``muted`` for a voice). An address sonify *sends* to its OSC targets is an entry of
``sends()`` (an argument of :class:`SonifyTree`) with the same keys, read-only by default
(``access`` 1; give ``value`` and a client can LISTEN to it); the feature stream is built in
(``features()``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from sonify.commands import TEMPO_RANGE_BPM, Freeze, Mute, Panic, SetParam, SetScene, SetTempo
from sonify.control.osc_server import ADDRESS_SPACE, PREFIX
from sonify.features.registry import MOOD_LABELS, SCALARS

SWITCH_TYPE = "T"  # OSCQuery's boolean; see the module docstring for why not "i"
NO_VALUE, READ_ONLY, WRITE_ONLY, READ_WRITE = 0, 1, 2, 3

Node = dict[str, Any]
Entry = Mapping[str, Any]


def _number(value: object) -> float | None:
    """A JSON-safe float: NaN and infinities (not JSON) become null."""
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _container(path: str, description: str = "") -> Node:
    node: Node = {"FULL_PATH": path, "ACCESS": NO_VALUE, "CONTENTS": {}}
    if description:
        node["DESCRIPTION"] = description
    return node


def _insert(root: Node, node: Node) -> None:
    """Put ``node`` at its FULL_PATH, creating the containers on the way."""
    parts = [p for p in node["FULL_PATH"].split("/") if p]
    parent = root
    for depth, name in enumerate(parts[:-1], start=1):
        contents = parent.setdefault("CONTENTS", {})
        if name not in contents:
            contents[name] = _container("/" + "/".join(parts[:depth]))
        parent = contents[name]
    contents = parent.setdefault("CONTENTS", {})
    existing = contents.get(parts[-1])
    if existing is not None and existing.get("CONTENTS"):  # keep what is already below
        below = node.setdefault("CONTENTS", {})
        for name, child in existing["CONTENTS"].items():
            below.setdefault(name, child)
    contents[parts[-1]] = node


def _range(spec: object) -> list[dict[str, Any]] | None:
    """An entry's ``range`` as OSCQuery's RANGE: (lo, hi) -> MIN/MAX, a list -> VALS."""
    if isinstance(spec, tuple) and len(spec) == 2:
        return [{"MIN": spec[0], "MAX": spec[1]}]
    if isinstance(spec, list):
        return [{"VALS": list(spec)}]
    return None  # a prose range (``"a name from known_scenes()"``) stays in the description


def _json_values(values: Iterable[object]) -> list[object]:
    return [_number(v) if isinstance(v, float) else v for v in values]


def _described(entry: Entry, path: str, access: int, value: list[object] | None) -> Node:
    """A node for an entry the tree has no special knowledge of, from its keys."""
    node: Node = {"FULL_PATH": path, "DESCRIPTION": entry.get("description", ""),
                  "ACCESS": int(entry.get("access", access))}
    if entry.get("types"):
        node["TYPE"] = entry["types"]
    rng = _range(entry.get("range"))
    if rng is not None:
        node["RANGE"] = rng
    if value is not None:
        node["VALUE"] = _json_values(value)
    return node


class SonifyTree:
    """Builds the OSCQuery tree of sonify's control address space; call it for a fresh one.

    Each call asks every callback once, on the calling (HTTP or push) thread, so they should
    hand over cheap, thread-safe snapshots:

    - ``state()``: the runtime's state dict; ``scene``, ``tempo_bpm``, ``frozen`` and ``mood``
      are read (a missing key leaves that VALUE out);
    - ``scenes()``: the scene names ``/sonify/scene`` accepts;
    - ``params()``: ``{name: (lo, hi, current value)}``, one ``/sonify/param/<name>`` each;
    - ``voices()``: ``{voice: muted}``, one ``/sonify/mute/<voice>`` each;
    - ``features()`` (optional): ``{name: value}`` as last streamed, 0..1; given, the tree also
      describes the read-only ``<feature_prefix>/feature/<name>`` stream (every scalar of the
      feature registry, plus ``mood``). Leave it out when features are not streamed;
    - ``sends()`` (optional): entries describing other addresses sonify sends to its OSC
      targets (see the module docstring).
    """

    def __init__(
        self,
        *,
        state: Callable[[], Mapping[str, object]],
        scenes: Callable[[], Collection[str]],
        params: Callable[[], Mapping[str, tuple[float, float, float]]],
        voices: Callable[[], Mapping[str, bool]],
        features: Callable[[], Mapping[str, float]] | None = None,
        feature_prefix: str = PREFIX,
        osc_port: int | None = None,
        sends: Callable[[], Iterable[Entry]] | None = None,
    ) -> None:
        self._state = state
        self._scenes = scenes
        self._params = params
        self._voices = voices
        self._features = features
        self._sends = sends
        self.feature_prefix = feature_prefix.rstrip("/")
        self.osc_port = osc_port

    def __call__(self) -> Node:
        state = self._state()
        where = f" on UDP port {self.osc_port}" if self.osc_port else ""
        root = _container("/", f"sonify: camera frames into music. Control it with OSC{where}; "
                               f"this tree is read-only (LISTEN over its WebSocket for value "
                               f"changes)")
        _insert(root, _container(PREFIX, "sonify's controls"))
        for entry in ADDRESS_SPACE:
            path: str = entry["path"]
            if "/{" in path:  # a family of addresses: a container of one node per name
                container = _container(path[:path.index("/{")], entry["description"])
                _insert(root, container)
                for node in self._family(entry):
                    _insert(root, node)
            else:
                _insert(root, self._method(entry, state))
        if self._features is not None:
            self._add_features(root, state)
        if self._sends is not None:
            for sent in self._sends():
                value = sent["value"](state) if callable(sent.get("value")) else None
                _insert(root, _described(sent, sent["path"], READ_ONLY, value))
        return root

    def _method(self, entry: Entry, state: Mapping[str, object]) -> Node:
        command = entry.get("command")
        node: Node = {"FULL_PATH": entry["path"], "DESCRIPTION": entry["description"]}
        if command == SetScene.kind:
            node.update(TYPE="s", ACCESS=READ_WRITE,
                        RANGE=[{"VALS": sorted(str(s) for s in self._scenes())}])
            if "scene" in state:
                node["VALUE"] = [str(state["scene"])]
        elif command == SetTempo.kind:
            lo, hi = TEMPO_RANGE_BPM
            node.update(TYPE="f", ACCESS=READ_WRITE, RANGE=[{"MIN": lo, "MAX": hi}])
            if "tempo_bpm" in state:
                node["VALUE"] = [_number(state["tempo_bpm"])]
        elif command == Freeze.kind:
            node.update(TYPE=SWITCH_TYPE, ACCESS=READ_WRITE, RANGE=[{"MIN": 0, "MAX": 1}])
            if "frozen" in state:
                node["VALUE"] = [bool(state["frozen"])]
        elif command == Panic.kind:
            node["ACCESS"] = WRITE_ONLY  # a bang: no argument, so no TYPE (see the docstring)
        elif command is None and entry.get("reply"):  # /sonify/status: a request for a reply
            node["ACCESS"] = NO_VALUE
            reply = entry["reply"]
            node["DESCRIPTION"] += (f" (reply type tags {reply['types']!r}: "
                                    f"{', '.join(reply['args'])})")
        else:  # any other address (learn, /norm variants...): described from its keys
            value = entry["value"](state) if callable(entry.get("value")) else None
            node = _described(entry, entry["path"], WRITE_ONLY, value)
        return node

    def _family(self, entry: Entry) -> list[Node]:
        command = entry.get("command")
        template: str = entry["path"]
        base = template[:template.index("/{")]
        nodes: list[Node] = []
        if template.endswith("/{name}") and command == SetParam.kind:
            for name, (lo, hi, value) in sorted(self._params().items()):
                nodes.append({"FULL_PATH": f"{base}/{name}", "TYPE": "f", "ACCESS": READ_WRITE,
                              "RANGE": [{"MIN": _number(lo), "MAX": _number(hi)}],
                              "VALUE": [_number(value)],
                              "DESCRIPTION": f"scene parameter {name}"})
        elif template.endswith("/{voice}") and command == Mute.kind:
            for voice, muted in sorted(self._voices().items()):
                nodes.append({"FULL_PATH": f"{base}/{voice}", "TYPE": SWITCH_TYPE,
                              "ACCESS": READ_WRITE, "RANGE": [{"MIN": 0, "MAX": 1}],
                              "VALUE": [bool(muted)],
                              "DESCRIPTION": f"true (or 1) mutes voice {voice}, false (0) "
                                             f"unmutes it"})
        else:  # e.g. /sonify/param/{name}/norm: one described node per name
            members: Mapping[str, object] = (self._params() if "{name}" in template
                                             else self._voices() if "{voice}" in template
                                             else {})
            value_of = entry.get("value")
            for name, item in sorted(members.items()):
                path = template.replace("{name}", name).replace("{voice}", name)
                known = value_of(name, item) if callable(value_of) else None
                nodes.append(_described(entry, path, WRITE_ONLY, known))
        return nodes

    def _add_features(self, root: Node, state: Mapping[str, object]) -> None:
        assert self._features is not None
        values = self._features()
        base = f"{self.feature_prefix}/feature"
        _insert(root, _container(base, "the feature stream: what the camera sees, sent to the "
                                       "OSC targets as floats 0..1 (read-only here)"))
        described = {spec.name: spec.description + (
            f" (streamed as count / {spec.span[1]:g}, at most 1)" if spec.hi is None else "")
            for spec in SCALARS}
        names = list(described) + sorted(n for n in values if n not in described)
        for name in names:
            node: Node = {"FULL_PATH": f"{base}/{name}", "TYPE": "f", "ACCESS": READ_ONLY,
                          "RANGE": [{"MIN": 0.0, "MAX": 1.0}],
                          "DESCRIPTION": described.get(name, f"feature {name}")}
            if name in values:
                node["VALUE"] = [_number(values[name])]
            _insert(root, node)
        mood: Node = {"FULL_PATH": f"{base}/mood", "TYPE": "s", "ACCESS": READ_ONLY,
                      "RANGE": [{"VALS": list(MOOD_LABELS)}],
                      "DESCRIPTION": "the mood label of the picture"}
        if "mood" in state:
            mood["VALUE"] = [str(state["mood"])]
        _insert(root, mood)


def osc_out_entries(prefix: str, *, notes: bool = True, note_offs: bool = False,
                    int_velocity: bool = False, midi_as_osc: bool = False) -> list[Entry]:
    """The ``sends()`` entries of the note messages :mod:`sonify.outputs.osc` sends to every
    OSC target (as ``[osc]`` configures them), under ``prefix``: described, with no value."""
    p = prefix.rstrip("/")
    entries: list[Entry] = []
    if notes:
        velocity = "1..127" if int_velocity else "0..1"
        entries.append({"path": f"{p}/note", "types": "siiif" if int_velocity else "siiff",
                        "access": NO_VALUE,
                        "description": f"sent when a note starts: voice, channel 1..16, pitch "
                                       f"0..127, velocity {velocity}, duration_s"})
        if note_offs:
            entries.append({"path": f"{p}/noteoff", "types": "sii", "access": NO_VALUE,
                            "description": "sent when a note ends: voice, channel 1..16, "
                                           "pitch 0..127"})
    if midi_as_osc:
        for name, types, what in (("cc", "iii", "channel 0..15, control, value 0..127"),
                                  ("bend", "ii", "channel 0..15, value -8192..8191"),
                                  ("program", "ii", "channel 0..15, program 0..127")):
            entries.append({"path": f"{p}/{name}", "types": types, "access": NO_VALUE,
                            "description": f"MIDI as OSC, sent as it is played: {what}"})
    return entries


def find_node(root: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The node at ``path`` ("/" is the root), or None."""
    node = root
    for name in (p for p in path.split("/") if p):
        contents = node.get("CONTENTS")
        if not isinstance(contents, Mapping) or name not in contents:
            return None
        node = contents[name]
    return node


def readable_value(root: Mapping[str, Any],
                   path: str) -> tuple[str | None, tuple[object, ...]] | None:
    """(TYPE, VALUE as a tuple) of the node at ``path`` when it has a value that can be sent as
    OSC (every item known: a null, from a NaN, is not); else None."""
    node = find_node(root, path)  # a method may have CONTENTS too (/sonify/tempo/norm)
    if node is None or not node.get("VALUE"):
        return None
    value = tuple(node["VALUE"])
    if any(v is None for v in value):
        return None
    return node.get("TYPE"), value
