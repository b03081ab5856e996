"""The health engine: a RunHistory and a clock in, a Verdict out. Pure Python (no torch,
no Textual), shared by `nsa status`, `nsa runs` and `nsa watch`."""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from nsa_train.telemetry import schema
from nsa_train.telemetry.mfu import run_mfu
from nsa_tui.health import pace
from nsa_tui.health.checks import CHECKS, Context, Finding, threshold_check, throughput_unjudged
from nsa_tui.health.clock import attempt_clocks, on_reader_clock, past_on_reader_clock
from nsa_tui.health.rules import Rule, build_rules
from nsa_tui.health.start import phase_entered, start_clock
from nsa_tui.health.stop_signal import halt_was_requested, stop_signal
from nsa_tui.runs.history import (
    FORMAT_GENERIC,
    FORMAT_V1,
    FORMAT_VIBE,
    NEWER_KIND,
    UNREADABLE_KIND,
    RunHistory,
    newer_telemetry_text,
)

# The version of what this engine concludes and of the verdict's keys (docs/health.md): bump it whenever either
# changes. `nsa status --host` takes a host's own verdicts only when their judge_version is this one or higher; an
# older host's nsa is judged here from its files (its verdict lacks keys, and once said `halted` of a finished run)
# 2: the verdict's `halt_requested`, `pending` and the rule `launcher_gone`; 3: the verdict's `stop_signal`, the rule
# `clock_skew`, ages of records off this machine's clock taken from their files' mtimes; 4: the verdict's
# `heartbeat_ahead_s`, the rule `rank_stopped`; 5: rank_stopped tells a rank a debugger or tracer holds (state t) from
# one a stop signal stopped, and does not send it to `kill -CONT`; 6: a run directory renamed while it trains is
# its trainer's (judged running, not crashed), and the verdict's `halt_overtaken`
JUDGE_VERSION = 6
STATES = ("starting", "running", "finished", "halted", "crashed", "stalled", "unknown")
ENDED_STATES = ("finished", "halted", "crashed")  # no process of the attempt is left to write
HEALTH = ("ok", "warning", "critical")
_RANK = {"ok": 0, "warning": 1, "critical": 2}
# any of them: state `stalled` (a stopped rank makes no step, and under DDP neither do the others)
STALL_RULES = frozenset({"heartbeat_stale", "stuck_at_start", "watchdog_stall", "rank_stopped"})
# said first among alerts of their severity: the cause, ahead of the stall alerts it brings (`no progress for 5m`
# above it left the user to guess why)
CAUSE_RULES = ("rank_stopped",)


@dataclass
class Alert:
    rule: str
    severity: str  # warning | critical
    message: str
    since_step: int | None
    since_ts: float | None = None


@dataclass
class Pending:
    """A rule whose condition holds but has not yet held for its `for` window: not an alert (the health is not
    changed), but said, so that a floor the user set is not read as met while its 300 s have not passed (or never
    will, on a run that ended first)."""

    rule: str
    severity: str  # what it fires with
    message: str
    since_step: int | None
    held_s: float | None = None  # seconds it has held (of for_s), on the clock `for` is measured on
    for_s: float | None = None
    held_steps: int | None = None  # steps it has held (of for_steps)
    for_steps: int | None = None


# after "tok/s mean" where the run was resumed: the mean is its last attempt's (the whole run's is `nsa report`'s)
MEAN_OF_LAST_ATTEMPT = " (last attempt)"


@dataclass
class Verdict:
    """The judgement of one run at one moment (the `nsa status --json` object)."""

    run: str
    format: str | None
    state: str
    health: str
    alerts: list[Alert] = field(default_factory=list)
    # rules whose condition holds but not yet for their `for` window (Pending): they change neither health nor exit
    pending: list[Pending] = field(default_factory=list)
    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None
    lr: float | None = None
    toks_per_s: float | None = None
    mean_toks_per_s: float | None = None  # an ended run's mean over its last attempt (its summary.json), else null
    resumed: bool = False  # the run holds an earlier attempt's points (a --resume): that mean is not the whole run's
    gpu_mem_gb: float | None = None
    rss_gb: float | None = None  # the trainer's resident host memory (what a CPU run has instead of GPU memory)
    gate_entropy_mean: float | None = None
    gate_collapse_frac: float | None = None
    last_heartbeat_age_s: float | None = None
    # where that age is null because the newest records are dated ahead of this machine's clock (heartbeat_ahead)
    heartbeat_ahead_s: float | None = None
    eta_s: float | None = None
    val_loss: float | None = None
    grad_norm: float | None = None
    tokens_seen: int | float | None = None
    last_phase: str | None = None
    end_reason: str | None = None
    exit_status: int | None = None
    ranks: int = 0
    corrupt_lines: int = 0
    path: str | None = None
    host: str | None = None
    via: str | None = None  # over SSH: 'ssh' (tails read remotely, judged here) or 'remote-nsa'
    start_warnings: list[str] = field(default_factory=list)  # what this attempt warned about as it started
    # why the newest start, a --resume refused before its checkpoint loaded, was refused; the verdict is the run's as
    # the attempt before it left it (docs/health.md, States); null when the newest start was not one
    refused_resume: str | None = None
    attention_impl: str | None = None  # run.json's: the attention path(s) the trainer runs ('cmp=fast sel=triton ...')
    # context files there but unreadable (run.json, config.yaml, summary.json, ...): [{file, problem}]; what they say
    # (attention path, config and monitor section, mean tok/s) is then missing from the verdict
    unreadable_files: list[dict[str, str]] = field(default_factory=list)
    # where the lr is in the run's schedule at `step`: 'warmup' (a tiny lr on purpose: seed reports took it for a
    # bug), 'cosine' or 'done'; null when the config does not say
    lr_phase: str | None = None
    # model FLOPs utilisation of the tokens/s shown (the mean for an ended run): toks x run.json's flops_per_token
    # / (peak_flops x world_size); null on CPU, for a card whose peak is not known, and for an older run.json
    mfu: float | None = None
    param_count: int | None = None  # run.json's
    # run.json's data_summary (schema.DATA_SUMMARY_FIELDS): the source and how much data it holds; null before it
    data: dict[str, Any] | None = None
    # run.json's init_from (schema.INIT_FROM_FIELDS): the checkpoint the run's initial weights came from
    # (train.init_from); null for random initial weights and for a run.json from before the field
    init_from: dict[str, Any] | None = None
    # where a `starting` run is (start_place): it says how long a start has taken before stuck_at_start judges it;
    # null in every other state
    start: dict[str, Any] | None = None
    # why throughput_low cannot judge the tokens/s shown (no MFU inputs and no min_toks_per_s): 38 tokens/s on two
    # A100s read "health OK" with nothing saying it was never judged; null when it is judged, off, or no tok/s yet
    toks_not_judged: str | None = None
    # .HALT is there and the attempt has not ended: a halt asked for and not yet honoured (`nsa halt --wait 0` on a
    # hung run read `stalled critical` for minutes with nothing saying a stop was pending); its mtime when known
    halt_requested: bool = False
    halt_requested_ts: float | None = None
    # a halted run that no halt was asked of: the stop signal its end records name ('SIGHUP': a killed tmux server or a
    # dropped terminal; 'a signal' when none names it). Read as `halted OK` alone it was the user's own `nsa halt`
    stop_signal: str | None = None
    # with stop_signal: a halt had been requested (`nsa halt` was waiting) but the signal ended the run first; said so,
    # where "no halt was requested" contradicted `nsa halt`'s own `stopped by SIGHUP, not by this halt`
    halt_overtaken: bool = False
    judge_version: int = JUDGE_VERSION  # which engine judged (JUDGE_VERSION); absent from an nsa before it: 0

    @property
    def exit_code(self) -> int:
        """0 ok, 1 warning, 2 critical (3, no telemetry, is decided by the caller)."""
        return _RANK[self.health]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for a in d["alerts"]:
            a.pop("since_ts", None)
        # JSON has no NaN: a non-finite value becomes null (nan_loss says what it was)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _summary_reason(h: RunHistory) -> str | None:
    """How the attempt ended by its summary.json, when no end record says (a copied run without its heartbeat)."""
    reason = h.attempt_summary.get(schema.SUMMARY_END_REASON)
    return reason if isinstance(reason, str) else None


def lr_phase(h: RunHistory) -> str | None:
    """Where the run's lr is in its schedule at its latest step: warmup, cosine or done (None: the config does not
    say)."""
    from nsa_train.config.schedule import phase_at

    warmup = (h.config.get("train") or {}).get("warmup_steps") if isinstance(h.config, dict) else None
    step, total = h.latest_step, h.total_steps
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (warmup, step, total)):
        return None
    return phase_at(step, warmup_steps=warmup, total_steps=total)


def _mean_toks_per_s(h: RunHistory, state: str) -> float | None:
    """An ended run's mean training tokens/s from the summary.json its last attempt wrote: the last progress
    window says little about a whole run. Only a summary that ends where the end record does: one left by an
    earlier attempt (a resume that then crashed before writing its own) is not this attempt's. Without an end
    record (a copy without its heartbeat, its last line cut) the summary counts when attempt_summary takes it as
    this attempt's: the state came from it too, and `nsa report` gives its mean."""
    end = h.end_event
    if state not in ENDED_STATES:
        return None
    s = h.attempt_summary
    mean, steps = s.get(schema.SUMMARY_MEAN_TOKS_PER_S), s.get(schema.SUMMARY_STEPS_COMPLETED)
    if not isinstance(mean, int | float) or isinstance(mean, bool) or not math.isfinite(mean):
        return None
    if end is not None and steps != end.step:
        return None
    if end is None and _summary_reason(h) is None:  # a trainer's summary says how it ended: not one, then
        return None
    return float(mean)


# a launch this young whose tmux session is not found yet is starting, not crashed (its session comes next)
LAUNCH_GRACE_S = 10.0


def _state(h: RunHistory, now: float, rules: dict[str, Rule]) -> str:
    if h.dir_missing or h.source_lost:
        # a moved run directory may still be written to, a run on a host that cannot be reached may still train:
        # neither alive nor stale can be told
        return "unknown"
    end = h.end_event
    if end is not None:
        if every_rank_completed(h):  # the launcher's nonzero status (torchrun killed after them): launcher_exit
            return "finished"
        return _ended_state(end.fields.get("reason"), h.exit_status)
    if h.exit_status is not None:
        if h.exit_status != 0:
            return "crashed"
        return "halted" if h.halt_requested else "finished"
    if h.format == FORMAT_V1 and (summary := h.attempt_summary):  # its end record lost: the summary tells
        return _ended_state(summary.get(schema.SUMMARY_END_REASON), h.exit_status)
    if h.process_alive is False:
        if h.unbooted_launch and (launched := h.launch_ts) is not None and now - launched < LAUNCH_GRACE_S:
            # launch.json is written just before its tmux session starts: asked in between (the dashboard re-asks
            # a second after a new launch.json), a resume read `crashed, critical` for a moment
            return "starting"
        return "crashed"
    if h.format == FORMAT_VIBE and h.halt_requested:
        # the old trainer wrote no end record: .HALT plus silence means it stopped
        last = h.last_progress_ts or h.last_write_ts
        if last is not None and now - last > rules["heartbeat_stale"].params["min_stale_s"]:
            return "halted"
    if h.format == FORMAT_GENERIC and h.summary:
        return "finished"  # foreign trainers write their summary file at the end
    if h.has_progress and h.restarted_since_progress and not h.attempt_stepped:
        return "starting"  # a resumed attempt before its first step: its clock starts at its boot, not before
    if h.has_progress or h.attempt_stepped:  # a step taken before its first progress record (train.log_every)
        total = h.total_steps
        if total and h.latest_step is not None and h.latest_step >= total and h.format != "nsa-v1":
            return "finished"
        return "running"
    if h.boot_event is not None or h.events or h.launch:
        return "starting"
    return "unknown"


def _whole(x: Any) -> int | None:
    """A whole number from a JSON file (run.json): None for anything else, a hand-edited string included."""
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _count(x: float | None) -> int | float | None:
    """A count as the trainer wrote it (an int), not as the history keeps every number (a float)."""
    return int(x) if x is not None and math.isfinite(x) and x == int(x) else x


def every_rank_completed(h: RunHistory) -> bool:
    """Every rank of the current attempt wrote an `end` record of reason completed with its own exit status 0: the
    run's training, final evaluation and checkpoint are whole, whatever status the launcher recorded after (torchrun
    killed while its workers finished, a teardown that failed)."""
    n = h.attempt_world_size or 1
    ends = {e.rank: e for e in h.attempt_events(schema.KIND_END)}
    return all(
        r in ends and ends[r].fields.get("reason") == schema.END_COMPLETED and ends[r].fields.get("exit_status") == 0
        for r in range(n)
    )


def _ended_state(reason: Any, exit_status: int | None) -> str:
    if reason == schema.END_COMPLETED:
        return "crashed" if exit_status not in (None, 0) else "finished"
    if reason in (schema.END_HALT, schema.END_SIGNAL):
        return "halted"
    return "crashed"


def eta_seconds(h: RunHistory, state: str) -> float | None:
    """Seconds to the last step at the attempt's pace (step_rate), from when its latest step was logged (the
    dashboard counts it down from there); 0 for a finished run, None when not known."""
    total, step = h.total_steps, h.latest_step
    if state == "finished":
        return 0.0
    if state not in ("running", "starting") or not total or step is None:
        return None
    if h.restarted_since_progress:  # a resume that has not stepped: no speed of its own, its total not yet known
        return None
    rate = step_rate(h)
    if not rate or rate <= 0:
        return None
    return max(0.0, (total - step) / rate)


def step_rate(h: RunHistory) -> float | None:
    """Steps per second at the pace of the attempt's newest progress intervals (health/pace.py: a pause, a debugger
    or a stopped rank inside one is left out): from the trainer's own step times (dt_step_s, on its monotonic clock)
    where the points carry them, since a clock stepped forward inside the window counted as training time (an ETA of
    1h36m for 4m); else from the points' timestamps."""
    # only this attempt's points: across a halt and --resume the window would count the pause as slow steps
    start = h.attempt_start_ts
    since = start if start is not None else -math.inf
    n = pace.USUAL_INTERVALS + 1
    dts = h.column("dt_step_s") if "dt_step_s" in h.metric_names else [None] * len(h.steps)
    recent = zip(h.steps[-n:], h.ts[-n:], dts[-n:], strict=False)
    pts = [(s, t, dt) for s, t, dt in recent if t and t >= since]
    timed: list[pace.Interval] = []  # dt: the mean step of the window up to s1
    stamped: list[pace.Interval] = []
    for (s0, t0, _), (s1, t1, dt) in itertools.pairwise(pts):
        if s1 <= s0:
            continue
        if dt is not None and math.isfinite(dt) and dt > 0:
            timed.append(pace.Interval(s1 - s0, dt))
        if t1 > t0:
            stamped.append(pace.Interval(s1 - s0, (t1 - t0) / (s1 - s0)))
    step_s = pace.pace_step_s(timed or stamped)
    if step_s is not None:
        return 1.0 / step_s
    dt = h.last_value("dt_step_s")
    return 1.0 / dt if dt and dt > 0 and math.isfinite(dt) else None


def heartbeat_age(h: RunHistory, now: float) -> float | None:
    """Seconds since the newest record of the current attempt (any rank), else since the log was last written.
    A record off this machine's clock is placed by its file's mtime (health/clock.py); one that cannot be placed
    (a future record whose file agrees) gives no age: None rather than `0s ago` on a hung run."""
    clocks = attempt_clocks(h, now)
    stamps = [c.seen for c in clocks.values() if c.seen is not None]
    unplaced = any(c.seen is None and c.skew_s for c in clocks.values())
    if (progress := on_reader_clock(h, 0, h.last_progress_ts, now)) is not None:
        stamps.append(progress)
    elif h.last_progress_ts is not None:
        unplaced = True
    if not stamps and unplaced:
        return None
    last = max(stamps) if stamps else h.last_write_ts
    return None if last is None else max(0.0, now - last)


def heartbeat_ahead(h: RunHistory, now: float) -> float | None:
    """Where ``heartbeat_age`` gives none because the current attempt's newest records are dated ahead of this
    machine's clock and their files agree (a copy that kept the mtimes of a writer whose clock was ahead): how far
    ahead, the most of its ranks'. Said of ended runs too, which clock_skew does not judge: a finished run written a
    day ahead read `heartbeat - ago` in `nsa status` and `heartbeat none yet` in `nsa watch`. None otherwise."""
    if heartbeat_age(h, now) is not None:
        return None
    return max((c.skew_s for c in attempt_clocks(h, now).values() if c.seen is None and c.skew_s > 0), default=None)


def _alive_until(h: RunHistory, state: str, now: float) -> float:
    """The clock a `for` duration is measured on: now for a live run; for an ended one, its end (a last slow
    stretch of a finished run must not grow into a 5-minute drop while it sits on disk); for one that cannot be
    read now (its directory gone, its host lost), its last record: no time passes for data not seen (an ended
    run's last slow stretch became a throughput_drop once its directory was deleted)."""
    unread = h.dir_missing or h.source_lost
    if state not in ENDED_STATES and not unread:
        return now
    end = h.end_event
    stamps = [t for t in (end.ts if end else None, h.last_progress_ts) if t is not None]
    return min(now, max(stamps)) if stamps else now


def _persisted(rule: Rule, f: Finding, h: RunHistory, now: float) -> bool:
    if rule.for_steps and (f.since_step is None or (h.latest_step or 0) - f.since_step < rule.for_steps):
        return False
    if rule.for_s:
        return f.since_ts is not None and now - f.since_ts >= rule.for_s
    return True


def _pending(name: str, rule: Rule, f: Finding, h: RunHistory, now: float) -> Pending:
    """``f``, whose condition holds but is still inside ``rule``'s `for` window, with how much of it has passed."""
    held_s = max(0.0, now - f.since_ts) if rule.for_s and f.since_ts is not None else None
    held_steps = max(0, (h.latest_step or 0) - f.since_step) if rule.for_steps and f.since_step is not None else None
    return Pending(
        name,
        f.severity or rule.severity,
        f.message,
        f.since_step,
        held_s=held_s,
        for_s=rule.for_s or None,
        held_steps=held_steps,
        for_steps=rule.for_steps or None,
    )


def evaluate(
    history: RunHistory,
    now: float | None = None,
    rules: dict[str, Rule] | None = None,
    *,
    run: str | None = None,
) -> Verdict:
    """Judge a run. ``rules`` defaults to the package defaults overridden by the run's
    config ``monitor`` section (``build_rules(history.config, user_file_data)`` to add a file)."""
    h = history
    now = time.time() if now is None else now
    rules = rules if rules is not None else build_rules(h.config)
    state = _state(h, now, rules)
    until = _alive_until(h, state, now)
    alerts: list[Alert] = []
    pending: list[Pending] = []
    for name, rule in rules.items():
        if not rule.enabled:
            continue
        ctx = Context(h, now, state, rule.params, ended=state in ENDED_STATES)
        try:
            if rule.builtin:
                f = CHECKS[name](ctx)
            else:
                assert rule.metric is not None
                f = threshold_check(ctx, rule.metric, rule.above, rule.below, rule.message)
        except (ValueError, TypeError, ZeroDivisionError, OverflowError, KeyError):
            f = None  # odd data (e.g. a string where a number belongs) never breaks a verdict
        if f is None:
            continue
        if not _persisted(rule, f, h, until):
            pending.append(_pending(name, rule, f, h, until))
            continue
        alerts.append(Alert(name, f.severity or rule.severity, f.message, f.since_step, f.since_ts))
    fired = {a.rule for a in alerts}
    if {"heartbeat_stale", "watchdog_stall"} <= fired:  # one stall, said once: heartbeat_stale names the stall record
        alerts = [a for a in alerts if a.rule != "watchdog_stall"]
    if state in ("running", "starting") and fired & STALL_RULES:
        state = "stalled"
    alerts.sort(key=lambda a: (-_RANK[a.severity], a.rule not in CAUSE_RULES, a.rule))
    health = max((a.severity for a in alerts), key=_RANK.__getitem__, default="ok")
    latest = h.latest
    mem = latest["gpu_mem_reserved_gb"] if latest["gpu_mem_reserved_gb"] is not None else latest["gpu_mem_alloc_gb"]
    end = h.end_event
    mean_toks = _mean_toks_per_s(h, state)
    halt_pending = h.halt_requested and state in ("starting", "running", "stalled")
    ends = [e.fields | {"ts": e.ts} for e in h.attempt_events(schema.KIND_END)]
    stopped_by = stop_signal(ends) if state == "halted" else None
    return Verdict(
        run=run or str(h.run_info.get(schema.RUN_NAME) or ""),
        format=h.format,
        state=state,
        health=health,
        alerts=alerts,
        pending=sorted(pending, key=lambda p: (-_RANK[p.severity], p.rule)),
        step=h.latest_step,
        total_steps=h.total_steps,
        loss=latest["loss"],
        lr=latest["lr"],
        toks_per_s=latest["toks_per_s"],
        mean_toks_per_s=mean_toks,
        resumed=h.resumed,
        mfu=run_mfu(h.run_info, mean_toks if mean_toks is not None else latest["toks_per_s"]),
        param_count=_whole(h.run_info.get(schema.RUN_PARAM_COUNT)),
        gpu_mem_gb=mem,
        rss_gb=latest["rss_gb"],
        gate_entropy_mean=latest["gate_entropy_mean"],
        gate_collapse_frac=latest["gate_collapse_frac"],
        last_heartbeat_age_s=heartbeat_age(h, now),
        heartbeat_ahead_s=heartbeat_ahead(h, now),
        eta_s=eta_seconds(h, state),
        val_loss=latest["val_loss"],
        grad_norm=latest["grad_norm"],
        tokens_seen=_count(latest["tokens_seen"]),
        last_phase=h.last_phase,
        lr_phase=lr_phase(h),
        end_reason=end.fields.get("reason") if end else _summary_reason(h),
        exit_status=h.exit_status,
        ranks=len(h.attempt_ranks),
        corrupt_lines=h.corrupt,
        attention_impl=h.run_info.get(schema.RUN_ATTENTION_IMPL),
        data=_data_summary(h.run_info.get(schema.RUN_DATA_SUMMARY)),
        init_from=_init_from(h.run_info.get(schema.RUN_INIT_FROM)),
        start=start_place(h, now, rules) if state == "starting" else None,
        toks_not_judged=_toks_not_judged(h, rules),
        start_warnings=h.start_warnings,
        refused_resume=h.refused_resume,
        halt_requested=halt_pending,
        halt_requested_ts=h.halt_requested_ts if halt_pending else None,
        stop_signal=stopped_by,
        halt_overtaken=stopped_by is not None and halt_was_requested(ends, h.halt_requested_ts),
        unreadable_files=[
            *({"file": n, "problem": why, "kind": UNREADABLE_KIND} for n, why in h.unreadable_files.items()),
            *(
                {"file": n, "problem": newer_telemetry_text(v), "kind": NEWER_KIND, "v": v}
                for n, v in h.newer_files.items()
            ),
        ],
    )


def _toks_not_judged(h: RunHistory, rules: dict[str, Rule]) -> str | None:
    rule = rules.get("throughput_low")
    return throughput_unjudged(h, rule.params) if rule is not None and rule.enabled else None


def start_place(h: RunHistory, now: float, rules: dict[str, Rule]) -> dict[str, Any]:
    """A starting run's phase (null before its first phase record) and seconds in it (`phase_s`), the seconds
    stuck_at_start has counted (`waited_s`) from its `clock` (boot, replay or launch), and its limit
    (`timeout_s`; null when the rule is off)."""
    entered, clock = phase_entered(h), start_clock(h)
    rule = rules.get("stuck_at_start")
    # on this machine's clock: a boot on a clock ahead read `0s since boot` (health/clock.py)
    phase_at = past_on_reader_clock(h, entered[1], now) if entered else None
    since = past_on_reader_clock(h, clock.since, now) if clock else None
    return {
        "phase": entered[0] if entered else None,
        "phase_s": max(0.0, now - phase_at) if phase_at is not None else None,
        "waited_s": max(0.0, now - since) if since is not None else None,
        "clock": clock.kind if clock else None,
        "timeout_s": rule.params["start_timeout_s"] if rule is not None and rule.enabled else None,
    }


def _init_from(x: Any) -> dict[str, Any] | None:
    """run.json's init_from, its known keys only (absent from a run.json of an earlier version: null)."""
    return {k: x.get(k) for k in schema.INIT_FROM_FIELDS} if isinstance(x, dict) else None


def _data_summary(x: Any) -> dict[str, Any] | None:
    """run.json's data_summary, its known keys only (a hand-edited or newer run.json cannot add others)."""
    return {k: x.get(k) for k in schema.DATA_SUMMARY_FIELDS} if isinstance(x, dict) else None
