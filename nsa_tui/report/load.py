"""A run's whole history for a report: the status readers (nsa_tui.runs) fed with entire files.

`nsa status` reads bounded tails; a post-mortem wants every point, so the bundle here holds each
interesting file in full. The parsing is the same code (history_from_bundle): one parser.
"""

from __future__ import annotations

import json
import math
import os
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsa_train.config.loader import flatten
from nsa_train.telemetry import schema
from nsa_train.telemetry.mfu import run_mfu
from nsa_train.telemetry.pointers import POINTERS, read_order, read_pointer
from nsa_tui.health.clock import clock_jumps_s
from nsa_tui.report.earlier import this_runs_checkpoints
from nsa_tui.runs import Event, RunHistory, history_from_bundle
from nsa_tui.runs.bundle import FileWindow, RunBundle, file_limit
from nsa_tui.runs.history import BOOT_SKEW_S
from nsa_tui.runs.load import check_local_processes, config_file, launch_tmux_sessions
from nsa_tui.runs.records import to_step


@dataclass
class Checkpoint:
    name: str
    size: int
    pointers: list[str] = field(default_factory=list)  # latest / best
    # written before this run's fresh start (`--force` over an earlier run): that run's, not this one's
    earlier: bool = False


@dataclass
class ReportRun:
    name: str
    where: str  # the run directory as the report names it: a local path, or host:path
    parent: str  # the name of the directory above it (tells apart two runs of the same name)
    history: RunHistory
    checkpoints: list[Checkpoint]
    verdict: Any  # nsa_tui.health.Verdict
    # the run's own monitor section could not be used (its one-line error, as `nsa status` says it): the verdict
    # above is the default rules', and the report says so
    rules_error: str | None = None
    # {metric: (steps, finite values)}: the charts' series, computed once (nsa_tui.report.charts.series)
    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict, repr=False)
    # attempts(history), computed once (None: not yet): a pass over every point, asked by the checkpoints and the
    # summary table
    run_attempts: list[Attempt] | None = field(default=None, repr=False)

    @property
    def summary(self) -> dict[str, Any]:
        """The current attempt's summary.json (an earlier attempt's numbers are not the run's)."""
        return self.history.attempt_summary


def full_bundle(run_dir: Path) -> RunBundle:
    """Every file the status readers understand, read whole, and the sessions of the run's tmux server (is
    it still running?), as `nsa status` reads a run."""
    bundle = RunBundle(run=run_dir.resolve().name, path=str(run_dir), now=time.time())
    bundle.tmux_sessions = launch_tmux_sessions(run_dir)
    for name in sorted(os.listdir(run_dir)):
        p = run_dir / name
        if file_limit(name) is None or not p.is_file():
            continue
        try:
            data = p.read_bytes()
            mtime = p.stat().st_mtime
        except OSError:
            continue
        bundle.files[name] = FileWindow(name, data, len(data), mtime)
    return bundle


@dataclass
class CheckpointListing:
    """A run's checkpoint files, and the order file's names (None without one): which were written before this
    run's fresh start."""

    files: list[Checkpoint] = field(default_factory=list)
    order: list[str] | None = None


def checkpoint_listing(
    sizes: dict[str, int], pointers: dict[str, str | None], order: list[str] | None = None
) -> CheckpointListing:
    """The checkpoint files (name -> size, the pointer and order files and hidden files excluded) with the pointers
    (``latest``/``best`` -> the file name each holds, nsa_train.telemetry.pointers) that name them, sorted by name."""
    pointed: dict[str, list[str]] = {}
    for pointer in POINTERS:
        if (name := pointers.get(pointer)) is not None:
            pointed.setdefault(name, []).append(pointer)
    files = [
        Checkpoint(name, size, pointed.get(name, []))
        for name, size in sorted(sizes.items())
        if not name.startswith(".") and name not in (*POINTERS, schema.CHECKPOINT_ORDER)
    ]
    return CheckpointListing(files, order)


def list_checkpoints(run_dir: Path) -> CheckpointListing:
    d = run_dir / schema.CHECKPOINT_DIR
    if not d.is_dir():
        return CheckpointListing()
    pointers = {pointer: read_pointer(d, pointer).name for pointer in POINTERS}
    sizes = {p.name: p.stat().st_size for p in d.iterdir() if p.is_file()}
    return checkpoint_listing(sizes, pointers, read_order(d))


def mark_earlier_run(h: RunHistory, listing: CheckpointListing, runs: list[Attempt] | None = None) -> list[Checkpoint]:
    """The listing's files, those an earlier run left marked: the run's newest fresh start came after attempts of
    another run (a `--force` start in its directory), and neither its checkpoint records nor the order file after
    them name the file."""
    runs = attempts(h) if runs is None else runs
    fresh = [i for i, a in enumerate(runs) if a.fresh]
    if not fresh or fresh[-1] == 0:  # the directory's first run: every file is its own
        return listing.files
    own = this_runs_checkpoints(h.events, runs[fresh[-1]].boot, listing.order)
    for c in listing.files:
        c.earlier = c.name not in own
    return listing.files


def report_run(
    bundle: RunBundle, checkpoints: CheckpointListing, where: str, parent: str, *, local: bool = False
) -> ReportRun:
    """A run's report data from its files read whole (UserError, exit 3, when they hold no telemetry of any known
    format: the line `nsa status` gives). ``local``: the run is on this machine, so a run without a launch.json is
    alive iff a rank's pid is."""
    from nsa_tui.errors import NOT_FOUND_EXIT, UserError
    from nsa_tui.health import evaluate, run_rules
    from nsa_tui.runs.load import no_telemetry

    h = history_from_bundle(bundle, whole=True)
    if h.format is None:
        raise UserError(no_telemetry(where, h), NOT_FOUND_EXIT)
    if local:  # the process checks of `nsa status` (over ssh the host's listing came with the files)
        check_local_processes(h, Path(bundle.path))
    name = bundle.run
    # a mistake in the run's monitor section: the report is drawn, judged with the defaults, and says so in one
    # line, as `nsa status` does (the command exits 4 after writing it)
    rules, problem = run_rules(h.config)
    rules_error = problem.in_run_config(where, config_file(h)) if problem is not None else None
    verdict = evaluate(h, bundle.now, rules, run=name)
    runs = attempts(h)
    marked = mark_earlier_run(h, checkpoints, runs)
    return ReportRun(name, where, parent, h, marked, verdict, rules_error, run_attempts=runs)


def load_report_run(run_dir: Path) -> ReportRun:
    """A local run directory (UserError when it holds no telemetry of any known format)."""
    bundle, checkpoints = full_bundle(run_dir), list_checkpoints(run_dir)
    return report_run(bundle, checkpoints, str(run_dir), run_dir.resolve().parent.name, local=True)


def finite(v: Any) -> float | None:
    if type(v) is float:  # nearly every value: a column's
        return v if math.isfinite(v) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


@dataclass
class Attempt:
    """One training process of a run (a halt or a crash and --resume start another), by rank 0's records."""

    boot: float  # its boot record's time
    train: float | None  # its 'train' phase record's time: the loop started (None: it never got there)
    last: float  # its last record's time
    start_step: int | None = None  # its 'train' phase record's start_step: the step its loop started from
    last_step: int | None = None  # the highest step it reached, steps a later attempt did again included
    tokens_per_step: float | None = None
    fresh: bool = False  # started from step 0 (no --resume on its command line): earlier attempts are another run's
    loop_s: float | None = None  # its end record's train_time_s: the seconds its loop ran, as its summary counts them
    # the seconds its clock stepped forward between its progress points (health/clock.py), left out of its times:
    # a +1 h step made a 164 s run's report read `wall time 1h02m | mean tok/s 218`
    jumps_s: float = 0.0

    @property
    def train_s(self) -> float:
        """Its loop's seconds: its end record's (the summary's measure), else (killed, or an older trainer's) from
        its 'train' record to its last record."""
        if self.loop_s is not None:
            return self.loop_s
        return 0.0 if self.train is None else max(0.0, self.last - self.train - self.jumps_s)

    @property
    def wall_s(self) -> float:
        """From its boot to its last record, less its clock's forward steps."""
        return max(0.0, self.last - self.boot - self.jumps_s)

    @property
    def trained_tokens(self) -> float | None:
        """The tokens its loop trained on, those of steps a later attempt did again included (its time went into
        them): what the trainer's summary counts for its own process. None when its start step, last step or tokens
        per step are not known."""
        if self.train is None:
            return 0.0
        if self.start_step is None or self.last_step is None or self.tokens_per_step is None:
            return None
        return max(0, self.last_step - self.start_step) * self.tokens_per_step


def _tokens_per_step(points: list[tuple[int, float]]) -> float | None:
    """Tokens per step from one attempt's own points (step, tokens_seen): a resume may change train.batch_size."""
    if len(points) < 2:
        return None
    (lo_step, lo_tokens), (hi_step, hi_tokens) = min(points), max(points)
    rate = (hi_tokens - lo_tokens) / (hi_step - lo_step) if hi_step > lo_step else None
    return rate if rate is not None and rate > 0 else None


def run_tokens_per_step(h: RunHistory) -> float | None:
    """The run's tokens per step, for an attempt with fewer than two points of its own: run.json's (batch_size x
    seq_len), else the newest point's tokens_seen over its step."""
    v = finite(h.run_info.get(schema.RUN_TOKENS_PER_STEP))
    if v is not None and v > 0:
        return v
    for step, tokens in zip(reversed(h.steps), reversed(h.column("tokens_seen")), strict=False):
        t = finite(tokens)
        if t is not None and step > 0:
            return t / step
    return None


def fresh_start(boot: Event) -> bool:
    """A boot record whose command line it gives has no --resume (argparse takes any prefix of it from 4
    characters): a start from step 0."""
    argv = boot.fields.get("argv")
    if not isinstance(argv, list) or not argv:
        return False  # no command line: it says nothing
    return not any(isinstance(a, str) and len(a) >= 4 and "--resume".startswith(a) for a in argv)


def attempts(h: RunHistory) -> list[Attempt]:
    """The run's attempts in time order; empty for formats without boot records. An attempt lasts until its last
    record: of its points, events, or (a killed attempt whose last steps a resume superseded: those points are
    gone) its rank-0 process's newest record, which the history keeps by pid, with its step."""
    # a --resume refused after its boot is no attempt (docs/health.md): its records, and so its time, are left out
    events = [e for e in h.events if not h.refused_record(e.rank, e.ts)]
    ev0 = [e for e in events if e.ts is not None and e.rank in (0, None)]  # every rank boots: one is enough
    boot_evs = sorted((e for e in ev0 if e.kind == schema.KIND_BOOT), key=lambda e: e.ts or 0.0)
    boots = [e.ts or 0.0 for e in boot_evs]
    train_evs = sorted(
        (e for e in ev0 if e.kind == schema.KIND_PHASE and e.fields.get("phase") == schema.PHASE_TRAIN),
        key=lambda e: e.ts or 0.0,
    )
    trains = [e.ts or 0.0 for e in train_evs]
    ends = [
        (e.ts or 0.0, s)
        for e in ev0
        if e.kind == schema.KIND_END and (s := finite(e.fields.get(schema.END_TRAIN_TIME))) is not None and s >= 0
    ]
    stamps = sorted(t for t in (*h.ts, *(e.ts for e in events)) if t is not None)
    # each attempt's own points (step, tokens_seen) and the steps its records reached, by the boot before them
    points: list[list[tuple[int, float]]] = [[] for _ in boots]
    timed: list[list[tuple[int, float, float | None]]] = [[] for _ in boots]  # (step, ts, dt_step_s)
    reached: list[list[int]] = [[] for _ in boots]
    dts = h.column("dt_step_s") if "dt_step_s" in h.metric_names else [None] * len(h.steps)
    for step, ts, tokens, dt in zip(h.steps, h.ts, h.column("tokens_seen"), dts, strict=False):
        i = bisect_right(boots, ts) - 1 if ts is not None else -1
        if i >= 0:
            reached[i].append(step)
            timed[i].append((step, ts, finite(dt)))
            if (t := finite(tokens)) is not None:
                points[i].append((step, t))
    for e in ev0:
        i = bisect_right(boots, e.ts or 0.0) - 1
        if i >= 0 and e.step is not None:
            reached[i].append(e.step)
    fallback_rate = run_tokens_per_step(h)
    out = []
    for i, boot in enumerate(boots):
        # the next attempt's ranks boot within BOOT_SKEW_S of its rank 0, in any order: another rank's boot a few ms
        # before rank 0's is the next attempt's (it made a resume's pause, hours, count as the attempt before it)
        until = boots[i + 1] - BOOT_SKEW_S if i + 1 < len(boots) else math.inf
        inside = stamps[bisect_left(stamps, boot) : bisect_left(stamps, until)]
        last = inside[-1] if inside else boot
        pid = boot_evs[i].fields.get("pid")
        alive = h.pid_last_ts.get(pid) if isinstance(pid, int) else None
        if alive is not None and last < alive < until:  # a pid used again by a later attempt says nothing
            last = alive
        if alive is not None and boot <= alive < until and pid in h.pid_last_step:
            reached[i].append(h.pid_last_step[pid])  # its last step, when a later attempt superseded it
        train = train_evs[bisect_left(trains, boot) : bisect_left(trains, until)]
        start = to_step(train[0].fields.get("start_step")) if train else None
        fresh = fresh_start(boot_evs[i])
        if start is None and train and (i == 0 or fresh):
            start = 0  # a train record without start_step (an older trainer's): a first or fresh start is from 0
        rate = _tokens_per_step(points[i]) or fallback_rate
        reached_step = max(reached[i], default=None)
        loop_s = next((s for t, s in ends if boot <= t < until), None)
        attempt = Attempt(boot, train[0].ts if train else None, last, start, reached_step, rate, fresh, loop_s)
        attempt.jumps_s = clock_jumps_s(timed[i])
        out.append(attempt)
    return out


def this_runs_attempts(runs: list[Attempt]) -> list[Attempt]:
    """The attempts since the last fresh start: a --force rerun in the directory starts another run, whose time,
    attempts and resumes are its own."""
    starts = [i for i, a in enumerate(runs) if a.fresh]
    return runs[starts[-1] :] if starts else runs


def resume_steps(h: RunHistory) -> list[int]:
    """The steps a resumed attempt started from (its 'train' phase record's start_step), in time order: where the
    charts mark the seams (a changed lr schedule shows up there as a jump)."""
    fresh = [e.ts for e in h.events if e.kind == schema.KIND_BOOT and e.rank in (0, None) and fresh_start(e) and e.ts]
    since = max(fresh, default=None)  # a --force rerun's resumes only: the earlier run's seams are not its own
    out = []
    for e in sorted(h.events, key=lambda e: e.ts or 0.0):
        if since is not None and (e.ts is None or e.ts < since):
            continue
        start = e.fields.get("start_step") if e.kind == schema.KIND_PHASE and e.rank in (0, None) else None
        if (
            e.fields.get("phase") == schema.PHASE_TRAIN
            and isinstance(start, int)
            and not isinstance(start, bool)
            and start > 0
        ):
            out.append(start)
    return out


def first_known(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def final_numbers(r: ReportRun) -> dict[str, Any]:
    """The numbers of the summary table: summary.json when the trainer wrote one, else the history."""
    h = r.history
    # a summary number that is not a finite number (a hand-edited NaN) is unknown: the history's is used
    s = {k: v for k, v in r.summary.items() if not isinstance(v, float) or math.isfinite(v)}
    vals = [(st, v) for st, v in zip(h.val_steps, h.val_loss, strict=False) if finite(v) is not None]
    best = min(vals, key=lambda p: p[1]) if vals else (None, None)
    toks = [v for v in (finite(x) for x in h.column("toks_per_s")) if v is not None]
    mean_toks = first_known(s.get(schema.SUMMARY_MEAN_TOKS_PER_S), sum(toks) / len(toks) if toks else None)
    out = {
        "format": h.format,
        "state": r.verdict.state,
        "step": h.latest_step,
        "total_steps": h.total_steps,
        # the summary first; its 0 is a number (a run that stopped before its first step), only null falls through
        "params": first_known(s.get(schema.SUMMARY_PARAM_COUNT), h.run_info.get(schema.RUN_PARAM_COUNT)),
        "tokens_seen": first_known(s.get(schema.SUMMARY_TOKENS_SEEN), h.last_value("tokens_seen")),
        "final_loss": h.last_value("loss"),
        # a null in the summary is "not known to that process" (one that stopped before evaluating), not
        # "no evals": the history's val records still count
        "final_val_loss": s[schema.SUMMARY_FINAL_VAL_LOSS]
        if s.get(schema.SUMMARY_FINAL_VAL_LOSS) is not None
        else (vals[-1][1] if vals else None),
        # the summary's best and its step go together (a foreign summary may give the loss alone)
        "best_val_loss": s[schema.SUMMARY_BEST_VAL_LOSS]
        if s.get(schema.SUMMARY_BEST_VAL_LOSS) is not None
        else best[1],
        "best_step": s.get(schema.SUMMARY_BEST_STEP) if s.get(schema.SUMMARY_BEST_VAL_LOSS) is not None else best[0],
        "wall_time_s": s.get(schema.SUMMARY_WALL_TIME_S),
        "mean_toks_per_s": mean_toks,
        "mfu": run_mfu(h.run_info, mean_toks),  # null on CPU, for an unknown card, for an older run.json
        "end_reason": s.get(schema.SUMMARY_END_REASON) or r.verdict.end_reason,
        "attempts": 1,
        "resumed_at": resume_steps(h),
    }
    runs = this_runs_attempts(r.run_attempts if r.run_attempts is not None else attempts(h))
    if len(runs) > 1 or (runs and not s):
        # summary.json speaks for its own process only, and a killed process (SIGKILL, the OOM killer) wrote
        # none. The whole run: every attempt's time (not the pauses between them), and the tokens its loops trained
        # on over their time, as the summary computes its own (not the mean of the windows' rates, which leave out
        # eval and checkpoint time)
        out["attempts"] = len(runs)
        out["wall_time_s"] = sum(a.wall_s for a in runs)
        # each attempt's trained tokens, steps a resume did again included: the time went into them, and the
        # summary (status's mean, for the last attempt) counts them so too
        train_s, trained = sum(a.train_s for a in runs), [a.trained_tokens for a in runs]
        known = train_s > 0 and None not in trained
        out["mean_toks_per_s"] = sum(t for t in trained if t is not None) / train_s if known else None
        out["mfu"] = run_mfu(h.run_info, out["mean_toks_per_s"])
    for k in ("final_val_loss", "best_val_loss"):
        v = finite(out[k])
        out[k.replace("loss", "ppl")] = math.exp(min(v, 700.0)) if v is not None else None
    return out


def config_differences(runs: list[ReportRun]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """(keys whose values differ between runs, {run: flat config}); a key one run lacks counts as differing."""
    flat = {r.name: flatten(r.history.config) for r in runs}
    keys = sorted(set().union(*flat.values())) if flat else []
    diff = [k for k in keys if len({json.dumps(f.get(k), default=str) for f in flat.values()}) > 1]
    return diff, flat
