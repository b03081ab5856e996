"""Follow every interesting file of a local run directory."""

from __future__ import annotations

import fnmatch
import functools
import math
import os
import threading
import time
from pathlib import Path

from nsa_train.telemetry import schema
from nsa_tui.moved_runs import first_boot, renamed_to
from nsa_tui.tail.file_tailer import FileTailer
from nsa_tui.tail.notify import ChangeNotifier
from nsa_tui.tail.older_sh import scan_older, window_end
from nsa_tui.tail.source import LINE_PATTERNS, WHOLE_FILES, WHOLE_PATTERNS, Update, initial_window

# a heartbeat's older part is scanned this long after its first read: the dashboard's first screen (the history's
# parse, the first paint) has the CPU first, and the events before the window come a moment later
OLDER_SCAN_DELAY_S = 2.0
# a directory not there is looked for beside its path and under the runs root (moved_runs) at most this often: one
# small read per directory there, while it stays gone
MOVE_LOOK_EVERY_S = 3.0


@functools.lru_cache(maxsize=4096)
def wanted_kind(name: str) -> str | None:
    """'whole', 'line' or None for a file name in a run directory."""
    if name in WHOLE_FILES or any(fnmatch.fnmatchcase(name, p) for p in WHOLE_PATTERNS):
        return "whole"
    if any(fnmatch.fnmatchcase(name, p) for p in LINE_PATTERNS):
        return "line"
    return None


def _followed(name: str) -> bool:
    return wanted_kind(name) is not None


def _identity(d: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(d)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class LocalRunSource:
    def __init__(
        self, directory: str | os.PathLike[str], *, force_poll: bool = False, roots: tuple[Path, ...] = ()
    ) -> None:
        self.directory = Path(directory)
        # a run directory renamed while watched is followed where it went: looked for beside it and under ``roots``
        # (the runs root), as `nsa status OLD-PATH` finds it; each (old, new) path followed, oldest first
        self._roots = roots
        self.moves: list[tuple[Path, Path]] = []
        self.went_several: list[Path] = []  # the last look found the run in these directories: none is chosen
        self._boot: bytes | None = None  # the run's first boot record, read once it is there: which run this is
        self._identity: tuple[int, int] | None = None  # the directory's (st_dev, st_ino) at the last read
        self._looked_at = self._boot_looked_at = -math.inf
        self._force_poll = force_poll
        self._tailers: dict[str, FileTailer] = {}
        self._whole_sig: dict[str, tuple[int, int, int]] = {}
        self.mtimes: dict[str, float] = {}  # newest mtime seen per file (the health engine's last_write_ts)
        self._notifier = ChangeNotifier(self.directory, force_poll=force_poll, wanted=_followed)
        # restart() comes from the UI thread while a reader thread may be inside read(): it only asks, and
        # read() starts over at its next call, so that a read in flight cannot leave fresh tailers at the
        # files' ends behind the reset (the reset would then be followed by nothing)
        self._restart_lock = threading.Lock()
        self._restart_asked = False
        self.dir_missing = False
        # files the last read could not open or read (permissions, a stale NFS handle, an I/O error) -> why;
        # each is skipped (the others are read) and tried again at the next read
        self.unreadable: dict[str, str] = {}
        # heartbeats first read from a window: their older part is scanned for events once, on a thread, at a read
        # OLDER_SCAN_DELAY_S after; what a scan of before a restart finds is dropped
        self._older_lock = threading.Lock()
        self._older_gen = 0
        self._older_asked: set[str] = set()
        self._older_due: list[tuple[str, tuple[int, int], int]] = []  # (name, its file's identity, window start)
        self._older_due_at = 0.0  # monotonic time from which the due scans start
        self._older_found: list[Update] = []

    def _names(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.directory) if e.is_file())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read(self) -> list[Update]:
        if self._notifier.fallback_reason == "run directory not there yet" and self.directory.is_dir():
            self._notifier.close()
            self._notifier = ChangeNotifier(self.directory, force_poll=self._force_poll, wanted=_followed)
        updates: list[Update] = []
        with self._restart_lock:
            restart, self._restart_asked = self._restart_asked, False
        if restart:
            self._tailers.clear()
            self._whole_sig.clear()
            self.mtimes.clear()
            with self._older_lock:
                self._older_gen += 1
                self._older_found.clear()
            self._older_asked.clear()
            self._older_due.clear()
            updates.append(Update("", reset=True))  # "" = every file: the consumer starts over
        if self._older_due and time.monotonic() >= self._older_due_at:
            due, self._older_due = self._older_due, []
            threading.Thread(
                target=self._scan_older, args=(due, self._older_gen), name="nsa-watch-older", daemon=True
            ).start()
        names = self._names()
        self.dir_missing = not names and not self.directory.is_dir()
        if self.dir_missing and (went := self._went()) is not None:
            self._follow(went)
            names = self._names()
            self.dir_missing = not names and not self.directory.is_dir()
        elif names:
            self._note_run(names)
        present = set(names)
        sizes: dict[str, int] = {}
        for name in names:
            try:
                up = self._read_one(name, sizes)
            except OSError as e:  # this file only: the updates of the others are already taken
                self.unreadable[name] = e.strerror or type(e).__name__
                continue
            self.unreadable.pop(name, None)
            if up is not None:
                updates.append(up)
        for name in [n for n in self.unreadable if n not in present]:
            del self.unreadable[name]
        for name in [n for n in self._whole_sig if n not in present]:
            del self._whole_sig[name]
            self.mtimes.pop(name, None)  # else the file lives on as an empty one (an empty summary.json, a .HALT)
            updates.append(Update(name, deleted=True))
        self._notifier.note_sizes(sizes)
        with self._older_lock:
            updates += self._older_found
            self._older_found = []
        return updates

    def _note_run(self, names: list[str]) -> None:
        """What tells this run's directory apart where it may go: its identity and its first boot record (looked
        for at most every MOVE_LOOK_EVERY_S until it is there)."""
        ident = _identity(self.directory)
        if ident is not None and ident != self._identity:  # a first read, or another directory now at the path
            self._identity, self._boot, self._boot_looked_at = ident, None, -math.inf
        now = time.monotonic()
        if self._boot is None and schema.heartbeat_name(0) in names and now - self._boot_looked_at >= MOVE_LOOK_EVERY_S:
            self._boot_looked_at = now
            self._boot = first_boot(self.directory)

    def _went(self) -> Path | None:
        """Where the run directory went when exactly one directory holds this run (renamed_to), at most every
        MOVE_LOOK_EVERY_S; several (a copy) are told apart by the directory's identity, else none is chosen."""
        now = time.monotonic()
        if now - self._looked_at < MOVE_LOOK_EVERY_S:
            return None
        self._looked_at = now
        found = renamed_to(self.directory, *self._roots, boot=self._boot)
        if len(found) > 1 and self._identity is not None:
            found = [d for d in found if _identity(d) == self._identity] or found
        self.went_several = found if len(found) > 1 else []
        return found[0] if len(found) == 1 else None

    def _follow(self, new: Path) -> None:
        """Read on at ``new``: each file from where it was read to (the same files, renamed with their directory)."""
        old, self.directory = self.directory, new
        for name, t in self._tailers.items():
            t.moved_to(new / name)
        self._notifier.close()
        self._notifier = ChangeNotifier(new, force_poll=self._force_poll, wanted=_followed)
        self.moves.append((old, new))

    def _scan_older(self, due: list[tuple[str, tuple[int, int], int]], gen: int) -> None:
        """The events of each file's part before its window (older_sh), handed to the next read()."""
        for name, ident, start in due:
            try:
                with open(self.directory / name, "rb", buffering=0) as f:
                    st = os.fstat(f.fileno())
                    if (st.st_dev, st.st_ino) != ident:
                        continue  # replaced since: its tailer reads the new file from its start
                    blob = scan_older(f, window_end(f, start))
            except OSError:
                continue  # an older part we cannot read leaves the pane as it was: the window's events
            with self._older_lock:
                if gen != self._older_gen:
                    return
                if blob:
                    self._older_found.append(Update(name, older=blob))
            self._notifier.poke()

    def _read_one(self, name: str, sizes: dict[str, int]) -> Update | None:
        """One file's changes (None: none). A tailer moves its offset only past what it returns, so a read
        that raises loses nothing: the next read starts where this one did."""
        kind = wanted_kind(name)
        if kind == "whole":
            return self._read_whole(name)
        if kind != "line":
            return None
        t = self._tailers.get(name)
        if t is None:
            t = self._tailers[name] = FileTailer(self.directory / name, window=initial_window(name))
        chunk = t.poll()
        sizes[name] = t.offset
        if t.window_start and t.ident is not None and name not in self._older_asked:
            self._older_asked.add(name)
            if not self._older_due:
                self._older_due_at = time.monotonic() + OLDER_SCAN_DELAY_S
            self._older_due.append((name, t.ident, t.window_start))
        if t.mtime is not None:
            self.mtimes[name] = t.mtime
        return Update(name, data=chunk.data, reset=chunk.reset) if chunk else None

    def _read_whole(self, name: str) -> Update | None:
        p = self.directory / name
        try:
            st = p.stat()
            sig = (st.st_ino, st.st_size, st.st_mtime_ns)
            self.mtimes[name] = st.st_mtime
            if self._whole_sig.get(name) == sig:
                return None
            content = p.read_bytes()
        except FileNotFoundError:
            return None
        self._whole_sig[name] = sig
        return Update(name, content=content)

    def wait(self, timeout: float) -> None:
        self._notifier.wait(min(timeout, self._notifier.interval))

    def restart(self) -> None:
        with self._restart_lock:
            self._restart_asked = True
        self._notifier.poke()

    def describe(self) -> str:
        n = self._notifier
        how = "inotify" if n.mode == "inotify" else "polling"
        if n.mode != "inotify" and n.fallback_reason:
            how += f" ({n.fallback_reason})"
        trouble = self.trouble()
        return f"{how}; {trouble}" if trouble else how

    def trouble(self) -> str:
        """Files the last read could not read, and why ('' when none)."""
        bad = sorted(self.unreadable.items())
        if not bad:
            return ""
        more = f" and {len(bad) - 2} more" if len(bad) > 2 else ""
        return "cannot read " + ", ".join(f"{n} ({why})" for n, why in bad[:2]) + more

    def close(self) -> None:
        self._notifier.close()
