"""A recording in progress, on disk: what a crash, a kill or a power cut leaves is a MIDI file.

Size (about 510 lines): writing, committing and recovering the spool are one on-disk format;
kept together so the format's invariants are read in one place.

While ``recordings/piece.mid`` is recorded, its music goes into a spool beside it::

    recordings/.piece.mid.rec/
        meta.json             format, the final name, ticks per beat, when it started
        lock                  flock'd by the recording process (recovery leaves a live spool be)
        000.trk               track 0, the tempo map: the MTrk event bytes as the file will hold
        001.trk, 002.trk ...  one per voice, in order of first appearance, from its track name
        commit-0, commit-1    the last two commits (alternately rewritten, CRC'd): each track's
                              size and last tick, the notes held, the end tick
        published             (after a ``save()``) the file this recording already wrote
        done                  written just before the finished file is put in place

The recorder appends each track's new bytes every second or so, fsyncs them, then writes a
commit: what a commit names is on disk, whole. The finished file is MThd, then for each track
an MTrk chunk: its spool bytes, the note-offs of the notes it leaves sounding, end-of-track;
it is assembled by a streaming copy into a temporary file beside the target, fsynced and
renamed, and the spool removed. Nothing needs the whole piece in memory.

Recovery (``recover_spool``, ``recover_beside``; ``sonify run`` does it for the record path at
start, ``sonify recover`` by hand) finishes a spool whose process died: each track up to its
last commit (no commit yet: up to its last whole event), its held notes ended at the end tick.
A spool that holds no note is removed: a run that played nothing leaves nothing.

Never replacing a file: the finished recording goes to its name only if that is free, else to
the first free ``NAME-001.mid``, ``NAME-002.mid``... (``publish_rotating``). A name with
strftime fields (``%Y-%m-%d_%H%M%S.mid``) is expanded with the local time the part started.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sonify.outputs.smf import (
    TICKS_PER_BEAT,
    TrackSource,
    assemble,
    assembled_size,
    closing_bytes,
    scan_track,
)
from sonify.util.atomicio import discard, fsync_dir, publish, write_temp

try:
    import fcntl
except ImportError:  # not on Windows: no locking, recovery then trusts the user
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

SPOOL_SUFFIX = ".rec"
FORMAT = "sonify-midi-spool"
VERSION = 1
_TRACK = re.compile(r"^(\d{3,})\.trk$")


def spool_for(final: Path) -> Path:
    """The spool directory of a recording that will be ``final``."""
    return final.with_name(f".{final.name}{SPOOL_SUFFIX}")


def final_for(spool: Path) -> Path:
    """The recording a spool directory becomes (its own name says it)."""
    name = spool.name
    if name.startswith("."):
        name = name[1:]
    if name.endswith(SPOOL_SUFFIX):
        name = name[:-len(SPOOL_SUFFIX)]
    return spool.with_name(name)


def expand(template: Path, wall_s: float) -> Path:
    """``template`` with strftime fields in its file name filled in for ``wall_s`` (local)."""
    if "%" not in template.name:
        return template
    return template.with_name(time.strftime(template.name, time.localtime(wall_s)))


def candidates(final: Path) -> Iterator[Path]:
    """``final``, then ``STEM-001.EXT``, ``STEM-002.EXT``, ... (without end)."""
    yield final
    n = 1
    while True:
        yield final.with_name(f"{final.stem}-{n:03d}{final.suffix}")
        n += 1


def _lock(fd: int) -> bool:
    """Take the spool's lock without waiting; False when a live process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _make_folder(folder: Path) -> None:
    """``mkdir -p``, saying "Not a directory" when a file is in the way (not "File exists")."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                 str(folder)) from None


def _write_small(path: Path, data: bytes) -> None:
    """A tiny file inside a spool, durable (its directory entry too); never part of a
    ``staged()`` batch: the spool's bookkeeping cannot wait for a commit."""
    tmp = write_temp(path, data)
    try:
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise


# -- the spool of a recording in progress ------------------------------------------------------

class Spool:
    """The files of one recording in progress. ``create`` reserves the first free name."""

    def __init__(self, directory: Path, final: Path, lock_fd: int, dir_fd: int) -> None:
        self.directory = directory
        self.final = final
        self._lock_fd = lock_fd
        self._dir_fd = dir_fd
        self._fds: list[int] = []
        self._dirty: set[int] = set()
        self._seq = 0

    @property
    def commits(self) -> int:
        """How many commits this spool has made."""
        return self._seq

    @classmethod
    def create(cls, template: Path, *, wall_s: float,
               ticks_per_beat: int = TICKS_PER_BEAT) -> Spool:
        """A new spool for the recording ``template`` (expanded for ``wall_s``): the first
        candidate name with neither a file nor a spool. OSError when it cannot be made."""
        base = expand(template, wall_s)
        _make_folder(base.parent)
        for final in candidates(base):
            if os.path.lexists(final):
                continue
            directory = spool_for(final)
            try:
                directory.mkdir()
            except FileExistsError:
                continue
            break
        opened: list[int] = []
        try:
            lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            opened.append(lock_fd)
            _lock(lock_fd)
            dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            opened.append(dir_fd)
            meta = {"format": FORMAT, "version": VERSION, "final": final.name,
                    "ticks_per_beat": ticks_per_beat, "started_unix": round(wall_s, 3),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(wall_s)),
                    "pid": os.getpid()}
            _write_small(directory / "meta.json", json.dumps(meta).encode() + b"\n")
            fsync_dir(directory.parent)
        except BaseException:
            for fd in opened:
                os.close(fd)
            shutil.rmtree(directory, ignore_errors=True)
            raise
        logger.info("recording to %s (spool %s)", final, directory)
        return cls(directory, final, lock_fd, dir_fd)

    def track_path(self, index: int) -> Path:
        return self.directory / f"{index:03d}.trk"

    def write(self, index: int, data: bytearray) -> int:
        """Append as much of ``data`` to track ``index`` as the disk takes; how many bytes
        (OSError only when not one byte could be written)."""
        while len(self._fds) <= index:
            path = self.track_path(len(self._fds))
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
            self._fds.append(fd)
            fsync_dir(self.directory)  # the new file's name survives a power cut
        n = os.write(self._fds[index], data)
        self._dirty.add(index)
        return n

    def commit(self, state: dict[str, object]) -> None:
        """Make what was written durable, then say so: fsync each track written to, then
        write a commit (CRC'd, alternating between two files)."""
        if os.fstat(self._dir_fd).st_nlink == 0:
            raise FileNotFoundError(errno.ENOENT, "the recording's folder was removed",
                                    str(self.directory))
        for index in sorted(self._dirty):
            _datasync(self._fds[index])
        self._dirty.clear()
        self._seq += 1
        payload = json.dumps({"seq": self._seq, **state}, separators=(",", ":")).encode()
        record = b"%08x " % zlib.crc32(payload) + payload + b"\n"
        path = self.directory / f"commit-{self._seq % 2}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            os.pwrite(fd, record, 0)
            os.ftruncate(fd, len(record))
            _datasync(fd)
        finally:
            os.close(fd)
        if self._seq <= 2:
            fsync_dir(self.directory)

    def removed(self) -> bool:
        """True when someone deleted the spool directory under the recording."""
        try:
            return os.fstat(self._dir_fd).st_nlink == 0
        except OSError:
            return True

    def rescue(self, ticks_per_beat: int, wall_s: float, sizes: Sequence[int]) -> Spool:
        """The spool was deleted under us (its files are still open): copy what it holds into
        a new spool for the same recording, and go on in that one."""
        new = Spool.create(self.final, wall_s=wall_s, ticks_per_beat=ticks_per_beat)
        try:
            for index, size in enumerate(sizes):
                offset = 0
                data = bytearray()
                while offset < size:
                    chunk = os.pread(self._fds[index], min(1 << 20, size - offset), offset)
                    if not chunk:
                        break
                    offset += len(chunk)
                    data += chunk
                    if len(data) >= 1 << 20 or offset >= size:
                        while data:
                            del data[:new.write(index, data)]
                if not size:
                    new.write(index, bytearray())
        except BaseException:
            new.close()
            new.remove()
            raise
        self.close()
        return new

    def publish_snapshot(self, path: Path) -> None:
        """Remember that ``path`` holds an earlier ``save()`` of this recording: recovery may
        then replace it (it is ours) instead of writing beside it."""
        st = path.stat()
        info = {"final": path.name, "ino": st.st_ino, "size": st.st_size,
                "mtime_ns": st.st_mtime_ns}
        _write_small(self.directory / "published", json.dumps(info).encode())

    def close(self) -> None:
        """Close the files and release the lock (the spool stays on disk)."""
        for fd in [*self._fds, self._dir_fd, self._lock_fd]:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        self._dir_fd = self._lock_fd = -1

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _datasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


# -- finishing a recording ---------------------------------------------------------------------

def publish_rotating(tmp: Path, final: Path, *, own: Path | None = None,
                     spool: Path | None = None, size: int = 0) -> Path:
    """Put the finished temporary file ``tmp`` in place as ``final``, or as the first free
    rotated name when ``final`` exists (never replacing a file, unless it is ``own``: this
    recording's earlier save). With ``spool``, a ``done`` marker names the file first, so a
    crash between the rename and the spool's removal does not make the recording twice."""
    if own is not None:
        if spool is not None and spool.is_dir():
            _write_small(spool / "done", json.dumps({"final": own.name, "size": size}).encode())
        return publish(tmp, own, overwrite=True)
    for cand in candidates(final):
        if os.path.lexists(cand):
            continue
        other = spool_for(cand)
        if cand != final and other != spool and os.path.lexists(other):
            continue  # another recording has claimed that name
        if spool is not None and spool.is_dir():
            _write_small(spool / "done", json.dumps({"final": cand.name, "size": size}).encode())
        try:
            return publish(tmp, cand, overwrite=False)
        except FileExistsError:
            continue
    raise AssertionError("unreachable")  # candidates() never ends


def finish(final: Path, ticks_per_beat: int, tracks: Sequence[TrackSource], *,
           spool: Path | None = None, own: Path | None = None) -> Path:
    """Assemble the MIDI file from ``tracks`` beside ``final`` and put it in place (see
    ``publish_rotating``); the temporary file is removed on any error."""
    _make_folder(final.parent)
    size = assembled_size(tracks)
    tmp = write_temp(final, lambda f: assemble(f, ticks_per_beat, tracks))
    try:
        return publish_rotating(tmp, final, own=own, spool=spool, size=size)
    except BaseException:
        discard(tmp)
        raise


# -- recovery --------------------------------------------------------------------------------

@dataclass
class Recovered:
    """What became of a leftover spool: ``path`` the recording made (None: nothing to keep,
    or it failed: ``error``); ``in_use`` when a live recording holds it."""

    spool: Path
    path: Path | None = None
    error: str | None = None
    in_use: bool = False
    notes: int = 0

    def describe(self) -> str:
        if self.in_use:
            return f"{self.spool} is being recorded by a running sonify: left alone"
        if self.error:
            return (f"could not finish the recording left in {self.spool}: {self.error}; it "
                    f"stays there (`sonify recover {self.spool.parent}` tries again)")
        if self.path is None:
            return f"removed {self.spool}: the run that left it played no note"
        return (f"recovered the recording a stopped run left: {self.path} "
                f"({self.notes} notes)")


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_commit(spool: Path) -> dict | None:
    """The newest whole commit of a spool (None before the first)."""
    best: dict | None = None
    for i in (0, 1):
        try:
            line = (spool / f"commit-{i}").read_bytes().split(b"\n", 1)[0]
            crc, payload = line.split(b" ", 1)
            if int(crc, 16) != zlib.crc32(payload):
                continue
            data = json.loads(payload)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and (best is None or data.get("seq", 0) > best.get("seq", 0)):
            best = data
    return best


def _track_files(spool: Path) -> list[Path]:
    files = []
    for p in spool.iterdir():
        m = _TRACK.match(p.name)
        if m:
            files.append((int(m.group(1)), p))
    files.sort()
    return [p for i, (n, p) in enumerate(files) if n == i]  # stop at a gap


def _own_snapshot(spool: Path) -> Path | None:
    info = _read_json(spool / "published")
    if not info or not isinstance(info.get("final"), str):
        return None
    path = spool.parent / info["final"]
    try:
        st = path.stat()
    except OSError:
        return None
    if (st.st_ino, st.st_size, st.st_mtime_ns) == (info.get("ino"), info.get("size"),
                                                    info.get("mtime_ns")):
        return path
    return None


def _remove_temps(spool: Path, final: Path) -> None:
    for p in spool.parent.glob(f".{glob_escape(final.name)}.*.tmp"):
        discard(p)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def recover_spool(spool: Path) -> Recovered:
    """Finish the recording a dead process left in ``spool`` (see the module doc). Never
    raises for a spool it cannot read or write: the answer says why."""
    result = Recovered(spool)
    try:
        lock_fd = os.open(spool / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        result.error = exc.strerror or str(exc)
        return result
    try:
        if not _lock(lock_fd):
            result.in_use = True
            return result
        return _recover_locked(spool, result)
    except (OSError, ValueError) as exc:
        result.error = getattr(exc, "strerror", None) or str(exc)
        return result
    finally:
        os.close(lock_fd)


def _recover_locked(spool: Path, result: Recovered) -> Recovered:
    meta = _read_json(spool / "meta.json")
    if meta is None and time.time() - spool.stat().st_mtime < 60.0:
        result.in_use = True  # being made this instant (its lock comes a moment later)
        return result
    meta = meta or {}
    final = spool.parent / meta["final"] if isinstance(meta.get("final"), str) \
        else final_for(spool)
    tpb = meta.get("ticks_per_beat")
    tpb = tpb if isinstance(tpb, int) and 0 < tpb < 0x8000 else TICKS_PER_BEAT
    done = _read_json(spool / "done")
    if done and isinstance(done.get("final"), str):
        made = spool.parent / done["final"]
        try:
            if made.stat().st_size == done.get("size"):  # finished, but not cleaned up
                shutil.rmtree(spool, ignore_errors=True)
                _remove_temps(spool, final)
                result.path = made
                return result
        except OSError:
            pass
    files = _track_files(spool)
    commit = read_commit(spool)
    tracks: list[TrackSource] = []
    notes = 0
    sizes = commit.get("sizes") if commit else None
    if isinstance(sizes, list) and len(sizes) <= len(files):
        ticks = commit.get("ticks", [])  # type: ignore[union-attr]
        held: dict[int, list[tuple[int, int]]] = {}
        for index, ch, pitch in commit.get("held", []):  # type: ignore[union-attr]
            held.setdefault(int(index), []).append((int(ch), int(pitch)))
        notes = int(commit.get("notes", 0))  # type: ignore[union-attr]
        end_tick = max([int(commit.get("end_tick", 0)), *map(int, ticks)])  # type: ignore
        for i, size in enumerate(sizes):
            if files[i].stat().st_size < size:  # the commit names more than the disk holds
                raise ValueError(f"{files[i]} is shorter than its last commit")
        for i, size in enumerate(sizes):
            tracks.append((files[i], int(size),
                           closing_bytes(int(ticks[i]), end_tick, held.get(i, []))))
    else:  # killed before its first commit: every whole event there is
        scans = []
        for path in files:
            with open(path, "rb") as f:
                scans.append(scan_track(f, path.stat().st_size))
        notes = sum(s.notes for s in scans)
        end_tick = max((s.last_tick for s in scans), default=0)
        for path, s in zip(files, scans, strict=True):
            tracks.append((path, s.size, closing_bytes(s.last_tick, end_tick, s.held)))
    result.notes = notes
    if notes == 0 or not tracks:
        shutil.rmtree(spool, ignore_errors=True)
        _remove_temps(spool, final)
        return result
    result.path = finish(final, tpb, tracks, spool=spool, own=_own_snapshot(spool))
    shutil.rmtree(spool, ignore_errors=True)
    _remove_temps(spool, final)
    return result


def find_spools(where: str | os.PathLike[str]) -> list[Path]:
    """The spools at ``where``: a spool directory itself, the spools in a directory, or for a
    recording's path (a template too) the spools in its directory."""
    p = Path(where)
    if p.name.endswith(SPOOL_SUFFIX) and p.is_dir():
        return [p]
    directory = p if p.is_dir() else p.parent
    try:
        return sorted(d for d in directory.glob(f".*{SPOOL_SUFFIX}") if d.is_dir())
    except OSError:
        return []


def recover_beside(where: str | os.PathLike[str]) -> list[Recovered]:
    """Recover every leftover spool at ``where`` (see ``find_spools``), logging each."""
    out = []
    for spool in find_spools(where):
        r = recover_spool(spool)
        if r.error:
            logger.error("%s", r.describe())
        elif r.path is not None:
            logger.warning("%s", r.describe())  # a run was killed: worth knowing
        elif not r.in_use:
            logger.info("%s", r.describe())
        out.append(r)
    return out
