"""Wake the reader when files in a run directory change: inotify (watchdog) or a timer.

``ChangeNotifier.wait(timeout)`` returns when an event arrived or the timeout passed.
In inotify mode the caller still re-checks sizes now and then (``note_sizes``): if sizes
moved while no event came (NFS, some FUSE and container mounts), we drop to polling.

Only writes, creations, deletions and moves are asked for (not the opens and closes that our own
reads cause, which would wake us again), and only names the caller follows wake it: a checkpoint
being written next to the logs must not wake the reader hundreds of times a second.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

POLL_INTERVAL_S = 0.25  # polling mode: a new line reaches the screen well under 0.5 s
INOTIFY_SAFETY_S = 1.0  # inotify mode: re-stat this often anyway to detect a silent inotify


class ChangeNotifier:
    def __init__(
        self, directory: Path, *, force_poll: bool = False, wanted: Callable[[str], bool] | None = None
    ) -> None:
        self.directory = directory
        self._wanted = wanted  # file name -> does the caller read it (None: every name)
        self._event = threading.Event()
        self._observer = None
        self._events_seen = 0
        self._last_sizes: dict[str, int] | None = None
        self._events_at_last_sizes = 0
        self._silent_checks = 0
        self.mode = "poll"
        self.fallback_reason = "--poll" if force_poll else ""
        if not force_poll:
            self._start_inotify()

    def _start_inotify(self) -> None:
        try:
            from watchdog.events import (
                DirDeletedEvent,
                DirMovedEvent,
                FileCreatedEvent,
                FileDeletedEvent,
                FileModifiedEvent,
                FileMovedEvent,
                FileSystemEventHandler,
            )
            from watchdog.observers import Observer
        except ImportError:
            self.fallback_reason = "watchdog not installed"
            return
        notifier = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # type: ignore[override]
                if notifier.concerns(event.src_path, getattr(event, "dest_path", "")):
                    notifier._events_seen += 1
                    notifier._event.set()

        if not self.directory.is_dir():
            self.fallback_reason = "run directory not there yet"
            return
        try:
            obs = Observer()
            kinds = [
                FileModifiedEvent,
                FileCreatedEvent,
                FileDeletedEvent,
                FileMovedEvent,
                DirDeletedEvent,
                DirMovedEvent,
            ]
            obs.schedule(_Handler(), str(self.directory), recursive=False, event_filter=kinds)
            obs.daemon = True
            obs.start()
        except Exception as e:  # inotify limits, unsupported fs: polling still works
            self.fallback_reason = f"inotify failed: {e}"
            return
        self._observer = obs
        self.mode = "inotify"

    def concerns(self, *paths: str | bytes) -> bool:
        """Whether an event on these paths (source, destination of a move) may change what the caller reads."""
        if self._wanted is None:
            return True
        for p in paths:
            if not p:
                continue
            path = os.fsdecode(p).rstrip("/")
            if path == str(self.directory).rstrip("/") or self._wanted(os.path.basename(path)):
                return True  # a followed file, or the run directory itself (deleted, moved)
        return False

    @property
    def interval(self) -> float:
        return INOTIFY_SAFETY_S if self.mode == "inotify" else POLL_INTERVAL_S

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a change event or the interval passes; True if an event woke us."""
        woke = self._event.wait(self.interval if timeout is None else timeout)
        self._event.clear()
        return woke

    def poke(self) -> None:
        """Wake a waiting reader now (re-read request, shutdown)."""
        self._event.set()

    def note_sizes(self, sizes: dict[str, int]) -> None:
        """Give the sizes seen at a safety re-check; switch to polling if inotify missed a change."""
        if self.mode != "inotify":
            return
        silent = self._events_seen == self._events_at_last_sizes
        if self._last_sizes is not None and sizes != self._last_sizes and silent:
            # Twice in a row, so an event still in flight at the first check is not mistaken for silence.
            self._silent_checks += 1
            if self._silent_checks >= 2:
                self.fallback_reason = "inotify silent while files changed"
                self._stop_observer()
                self.mode = "poll"
        elif not silent:
            self._silent_checks = 0
        self._last_sizes = dict(sizes)
        self._events_at_last_sizes = self._events_seen

    def _stop_observer(self) -> None:
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=2)
            except Exception:
                pass
            self._observer = None

    def close(self) -> None:
        self._stop_observer()
        self._event.set()
