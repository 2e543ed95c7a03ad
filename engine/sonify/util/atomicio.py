"""The one way sonify writes a file: whole or not at all, even across a crash or a power cut.

``atomic_write(path, content)`` writes ``content`` (bytes, or a function that writes into a
binary file) to a temporary file beside ``path`` (the same directory, so the same file system),
fsyncs it, gives it the permissions of an ordinary new file (``0666 & ~umask``: ``mkstemp``
makes 0600), renames it over ``path`` and fsyncs the directory, so that the rename itself
survives a power cut. ``path`` then holds either what it held before or the whole new file; on
any error the temporary file is removed and the error raised (an ``OSError`` names the file).
``overwrite=False`` never replaces an existing file: ``FileExistsError``, and nothing changes.

Several files, all or nothing (``sonify render -o x.mid -o x.wav``)::

    with staged() as batch:
        atomic_write(a, data_a)      # written to a temporary file beside a, not renamed yet
        write_wav(b, left, right)    # any atomic_write on this thread joins the batch
        batch.commit()               # only now are they renamed into place

Leaving the block without ``commit()`` (an error while writing any of them) removes every
temporary file and leaves every target as it was. The renames themselves do not fail for want
of space; what can fail (the data, the fsync) happens before the first rename.
"""

from __future__ import annotations

import contextvars
import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

Content = bytes | bytearray | memoryview | Callable[[BinaryIO], None]

_batch: contextvars.ContextVar[Staged | None] = contextvars.ContextVar("atomicio_batch",
                                                                       default=None)
_UMASK = re.compile(rb"^Umask:\s*([0-7]+)", re.MULTILINE)
# link() is how a file is published without replacing another; these say the file system
# cannot link (FAT on a USB stick, some network shares): then a check-and-rename does it
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK,
            errno.ENOSYS}


def current_umask() -> int:
    """The process's umask, read without changing it (``os.umask`` can only be read by
    setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status", "rb") as f:
            m = _UMASK.search(f.read())
        if m:
            return int(m.group(1), 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a directory's entries (a rename, a new file) durable. File systems that cannot
    fsync a directory are tolerated: there is nothing more to do on them."""
    fd = os.open(os.fspath(path) or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def write_temp(path: str | os.PathLike[str], content: Content) -> Path:
    """``content`` in a new temporary file beside ``path`` (named ``.NAME.*.tmp``), fsynced,
    with ordinary permissions; removed again if anything fails. Publish it with ``publish``."""
    target = Path(path)
    parent = target.parent
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        discard(tmp)
        raise
    return Path(tmp)


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str], *,
            overwrite: bool = True) -> Path:
    """Rename the temporary file ``tmp`` to ``path`` and make that durable. With
    ``overwrite=False`` an existing ``path`` is never replaced (``FileExistsError``; ``tmp``
    stays for another try)."""
    target = Path(path)
    if overwrite:
        os.replace(tmp, target)
    else:
        try:
            os.link(tmp, target)  # fails if target exists: no window for a race
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
            if os.path.lexists(target):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST),
                                      str(target)) from None
            os.replace(tmp, target)
        else:
            os.unlink(tmp)
    fsync_dir(target.parent)
    return target


def discard(tmp: str | os.PathLike[str]) -> None:
    """Remove a temporary file, quietly (it may be gone already)."""
    try:
        os.unlink(tmp)
    except OSError:
        pass


def atomic_write(path: str | os.PathLike[str], content: Content, *,
                 overwrite: bool = True) -> Path:
    """Write ``path`` whole or not at all (see the module doc); inside ``staged()`` the file
    is only written to its temporary file, and ``commit()`` renames it."""
    batch = _batch.get()
    if batch is not None:
        batch.write(path, content, overwrite=overwrite)
        return Path(path)
    tmp = write_temp(path, content)
    try:
        return publish(tmp, path, overwrite=overwrite)
    except BaseException:
        discard(tmp)
        raise


class Staged:
    """Files written to temporary files, renamed into place together by ``commit()``."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, Path, bool]] = []  # (tmp, target, overwrite)
        self.committed: list[Path] = []

    def write(self, path: str | os.PathLike[str], content: Content, *,
              overwrite: bool = True) -> None:
        target = Path(path)
        for i, (tmp, other, _) in enumerate(self._files):
            if other == target:  # written twice: the later content wins
                discard(tmp)
                del self._files[i]
                break
        self._files.append((write_temp(target, content), target, overwrite))

    def commit(self) -> list[Path]:
        """Rename every file into place; on an error the ones not yet renamed are removed."""
        try:
            while self._files:
                tmp, target, overwrite = self._files[0]
                self.committed.append(publish(tmp, target, overwrite=overwrite))
                self._files.pop(0)
        finally:
            self.discard()
        return list(self.committed)

    def discard(self) -> None:
        """Remove every temporary file not yet renamed."""
        for tmp, _, _ in self._files:
            discard(tmp)
        self._files.clear()


@contextmanager
def staged() -> Iterator[Staged]:
    """A batch for this thread: every ``atomic_write`` inside goes into it (see module doc)."""
    batch = Staged()
    token = _batch.set(batch)
    try:
        yield batch
    finally:
        _batch.reset(token)
        batch.discard()
