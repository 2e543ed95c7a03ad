"""NOTICE: the log level of good news a user should see without ``-v``.

Between INFO and WARNING: "learned CC 74 -> activity", "scene reload: city.toml is valid". The
command line shows it at its default verbosity, as ``sonify: <message>`` with no level word
(``sonify.cli``); warnings and errors keep theirs. Libraries log it like any level:
``logger.log(NOTICE, "...", args)``.
"""

from __future__ import annotations

import logging

NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")
