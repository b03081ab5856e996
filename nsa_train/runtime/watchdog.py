"""Stack dumps (SIGUSR1 and on stalls) and the in-process stall watchdog.

SIGUSR1 goes through ``faulthandler`` so the dump is written even while the main thread
is blocked inside C (a hung collective, a stuck kernel launch). faulthandler can only
write to a file opened in advance, so each rank keeps a hidden spare file registered;
the watchdog thread notices when a dump landed in it, registers a fresh spare, and
renames the filled one to ``stackdump_rank{r}_{ts}.txt``. Every SIGUSR1 therefore gives
one readable file (within about a second).
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from nsa_train.telemetry import schema


def _unique_dump_path(run_dir: Path, rank: int) -> Path:
    base = run_dir / schema.stackdump_name(rank, time.time())
    path, n = base, 1
    while path.exists():  # two dumps within one second
        path = base.with_name(f"{base.stem}_{n}.txt")
        n += 1
    return path


class StackDumper:
    """SIGUSR1 -> all-thread dump file; ``dump_now`` for the watchdog's own dumps."""

    def __init__(self, run_dir: Path, rank: int) -> None:
        self.run_dir = Path(run_dir)
        self.rank = rank
        self._serial = 0
        self._lock = threading.Lock()
        self._spare: IO[str] | None = None
        self._spare_path: Path | None = None
        self._header_len = 0
        self._last_size = -1
        if hasattr(signal, "SIGUSR1"):
            self._arm()

    def _arm(self) -> None:
        self._serial += 1
        path = self.run_dir / f".stackdump_rank{self.rank}.pending{self._serial}"
        fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 (must stay open for faulthandler)
        header = f"# SIGUSR1 stack dump, rank {self.rank}, pid {os.getpid()}\n"
        fh.write(header)
        fh.flush()
        faulthandler.register(signal.SIGUSR1, file=fh, all_threads=True, chain=False)
        old, old_path = self._spare, self._spare_path
        self._spare, self._spare_path, self._header_len, self._last_size = fh, path, len(header), -1
        if old is not None and old_path is not None:
            old.close()
            os.replace(old_path, _unique_dump_path(self.run_dir, self.rank))

    def moved_to(self, run_dir: Path) -> None:
        """The run directory was renamed: the open spare file went with it; dumps are published where it went."""
        with self._lock:
            self.run_dir = Path(run_dir)
            if self._spare_path is not None:
                self._spare_path = self.run_dir / self._spare_path.name

    def poll(self) -> None:
        """Publish a dump that landed in the spare file (once its size stopped changing)."""
        with self._lock:
            if self._spare_path is None:
                return
            try:
                size = self._spare_path.stat().st_size
            except OSError:
                return
            if size > self._header_len and size == self._last_size:
                self._arm()
            else:
                self._last_size = size

    def dump_now(self, reason: str) -> Path:
        path = _unique_dump_path(self.run_dir, self.rank)
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"# {reason}, rank {self.rank}, pid {os.getpid()}\n")
            f.flush()
            faulthandler.dump_traceback(file=f, all_threads=True)
        return path

    def close(self) -> None:
        with self._lock:
            if self._spare is None or self._spare_path is None:
                return
            if hasattr(signal, "SIGUSR1"):
                faulthandler.unregister(signal.SIGUSR1)
            self._spare.close()
            try:
                size = self._spare_path.stat().st_size
            except FileNotFoundError:  # the run directory was deleted: no dump to publish, nowhere to put one
                size = 0
            if size > self._header_len:
                os.replace(self._spare_path, _unique_dump_path(self.run_dir, self.rank))
            else:
                self._spare_path.unlink(missing_ok=True)
            self._spare = self._spare_path = None


class Watchdog(threading.Thread):
    """Daemon thread: publishes SIGUSR1 dumps and reports a step that stopped advancing.

    ``beat(step)`` marks progress; ``touch()`` marks work that is not a step (eval,
    checkpoint). When neither happened for ``stall_s`` seconds, it dumps all stacks and
    calls ``on_stall(step, seconds, dump_path)`` once per stalled step.
    """

    def __init__(
        self, dumper: StackDumper, stall_s: float, on_stall: Callable[[int, float, Path], None], poll_s: float = 0.5
    ) -> None:
        super().__init__(name="nsa-watchdog", daemon=True)
        self.dumper = dumper
        self.stall_s = stall_s
        self.on_stall = on_stall
        self.poll_s = min(poll_s, max(0.05, stall_s / 4))
        self._step = 0
        self._last = time.monotonic()
        self._reported_step: int | None = None
        self._stop_event = threading.Event()

    def watch_steps(self, stall_s: float, step: int) -> None:
        """From now on a step unchanged for ``stall_s`` is a stall (the thread starts at boot with stall checks off,
        only publishing SIGUSR1 dumps: before the training loop there are no steps to watch)."""
        self.poll_s = min(self.poll_s, max(0.05, stall_s / 4))
        self.beat(step)
        self.stall_s = stall_s

    def beat(self, step: int) -> None:
        self._step = step
        self._last = time.monotonic()

    def touch(self) -> None:
        self._last = time.monotonic()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)

    def run(self) -> None:
        said: set[str] = set()
        while not self._stop_event.wait(self.poll_s):
            try:
                self._check()
            except Exception as e:  # a full disk, no file descriptors left: the thread lives on and says so once
                why = f"{type(e).__name__}: {e}"
                if why not in said:
                    said.add(why)
                    print(f"warning: the stall watchdog failed a check and goes on ({why})", file=sys.stderr)

    def _check(self) -> None:
        self.dumper.poll()
        idle = time.monotonic() - self._last
        step = self._step
        if idle >= self.stall_s and self._reported_step != step:
            self._reported_step = step
            path = self.dumper.dump_now(f"stall: step {step} has not advanced for {idle:.0f}s")
            self.on_stall(step, idle, path)
