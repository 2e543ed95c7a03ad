"""``sonify panic``: silence the configured synths from a fresh process.

The running engine ends its notes itself on stop (``Scheduler.panic``: a note-off for every note
in its ledger, then CC 64 = 0, CC 123, CC 120 per channel). That cleanup never runs when the
process is killed: systemd's watchdog sends SIGABRT, an OOM kill or a ``SIGKILL`` after the stop
timeout leave no chance, and the synth (a separate process, FluidSynth) holds whatever was
sounding: an organ note for days in an empty gallery. ``ExecStopPost=`` runs after the main
process is gone, however it ended, so the unit calls this there.

This process has no ledger, so it cannot know which notes are held. It sends, on each of the 16
channels: CC 64 = 0 (sustain off, else released notes keep ringing), CC 123 (all notes off) and
CC 120 (all sound off), which FluidSynth and nearly every synth honour and which silence at once;
then, for the devices and patches that ignore channel-mode messages (some hardware, a Pd or Max
patch that only reads note-off), a note-off for every pitch on every channel: 2048 messages,
6 KB, paced 64 at a time so neither rtmidi's JACK ring buffer (16 KB) nor a receiver that reads
once per JACK period overflows: under a second through ALSA or JACK, about two seconds over a
5-pin DIN cable. OSC targets get ``<prefix>/panic`` (what ``OscOutput.panic`` sends).

A virtual MIDI port cannot be reached after the fact: it belonged to the dead process, and the
synth's connection went with it; that is reported and skipped. The installation's config names
the synth's port (``[midi] port``) so the panic can find it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sonify.config import Config, parse_host_port

logger = logging.getLogger(__name__)

PANIC_CLIENT_NAME = "sonify-panic"
# The note-offs go out 64 at a time, a pause of about one JACK period (1024 frames at 48 kHz)
# apart: receivers drain their input once per period, and some keep little room (jack_midi_dump
# drops what passes 127 messages in one period).
NOTE_OFF_CHUNK = 64
CHUNK_PAUSE_S = 0.025


def panic_outputs(config: Config, *, notes: bool = True,
                  report: Callable[[str], None] | None = None,
                  chunk_pause_s: float = CHUNK_PAUSE_S) -> int:
    """Send the panic to the MIDI port and the OSC targets ``config`` names. Returns 0 when every
    destination got it, 1 when one could not be reached (no such port, no MIDI system, an OSC
    host that does not resolve), saying which through ``report`` (default: the log).

    ``notes``: also send the 2048 explicit note-offs after the channel-mode messages.
    """
    say = report or logger.info
    failed = False
    sent_any = False
    m = config.midi
    if m.enabled and m.port:
        ok = _panic_midi(m.port, m.api, notes, say, chunk_pause_s)
        failed |= not ok
        sent_any |= ok
    elif m.enabled and m.virtual:
        say(f"MIDI: skipped: the engine used the virtual port {m.virtual!r}, which ended with "
            f"it; set [midi] port to the synth's port so a panic can reach it")
    for target in config.osc.targets:
        ok = _panic_osc(target, config.osc.prefix, say)
        failed |= not ok
        sent_any |= ok
    if not failed and not sent_any:
        say("nothing to silence: no MIDI port and no OSC target in the config")
    return 1 if failed else 0


def _panic_midi(pattern: str, api: str, notes: bool, say: Callable[[str], None],
                chunk_pause_s: float) -> bool:
    from sonify.outputs.midi import MidiOutput, MidiPortError

    try:
        out = MidiOutput(port=pattern, api=api, client_name=PANIC_CLIENT_NAME, wait=False)
    except MidiPortError as exc:
        say(f"MIDI: not sent: {exc}")
        return False
    try:
        target = out.target
        out.panic()  # CC 64 = 0, CC 123, CC 120 on every channel: silence first
        if notes:
            out.note_off_sweep(NOTE_OFF_CHUNK, chunk_pause_s)
    finally:
        out.close()  # waits for the last messages to drain to the peer
    if out.stats.dropped:
        say(f"MIDI: {out.stats.dropped} message(s) to {target!r} failed: "
            f"{out.stats.last_error}")
        return False
    count = 48 + (2048 if notes else 0)
    say(f"MIDI: panic sent to {target!r} ({count} messages: CC 64/123/120 on 16 channels"
        f"{' and a note-off for every note' if notes else ''})")
    return True


def _panic_osc(target: str, prefix: str, say: Callable[[str], None]) -> bool:
    from sonify.outputs.osc import OscOutput, OscTargetError

    try:
        host, port = parse_host_port(target)
        out = OscOutput([(host, port)], prefix=prefix)
    except (ValueError, OscTargetError) as exc:
        say(f"OSC {target}: not sent: {exc}")
        return False
    try:
        out.panic()
    finally:
        out.close()
    if out.stats.dropped:
        say(f"OSC {target}: not sent: {out.stats.last_error}")
        return False
    say(f"OSC {target}: {out.prefix}/panic sent")
    return True
