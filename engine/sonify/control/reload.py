"""Hot reload: saving the running scene's file applies it at the next bar.

``watchfiles`` watches the *folder* that holds the scene (editors save by writing a temporary
file and renaming it over the old one, which a watch on the file itself would lose). On a
change to the running scene's file the new text is checked here, on the watcher's thread; a
valid scene goes to the runtime's command queue as ``Reload(scene, path)`` (the runtime
changes at the next bar), an invalid one is logged with the file, the key and the reason, kept
as ``last_error``, and the running scene keeps playing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sonify.commands import Command, Reload
from sonify.util.notice import NOTICE

logger = logging.getLogger(__name__)


class SceneReloader:
    """Watches the folder of ``current_path()`` and hands valid edits to ``command``."""

    name = "scene reload"

    def __init__(self, command: Callable[[Command], None],
                 current_path: Callable[[], Path | None], *, debounce_ms: int = 200) -> None:
        self._command = command
        self._current_path = current_path
        self._debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watched: Path | None = None
        self.reloads = 0
        self.errors = 0
        self.last_error = ""

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sonify-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            self._thread = None

    def _loop(self) -> None:
        from watchfiles import watch

        while not self._stop.is_set():
            path = self._current_path()
            if path is None:  # a scene given as something other than a file: nothing to watch
                self._stop.wait(1.0)
                continue
            folder = path.resolve().parent
            self._watched = folder
            try:
                # yield_on_timeout: wake every second to follow a scene change to another folder
                for changes in watch(folder, stop_event=self._stop, debounce=self._debounce_ms,
                                     step=50, rust_timeout=1000, yield_on_timeout=True,
                                     recursive=False):
                    self.check(changes)
                    now = self._current_path()
                    if now is None or now.resolve().parent != folder:
                        break
            except Exception as exc:  # a folder that vanished, inotify limits...: retry later
                logger.warning("scene reload: cannot watch %s: %s", folder, exc)
                self._stop.wait(2.0)

    def check(self, changes: Iterable[tuple[Any, str]]) -> bool:
        """Handle one batch of file changes; True when a reload was handed over."""
        current = self._current_path()
        if current is None:
            return False
        target = current.resolve()
        if not any(Path(p).resolve() == target for _, p in changes):
            return False
        if not target.is_file():  # removed, or renamed away mid-save: wait for it to come back
            return False
        return self.reload(target)

    def reload(self, path: Path) -> bool:
        from sonify.scene.schema import SceneError, load_scene

        try:
            scene = load_scene(path)
        except SceneError as exc:
            self.errors += 1
            self.last_error = str(exc)
            logger.error("scene reload: the edit is not used, %s keeps playing as it was:\n%s",
                         path.name, exc)
            return False
        self.reloads += 1
        self.last_error = ""
        logger.log(NOTICE, "scene reload: %s is valid; it applies at the next bar", path)
        self._command(Reload(scene, path))
        return True
