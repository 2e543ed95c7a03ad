"""Control input (OSC in; later MIDI in and hot reload): every path ends in the runtime's
command queue, never in runtime objects directly."""

from sonify.control.osc_server import ADDRESS_SPACE, ControlServer, ControlServerError, ControlStats

__all__ = ["ADDRESS_SPACE", "ControlServer", "ControlServerError", "ControlStats"]
