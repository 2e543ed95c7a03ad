"""Control commands: one frozen type per command, the ranges, one validator, and the one door.

**The commands.** Every control path (OSC, MIDI in, the web page, the scene file watcher, tests)
speaks these types and nothing else; the performance core dispatches on them with ``match``:

==========================================  ============  ====================================
command                                     ``kind``      what it does
==========================================  ============  ====================================
``SetScene(name)``                          scene         switch scene (quantised)
``SetParam(name, value)``                   param         set a scene parameter in its range
``SetTempo(bpm)``                           tempo         fix the tempo (``TEMPO_RANGE_BPM``)
``Mute(voice, muted)``                      mute          mute or unmute one voice
``Freeze(on)``                              freeze        hold the current features, or release
``Panic()``                                 panic         all notes off now
``Learn(param)``                            learn         MIDI learn: the next knob binds here
``SetMaster(level)``                        master        master level 0..1 (``MASTER_RANGE``)
``Transpose(semitones)``                    transpose     ``TRANSPOSE_RANGE`` semitones
``Trigger(pitch, velocity)``                trigger       play one note (``PITCH_RANGE``,
                                                          ``VELOCITY_RANGE``)
``Status(reply)``                           status        ``reply(state)`` on the music thread
``Reload(scene, path)``                     reload        a checked edit of the running scene
``Stop()``                                  stop          end the run
``Extra(name, arg)``                        ``name``      an extension or test hook the core
                                                          looks up by name
==========================================  ============  ====================================

``kind`` names the command in the queue's rate table, metrics labels and logs. ``Command`` is
the union; ``KINDS`` maps each built-in kind to its type.

**One validator.** ``check(cmd, context)`` returns ``cmd`` or raises ``CommandError(reason,
message)``: ``wrong_type``, ``out_of_range``, ``unknown_scene``, ``unknown_param``,
``unknown_voice``, ``unknown_command`` (the reasons the OSC and health servers count). The
ranges are checked against the constants here; names against a ``CommandContext`` (known
scenes, voices, parameters with their ranges), each looked up only by the commands that need it.
The types do not check themselves when built: a front door parses into a command, then checks.

**Parsers**, so each front door is thin: ``from_osc(address, args)`` (the OSC address space
under ``OSC_PREFIX``), ``from_json(name, arg)`` (the web page's ``{"name", "arg"}`` bodies; its
inverse ``to_json``), and the ``clamped`` constructors MIDI in uses to turn a knob or a key into
a command that is valid by construction.

**The door.** A bounded queue that coalesces and rate-limits commands. Every control path hands
a command to ``CommandQueue.put`` from its own thread; the music thread takes a bounded batch
each block with ``take``. A flood of valid commands must not make notes late (a 2,000
messages/s ``/sonify/scene`` flood once stalled the music thread for seconds), so:

- **Coalescing.** A command that sets a state (``SetScene``, ``Reload``, ``SetTempo``,
  ``Freeze``, ``SetMaster``, ``Transpose``, ``Panic``, ``Stop``, ``SetParam`` per name, ``Mute``
  per voice: ``STATE_KEYS``) replaces a waiting one of the same key: the latest wins, and it
  moves to the back so the order of the latest requests is kept. However many arrive, a key is
  applied at most once per take.
- **Rate limits.** Each kind has a token bucket (``RATES``). A state command that finds its
  bucket empty waits in the queue (still replaced by newer ones) until a token comes: the
  latest request is applied, late rather than lost. An event command (``Trigger``, ``Learn``,
  ``Status``, ``Extra``) that finds its bucket empty is dropped and counted.
- **Bounds.** At most ``max_waiting`` commands wait (then new event commands are dropped and
  counted; state commands always have their one slot per key) and ``take(limit)`` hands out
  at most ``limit`` per block.

``stats()`` counts, per kind: received, applied (taken), coalesced (replaced by a newer one)
and dropped (rate limit or full). Thread-safe; ``take`` never blocks.

**The modules.** ``kinds`` (the types and names), ``validate`` (``check``), ``parsing`` (the
front doors' parsers), ``door`` (``CommandQueue``); every public name is imported from here.
"""

from __future__ import annotations

from sonify.commands.door import (
    ALWAYS_ADMITTED,
    MAX_WAITING,
    RATES,
    STATE_KEYS,
    TAKE_LIMIT,
    CommandQueue,
    CommandStats,
    KindStats,
)
from sonify.commands.kinds import (
    COMMAND_TYPES,
    KINDS,
    LEARN_TARGETS,
    OSC_PREFIX,
    REJECT_REASONS,
    TEACH_ACTIONS,
    Command,
    Extra,
    Freeze,
    Learn,
    Mute,
    Panic,
    Reload,
    SetMaster,
    SetParam,
    SetScene,
    SetTempo,
    Status,
    Stop,
    Teach,
    TeachOutputs,
    Transpose,
    Trigger,
)
from sonify.commands.parsing import JSON_KINDS, from_json, from_osc, to_json
from sonify.commands.validate import CommandContext, CommandError, check
from sonify.limits import (  # the ranges belong with the commands
    MASTER_RANGE,
    PITCH_RANGE,
    TEMPO_RANGE_BPM,
    TRANSPOSE_RANGE,
    VELOCITY_RANGE,
)

__all__ = [
    "ALWAYS_ADMITTED", "COMMAND_TYPES", "JSON_KINDS", "KINDS", "LEARN_TARGETS", "MASTER_RANGE",
    "MAX_WAITING", "OSC_PREFIX", "PITCH_RANGE", "RATES", "REJECT_REASONS", "STATE_KEYS",
    "TAKE_LIMIT", "TEMPO_RANGE_BPM", "TRANSPOSE_RANGE", "VELOCITY_RANGE", "Command",
    "CommandContext", "CommandError", "CommandQueue", "CommandStats", "Extra", "Freeze",
    "KindStats", "Learn", "Mute", "Panic", "Reload", "SetMaster", "SetParam", "SetScene",
    "SetTempo", "Status", "Stop", "TEACH_ACTIONS", "Teach", "TeachOutputs", "Transpose",
    "Trigger", "check", "from_json", "from_osc", "to_json",
]
