"""``python -m sonify.cli``: the ``sonify`` command."""

import sys

from sonify.cli import main

sys.exit(main())
