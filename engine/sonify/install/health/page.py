"""The performance page: ``static/page.html``, ``page.css`` and ``page.js``, shipped in the package.

The page is an instrument as well as a health monitor. It opens one server-sent event stream
(``api/stream``, ``sonify.install.health.stream``: the state the music thread published, a few
times a second; no polling) and posts every command to ``api/command`` as the typed commands'
JSON (``sonify.commands.from_json``). It shows:

- a **scene-launch grid** (``api/scenes``, reloaded every 10 s): the scene playing, the pending
  one blinking with the bar it comes in at (``next_scene_bar``), and the bar the last change
  landed on (``last_change``);
- a **slider per scene parameter** over its range (``param_ranges``), **XY pads** pairing them
  (an odd one out pairs with the master level), the master level, and **learn** buttons (for
  each parameter, tempo and level) when MIDI control is on (``learn``);
- **mute and solo** per voice (solo mutes every other voice: plain ``mute`` commands);
- tempo typed or **tapped** (the mean of the last four intervals), freeze, panic;
- **feature scopes** (six seconds of history each) and a **piano roll** of the notes played
  (``recent_notes`` against ``clock_s``: the last eight seconds and the lookahead ahead);
- the camera thumbnail (``thumbnail.jpg`` every second), health problems and outputs.

It works on a phone or tablet: one column when narrow, touch targets of 44 px on coarse
pointers, pads and sliders driven by pointer events (touch, pen, mouse) with ``touch-action:
none`` so dragging does not scroll the page. Continuous controls keep one request in flight
each and send the latest value when it returns; a control the performer is moving is not moved
back by the state for ``HOLD_MS``.

With a token, the server has turned the ``?token=`` of the first visit into a cookie, which the
browser sends with every request the page makes, the stream included (the page never handles
the token itself); when the stream breaks, the page asks ``api/state`` whether the engine is gone
or the cookie refused. Data from the engine is only ever set as ``textContent`` or drawn on a
canvas (never parsed as HTML), so a scene or voice name cannot inject markup; the page loads
only its own two files (the server's Content-Security-Policy allows nothing inline).

Element ids (tests use them): ``scene-name``, ``position``, ``mood``, ``tempo``, ``fps``,
``frames``, ``notes``, ``lateness``, ``health``, ``conn``; ``launch`` (buttons
``launch-<scene>``), ``pending``, ``landed``; ``panic``, ``freeze``, ``tap``, ``tempo-input``,
``tempo-set``, ``master``, ``learn-<target>``, ``message``; ``params`` (sliders
``param-<name>``), ``pads`` (``pad-<x>-<y>``), ``voices`` (``mute-<voice>``, ``solo-<voice>``);
``roll`` (its ``data-notes`` counts the notes drawn), ``features`` (``scope-<name>``,
``feature-<name>``); ``thumb``, ``problems``, ``outputs``. Names are kept to letters, digits,
``_`` and ``-`` in ids (others become ``_``), except in ``feature-<name>``.
"""

from __future__ import annotations

from importlib.resources import files

from sonify.commands import TEMPO_RANGE_BPM


def _asset(name: str) -> str:
    return (files("sonify.install.health") / "static" / name).read_text(encoding="utf-8")


PAGE_HTML = (_asset("page.html").replace("@TEMPO_MIN@", f"{TEMPO_RANGE_BPM[0]:g}")
             .replace("@TEMPO_MAX@", f"{TEMPO_RANGE_BPM[1]:g}"))
PAGE_CSS = _asset("page.css")
PAGE_JS = _asset("page.js")

# path -> (body, content type): what the server hands out besides the page itself
ASSETS: dict[str, tuple[bytes, str]] = {
    "/page.css": (PAGE_CSS.encode(), "text/css; charset=utf-8"),
    "/page.js": (PAGE_JS.encode(), "text/javascript; charset=utf-8"),
}
