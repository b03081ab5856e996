"""RunHistory: the metric history of one run, built from lines fed per source file.

Both `nsa status` (one snapshot from bounded file tails) and `nsa watch` (lines appended
while it runs) feed the same object, so the two can never disagree about what a file says.

    h = RunHistory("nsa-v1")
    h.feed("training.csv", lines)           # bytes or str lines, without newlines
    h.feed("heartbeat_rank0.jsonl", lines)  # any order, any number of calls
    h.column("loss"), h.steps, h.latest["loss"], h.events, h.ranks, h.corrupt

Points are keyed by step and kept sorted: a step seen in training.csv and again in the
heartbeat is one point whose fields are merged (the heartbeat adds the fallback counters).

Attempts: a new process in the same run directory (`--resume`, or `nsa launch --force` over a finished run, which
keeps its files) starts from a step (its `train` phase record's ``start_step``; 0 for a boot without --resume)
and logs those steps again. What earlier attempts logged past that step is superseded (an ``AttemptCut``):
dropped when the cut is read, ignored when read after it, by time stamp, so any feeding order gives the same
history. A training.csv whose step goes back (a fresh start appends to the old rows) is the same cut, for a tail
that holds no heartbeat record of the new start.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from nsa_train.telemetry import schema
from nsa_tui.runs.records import (
    ALIASES,
    METRICS,
    Normalised,
    normalise_generic,
    normalise_v1,
    normalise_vibe,
    to_float,
    to_step,
)
from nsa_tui.runs.stalls import StallEnds
from nsa_tui.runs.tail import MAX_LINE_BYTES
from nsa_tui.stopped_ranks import StoppedRank

FORMAT_V1 = schema.FORMAT_NAME  # "nsa-v1"
FORMAT_VIBE = "nsa-vibe"
FORMAT_GENERIC = "generic"
FORMATS = (FORMAT_V1, FORMAT_VIBE, FORMAT_GENERIC)

VIBE_TRAINING_COLUMNS = ("step", "loss", "lr", "toks_per_s")
VAL_COLUMNS = ("step", "val_loss", "val_ppl")
MAX_EVENTS = 2000  # events are rare (boot, phases, evals, checkpoints); keep the recent ones
# the ranks of one attempt start together and boot within milliseconds of each other, in any order; an earlier
# attempt's last record is seconds before a new boot at the least (torchrun and the trainer's imports)
BOOT_SKEW_S = 1.0
# Without rank 0's boot in view (a long run's heartbeat tail), another rank's record older than rank 0's last
# progress by more than this is an earlier attempt's: a step needs every rank of a DDP attempt, and a live rank
# writes at least a liveness record every 30 s (nsa_train.telemetry.writer)
UNBOOTED_RANK_SLACK_S = 60.0
# a boot record's launch_ts is launch.json's ts as passed through $NSA_LAUNCH_TIME (printed to the microsecond)
LAUNCH_TS_MATCH_S = 1e-3
# records that say the loop moved, though not a step: the watchdog counts evals and checkpoints as work
_MOVED_KINDS = (schema.KIND_EVAL, schema.KIND_CHECKPOINT)

EVENT_KINDS = frozenset(
    (
        schema.KIND_BOOT,
        schema.KIND_PHASE,
        schema.KIND_CHECKPOINT,
        schema.KIND_EVAL,
        schema.KIND_STALL,
        schema.KIND_END,
        schema.KIND_ERROR,
        schema.KIND_MOVED,
    )
)


@dataclass
class Event:
    """A non-progress record: boot, phase, checkpoint, eval, stall, end, error, moved."""

    kind: str
    step: int | None
    ts: float | None
    rank: int | None
    fields: dict[str, Any] = field(default_factory=dict)


# a rank's record dated this much before the one before it in its file is a clock stepped back (ClockStep); less is
# the writers' jitter and a coarse clock, and changes no verdict (heartbeat_stale's floor is 120 s)
CLOCK_STEP_BACK_S = 120.0


@dataclass(frozen=True)
class ClockStep:
    """A rank's clock stepped back by ``back_s`` before its record of ``step``. ``bad_ts_step``: set where only the
    record before it was ahead (the one after it is back beside the ones before that: one record's bad ts, or a
    clock stepped forward and straight back), that record's step; with ``behind``, where that record itself was
    ``back_s`` behind the records before and after it (no clock step: the records after it are read as dated)."""

    rank: int
    step: int | None
    back_s: float
    bad_ts_step: int | None = None
    behind: bool = False

    @property
    def one_record(self) -> bool:
        return self.bad_ts_step is not None


@dataclass(frozen=True)
class AttemptCut:
    """An attempt that started at ``ts`` from ``start_step``: an earlier record (ts before) of a step after
    ``start_step`` is superseded. ``from_record``: said by the attempt's own heartbeat record (a boot, its `train`
    phase), so its eval records follow in the same file; else seen as training.csv stepping back."""

    start_step: int
    ts: float
    from_record: bool = True


@dataclass(frozen=True)
class CutRecord:
    """A heartbeat's record cut short at the end of an attempt (a full disk, or a kill mid-write): an unreadable
    line that is its file's last, or is followed by the next attempt's boot record (whose writer starts a new line
    after it). No corruption: the attempt ended there. Its step and time as far as the cut text gives them, else
    those of the record before it."""

    source: str
    rank: int | None
    step: int | None
    ts: float | None


# the common fields come first in every record (schema.make_record): a cut record keeps them as a rule
_CUT_TS = re.compile(r'"ts":(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)[,}]')
_CUT_STEP = re.compile(r'"step":([0-9]+)[,}]')


@dataclass
class RankState:
    """What one rank last said (any record kind): for per-rank liveness."""

    rank: int
    last_ts: float | None = None
    last_step: int | None = None
    last_kind: str | None = None
    pid: int | None = None
    records: int = 0
    # its newest record written after a step (liveness, progress): an eval, a checkpoint or the watchdog's stall
    # record comes later at the same step
    stepped_ts: float | None = None
    stepped_step: int | None = None


def source_kind(source: str) -> str:
    """How a source file's lines are parsed: heartbeat, training_csv, val_csv, fallback_csv,
    jsonl (generic log), csv (generic table), or ignore."""
    name = source.rsplit("/", 1)[-1]
    if schema.heartbeat_rank(name) is not None:
        return "heartbeat"
    if name == schema.TRAINING_CSV:
        return "training_csv"
    if name == schema.VAL_CSV:
        return "val_csv"
    if name == "fallback_counters.csv":
        return "fallback_csv"
    if name.endswith(".jsonl"):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    return "ignore"


def heartbeat_mtimes(mtimes: dict[str, float]) -> dict[int, float]:
    """{rank: its heartbeat file's mtime} of {file name: mtime}."""
    out = {}
    for name, t in mtimes.items():
        rank = schema.heartbeat_rank(name.rsplit("/", 1)[-1])
        if rank is not None:
            out[rank] = t
    return out


def _text(line: bytes | str) -> str | None:
    if isinstance(line, bytes):
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return line


def corrupt_lines_text(n: int) -> str:
    """How every tool says the corrupt-line count: "1 corrupt line skipped", "2 corrupt lines skipped"."""
    return f"{n} corrupt line{'' if n == 1 else 's'} skipped"


# the `kind` of a verdict's unreadable_files entry: a file there but unreadable, or one of a newer telemetry version
# (read as this nsa's version: its charts are drawn from it, so it is no "unreadable" file)
UNREADABLE_KIND = "unreadable"
NEWER_KIND = "newer"


def newer_telemetry_text(v: int) -> str:
    """What a file of telemetry version ``v`` (above this nsa's) is, in every tool: `newer telemetry (v2): read as
    v1`."""
    return f"newer telemetry (v{v}): read as v{schema.SCHEMA_VERSION}"


def newer_telemetry_line(name: str, problem: str, where: str) -> str:
    """A newer-telemetry file as said to people; ``where``: the machine whose nsa read it ('here', 'on HOST'), the
    one to update."""
    return f"{name}: {problem}; update nsa {where}"


class RunHistory:
    """Column arrays, events, per-rank liveness and a corrupt-line counter for one run.

    Metric columns (``column(name)``, aligned with ``steps`` and ``ts``): loss, lr,
    toks_per_s, grad_norm, tokens_seen, dt_step_s, dt_fetch_s, gpu_mem_alloc_gb,
    gpu_mem_reserved_gb, rss_gb, gate_entropy_mean, gate_entropy_min, gate_max_mean,
    gate_collapse_frac, gate_share_cmp, gate_share_sel, gate_share_win. Values are floats
    (NaN kept) or None. Validation: ``val_steps``/``val_loss``/``val_ppl``. Fallback
    counters: ``fallbacks`` = [(step, {name: cumulative count})].

    The loader (nsa_tui.runs.load) also fills the run's context: ``run_info`` (run.json),
    ``config`` (dict), ``launch`` (launch.json), ``exit_status``, ``console_tail``,
    ``halt_requested``, ``summary``, ``anomaly``, ``stackdumps``, ``process_alive`` (True/False/None
    when unknown), ``last_write_ts`` (newest telemetry file mtime) and ``unreadable_files`` ({name: why}).
    """

    def __init__(self, fmt: str | None = None, *, max_points: int | None = None) -> None:
        self.format = fmt
        self.max_points = max_points
        self.steps: list[int] = []
        self.ts: list[float | None] = []
        self._cols: dict[str, list[float | None]] = {k: [] for k in METRICS}
        self.val_steps: list[int] = []
        self.val_loss: list[float | None] = []
        self.val_ppl: list[float | None] = []
        self.val_ts: list[float | None] = []  # the eval record's time; None for a val.csv row (it has none)
        self.fallbacks: list[tuple[int, dict[str, float]]] = []
        # why each counter fell back (its first cause, from the progress record that first counted it)
        self.fallback_reasons: dict[str, str] = {}
        self._fallback_ts: list[float | None] = []  # each entry's record time (None: a fallback_counters.csv row)
        self.events: list[Event] = []
        self.stall_ends = StallEnds()  # when each stall's rank stepped again: how long its hang lasted (the report)
        self.ranks: dict[int, RankState] = {}
        # the newest record time of each process (pid): an attempt's last sign of life, when a later attempt's start
        # superseded its last records (a report's wall time counts it)
        self.pid_last_ts: dict[int, float] = {}
        # a rank's clock stepped back while it ran (NTP, a VM's RTC): its later records are read on the clock before
        # the step (+ its offset here), so that a boot is followed by its own records (ClockStep)
        self.clock_offsets: dict[int, float] = {}
        self.clock_steps: list[ClockStep] = []
        # each rank's last two records as read (on its clock before any step back), newest last, with the newest's
        # step: where a step back is measured from, and whether the record before it was alone ahead
        self._rank_recent: dict[int, tuple[float | None, float, int | None]] = {}
        # a rank whose newest record was read as a clock step back: (its offset before, the record before it, the
        # step's index in clock_steps), until its next record says whether that one record was misdated alone
        self._stepped_back: dict[int, tuple[float, float, int]] = {}
        # the step of each process's newest record: how far an attempt got, when a later attempt's start superseded
        # its last steps (a report counts the tokens it trained, redone or not)
        self.pid_last_step: dict[int, int] = {}
        self.corrupt = 0
        self.corrupt_by_source: dict[str, int] = {}
        # heartbeat records cut at an attempt's end (CutRecord), said as such rather than counted as corrupt
        self.cut_records: list[CutRecord] = []
        # per heartbeat: its newest unreadable line while the line after it is not read yet (a boot record makes it
        # a cut, anything else corruption; none, so far, a cut: the file ends there)
        self._unsettled: dict[str, CutRecord] = {}
        self._ended_sources: set[str] = set()  # the heartbeats whose last record read is an end record
        self.records = 0
        self._csv_headers: dict[str, tuple[str, ...]] = {}
        self._csv_plans: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self.cuts: list[AttemptCut] = []  # every attempt start seen (those that removed nothing too)
        self._cut_set: set[AttemptCut] = set()  # the same, for the repeated records of every rank and replay
        self._newest_cut_ts = -math.inf  # a record at least this new is no cut's concern (nearly all of them)
        # (start step, progress points too or evals only) of each cut that removed something, in order: for readers
        # that mirror the history (the dashboard's charts) and must take back the same points
        self.truncations: list[tuple[int, bool]] = []
        self._refusals_cache: tuple[tuple[int, int], list[tuple[Event, float]]] | None = None
        self._row_step: dict[str, int] = {}  # the last row's step per training.csv / val.csv: a step back is a restart
        # context filled by the loader
        self.run_info: dict[str, Any] = {}
        self.config: dict[str, Any] = {}
        self.launch: dict[str, Any] = {}
        self.launcher_status: int | None = None  # the exit_status file as read (``exit_status`` judges it)
        # exit_status.previous as read: the status of the launch before the newest (``exit_status`` judges it)
        self.previous_launcher_status: int | None = None
        self.launcher_console: list[str] = []  # console.log's last lines (``console_tail`` judges them)
        # its last lines before each launch's `starting:` line, oldest launch first
        self.console_before_launches: list[list[str]] = []
        self.halt_requested = False
        self.halt_requested_ts: float | None = None  # .HALT's mtime (None over a reader that gives none)
        # (rank, pid) of this machine's live ranks of a launched run whose torchrun is gone (killed): unsupervised
        self.ranks_without_launcher: list[tuple[int, int]] = []
        # this machine's live ranks of this run whose process is stopped (SIGSTOP, ctrl-z, a debugger)
        self.stopped_ranks: list[StoppedRank] = []
        self.summary: dict[str, Any] = {}  # summary.json / <name>_summary.json, written when a run ends
        # context files that are there but could not be read ({name: why}): what they would have said is unknown,
        # and the tools say so rather than carry on as if the run had not written them
        self.unreadable_files: dict[str, str] = {}
        # telemetry files with records of a newer schema version than this nsa knows: {name: the highest v seen};
        # kept apart from unreadable_files, which the context files' reading replaces on every refresh
        self.newer_schema: dict[str, int] = {}
        # run.json and summary.json of a newer version ({name: its v}): set by the loader with the context
        self.newer_context: dict[str, int] = {}
        self.anomaly: str | None = None
        self.stackdumps: list[str] = []
        self.process_alive: bool | None = None
        self.launch_elsewhere = False  # launch.json was written for another directory (this one is a copy)
        self.last_write_ts: float | None = None
        # each rank's heartbeat file's mtime, on the clock `now` is on (health/clock.py: a writer on another clock)
        self.heartbeat_mtimes: dict[int, float] = {}
        # set by a live reader (the dashboard) while the run directory it follows is not there: deleted, moved,
        # its disk unmounted. What was read stays; nothing new can arrive.
        self.dir_missing = False
        # ... and the directories beside it or under the runs root that each hold the run (copies): none is chosen
        self.dir_candidates: list[str] = []
        # set by a live reader while the host it reads the run from cannot be reached: what was read is old, and
        # the run's own silence cannot be told from the link's
        self.source_lost = False

    # ------------------------------------------------------------------ feeding
    def feed(self, source: str, lines: Iterable[bytes | str]) -> int:
        """Parse complete lines of one source file; returns how many records were accepted.
        Bad lines (not UTF-8, not JSON, wrong CSV shape, over 1 MiB) are skipped and counted."""
        kind = source_kind(source)
        if kind == "ignore":
            return 0
        accepted = 0
        heartbeat = kind == "heartbeat"
        for raw in lines:
            if len(raw) > MAX_LINE_BYTES:
                self._unreadable(source, heartbeat, "")
                continue
            text = _text(raw)
            if text is None:
                self._unreadable(source, heartbeat, "")
                continue
            text = text.strip()
            if not text:
                continue
            n_events = len(self.events)
            try:
                ok = self._feed_line(source, kind, text)
            except (ValueError, TypeError, OverflowError, RecursionError):
                ok = False
            if ok:
                accepted += 1
                if heartbeat:  # the kind of the record read, when it is an event (boot, end)
                    read = self.events[-1].kind if len(self.events) > n_events else None
                    if source in self._unsettled:
                        self.settle(source, cut=read == schema.KIND_BOOT)
                    self.note_ended(source, read == schema.KIND_END)
            elif ok is False:
                self._unreadable(source, heartbeat, text)
        self.records += accepted
        return accepted

    def _bad(self, source: str) -> None:
        self.corrupt += 1
        self.corrupt_by_source[source] = self.corrupt_by_source.get(source, 0) + 1

    def _unreadable(self, source: str, heartbeat: bool, text: str, *, only_cut: bool = False) -> None:
        """A line that cannot be read. A heartbeat's waits for the line after it: only the last line of an attempt
        can be cut by its end (CutRecord); one in the middle is corrupt. ``only_cut``: a file's unfinished last line,
        left out unless it is a cut record (every reader leaves it out)."""
        if not heartbeat:
            self._bad(source)
            return
        if source in self._unsettled:
            self.settle(source, cut=False)
        # a cut record is the start of one: not JSON, but begun as a record is, and not after its rank's end record
        if not text.startswith('{"') or schema.decode(text) is not None or source in self._ended_sources:
            if not only_cut:
                self._bad(source)
            return
        rank = schema.heartbeat_rank(source)
        st = self.ranks.get(rank) if rank is not None else None
        ts, step = _CUT_TS.search(text), _CUT_STEP.search(text)
        self._unsettled[source] = CutRecord(
            source,
            rank,
            int(step.group(1)) if step else (st.last_step if st else None),
            float(ts.group(1)) if ts else (st.last_ts if st else None),
        )

    def unfinished_line(self, source: str, raw: bytes) -> None:
        """A heartbeat's last bytes after its last newline, in a file that stopped growing (read whole by a report):
        a record its attempt's end cut, unless they read as one whole (then left out, as every reader does)."""
        text = _text(raw[:MAX_LINE_BYTES])
        if text is not None and schema.decode(text.strip()) is None:
            self._unreadable(source, True, text.strip(), only_cut=True)

    def settle(self, source: str, *, cut: bool) -> None:
        """The unreadable line of ``source`` waiting for the line after it: a cut record, or corruption (the bulk
        reader calls this with ``cut=False`` before it applies a block of records after it)."""
        rec = self._unsettled.pop(source, None)
        if rec is None:
            return
        if cut:
            self.cut_records.append(rec)
        else:
            self._bad(source)

    def note_ended(self, source: str, ended: bool) -> None:
        """Whether the last record read of a heartbeat is an end record (the bulk reader's blocks hold none)."""
        if ended:
            self._ended_sources.add(source)
        else:
            self._ended_sources.discard(source)

    @property
    def cut_short(self) -> list[CutRecord]:
        """Every heartbeat record cut at an attempt's end: those followed by the next attempt's boot, and each file's
        unreadable last line (no line came after it, so far)."""
        return [*self.cut_records, *self._unsettled.values()]

    def _feed_line(self, source: str, kind: str, text: str) -> bool | None:
        """True: accepted; False: corrupt; None: a header line (neither)."""
        if kind in ("heartbeat", "jsonl"):
            rec = schema.decode(text)
            if rec is None:
                return False
            v = rec.get("v")
            if kind == "heartbeat" and type(v) is int and v > self.newer_schema.get(source, schema.SCHEMA_VERSION):
                # read as the version this nsa knows (most fields stay), and said: its numbers may be misread
                self.newer_schema[source] = v
            return self._feed_json(rec, kind, schema.heartbeat_rank(source))
        return self._feed_csv(source, kind, text)

    def _feed_json(self, rec: dict[str, Any], kind: str, rank_hint: int | None) -> bool:
        n: Normalised | None
        if "kind" in rec and self.format in (None, FORMAT_V1):
            n = normalise_v1(rec, rank_hint)
            if n is not None and self.format is None:
                self.format = FORMAT_V1
        elif "msg" in rec and self.format in (None, FORMAT_VIBE):
            n = normalise_vibe(rec, rank_hint)
            if n is not None and self.format is None:
                self.format = FORMAT_VIBE
        elif kind == "jsonl" or self.format == FORMAT_GENERIC:
            n = normalise_generic(rec)
        else:
            n = None
        if n is None:
            return False
        self.add_record(n)
        return True

    def _feed_csv(self, source: str, kind: str, text: str) -> bool | None:
        cells = text.split(",")
        first = cells[0].strip().strip('"')
        if to_float(first) is None:
            # a header line (it names the step column): remember it, the tail window of a
            # big CSV starts after it; any other non-numeric row is corrupt
            header = tuple(c.strip().strip('"') for c in cells)
            if not set(header) & set(ALIASES["step"]):
                return False
            self._csv_headers[source] = header
            return None
        header = self._csv_headers.get(source) or self._default_header(kind, len(cells))
        if header is None or len(header) != len(cells):
            return False
        if kind == "training_csv" and self._fast_training_row(source, header, cells):
            return True
        row = dict(zip(header, cells, strict=False))
        if kind == "training_csv" or kind == "csv":
            n = normalise_generic(row) if kind == "csv" else self._training_row(row)
            if n is None:
                return False
            if kind == "training_csv":
                self._note_row_step(source, n.step, n.ts)
            if n.fields.get("val_loss") is not None:
                self._add_val(n.step, n.fields.get("val_loss"), n.fields.get("val_ppl"))
            if n.metrics:
                self.add_record(n)
            return True
        step = to_step(row.get("step"))
        if step is None:
            return False
        if kind == "val_csv":
            if step <= self._row_step.get(source, -1):
                self._drop_val_rows_from(step)  # the file starts over: a fresh attempt appends after the old rows
            self._row_step[source] = step
            self._add_val(step, to_float(row.get("val_loss")), to_float(row.get("val_ppl", row.get("ppl"))))
            return True
        counters = {k: v for k, v in ((k, to_float(v)) for k, v in row.items() if k != "step") if v is not None}
        self._add_fallbacks(step, {k[3:] if k.startswith("fb_") else k: v for k, v in counters.items()}, None)
        return True

    def _default_header(self, kind: str, n_cells: int) -> tuple[str, ...] | None:
        if kind == "training_csv":
            if n_cells == len(schema.TRAINING_CSV_HEADER):
                return schema.TRAINING_CSV_HEADER
            if n_cells == len(VIBE_TRAINING_COLUMNS):
                return VIBE_TRAINING_COLUMNS
        if kind == "val_csv" and n_cells == len(VAL_COLUMNS):
            return VAL_COLUMNS
        return None

    def _note_row_step(self, source: str, step: int, ts: float | None) -> None:
        """training.csv rows are appended in step order within an attempt: a step back is a new attempt that did
        not cut the file (a fresh start over an old run's files), its first row the first of the new attempt."""
        # a step logged again (equal) is the same attempt's row written twice, not a restart
        if step < self._row_step.get(source, -1) and ts is not None:
            self._cut(step - 1, ts, from_record=False)
        self._row_step[source] = step

    def _fast_training_row(self, source: str, header: tuple[str, ...], cells: list[str]) -> bool:
        """The common case of a well-formed numeric row, without per-cell dispatch
        (long CSV histories are the bulk of what status and watch read)."""
        step_i, ts_i, idx, names, missing = self.csv_plan(header)
        if step_i < 0:
            return False
        try:
            step = int(cells[step_i])
            values = [float(cells[i]) if cells[i] else None for i in idx]
            ts = float(cells[ts_i]) if ts_i >= 0 and cells[ts_i] else None
        except (ValueError, OverflowError):
            return False  # the careful path decides
        if step < 0 or (ts is not None and not math.isfinite(ts)):
            return False
        self._note_row_step(source, step, ts)
        if self.cuts and self._superseded(step, ts):
            return True  # an earlier attempt's row: read, not kept
        if self.steps and step <= self.steps[-1]:
            self._upsert(step, ts, dict(zip(names, values, strict=True)))
            return True
        # in-order append, the bulk of every load: straight into the columns
        self.steps.append(step)
        self.ts.append(ts)
        cols = self._cols
        for name, v in zip(names, values, strict=True):
            cols[name].append(v)
        for col in missing:
            col.append(None)
        self._trim()
        return True

    def csv_plan(self, header: tuple[str, ...]) -> tuple[int, int, list[int], list[str], list[list[float | None]]]:
        """How a training.csv header's rows fill the columns: (step cell, ts cell (-1: none), the metric cells,
        their columns' names, the columns no cell fills); also nsa_tui.runs.bulk's."""
        plan = self._csv_plans.get(header)
        if plan is None:
            names = [self._CSV_RENAMES.get(name, name) for name in header]
            idx = [i for i, name in enumerate(names) if name in self._cols]
            plan = self._csv_plans[header] = (
                header.index("step") if "step" in header else -1,
                header.index("ts") if "ts" in header else -1,
                idx,
                [names[i] for i in idx],
                [col for name, col in self._cols.items() if name not in {names[i] for i in idx}],
            )
        return plan

    _CSV_RENAMES: ClassVar[dict[str, str]] = {
        "learning_rate": "lr",
        "tokens_per_second": "toks_per_s",
        "tokens_per_sec": "toks_per_s",
    }

    def _training_row(self, row: dict[str, str]) -> Normalised | None:
        step = to_step(row.get("step"))
        if step is None:
            return None
        ts = to_float(row.get("ts"))
        # rank None: a CSV row is a metric, not a liveness record of a process
        n = Normalised(schema.KIND_PROGRESS, step, ts if ts is not None and math.isfinite(ts) else None, None)
        for k, v in row.items():
            if k in self._cols:
                n.metrics[k] = to_float(v)
            elif k in ALIASES["toks_per_s"]:
                n.metrics["toks_per_s"] = to_float(v)
            elif k in ALIASES["lr"]:
                n.metrics["lr"] = to_float(v)
        return n

    def add_record(self, n: Normalised) -> None:
        """Apply one normalised record (also usable directly by tests and other readers)."""
        if n.rank is not None and n.ts is not None:
            self._on_rank_clock(n)
        if n.rank is not None:
            st = self.ranks.get(n.rank)
            if st is None:
                st = self.ranks[n.rank] = RankState(n.rank)
            if n.ts is not None and (st.last_ts is None or n.ts >= st.last_ts):
                st.last_ts, st.last_kind = n.ts, n.kind
                if n.step is not None:
                    st.last_step = n.step
                    if n.kind in (schema.KIND_LIVENESS, schema.KIND_PROGRESS):
                        st.stepped_ts, st.stepped_step = n.ts, n.step
            st.pid = n.pid if n.pid is not None else st.pid
            st.records += 1
        self.stall_ends.see(n)
        if n.pid is not None and n.ts is not None and n.ts > self.pid_last_ts.get(n.pid, -math.inf):
            self.pid_last_ts[n.pid] = n.ts
            if n.step is not None:
                self.pid_last_step[n.pid] = n.step
        if n.kind in EVENT_KINDS:
            self.events.append(Event(n.kind, n.step, n.ts, n.rank, n.fields))
            if len(self.events) > MAX_EVENTS * 5 // 4:
                self._trim_events()
            start = self._attempt_start(n)
            if start is not None and n.ts is not None:
                self._cut(start, n.ts)
            if n.kind == schema.KIND_EVAL and n.step is not None:
                if not (self.cuts and self._superseded(n.step, n.ts)):
                    self._add_val(n.step, n.metrics.get("val_loss"), n.metrics.get("val_ppl"), n.ts)
                return
        if n.step is None:
            return
        if self.cuts and self._superseded(n.step, n.ts):
            return  # an earlier attempt's record of a step a later attempt logs again
        if n.fields.get("val_loss") is not None and n.kind == schema.KIND_PROGRESS and self.format == FORMAT_GENERIC:
            self._add_val(n.step, n.fields.get("val_loss"), n.fields.get("val_ppl"))
        if n.metrics and n.kind != schema.KIND_EVAL:
            self._upsert(n.step, n.ts, n.metrics)
        if n.fallbacks:
            self._add_fallbacks(n.step, {k: float(v) for k, v in n.fallbacks.items()}, n.ts)
        why = n.fields.get("fallback_reasons") if n.kind == schema.KIND_PROGRESS else None
        if isinstance(why, dict):
            self.fallback_reasons.update({str(k): str(v) for k, v in why.items()})

    def _on_rank_clock(self, n: Normalised) -> None:
        """``n``'s ts on its rank's clock as it was before any step back. A rank's records come from its own file,
        in the order written: one dated more than CLOCK_STEP_BACK_S before the record before it is a clock stepped
        back. Read by ts, every record after such a step fell before the boot (the run read `starting`, its liveness
        rules off, its newest record's age frozen); on the clock before the step the run's order holds, and the
        health engine ages it from its files' mtimes (health/clock.py: clock_skew)."""
        rank = n.rank
        assert rank is not None and n.ts is not None
        off = self.clock_offsets.get(rank, 0.0)
        ts = n.ts + off
        before, prev, prev_step = self._rank_recent.get(rank, (None, None, None))
        stepped = self._stepped_back.pop(rank, None)
        if stepped is not None and n.ts + stepped[0] >= stepped[1] - CLOCK_STEP_BACK_S:
            # back beside the record before the step: only the record between was behind (a bad ts), no clock moved
            off, ts = stepped[0], n.ts + stepped[0]
            self._undo_step(rank, stepped)
        elif prev is not None and ts < prev - CLOCK_STEP_BACK_S:
            back = prev - ts
            alone = before is not None and ts >= before - CLOCK_STEP_BACK_S
            if not alone:  # its next record tells a clock step from one record dated behind
                self._stepped_back[rank] = (off, prev, len(self.clock_steps))
            off, ts = off + back, ts + back
            self.clock_offsets[rank] = off
            self.clock_steps.append(ClockStep(rank, n.step, back, prev_step if alone else None))
        self.note_rank_ts(rank, ts, n.step)
        n.ts = ts

    def _undo_step(self, rank: int, stepped: tuple[float, float, int]) -> None:
        """The clock step read at ``rank``'s record before this one was that one record dated behind the records
        before and after it: its offset goes (the records after it are read as dated), and the step says so."""
        off, _, index = stepped
        if off:
            self.clock_offsets[rank] = off
        else:  # no step left: the bulk reader takes its records again (runs/bulk.py)
            self.clock_offsets.pop(rank, None)
        step = self.clock_steps[index]
        self.clock_steps[index] = replace(step, bad_ts_step=step.step, behind=True)

    def note_rank_ts(self, rank: int, ts: float, step: int | None) -> None:
        """``rank``'s newest record read is at ``ts`` (on its clock before any step back): also for a reader that
        applies a block of records itself (runs/bulk.py)."""
        self._rank_recent[rank] = (self._rank_recent.get(rank, (None, None, None))[1], ts, step)

    def _trim_events(self) -> None:
        """Keep the newest MAX_EVENTS by time, in their order: the files are fed one after the other, so the first
        read are not the oldest (rank 0's file, read before the others', holds the current attempt's boot)."""
        keep = sorted(range(len(self.events)), key=lambda i: _event_time(self.events[i]))[-MAX_EVENTS:]
        self.events = [self.events[i] for i in sorted(keep)]

    def _attempt_start(self, n: Normalised) -> int | None:
        """The step a new attempt starts from, when rank 0's record says: its `train` phase record's start_step,
        or 0 at a boot whose command line has no --resume (a fresh start: known before its data and model are
        ready). A boot of another trainer, or without its argv, says nothing."""
        if self.format not in (None, FORMAT_V1) or n.rank not in (0, None):
            return None
        if n.kind == schema.KIND_PHASE and n.fields.get("phase") == schema.PHASE_TRAIN:
            return to_step(n.fields.get("start_step"))
        argv = n.fields.get("argv")
        if n.kind == schema.KIND_BOOT and isinstance(argv, list) and argv:
            # argparse takes any unambiguous prefix: "--re" is --resume, "--ru" --run-dir
            resumed = any(isinstance(a, str) and len(a) >= 4 and "--resume".startswith(a) for a in argv)
            return None if resumed else 0
        return None

    def _superseded(self, step: int, ts: float | None) -> bool:
        """Logged by an attempt before a later one that started below ``step`` (without a time: unknown, kept)."""
        if ts is None or ts >= self._newest_cut_ts:
            return False
        return any(c.start_step < step and ts < c.ts for c in self.cuts)

    def _cut(self, start_step: int, ts: float, *, from_record: bool = True) -> None:
        """A new attempt from ``start_step`` at ``ts``: drop what earlier attempts logged past that step (points,
        with every metric and gate statistic, evals, fallback counters). A point without a time cannot be told
        apart and goes too: a val.csv row is read again from its eval record, which follows the cut."""
        cut = AttemptCut(start_step, ts, from_record)
        if cut in self._cut_set:
            return  # every rank writes its records, and a replayed file repeats them
        self._cut_set.add(cut)
        self.cuts.append(cut)
        self._newest_cut_ts = max(self._newest_cut_ts, ts)
        removed_points = removed_vals = False
        i = bisect_right(self.steps, start_step)
        keep = [j for j in range(i, len(self.steps)) if (t := self.ts[j]) is not None and t >= ts]
        if len(keep) < len(self.steps) - i:
            removed_points = True
            self.steps[i:] = [self.steps[j] for j in keep]
            self.ts[i:] = [self.ts[j] for j in keep]
            for col in self._cols.values():
                col[i:] = [col[j] for j in keep]
        i = bisect_right(self.val_steps, start_step)
        keep = [j for j in range(i, len(self.val_steps)) if (t := self.val_ts[j]) is not None and t >= ts]
        if len(keep) < len(self.val_steps) - i:
            removed_vals = True
            for vals in (self.val_steps, self.val_loss, self.val_ppl, self.val_ts):
                vals[i:] = [vals[j] for j in keep]
        fb_ts = self._fallback_ts
        keep = [
            j for j, (s, _) in enumerate(self.fallbacks) if s <= start_step or ((t := fb_ts[j]) is not None and t >= ts)
        ]
        if len(keep) < len(self.fallbacks):
            self.fallbacks = [self.fallbacks[j] for j in keep]
            self._fallback_ts = [self._fallback_ts[j] for j in keep]
        if removed_points or removed_vals:
            self.truncations.append((start_step, removed_points))

    def _drop_val_rows_from(self, step: int) -> None:
        """val.csv went back to ``step``: its rows from there on were an earlier attempt's (eval records keep
        theirs: they have a time, and the cuts judge them)."""
        i = bisect_left(self.val_steps, step)
        keep = [j for j in range(i, len(self.val_steps)) if self.val_ts[j] is not None]
        if len(keep) < len(self.val_steps) - i:
            for vals in (self.val_steps, self.val_loss, self.val_ppl, self.val_ts):
                vals[i:] = [vals[j] for j in keep]
            self.truncations.append((step - 1, False))

    def _upsert(self, step: int, ts: float | None, metrics: dict[str, float | None]) -> None:
        if not self.steps or step > self.steps[-1]:
            i = len(self.steps)
            self.steps.append(step)
            self.ts.append(ts)
            for k, col in self._cols.items():
                col.append(metrics.get(k))
            self._trim()
            return
        i = bisect_left(self.steps, step)
        if i < len(self.steps) and self.steps[i] == step:
            old = self.ts[i]
            if ts is not None and old is not None and ts < old:
                # an older record of a step logged again (a resume's, read before its cut): it only fills gaps
                for k, v in metrics.items():
                    if v is not None and k in self._cols and self._cols[k][i] is None:
                        self._cols[k][i] = v
                return
            if ts is not None:
                self.ts[i] = ts
            for k, v in metrics.items():
                if v is not None and k in self._cols:
                    self._cols[k][i] = v
            return
        self.steps.insert(i, step)
        self.ts.insert(i, ts)
        for k, col in self._cols.items():
            col.insert(i, metrics.get(k))

    def _trim(self) -> None:
        if self.max_points is None or len(self.steps) <= self.max_points * 5 // 4:
            return
        drop = len(self.steps) - self.max_points
        del self.steps[:drop], self.ts[:drop]
        for col in self._cols.values():
            del col[:drop]

    def _add_val(self, step: int | None, loss: float | None, ppl: float | None, ts: float | None = None) -> None:
        if step is None:
            return
        i = bisect_left(self.val_steps, step)
        if i < len(self.val_steps) and self.val_steps[i] == step:
            old = self.val_ts[i]
            if old is not None and (ts is None or ts < old):
                return  # the eval record of this step is known: a val.csv row or an older record adds nothing
            self.val_loss[i], self.val_ppl[i] = loss, ppl
            self.val_ts[i] = ts if ts is not None else old
            return
        if ts is None and any(c.from_record and c.start_step < step for c in self.cuts):
            # a val.csv row past an attempt start its heartbeat says, without a time to place it: an earlier
            # attempt's, or the current one's whose eval record (written first, in the same heartbeat) brings it
            return
        self.val_steps.insert(i, step)
        self.val_loss.insert(i, loss)
        self.val_ppl.insert(i, ppl)
        self.val_ts.insert(i, ts)

    def _add_fallbacks(self, step: int, counters: dict[str, float], ts: float | None) -> None:
        if not counters:
            return
        if self.fallbacks and step == self.fallbacks[-1][0]:
            self.fallbacks[-1][1].update(counters)
            self._fallback_ts[-1] = ts if ts is not None else self._fallback_ts[-1]
        elif self.fallbacks and step < self.fallbacks[-1][0]:
            # a step logged again: a resumed attempt redoes the steps after its checkpoint. Its record replaces
            # the dead attempt's at that step (as _upsert does for the metrics)
            i = bisect_left([s for s, _ in self.fallbacks], step)
            if self.fallbacks[i][0] == step:
                self.fallbacks[i][1].update(counters)
                self._fallback_ts[i] = ts if ts is not None else self._fallback_ts[i]
            else:
                self.fallbacks.insert(i, (step, dict(counters)))
                self._fallback_ts.insert(i, ts)
        else:
            self.fallbacks.append((step, dict(counters)))
            self._fallback_ts.append(ts)

    # ------------------------------------------------------------------ reading
    def column(self, name: str) -> list[float | None]:
        """One metric column, aligned with ``steps`` (KeyError for an unknown name)."""
        return self._cols[name]

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRICS

    def last_value(self, name: str) -> float | None:
        """The newest non-null value of a metric (NaN counts: it is a value)."""
        col = self._cols[name]
        for v in reversed(col):
            if v is not None:
                return v
        return None

    @property
    def latest(self) -> dict[str, Any]:
        """Newest value of every metric plus step, ts, val_loss, val_ppl, fallbacks."""
        out: dict[str, Any] = {k: self.last_value(k) for k in METRICS}
        out["step"] = self.latest_step
        out["ts"] = self.last_progress_ts
        out["val_loss"] = self.val_loss[-1] if self.val_loss else None
        out["val_ppl"] = self.val_ppl[-1] if self.val_ppl else None
        out["fallbacks"] = dict(self.fallbacks[-1][1]) if self.fallbacks else {}
        return out

    @property
    def latest_step(self) -> int | None:
        """The highest step any record of the current attempt reached (progress, liveness or event): a rank last
        heard from before a later attempt started below its step is an earlier attempt's, and so is a rank the
        current attempt does not have."""
        best = self.steps[-1] if self.steps else None
        for st in self.attempt_ranks.values():
            if st.last_step is None or (best is not None and st.last_step <= best):
                continue
            if not (self.cuts and self._superseded(st.last_step, st.last_ts)):
                best = st.last_step
        return best

    @property
    def last_progress_ts(self) -> float | None:
        for t in reversed(self.ts):
            if t is not None:
                return t
        return None

    # ------------------------------------------------------------------ the current attempt
    # A run directory keeps every attempt's heartbeat files: a rank that a later attempt does not have (a 2-rank
    # launch, then 1 rank) still has its file, with its boot and end records. The current attempt is rank 0's
    # newest boot, by time (files are fed in any order); its records and ranks decide, older ones do not.

    @property
    def launch_ts(self) -> float | None:
        """When `nsa launch` last started a process in this run directory (launch.json's ``ts``, on the clock of
        the host that runs it, like the records'); None without a launch record."""
        ts = to_float(self.launch.get("ts"))
        return ts if ts is not None and math.isfinite(ts) else None

    @property
    def unbooted_launch(self) -> bool:
        """`nsa launch` (a --resume, a --force rerun) started a process that has not written its boot yet: the
        launch is newer than rank 0's newest boot and than every progress record. Until the boot, the records are
        an earlier attempt's: its end record, errors or step say nothing of the process starting now."""
        return self._launched_after(self._newest_boot())

    def _launched_after(self, boot: Event | None) -> bool:
        """launch.json is newer than ``boot`` (rank 0's newest) and than the last progress record, and no boot
        record names it: a boot that says it is this launch's (``launch_ts``) ends the wait whatever the times say
        (a clock stepped back between the launch and the boot dated the boot, and every record after it, before
        the launch: "not booted yet" for as long as the step, and for good once the run ended)."""
        launched, last = self.launch_ts, self.last_progress_ts
        if launched is None or self._launch_boot(launched) is not None:
            return False
        return (boot is None or boot.ts is None or launched > boot.ts) and (last is None or launched > last)

    def _launch_boot(self, launched: float) -> Event | None:
        """Rank 0's boot record of the process that the launch at ``launched`` started, by the launch time it was
        given (as the trainer tells its own launch's files: nsa_train.telemetry.holds); None when none says so."""
        for ev in self.events:
            if ev.kind == schema.KIND_BOOT and ev.rank in (0, None):
                given = to_float(ev.fields.get(schema.BOOT_LAUNCH_TS))
                if given is not None and abs(given - launched) < LAUNCH_TS_MATCH_S:
                    return ev
        return None

    def _newest_boot(self) -> Event | None:
        boot = _newest(ev for ev in self.events if ev.kind == schema.KIND_BOOT and ev.rank in (0, None))
        if boot is None and 0 not in self.ranks:
            boot = _newest(ev for ev in self.events if ev.kind == schema.KIND_BOOT)
        return boot

    def _attempt(self) -> tuple[Event | None, float | None]:
        """(the current attempt's boot, when it started): one scan of the events for the properties below, which
        the dashboard asks several times per redraw. A launch not booted yet has no boot and starts at launch. A
        resume refused before its checkpoint loaded is no attempt: the run is the one before it."""
        boot = self._newest_boot()
        if self._launched_after(boot):
            return None, self.launch_ts
        refused = self._refusals()
        if refused and boot is not None and any(boot is b for b, _ in refused):
            boot = _newest(
                ev
                for ev in self.events
                if ev.kind == schema.KIND_BOOT and ev.rank in (0, None) and not any(ev is b for b, _ in refused)
            )
        return boot, (boot.ts if boot is not None else None)

    def _refusals(self) -> list[tuple[Event, float]]:
        """(rank 0's boot, the next boot's time or inf) of each attempt that was a --resume refused before its
        checkpoint loaded (its rank-0 end record says ``resume_refused``): the records in between are that attempt's,
        and it changed nothing of the run (docs/health.md, States). Cached per records read: the dashboard asks
        often."""
        key = (self.records, len(self.events))
        if self._refusals_cache is not None and self._refusals_cache[0] == key:
            return self._refusals_cache[1]
        ends = [
            ev.ts
            for ev in self.events
            if ev.kind == schema.KIND_END
            and ev.rank in (0, None)
            and ev.ts is not None
            and ev.fields.get(schema.RESUME_REFUSED) is True
        ]
        out: list[tuple[Event, float]] = []
        if ends:
            boots = sorted(
                (
                    ev
                    for ev in self.events
                    if ev.kind == schema.KIND_BOOT and ev.rank in (0, None) and ev.ts is not None
                ),
                key=_event_time,
            )
            for i, boot in enumerate(boots):
                until = boots[i + 1].ts if i + 1 < len(boots) else math.inf
                if any(boot.ts <= t < until for t in ends):  # type: ignore[operator]
                    out.append((boot, until))  # type: ignore[arg-type]
        self._refusals_cache = (key, out)
        return out

    def refused_record(self, rank: int | None, ts: float | None) -> bool:
        """A record written by a refused resume's process (its ranks boot up to BOOT_SKEW_S before rank 0)."""
        if ts is None:
            return False
        for boot, until in self._refusals():
            start = boot.ts if rank in (0, None) else boot.ts - BOOT_SKEW_S  # type: ignore[operator]
            if start <= ts < until:
                return True
        return False

    @property
    def refused_resume(self) -> str | None:
        """Why the newest start was a refused --resume (its error record's message), when it was and no launch came
        after it; None otherwise. The run is judged by the attempt before it: this says what was tried since."""
        newest = self._newest_boot()
        refused = self._refusals()
        if newest is None or self._launched_after(newest) or not any(newest is b for b, _ in refused):
            return None
        until = next(u for b, u in refused if b is newest)
        errors = [
            ev
            for ev in self.events
            if ev.kind == schema.KIND_ERROR
            and ev.rank in (0, None)
            and ev.ts is not None
            and newest.ts <= ev.ts < until  # type: ignore[operator]
        ]
        message = errors[0].fields.get("message") if errors else None
        return message if isinstance(message, str) and message else "the resume was refused"

    @property
    def launch_refused(self) -> bool:
        """The newest launch (launch.json) started a --resume that the trainer refused once booted: what its wrapper
        left (exit_status, its part of console.log) is not the run's."""
        launched = self.launch_ts
        refused = self._refusals()
        if launched is None or not refused:
            return False
        # the launch's process: the boot that names it (launch_ts), whatever a clock step did to the times; else (a
        # trainer before that field) the first rank-0 boot after it that names no other launch
        first = self._launch_boot(launched)
        if first is None:
            after = [
                ev
                for ev in self.events
                if ev.kind == schema.KIND_BOOT
                and ev.rank in (0, None)
                and ev.ts is not None
                and ev.ts >= launched
                and to_float(ev.fields.get(schema.BOOT_LAUNCH_TS)) is None
            ]
            first = min(after, key=_event_time, default=None)
        return first is not None and any(first is b for b, _ in refused)

    @property
    def exit_status(self) -> int | None:
        """The launcher's exit status (the exit_status file); when the process it reports is a refused --resume
        (`nsa launch --resume` refused by the trainer once started), that status is not the run's: the status of the
        launch the run is judged by, which the refused launch set aside (exit_status.previous), is. Neither is the
        status of a process started since without `nsa launch` (a trainer run by hand): None, while it runs."""
        if not self.launch_refused:
            return self.launcher_status
        newest = self._newest_boot()
        return self.previous_launcher_status if any(newest is b for b, _ in self._refusals()) else None

    @property
    def console_tail(self) -> list[str]:
        """console.log's last lines, those of the run's own launch: each refused --resume's launch since appended its
        own (its error, torchrun's report), which would otherwise stand for the crash of the attempt the run is judged
        by; after two refusals, the lines before the newest launch were the first refusal's. The launches since are
        counted by the refused boots that end the records (a --resume refused by hand, without `nsa launch`, would
        count one too many: it appends nothing to console.log)."""
        if not self.launch_refused:
            return self.launcher_console
        boots = sorted(
            (ev for ev in self.events if ev.kind == schema.KIND_BOOT and ev.rank in (0, None) and ev.ts is not None),
            key=_event_time,
        )
        refused = {id(b) for b, _ in self._refusals()}
        since = next((n for n, b in enumerate(reversed(boots)) if id(b) not in refused), len(boots))
        before = self.console_before_launches
        return before[-since] if 0 < since <= len(before) else []

    @exit_status.setter
    def exit_status(self, value: int | None) -> None:
        self.launcher_status = value

    @property
    def boot_event(self) -> Event | None:
        """The current attempt's boot: rank 0's newest boot by time (a resumed run boots again). None when rank 0's
        records hold none (a heartbeat tail that starts after it): another rank's may be an earlier attempt's. A
        run that has no rank 0 at all (another trainer's records) falls back to any rank's newest. None, too,
        while a newer launch has not booted (``unbooted_launch``): the newest boot is an earlier attempt's."""
        return self._attempt()[0]

    @property
    def run_host(self) -> str | None:
        """The machine the current attempt's trainer runs on, where its pids mean something: its boot record's
        host (written before anything else, so a start killed before run.json has it), else run.json's; None when
        neither says."""
        boot = self.boot_event
        host = boot.fields.get("host") if boot is not None else None
        if not isinstance(host, str) or not host:
            host = self.run_info.get(schema.RUN_HOST)
        return host if isinstance(host, str) and host else None

    @property
    def attempt_start_ts(self) -> float | None:
        """When the current attempt booted (a resume boots again), or was launched while it has not booted yet;
        None when no record says."""
        return self._attempt()[1]

    @property
    def resumed(self) -> bool:
        """The run holds points of an attempt before the current one (a --resume, whose tokens_seen goes on from its
        checkpoint): the current attempt's elapsed time and mean tokens/s are not the run's. A fresh start (--force)
        cuts the earlier points, so it is not one."""
        start = self.attempt_start_ts
        first = next((t for t in self.ts if t is not None), None)
        return start is not None and first is not None and first < start

    @property
    def attempt_world_size(self) -> int | None:
        """How many ranks the current attempt has (its boot record's world_size); None when unknown."""
        return _world_size(self.boot_event)

    def _in_attempt(self) -> Callable[[int | None, float | None], bool]:
        """Whether a record of a rank at a time is the current attempt's: a rank it has, written since its boot.
        Another rank's from BOOT_SKEW_S before it (the ranks' processes start together and any may write its boot
        first); rank 0's own records before its boot are an earlier process's, however close."""
        boot, start = self._attempt()
        n = _world_size(boot)
        # the boot out of view: rank 0's own records are the current process's, another rank's count from shortly
        # before rank 0's last progress (a finished 2-rank attempt's rank-1 end is not a running 1-rank rerun's)
        last = self.last_progress_ts if start is None and 0 in self.ranks else None
        since_other = last - UNBOOTED_RANK_SLACK_S if last is not None else None

        def heard(rank: int | None, ts: float | None) -> bool:
            if rank is not None and (rank < 0 or (n is not None and rank >= n)):
                return False
            if start is None:
                return since_other is None or rank in (0, None) or (ts is not None and ts >= since_other)
            return ts is not None and ts >= (start if rank in (0, None) else start - BOOT_SKEW_S)

        return heard

    @property
    def attempt_ranks(self) -> dict[int, RankState]:
        """The ranks of the current attempt heard from since it started (a stale file of a rank an earlier attempt
        had, or of one this attempt has not reached yet, says nothing about it): for its state, rank count and
        liveness. ``ranks`` keeps every rank ever heard."""
        heard = self._in_attempt()
        ranks = {r: st for r, st in self.ranks.items() if heard(r, st.last_ts)}
        if not self._refusals():
            return ranks
        # a refused resume's process said the newest of its ranks: each rank as its process before that one left it
        before = {r: self._before_refusal(st) for r, st in ranks.items()}
        return {r: st for r, st in before.items() if st is not None and heard(r, st.last_ts)}

    def _before_refusal(self, st: RankState) -> RankState | None:
        """A rank's state without a refused resume's records: what its newest process before that one said (its
        boot's pid, looked up in the records kept by pid), None when no earlier process of it is known."""
        if not self.refused_record(st.rank, st.last_ts):
            return st
        boots = [
            ev
            for ev in self.events
            if ev.kind == schema.KIND_BOOT
            and ev.rank == st.rank
            and isinstance(ev.fields.get("pid"), int)
            and not self.refused_record(ev.rank, ev.ts)
        ]
        boot = _newest(boots)
        pid = boot.fields["pid"] if boot is not None else None
        if pid is None or pid not in self.pid_last_ts:
            return None
        return RankState(st.rank, self.pid_last_ts[pid], self.pid_last_step.get(pid), None, pid, st.records)

    def attempt_events(self, *kinds: str) -> list[Event]:
        """The current attempt's records of these kinds from its ranks, oldest first (by time; the files' feeding
        order says nothing)."""
        heard = self._in_attempt()
        refused = bool(self._refusals())  # a refused resume's records are no attempt's
        return sorted(
            (
                ev
                for ev in self.events
                if ev.kind in kinds and heard(ev.rank, ev.ts) and not (refused and self.refused_record(ev.rank, ev.ts))
            ),
            key=_event_time,
        )

    @property
    def attempt_stepped(self) -> bool:
        """The current attempt has completed a step (``last_step_ts`` is its newest). Its first progress record
        comes only at a multiple of train.log_every: at 30 s a step and log_every 50 that is 25 minutes, and a run
        that was training read `stalled, stuck_at_start: no progress record` after 15."""
        return self.last_step_ts is not None

    @property
    def last_step_ts(self) -> float | None:
        """When the current attempt last took a step, as its ranks' records say: the newest liveness or progress
        record at a step past the one its `train` phase record started from (liveness comes after a step every
        monitor.liveness_every_s, progress only every train.log_every steps). None before its first step, and
        for a run whose records have no `train` phase (another trainer's)."""
        train = [ev for ev in self.attempt_events(schema.KIND_PHASE) if ev.fields.get("phase") == schema.PHASE_TRAIN]
        start = to_step(train[-1].fields.get("start_step")) if train else None
        if start is None:
            return None
        stepped = [
            st.stepped_ts
            for st in self.attempt_ranks.values()
            if st.stepped_ts is not None and st.stepped_step is not None and st.stepped_step > start
        ]
        return max(stepped, default=None)

    @property
    def restarted_since_progress(self) -> bool:
        """The current attempt started (its boot, or a launch not booted yet) after the last progress record: a
        resumed attempt that has not stepped yet."""
        start, last = self.attempt_start_ts, self.last_progress_ts
        return start is not None and last is not None and start > last

    def last_event(self, *kinds: str) -> Event | None:
        """The newest record of these kinds by time, from a rank the current attempt has (an earlier attempt's
        record may be it: callers that care compare its time with ``attempt_start_ts``)."""
        n = self.attempt_world_size
        return _newest(ev for ev in self.events if ev.kind in kinds and (n is None or ev.rank is None or ev.rank < n))

    @property
    def end_event(self) -> Event | None:
        """The current attempt's end record: rank 0's (it writes the summary and ends last), else the newest of
        another of its ranks (rank 0 killed); an end before the attempt's boot does not count."""
        ends = self.attempt_events(schema.KIND_END)
        own = [ev for ev in ends if ev.rank in (0, None)]
        return (own or ends)[-1] if ends else None

    def attempt_elapsed(self, now: float, ended: bool) -> float | None:
        """The current attempt's wall time: from its boot (a resume's own; its launch while it has not booted) to
        its end record; for an attempt judged ``ended`` without one (killed, crashed), to its newest record; else
        to ``now``. None when no record says when it started. The run's first start_time would count a resume
        from the earlier attempt, and ``now`` would keep a killed run's clock going."""
        start = self.attempt_start_ts
        if start is None:  # other formats: no boot record
            start = to_float(self.run_info.get(schema.RUN_START_TIME))
        if start is None or not math.isfinite(start):
            return None
        end = self.end_event
        stop: float | None = now
        if end is not None and end.ts is not None:
            stop = end.ts
        elif ended:
            stop = self.attempt_last_ts
            stop = stop if stop is not None else self.last_progress_ts
        return None if stop is None else max(0.0, stop - start)

    @property
    def attempt_last_ts(self) -> float | None:
        """When any rank of the current attempt was last heard from (its newest record); None when none was."""
        return max((st.last_ts for st in self.attempt_ranks.values() if st.last_ts is not None), default=None)

    @property
    def attempt_errors(self) -> list[Event]:
        """The current attempt's error records, oldest first: under DDP the first is the cause, the others ranks
        that lost their peer."""
        return self.attempt_events(schema.KIND_ERROR)

    @property
    def ranks_without_end(self) -> list[int]:
        """The current attempt's ranks (0 .. world_size - 1) that wrote no end record since it started: killed
        (SIGKILL, the OOM killer) or still running. Empty when the world size is not known."""
        n = self.attempt_world_size
        if n is None:
            return []
        ended = {ev.rank for ev in self.attempt_events(schema.KIND_END)}
        return [r for r in range(n) if r not in ended]

    @property
    def current_stall(self) -> Event | None:
        """The current attempt's newest watchdog `stall` record, when nothing moved after it: no progress record,
        eval or checkpoint since, and no rank heard from at a later step (a liveness record). Whichever rank's
        watchdog saw it (every rank's does: they wait for each other)."""
        stalls = self.attempt_events(schema.KIND_STALL)
        if not stalls or (stall := stalls[-1]).ts is None:
            return None
        last = self.last_progress_ts
        if last is not None and last > stall.ts:
            return None
        if any(ev.ts is not None and ev.ts > stall.ts for ev in self.attempt_events(*_MOVED_KINDS)):
            return None
        for st in self.attempt_ranks.values():
            later = st.last_ts is not None and st.last_ts > stall.ts
            if later and st.last_step is not None and stall.step is not None and st.last_step > stall.step:
                return None
        return stall

    @property
    def newer_files(self) -> dict[str, int]:
        """Files written by a newer telemetry version than this nsa reads, with that version: read as this one's."""
        return {**self.newer_context, **self.newer_schema}

    @property
    def attempt_summary(self) -> dict[str, Any]:
        """summary.json when it is the current attempt's: written at that attempt's end, with the steps its end
        record says (one left by an earlier attempt, while a resume runs or after it was killed before writing
        its own, is not: {}). Other formats' summaries as they are."""
        s = self.summary
        if not s or self.format != FORMAT_V1:
            return s
        end, steps = self.end_event, s.get(schema.SUMMARY_STEPS_COMPLETED)
        if end is None:
            return s if self._summary_ends_this_attempt() else {}
        if isinstance(steps, int) and end.step is not None and steps != end.step:
            return {}
        return s

    def _summary_ends_this_attempt(self) -> bool:
        """Whether summary.json tells how the current attempt ended though no end record does: the heartbeat
        left out of a copied run (it is the largest file), emptied, or its last line cut. The trainer writes the
        summary just before its end record. Its ``ended_at`` after the attempt's boot makes it this attempt's;
        a summary without it (an older trainer's) counts when it is at the step the records reached and no
        attempt started after them (a resume that has not stepped yet)."""
        s = self.summary
        ended_at, start = to_float(s.get(schema.SUMMARY_ENDED_AT)), self.attempt_start_ts
        if ended_at is not None and start is not None:
            return ended_at >= start
        steps = s.get(schema.SUMMARY_STEPS_COMPLETED)
        if not isinstance(steps, int) or isinstance(steps, bool) or self.restarted_since_progress:
            return False
        return self.latest_step is None or self.latest_step == steps

    @property
    def start_warnings(self) -> list[str]:
        """What the current attempt warned about as it started (its phase records' ``warnings``: config traps
        such as bf16 on a CPU, a stale .HALT removed, a resume that moves the lr), once each, rank 0's only."""
        out: list[str] = []
        for ev in self.attempt_events(schema.KIND_PHASE):
            if ev.rank not in (0, None):
                continue
            said = ev.fields.get("warnings")
            for w in said if isinstance(said, list) else []:
                if isinstance(w, str) and w and w not in out:
                    out.append(w)
        if self.boot_event is None and not self.unbooted_launch:
            # the attempt's phase records are out of the tail read (a long run): run.json keeps what they said
            said = self.run_info.get(schema.RUN_START_WARNINGS)
            out += [w for w in (said if isinstance(said, list) else []) if isinstance(w, str) and w and w not in out]
        return out

    @property
    def last_phase(self) -> str | None:
        phases = self.attempt_events(schema.KIND_PHASE)
        if not phases:
            return None
        p = phases[-1].fields.get("phase") or phases[-1].fields.get("name")
        return str(p) if p is not None else None

    @property
    def has_progress(self) -> bool:
        return bool(self.steps)

    @property
    def total_steps(self) -> int | None:
        """This attempt's (its config-done phase record: a resume may change train.steps, and run.json is
        rewritten only once its model is built), else run.json's, else the config's train.steps, else a
        generic log's own hint."""
        for ev in reversed(self.attempt_events(schema.KIND_PHASE)):
            if ev.fields.get("phase") == schema.PHASE_CONFIG and ev.fields.get("done"):
                v = to_step(ev.fields.get("total_steps"))
                if v:
                    return v
                break
        for src in (self.run_info.get(schema.RUN_TOTAL_STEPS), (self.config.get("train") or {}).get("steps")):
            v = to_step(src)
            if v:
                return v
        boot = self.boot_event
        if boot is not None:
            v = to_step(boot.fields.get("total_steps") or boot.fields.get("steps") or boot.fields.get("max_steps"))
            if v:
                return v
        return None


def _world_size(boot: Event | None) -> int | None:
    """A boot record's world_size (schema.world_size_of); None without a boot record."""
    return schema.world_size_of(boot.fields) if boot is not None else None


def _event_time(ev: Event) -> float:
    return ev.ts if ev.ts is not None else -math.inf


def _newest(events: Iterable[Event]) -> Event | None:
    """The newest by time; of equal times (or none), the one read last."""
    best = None
    for ev in events:
        if best is None or _event_time(ev) >= _event_time(best):
            best = ev
    return best
