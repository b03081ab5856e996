"""The state of one watched run: RunHistory (the status engineer's reader) fed from a
RunSource, plus numpy chart columns synced from it and the tail of the text logs.

Thread model: a reader thread calls ``pump()`` (which feeds RunHistory under ``lock``);
the UI reads under the same lock. No Textual here.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_right
from collections import deque
from pathlib import Path

import numpy as np

from nsa_train.telemetry import schema
from nsa_tui.health.defaults import RULES_WINDOW_POINTS
from nsa_tui.launch import tmux
from nsa_tui.runs.bundle import FileWindow, RunBundle
from nsa_tui.runs.history import FORMAT_GENERIC, Event, RunHistory, heartbeat_mtimes, source_kind
from nsa_tui.runs.load import (
    detect_format_from_bundle,
    fill_context,
    listed_pids_alive,
    listed_stopped_ranks,
    local_pids_alive,
    local_rank_processes,
    local_tmux_sessions,
    local_trainer_alive,
    ranks_without_launcher,
    settle_liveness,
    stopped_ranks,
    tmux_session_name,
)
from nsa_tui.stopped_ranks import StoppedRank
from nsa_tui.tail.source import RunSource, Update
from nsa_tui.watch.bulk import header_of, last_lines, parse_columns
from nsa_tui.watch.older import all_events, older_events
from nsa_tui.watch.series import Series

LAUNCH_JSON = schema.LAUNCH_JSON
LOG_NAMES = (schema.TRAIN_LOG, schema.CONSOLE_LOG)
LOG_TAIL_LINES = 300
CONSOLE_TAIL = 40
TMUX_EVERY_S = 5.0
LAUNCH_RECHECK_S = 1.0  # after a new launch.json: when its session is asked (it starts just after the file)
_ASKED_HERE = object()  # a local source: liveness is asked on this machine
DETECT_BYTES = 64 << 10
# RunHistory keeps this many recent points, well over the rules window (the engine judges its last
# RULES_WINDOW_POINTS, as `nsa status` does); charts keep everything.
HISTORY_POINTS = 20_000
BULK_MIN_BYTES = 1 << 20  # a first training.csv batch this big (~8k rows) takes the columnar fast path
# ... and only its last rows go to RunHistory: the whole rules window, so the verdict is the one `nsa status` gives
RECENT_ROWS = RULES_WINDOW_POINTS
# Chart columns pulled from RunHistory (besides step / ts / tokens_seen, which are x axes).
CHART_METRICS = (
    "loss",
    "lr",
    "toks_per_s",
    "gpu_mem_alloc_gb",
    "gpu_mem_reserved_gb",
    "rss_gb",
    "gate_entropy_mean",
    "gate_entropy_min",
    "gate_collapse_frac",
    *schema.GATE_SHARE_COLUMNS,
)
# training.csv columns the chart table takes (the rest of a row is checked, not kept)
TABLE_COLUMNS = ("step", "ts", "tokens_seen", *CHART_METRICS)


def _num(v: float | None) -> float:
    return math.nan if v is None else float(v)


class ChartTable:
    """Aligned growable columns: step, time (s since the first point), tokens, metrics."""

    def __init__(self) -> None:
        self.cols: dict[str, Series] = {k: Series() for k in ("step", "time", "tokens", *CHART_METRICS)}
        self.val_step = Series()
        self.val_time = Series()
        self.val_tokens = Series()
        self.val_loss = Series()
        self.t0: float | None = None
        self.last_step = -1
        self.last_val_step = -1
        self._views: dict[tuple[str, str], XYView] = {}

    def clear(self) -> None:
        for s in (*self.cols.values(), self.val_step, self.val_time, self.val_tokens, self.val_loss):
            s.clear()
        self.t0 = None
        self.last_step = -1
        self.last_val_step = -1

    def bulk_load(self, cols: dict[str, np.ndarray], t0: float | None) -> None:
        """Columns of a parsed training.csv (steps strictly increasing) into an empty table."""
        steps = cols["step"]
        ts = cols.get("ts")
        if self.t0 is None:
            self.t0 = t0 if t0 is not None else (float(ts[0]) if ts is not None and len(ts) else None)
        nan = np.full(len(steps), np.nan)
        self.cols["step"].adopt(steps, steps)
        self.cols["time"].adopt(steps, (ts - (self.t0 or 0.0)) if ts is not None else nan)
        self.cols["tokens"].adopt(steps, cols.get("tokens_seen", nan))
        for k in CHART_METRICS:
            self.cols[k].adopt(steps, cols.get(k, nan))
        self.last_step = int(steps[-1]) if len(steps) else self.last_step

    def cut(self, start_step: int, *, points: bool = True) -> None:
        """Take back what a new attempt of the run superseded (RunHistory.truncations): the points after
        ``start_step`` (with ``points``) and the evals after it; the next sync adds the new attempt's."""
        groups = [((self.val_step, self.val_loss), "last_val_step")]  # the val series sync fills
        if points:
            groups.append(((self.cols["step"], *(s for k, s in self.cols.items() if k != "step")), "last_step"))
        for series, last in groups:
            by_step = series[0]
            k = int(np.searchsorted(by_step.x[: by_step.n], start_step, side="right"))
            if k == by_step.n:
                continue
            for s in series:
                # fresh arrays: a bulk load's columns share their buffers, and the next sync writes past k
                x, y = s.x[:k].copy(), s.y[:k].copy()
                s.clear()
                s.adopt(x, y)
            setattr(self, last, int(by_step.x[k - 1]) if k else -1)

    def sync(self, h: RunHistory, t0: float | None) -> int:
        """Append the history's points past the last synced step; returns how many."""
        if self.t0 is None:
            self.t0 = t0
        start = bisect_right(h.steps, self.last_step)
        n = len(h.steps) - start
        if n > 0:
            steps = h.steps[start:]
            ts = h.ts[start:]
            if self.t0 is None:
                self.t0 = next((t for t in ts if t is not None), None)
            t0 = self.t0 or 0.0
            # one array for every column of the new points (None becomes NaN): [1 + 1 + len(CHART_METRICS), n]
            rows = np.array([ts, *(h.column(k)[start:] for k in ("tokens_seen", *CHART_METRICS))], dtype=np.float64)
            xs = np.asarray(steps, dtype=np.float64)
            self.cols["step"].extend(xs, xs)
            self.cols["time"].extend(xs, rows[0] - t0)
            self.cols["tokens"].extend(xs, rows[1])
            for k, row in zip(CHART_METRICS, rows[2:], strict=True):
                self.cols[k].extend(xs, row)
            self.last_step = steps[-1]
        vstart = bisect_right(h.val_steps, self.last_val_step)
        if vstart < len(h.val_steps):
            vs = h.val_steps[vstart:]
            self.val_step.extend(vs, vs)
            self.val_loss.extend(vs, [_num(v) for v in h.val_loss[vstart:]])
            self.last_val_step = vs[-1]
        return n

    def x_of(self, axis: str, steps: np.ndarray, *, val: bool = False) -> np.ndarray:
        """x values for points given by step, on the chosen axis (interpolated for val points)."""
        if axis == "step":
            return steps
        col = self.cols["time" if axis == "time" else "tokens"]
        base = self.cols["step"].y
        if len(base) == 0:
            return np.full(len(steps), np.nan)
        return np.interp(steps, base, col.y) if val else col.y

    def view(self, metric: str, axis: str) -> XYView:
        """The (x, metric) pair; the same object every time, so chart caches stay warm."""
        v = self._views.get((metric, axis))
        if v is None:
            v = self._views[(metric, axis)] = XYView(self.cols[axis], self.cols[metric])
        return v


class XYView:
    """A (x column, y column) pair that looks like a Series to the chart cache."""

    def __init__(self, xs: Series, ys: Series) -> None:
        self._xs, self._ys = xs, ys

    @property
    def n(self) -> int:
        return min(self._xs.n, self._ys.n)

    @property
    def generation(self) -> tuple[int, int]:
        return (self._xs.generation, self._ys.generation)

    @property
    def x_column(self) -> Series:
        """The x Series itself: charts drawn against the same column share its binning."""
        return self._xs

    @property
    def x(self) -> np.ndarray:
        return self._xs.y[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._ys.y[: self.n]


class RunModel:
    def __init__(self, name: str, source: RunSource, *, where: str = "", check_liveness: bool = False) -> None:
        self.name = name
        self.where = where  # local path or host:path, for the header
        self.source = source
        # is the `nsa launch` tmux session still there (without a launch.json: a rank's pid), as `nsa status`
        # asks; a run killed without an end record is then `crashed`, not `running` until stale. Locally we ask;
        # over ssh the remote script says (RemoteRunSource.tmux_sessions, .live_pids)
        self.check_liveness = check_liveness
        self.lock = threading.RLock()
        self.history = RunHistory(max_points=HISTORY_POINTS)
        self.table = ChartTable()
        self._truncations = 0  # how many of the history's truncations the chart table has taken back
        self.logs: dict[str, deque[str]] = {}  # log file name -> its last lines
        # heartbeat name -> its events from before the window it was first read from (Update.older): shown, not
        # judged (the health rules see the window, as `nsa status` does)
        self.older: dict[str, list[Event]] = {}
        self._whole: dict[str, bytes] = {}  # run.json, exit_status, .HALT, ... as last read
        self._console: deque[str] = deque(maxlen=CONSOLE_TAIL)
        self._tmux: list[str] | None = None
        self._pids_alive: bool | None = None
        self._trainer_alive: bool | None = None  # a rank alive as this run's trainer while its session is not found
        # (rank, pid) alive here whose torchrun is gone (over ssh the host judges), and whose process is stopped
        # (/proc, as `nsa status` reads them; over ssh the host's pid listing marks them)
        self._no_launcher: list[tuple[int, int]] = []
        self._stopped: list[StoppedRank] = []
        self._tmux_at = -1e9
        self.version = 0  # bumps on every applied change (the UI redraws on change)
        self.loaded = False  # the first complete read is done
        self.resets = 0
        self.read_error = ""  # the last read's failure, shown in the header until a read succeeds
        self._first_read: threading.Thread | None = None  # prefetch()'s thread until a pump() takes its result
        self._first_read_error: BaseException | None = None
        # the run directory renamed while watched, as the source followed it: (old, new) paths, oldest first
        self.moved: list[tuple[str, str]] = []

    def prefetch(self) -> None:
        """Start the first read now on a thread of its own, so that a long history is parsed while the
        dashboard is still importing and building its screen; the next pump() waits for it."""
        if self._first_read is None and not self.loaded:
            self._first_read = threading.Thread(
                target=self._prefetch_body, name=f"nsa-prefetch-{self.name}", daemon=True
            )
            self._first_read.start()

    def _prefetch_body(self) -> None:
        try:
            self.pump()
        except Exception as e:  # handed to the pump() that takes the result, which reports it
            self._first_read_error = e

    # ------------------------------------------------------------ reading
    def pump(self, now: float | None = None) -> bool:
        """Apply what the source has; True if anything changed."""
        first = self._first_read
        if first is not None and first is not threading.current_thread():
            first.join()
            self._first_read = None
            if self._first_read_error is not None:
                err, self._first_read_error = self._first_read_error, None
                raise err
            return True
        updates = self.source.read()
        moved = self._take_moves()
        tmux_changed = self._refresh_liveness(time.monotonic() if now is None else now)
        missing = self.source.dir_missing
        several = [str(d) for d in getattr(self.source, "went_several", ())] if missing else []
        # a remote source that lost its link (one that never had it has nothing to judge yet)
        lost = getattr(self.source, "connected", True) is False and self.history.has_progress
        h = self.history
        unchanged = (missing, lost, several) == (h.dir_missing, h.source_lost, h.dir_candidates)
        if not updates and not tmux_changed and not moved and unchanged:
            if not self.loaded:
                with self.lock:
                    self.loaded = True
                    self.version += 1
                return True
            return False
        with self.lock:
            if self.history.format is None:
                self._detect_format(updates)
            for u in updates:
                self._apply(u)
            if any(u.name == LAUNCH_JSON for u in updates):
                # a new launch: the last answer (the ended session of the attempt before) read as `crashed` until the
                # next check. Unknown until its session is asked, in a moment: launch.json is written just before
                # the session starts, and asked at once it would not be there yet
                self._tmux, self._trainer_alive = None, None
                self._tmux_at = (time.monotonic() if now is None else now) - TMUX_EVERY_S + LAUNCH_RECHECK_S
                tmux_changed = True
            # the context (run.json, exit status, .HALT, console tail) only moves when those files do
            if tmux_changed or any(
                u.content is not None or u.deleted or u.name in ("", schema.CONSOLE_LOG) for u in updates
            ):
                self._fill_context()
            else:
                self._note_write_times()
            h = self.history
            for start, points in h.truncations[self._truncations :]:  # a new attempt superseded earlier points
                self.table.cut(start, points=points)
            self._truncations = len(h.truncations)
            self.table.sync(h, self._t0())
            self.history.dir_missing = missing  # after the updates: a reset among them made a new history
            self.history.dir_candidates = several
            self.history.source_lost = lost
            self.loaded = True
            self.version += 1
        return True

    def _take_moves(self) -> bool:
        """The source's new renames of the run directory: the run is named and shown where it went."""
        moves = getattr(self.source, "moves", ())
        if len(moves) == len(self.moved):
            return False
        with self.lock:
            for old, new in moves[len(self.moved) :]:
                self.moved.append((str(old), str(new)))
                self.name = str(new).rstrip("/").rsplit("/", 1)[-1]
                self.where = str(new) if self.where else ""  # a remote run's header says host:path itself
        return True

    def restart(self) -> None:
        """Forget everything and read all files again (the `r` key, or a file was replaced).
        The source answers with an every-file reset first, so old and new data never mix."""
        self.source.restart()

    def _clear(self) -> None:
        self.history = RunHistory(max_points=HISTORY_POINTS)
        self.table.clear()
        self._truncations = 0
        self.logs.clear()
        self.older.clear()
        self._whole.clear()
        self._console.clear()
        self.resets += 1
        self.version += 1

    def _t0(self) -> float | None:
        st = self.history.run_info.get(schema.RUN_START_TIME)
        return float(st) if isinstance(st, (int, float)) else None

    def _apply(self, u: Update) -> None:
        if u.name == "" and u.reset:
            self._clear()
            return
        if u.older:
            self.older[u.name] = older_events(u.name, u.older, self.history.format)
            return
        if u.content is not None or u.deleted:
            if u.deleted:
                self._whole.pop(u.name, None)
            else:
                self._whole[u.name] = u.content or b""
            return
        if u.name in LOG_NAMES or source_kind(u.name) == "ignore":
            tail = self.logs.setdefault(u.name, deque(maxlen=LOG_TAIL_LINES))
            if u.reset:
                tail.clear()
                if u.name == schema.CONSOLE_LOG:
                    self._console.clear()
            for line in u.lines:
                text = line.decode("utf-8", errors="replace")
                tail.append(text)
                if u.name == schema.CONSOLE_LOG and text.strip():
                    self._console.append(text.rstrip())
            return
        if u.name == schema.TRAINING_CSV and not u.reset and self.table.last_step < 0 and len(u.data) >= BULK_MIN_BYTES:
            cols = parse_columns(u.data, keep=TABLE_COLUMNS)
            if cols is not None:
                self.table.bulk_load(cols, self._t0())
                # the health rules need recent windows only: RunHistory gets the last rows
                has_header = header_of(u.data)[1]  # type: ignore[index]
                head = [u.data[: u.data.find(b"\n")]] if has_header else []
                self.history.feed(u.name, head + last_lines(u.data, RECENT_ROWS))
                return
        if self.history.format not in (None, FORMAT_GENERIC) and source_kind(u.name) in ("jsonl", "csv"):
            return  # a foreign log next to our telemetry: `nsa status` ignores it too
        if u.reset:
            # RunHistory cannot take lines back: rebuild from scratch (rare: rotation, truncation).
            self.restart()
            return
        self.history.feed(u.name, u.lines)

    def _detect_format(self, updates: list[Update]) -> None:
        """The status loader's format detection, on the first bytes we got (as `nsa status`)."""
        files = {n: FileWindow(n, d, len(d), None) for n, d in self._whole.items()}
        for u in updates:
            if u.content is not None:
                files[u.name] = FileWindow(u.name, u.content, len(u.content), None)
            elif u.data:
                window = u.data[-DETECT_BYTES:]
                head = u.data[: u.data.find(b"\n") + 1] if len(window) < len(u.data) else b""
                files[u.name] = FileWindow(u.name, window, len(u.data), None, head=head.rstrip(b"\n"))
        if files:
            self.history.format = detect_format_from_bundle(RunBundle(run=self.name, path=self.where, files=files))

    def _fill_context(self) -> None:
        """run.json, config, exit status, .HALT, console tail...: through the status loader's
        own fill_context, so watch and status read these files the same way."""
        mtimes = self._run_mtimes()
        files = {n: FileWindow(n, d, len(d), mtimes.get(n)) for n, d in self._whole.items()}
        for n, m in mtimes.items():
            files.setdefault(n, FileWindow(n, b"", 0, m))
        if self._console:
            data = ("\n".join(self._console) + "\n").encode()
            files[schema.CONSOLE_LOG] = FileWindow(schema.CONSOLE_LOG, data, len(data), mtimes.get(schema.CONSOLE_LOG))
        local = self.run_dir
        # the host's path and name for a run over ssh: fill_context does not compare its paths with ours
        path, host = (str(local), None) if local is not None else (self.where, "remote")
        bundle = RunBundle(run=self.name, path=path, files=files, tmux_sessions=self._tmux, host=host)
        fmt = self.history.format
        fill_context(self.history, bundle)
        self.history.format = fmt
        settle_liveness(self.history, self._pids_alive, self._trainer_alive)  # as status does
        # launcher_gone's and rank_stopped's facts: a new history lacks them
        self.history.ranks_without_launcher, self.history.stopped_ranks = self._no_launcher, self._stopped

    @property
    def clock_offset_s(self) -> float:
        """Our clock minus the run's (0 locally). Records carry the run machine's timestamps, so ages and
        health are judged at ``now - clock_offset_s``, the run's own now (as `nsa status --host` does)."""
        return getattr(self.source, "clock_offset_s", None) or 0.0

    def _run_mtimes(self) -> dict[str, float]:
        """The source's file mtimes (on our clock) on the run's clock, like its records' timestamps."""
        off = self.clock_offset_s
        mtimes: dict[str, float] = getattr(self.source, "mtimes", {}) or {}
        return {n: t - off for n, t in mtimes.items()} if off else mtimes

    def _note_write_times(self) -> None:
        """last_write_ts as fill_context computes it (newest telemetry mtime), without the rest."""
        mtimes = self._run_mtimes()
        stamps = [t for n, t in mtimes.items() if source_kind(n) != "ignore"]
        if stamps:
            self.history.last_write_ts = max(stamps)
        self.history.heartbeat_mtimes = heartbeat_mtimes(mtimes)

    def _refresh_liveness(self, now: float) -> bool:
        """Every TMUX_EVERY_S: the run's tmux session (with a launch.json) and its ranks' pids, combined as status
        does (``settle_liveness``), and for a run of this machine its ranks left without torchrun; True when the
        answer changed."""
        if not self.check_liveness or now - self._tmux_at < TMUX_EVERY_S:
            return False
        self._tmux_at = now
        said = getattr(self.source, "live_pids", _ASKED_HERE)  # over ssh: what the host last said
        if said is _ASKED_HERE and self.history.launch_elsewhere:
            # a `cp -r` copy of a live run: the original's pids are alive, but they are not this directory's trainer
            alive = local_trainer_alive(self.history, self.source.directory)  # type: ignore[attr-defined]
        elif said is _ASKED_HERE:
            alive = local_pids_alive(self.history)
        else:
            alive = listed_pids_alive(self.history, said[0], said[1]) if said else None
        sessions = trainer = None
        # the ranks' parents and states: read from /proc only where the ranks run, at this check's pace (every
        # TMUX_EVERY_S); over ssh the host's listing marks the stopped ones
        no_launcher: list[tuple[int, int]] = []
        stopped: list[StoppedRank] = []
        if said is not _ASKED_HERE and said:
            stopped = listed_stopped_ranks(self.history, *said, getattr(self.source, "host", None))
        elif said is _ASKED_HERE:
            ranks = local_rank_processes(self.history, self.source.directory)  # type: ignore[attr-defined]
            no_launcher, stopped = ranks_without_launcher(self.history, ranks), stopped_ranks(ranks)
        if LAUNCH_JSON in self._whole:
            if said is _ASKED_HERE:
                sessions = local_tmux_sessions(tmux.recorded_socket(self.history.launch))  # the run's own server
                if sessions is not None and tmux_session_name(self.history.launch, self.name) not in sessions:
                    trainer = local_trainer_alive(self.history, self.source.directory)  # type: ignore[attr-defined]
            else:
                sessions = self.source.tmux_sessions  # type: ignore[attr-defined]
        changed = (alive, sessions, trainer, no_launcher, stopped) != (
            self._pids_alive,
            self._tmux,
            self._trainer_alive,
            self._no_launcher,
            self._stopped,
        )
        self._pids_alive, self._tmux, self._trainer_alive = alive, sessions, trainer
        self._no_launcher, self._stopped = no_launcher, stopped
        return changed

    # ------------------------------------------------------------ derived
    @property
    def events(self) -> list[Event]:
        """Every event read of the run: those before the heartbeats' windows, then the history's."""
        return all_events(self.older, self.history.events) if self.older else self.history.events

    def log_tail(self, n: int) -> list[tuple[str, str]]:
        """The last n lines of console.log (stdout+stderr: it already holds train.log's lines),
        else of train.log, else of any other *.log."""
        for name in (schema.CONSOLE_LOG, schema.TRAIN_LOG, *sorted(self.logs)):
            tail = self.logs.get(name)
            if tail:
                return [(name, line) for line in list(tail)[-n:]]
        return []

    @property
    def run_dir(self) -> Path | None:
        return getattr(self.source, "directory", None)
