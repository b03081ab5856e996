"""What happened during a run, from the records its directory holds: stalls and their stack dumps, errors, the
trainer's anomaly marker, resumes (and refused ones), halts and how each attempt ended.

The alerts judge the run as it is now, so a run that stalled for minutes and was then halted read "No health rule
fired" in its report, which never named the stall record or its dump. These are the report's Events.
"""

from __future__ import annotations

import math
import re
import time
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import PurePath

from nsa_train.telemetry import schema
from nsa_tui.fmt import duration
from nsa_tui.health.checks import (
    MAX_LOST_RANKS,
    SIGKILL_HINT,
    _errors_said,
    _without_end_record,
    ended_without_end_record,
    killed_by_sigkill,
    lost_rank_said,
    said_its_error,
)
from nsa_tui.health.console_tail import (
    TRACEBACK,
    last_lines_said_once,
    rank_end_unwritten,
    torchrun_failures,
    without_torchrun_report,
)
from nsa_tui.health.stop_signal import UNNAMED, halt_was_requested, halted_by_text, stop_signal
from nsa_tui.report.load import Attempt, attempts, fresh_start
from nsa_tui.runs import RunHistory
from nsa_tui.runs.history import BOOT_SKEW_S, CutRecord, Event
from nsa_tui.runs.load import LAUNCH_START_RE

# the most rows one run gives (the newest kept): a run that crash-looped must not bury the report
MAX_EVENT_ROWS = 50

END_SAID = {
    schema.END_COMPLETED: "completed",
    schema.END_HALT: "halted",
    schema.END_ERROR: "ended by an error",
    schema.END_NAN: "ended by a NaN loss",
}  # a signal's end is said as `nsa status` says it (stop_signal.halted_by_text)


@dataclass(frozen=True)
class RunEvent:
    ts: float | None  # None: known only by a file (the anomaly marker)
    step: int | None
    rank: int | None
    what: str
    detail: str


def _train_starts(h: RunHistory) -> tuple[list[float], list[int | None]]:
    """Rank 0's `train` phase records in time order: (their times, the start_step each gives)."""
    trains = sorted(
        (
            e
            for e in h.events
            if e.kind == schema.KIND_PHASE
            and e.rank in (0, None)
            and e.fields.get("phase") == schema.PHASE_TRAIN
            and e.ts is not None
        ),
        key=lambda e: e.ts or 0.0,
    )
    steps = [
        s if isinstance(s := e.fields.get("start_step"), int) and not isinstance(s, bool) else None for e in trains
    ]
    return [e.ts or 0.0 for e in trains], steps


def _boots(h: RunHistory) -> list[RunEvent]:
    """Every start after the first: a resume (from which step), or a fresh start over the run (--force)."""
    boots = sorted(
        (e for e in h.events if e.kind == schema.KIND_BOOT and e.rank in (0, None) and e.ts is not None),
        key=lambda e: e.ts or 0.0,
    )
    times, starts = _train_starts(h)
    out = []
    for i, boot in enumerate(boots[1:], start=1):
        until = (boots[i + 1].ts or 0.0) if i + 1 < len(boots) else float("inf")
        if fresh_start(boot):
            out.append(RunEvent(boot.ts, boot.step, boot.rank, "fresh start", "a new run from step 0 (--force)"))
            continue
        j = bisect_left(times, boot.ts or 0.0)  # its `train` record: the first after its boot, before the next
        start = starts[j] if j < len(times) and times[j] < until else None
        said = f"from step {start}" if start is not None else "before its loop started"
        # the step it continued from: its boot record says 0 (the checkpoint is not loaded yet)
        out.append(RunEvent(boot.ts, start, boot.rank, "resume", said))
    return out


def _dump_name(path: object) -> str | None:
    return PurePath(path).name if isinstance(path, str) and path else None


def _clock(ts: float, since: float) -> str:
    """A UTC time as the Events table gives times: the date too when it is not the day of ``since``."""
    same_day = time.gmtime(ts)[:3] == time.gmtime(since)[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _stall_end(h: RunHistory, stall: Event) -> tuple[float, str] | None:
    """When the hang ``stall`` reports ended, and how the run said so: its rank's next record of a later step
    (progress or liveness), else the end record that followed it; None when no record says (it may hang still, or
    its process died unrecorded: a later start's boot is no end of the hang)."""
    since = stall.ts or 0.0
    stepped = h.stall_ends.progress_after(stall.rank, stall.ts)
    later = sorted(
        (
            e
            for e in h.events
            if e.kind in (schema.KIND_END, schema.KIND_BOOT)
            and e.rank in (stall.rank, 0, None)
            and e.ts is not None
            and e.ts >= since
            and (stepped is None or e.ts < stepped)
        ),
        key=lambda e: e.ts or 0.0,
    )
    if later:  # its end record, or a new start first: when the hang ended is then not known
        return (later[0].ts or 0.0, "until the run ended") if later[0].kind == schema.KIND_END else None
    return (stepped, f"progress again at {_clock(stepped, since)}") if stepped is not None else None


def _stall_said(h: RunHistory, stall: Event) -> str:
    """How long the hang lasted, from its last progress (the stall record's time less its quiet seconds) to the
    record that ended it; the watchdog's threshold alone where no later record says."""
    secs = stall.fields.get("seconds_since_progress")
    quiet = float(secs) if isinstance(secs, int | float) and not isinstance(secs, bool) else None
    watchdog = f"no progress for {quiet:.0f} s" if quiet is not None else "no progress"
    ended = _stall_end(h, stall) if stall.ts is not None else None
    if ended is None:
        return f"{watchdog} (the trainer's watchdog)"
    at, how = ended
    lasted = at - (stall.ts or 0.0) + (quiet or 0.0)
    return f"stalled for ~{duration(round(lasted))} ({how}); the trainer's watchdog saw {watchdog}"


# the launch wrapper's last line of each launch in console.log (nsa_tui.launch.runner)
_TORCHRUN_EXITED = re.compile(r"^\[nsa [^\]]*\] torchrun exited with status (-?\d+)")
CUT_SAID = "full disk or killed mid-write"


def _launch_consoles(h: RunHistory, boots: list[Event]) -> list[list[str] | None]:
    """Each rank-0 boot's launch's last console.log lines, when the launches there pair one to one with the boots
    (a run started by hand, or a launch that never booted, leaves them unpaired: None)."""
    before = h.console_before_launches
    if not before or len(before) != len(boots):
        return [None] * len(boots)
    return [_own_lines(lines) for lines in [*before[1:], h.launcher_console]]


def _own_lines(lines: list[str]) -> list[str]:
    """A launch's lines of console.log's lines up to the next launch: those after the last `starting:` line in
    them (the earlier launches' lines are theirs)."""
    starts = [i for i, line in enumerate(lines) if LAUNCH_START_RE.match(line)]
    return lines[starts[-1] + 1 :] if starts else lines


def _launch_status(lines: list[str] | None) -> int | None:
    """A launch's exit status as its wrapper's last line says (None: not said, its wrapper killed too)."""
    for line in reversed(lines or []):
        if m := _TORCHRUN_EXITED.match(line):
            return int(m.group(1))
    return None


def _cuts(h: RunHistory, since: float, until: float) -> list[CutRecord]:
    """An attempt's heartbeat records cut at its end (h.cut_short), by rank."""
    inside = (c for c in h.cut_short if c.ts is not None and since - BOOT_SKEW_S <= c.ts < until)
    return sorted(inside, key=lambda c: c.rank or 0)


def _cut_said(cuts: list[CutRecord], world: int | None) -> list[str]:
    """One clause per cut record."""
    out = []
    for c in cuts:
        whose = f"rank {c.rank}'s" if world is not None and world > 1 else "its"
        at = f" at step {c.step}" if c.step is not None else ""
        out.append(f"{whose} last record cut{at} ({CUT_SAID})")
    return out


def _rank_last(h: RunHistory, rank: int, since: float, until: float) -> tuple[int | None, float | None]:
    """A rank's last record in an attempt (its boot's pid, whose newest record the history keeps): step, time."""
    for e in h.events:
        pid = e.fields.get("pid")
        if e.kind == schema.KIND_BOOT and e.rank == rank and e.ts is not None and since - BOOT_SKEW_S <= e.ts < until:
            if isinstance(pid, int) and pid in h.pid_last_ts:
                return h.pid_last_step.get(pid), h.pid_last_ts[pid]
            return e.step, e.ts
    return None, None


def _attempt_ends(h: RunHistory, ended: bool) -> list[RunEvent]:
    """How each attempt without an end record ended (its launcher's exit status and console, its errors, a record
    cut at its end, the steps the next attempt trained again), and the ranks of an attempt that did end that wrote
    none (a rank SIGKILLed: the others' errors only say they lost their peer). The newest attempt only when the
    run is ``ended`` (crashed): one still running has written no end record yet."""
    runs = attempts(h)
    boots = sorted(
        (e for e in h.events if e.kind == schema.KIND_BOOT and e.rank in (0, None) and e.ts is not None),
        key=lambda e: e.ts or 0.0,
    )
    consoles = _launch_consoles(h, boots)
    times = [b.ts or 0.0 for b in boots]
    out = []
    for i, a in enumerate(runs):
        current = i == len(runs) - 1
        j = bisect_left(times, a.boot)
        boot = boots[j]
        until = times[j + 1] - BOOT_SKEW_S if j + 1 < len(times) else float("inf")
        inside = [e for e in h.events if e.ts is not None and a.boot - BOOT_SKEW_S <= e.ts < until]
        end = next((e for e in inside if e.kind == schema.KIND_END and e.rank in (0, None)), None)
        world = schema.world_size_of(boot.fields)
        console = _own_lines(h.console_tail) if current else consoles[j]  # the current's as its crash alert reads it
        failures = torchrun_failures(console or [])
        if end is not None:
            ended_ranks = {e.rank for e in inside if e.kind == schema.KIND_END}
            lost = [r for r in range(world or 1) if r not in ended_ranks]
            cuts = _cuts(h, a.boot, until)
            for r in lost[:MAX_LOST_RANKS]:
                step, ts = _rank_last(h, r, a.boot, until)
                errors = [e for e in inside if e.kind == schema.KIND_ERROR]
                said_error = said_its_error(errors, console or [], r)
                unwritten = rank_end_unwritten(console or [], r)
                said = lost_rank_said(r, step, ts, end.ts, failures, said_error, unwritten)
                # its record cut at its end (a full disk), named as rank 0's is in an attempt without an end record
                if cut := next((c for c in cuts if c.rank == r), None):
                    said = "; ".join([said, *_cut_said([cut], world)])
                    step = cut.step if cut.step is not None else step
                    ts = cut.ts if cut.ts is not None else ts
                out.append(RunEvent(ts if ts is not None else end.ts, step, r, "rank lost", said))
            continue
        if current and not ended:
            continue
        lines, _ = without_torchrun_report(console or [])
        # the trainer's own last `error:` line says why (a full disk); else the launch's last lines of its own
        # (torchrun's "got signal: 1"), not the wrapper's notes ("killed? torchrun's report above says how")
        errors_said = [ln for ln in lines if ln.startswith("error: ")]
        own = [ln for ln in lines if not ln.startswith(("[nsa ", TRACEBACK, " "))]  # nor a traceback's frames
        quoted = errors_said[-1:] or last_lines_said_once(own, 2)
        status = h.exit_status if current and h.exit_status is not None else _launch_status(console)
        if current and (h.exit_status is not None or h.attempt_summary):  # as its crash alert says it (process_exited)
            how = _without_end_record(h, quoted)
        else:  # its wrapper's last line may say its status where no exit_status file could (a full disk)
            errors = sorted((e for e in inside if e.kind == schema.KIND_ERROR), key=lambda e: e.ts or 0.0)
            launched = bool(h.launch) if current else console is not None
            how = ended_without_end_record(_errors_said(errors, world, quoted), status, launched=launched)
        if not (current and h.attempt_summary) and killed_by_sigkill(status, console or []):
            how += f" ({SIGKILL_HINT})"
        cuts = _cuts(h, a.boot, until)
        last_step = max([s for s in (a.last_step, *(c.step for c in cuts)) if s is not None], default=None)
        parts = [how, *_cut_said(cuts, world)]
        if (unwritten := rank_end_unwritten(console or [], 0)) is not None:  # rank 0's `[end]` line says why
            parts.append(f"its end record could not be written: {unwritten}")
        if not cuts and last_step is not None:
            parts.append(f"its last step {last_step}")
        parts += _next_attempt_said(last_step, runs[i + 1] if i + 1 < len(runs) else None)
        if quoted:
            parts.append(f"console.log: {' | '.join(quoted)}")
        when = max([a.last, *(c.ts for c in cuts if c.ts is not None)])
        out.append(RunEvent(when, last_step, 0, "ended without an end record", "; ".join(parts)))
    return out


def _next_attempt_said(last_step: int | None, nxt: Attempt | None) -> list[str]:
    """What the next attempt did again of an attempt's steps (up to ``last_step``): those past the checkpoint it
    resumed from were lost."""
    if nxt is None:
        return []
    if nxt.fresh:
        return ["the next start began a new run from step 0 (--force)"]
    if nxt.start_step is not None and last_step is not None and nxt.start_step < last_step:
        steps = f"step {last_step}" if last_step == nxt.start_step + 1 else f"steps {nxt.start_step + 1}-{last_step}"
        return [f"{steps} lost: the next attempt resumed from step {nxt.start_step}"]
    return []


def _ranks_ends(h: RunHistory, rank0_end: Event) -> list[dict]:
    """Every rank's end record of the attempt rank 0's ``rank0_end`` closed: the ranks stop together, after the same
    step (the rank that received a signal, which names it by its exit status, need not be rank 0), though not at
    the same moment (rank 0 saves the checkpoint): those of that step between the attempt's boot and the next."""
    at = rank0_end.ts or 0.0
    boots = [e.ts for e in h.events if e.kind == schema.KIND_BOOT and e.rank in (0, None) and e.ts is not None]
    since = max((t for t in boots if t <= at), default=-math.inf) - BOOT_SKEW_S
    until = min((t for t in boots if t > at), default=math.inf)
    return [
        e.fields
        for e in h.events
        if e.kind == schema.KIND_END and e.step == rank0_end.step and e.ts is not None and since <= e.ts < until
    ]


def run_events(h: RunHistory, *, ended: bool = False) -> list[RunEvent]:
    """The run's events in time order (those without a time last), at most MAX_EVENT_ROWS (the newest). ``ended``:
    the run's newest attempt is over (crashed), so its missing end record is said too."""
    rows = _boots(h)
    named_dumps: set[str] = set()
    for e in h.events:
        if e.kind == schema.KIND_STALL:
            dump = _dump_name(e.fields.get("dump"))
            if dump:
                named_dumps.add(dump)
            stacks = f"; stacks in {dump}" if dump else ""
            rows.append(RunEvent(e.ts, e.step, e.rank, "stall", f"{_stall_said(h, e)}{stacks}"))
        elif e.kind == schema.KIND_MOVED and e.rank in (0, None):  # every rank writes one: rank 0's says it
            said = f"from {e.fields.get(schema.MOVED_FROM, '?')} to {e.fields.get(schema.MOVED_TO, '?')}"
            rows.append(RunEvent(e.ts, e.step, e.rank, "run directory moved", said))
        elif e.kind == schema.KIND_ERROR:
            message = e.fields.get("message")
            rows.append(RunEvent(e.ts, e.step, e.rank, "error", str(message) if message else "(no message)"))
        elif e.kind == schema.KIND_END and e.rank in (0, None):
            if e.fields.get(schema.RESUME_REFUSED):
                said = "before its checkpoint loaded: the run is as its last attempt left it"
                rows.append(RunEvent(e.ts, e.step, e.rank, "resume refused", said))
                continue
            reason, status = e.fields.get("reason"), e.fields.get("exit_status")
            what = END_SAID.get(reason, f"ended ({reason})") if isinstance(reason, str) else "ended"
            if reason == schema.END_SIGNAL:  # named as status and the Runs table name it
                ends = _ranks_ends(h, e)  # an earlier attempt's .HALT is gone: its end records tell
                what = halted_by_text(stop_signal(ends) or UNNAMED, halt_requested=halt_was_requested(ends, None))
            rows.append(RunEvent(e.ts, e.step, e.rank, what, f"exit status {status}" if status is not None else ""))
    for name in h.stackdumps:  # the dumps no stall names: asked for (SIGUSR1, `nsa dump`)
        if name not in named_dumps:
            rows.append(RunEvent(schema.stackdump_ts(name), None, schema.stackdump_rank(name), "stack dump", name))
    rows += _attempt_ends(h, ended)  # after the records of the same time: an attempt's end follows its last record
    if h.anomaly:
        rows.append(RunEvent(None, None, None, "anomaly", f"the trainer marked the run: {h.anomaly}"))
    rows.sort(key=lambda r: (r.ts is None, r.ts or 0.0))
    return rows[-MAX_EVENT_ROWS:] if len(rows) > MAX_EVENT_ROWS else rows
