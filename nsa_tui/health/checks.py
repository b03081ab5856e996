"""One condition per built-in rule, over the rules window of a RunHistory: the last RULES_WINDOW_POINTS points of
each series (defaults.py says why), however many more the reader holds.

A check returns None (condition false now) or a Finding: since when the condition has held
without a break (step and time), the message, and optionally a raised severity. The engine
applies persistence (`for`) on top, so checks never think about it.
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from nsa_train.telemetry import schema
from nsa_train.telemetry.mfu import fmt_mfu, run_mfu
from nsa_train.telemetry.units import human_bytes
from nsa_tui.fmt import clip_words, exit_status_said, num
from nsa_tui.health.clock import (
    CLOCK_SKEW_TOLERANCE_S,
    RankClock,
    attempt_clocks,
    past_on_reader_clock,
    rank_clock,
)
from nsa_tui.health.console_tail import (
    TorchrunFailure,
    last_lines_said_once,
    rank_console_error,
    rank_end_unwritten,
    torchrun_failures,
    without_torchrun_report,
)
from nsa_tui.health.defaults import RULES_WINDOW_POINTS
from nsa_tui.health.start import start_clock
from nsa_tui.runs.history import Event, RunHistory
from nsa_tui.runs.records import to_float
from nsa_tui.stopped_ranks import stopped_ranks_text

PHASE_HINTS = {
    "config": "reading the config: check the config path and console.log",
    "data": "opening the dataset: a hung download/stream or tokenizer; check network and data.source",
    "model": "building the model: check GPU memory and console.log",
    "compile": "compiling (torch.compile/Triton): first compile can take minutes; check console.log",
    "train": "the first training step: first batch, NCCL init or a collective hang; run `nsa dump`",
}


@dataclass
class Context:
    h: RunHistory
    now: float
    state: str  # provisional state (before stale checks)
    params: dict[str, Any]
    ended: bool = False  # the state is one of engine.ENDED_STATES (which imports this module)


@dataclass
class Finding:
    since_step: int | None
    since_ts: float | None
    message: str
    severity: str | None = None  # overrides the rule's severity (gate_collapse when severe)


def _rise(value: float, low: float) -> str:
    """How far ``value`` is above ``low``, as a percentage when ``low`` is positive (a generic trainer's loss may be
    0 or below: a division by it raised inside the verdict)."""
    return f"+{(value / low - 1) * 100:.0f}%" if low > 0 else f"+{value - low:.4g}"


def fmt_age(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):  # a corrupt record's time must not cost its rule
        return "?"
    s = int(max(0, seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def window_start(n: int, window: int = RULES_WINDOW_POINTS) -> int:
    """The index of the first point of a series of ``n`` that a rule sees (never more than the rules window)."""
    return max(0, n - min(window, RULES_WINDOW_POINTS))


def points(h: RunHistory, name: str, window: int = RULES_WINDOW_POINTS) -> list[tuple[int, float | None, float]]:
    """(step, ts, value) for the non-null values of a metric within the last ``window`` points."""
    col = h.column(name)
    start = window_start(len(col), window)
    return [(h.steps[i], h.ts[i], v) for i in range(start, len(col)) if (v := col[i]) is not None]


def trailing(pts: list[tuple[int, float | None, Any]], cond: list[bool]) -> int | None:
    """Index of the first point of the run of True values that reaches the newest point."""
    if not cond or not cond[-1]:
        return None
    i = len(cond) - 1
    while i > 0 and cond[i - 1]:
        i -= 1
    return i


def _since(pts: list[tuple[int, float | None, Any]], i: int | None, message: str) -> Finding | None:
    if i is None:
        return None
    return Finding(pts[i][0], pts[i][1], message)


def smoothed(values: list[float], n: int) -> list[float]:
    """Trailing mean over n values (shorter at the start)."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= n:
            acc -= values[i - n]
        out.append(acc / min(i + 1, n))
    return out


def _finite(pts: list[tuple[int, float | None, float]]) -> list[tuple[int, float | None, float]]:
    return [p for p in pts if math.isfinite(p[2])]


# ---------------------------------------------------------------- rules
def nan_loss(c: Context) -> Finding | None:
    pts = points(c.h, "loss")
    cond = [not math.isfinite(v) for _, _, v in pts]
    i = trailing(pts, cond)
    end = c.h.end_event
    if i is None and end is not None and end.fields.get("reason") == "nan":
        # the end record's step is the last one that updated the weights; the error record names the bad one
        err = c.h.last_event(schema.KIND_ERROR)
        bad = err.step if err is not None and err.step is not None else end.step
        return Finding(bad, end.ts, f"the trainer stopped on a non-finite loss or gradient at step {bad}")
    if i is None and c.h.anomaly and "nan" in c.h.anomaly.lower():
        return Finding(c.h.latest_step, None, f"the trainer flagged an anomaly: {c.h.anomaly}")
    return _since(
        pts,
        i,
        f"loss is {pts[-1][2] if pts else 'nan'} since step {pts[i][0] if i is not None else '?'}: "
        "check lr, grad_norm and the last checkpoint; resume from it with a lower lr",
    )


def loss_increase(c: Context) -> Finding | None:
    pts = _finite(points(c.h, "loss"))
    n = int(c.params["smooth_points"])
    if len(pts) < 2 * n:
        return None
    m = smoothed([v for _, _, v in pts], n)
    best = math.inf
    cond = []
    for i, v in enumerate(m):
        cond.append(i >= n and v > best * (1 + c.params["rise_frac"]))
        best = min(best, v) if i >= n - 1 else best
    i = trailing(pts, cond)
    if i is None:
        return None
    low = min(m[n - 1 :])
    return _since(
        pts,
        i,
        f"smoothed loss rose to {m[-1]:.4f} from its best {low:.4f} "
        f"({_rise(m[-1], low)}): check lr, grad_norm spikes and the data order",
    )


def loss_plateau(c: Context) -> Finding | None:
    pts = _finite(points(c.h, "loss"))
    n = int(c.params["smooth_points"])
    if len(pts) < 2 * n:
        return None
    m = smoothed([v for _, _, v in pts], n)
    ref, ref_i = m[n - 1], n - 1
    for i in range(n, len(m)):
        if m[i] < ref * (1 - c.params["min_improvement_frac"]):
            ref, ref_i = m[i], i
    span = pts[-1][0] - pts[ref_i][0]
    if span < c.params["patience_steps"]:
        return None
    return Finding(
        pts[ref_i][0],
        pts[ref_i][1],
        f"no {c.params['min_improvement_frac'] * 100:.0f}% improvement of the smoothed loss ({ref:.4f}) "
        f"for {span} steps: the lr may be too low/high or the model saturated; compare val_loss",
    )


def throughput_low(c: Context) -> Finding | None:
    """Below the user's floor (min_toks_per_s), or, without one, below min_mfu of the GPUs' peak: a
    floor that needs no knowledge of the hardware (a seed report took 38 tokens/s of a 125M model on two A100s
    for normal)."""
    pts = points(c.h, "toks_per_s")
    floor = c.params["min_toks_per_s"]
    if floor is not None:
        i = trailing(pts, [v < floor for _, _, v in pts])
        if i is not None:  # also: no points yet, where the message below has no newest value to name
            return _since(
                pts,
                i,
                # the floor may come from a config's monitor section or from a `--rules` file: name neither
                f"{_newest_toks(c, pts, '.0f')}, below the floor min_toks_per_s={floor:g}: "
                "check the device's utilisation (nvidia-smi on a GPU), data_stall, and the NSA fallback counters",
            )
    return _mfu_low(c, pts)


def _newest_toks(c: Context, pts: list[tuple[int, float | None, float]], spec: str) -> str:
    """The newest tokens/s as the alert quotes it: an ended run's is its last logged one, said so, since `nsa
    status` shows such a run's mean beside it (719 tok/s mean next to "4026 tokens/s, below ..." read as a
    contradiction)."""
    text = f"{pts[-1][2]:{spec}} tokens/s"
    return f"{text} at step {pts[-1][0]} (the last logged)" if c.ended else text


def _mfu_low(c: Context, pts: list[tuple[int, float | None, float]]) -> Finding | None:
    least, info = c.params["min_mfu"], c.h.run_info
    params = info.get(schema.RUN_PARAM_COUNT)
    if least is None or not isinstance(params, int) or params < c.params["min_params"]:
        return None  # a small model cannot fill a GPU: its low MFU says nothing
    utilisation = [run_mfu(info, v) for _, _, v in pts]
    i = trailing(pts, [u is not None and u < least for u in utilisation])
    if i is None:  # also: a CPU run, an unknown card (no peak), a run.json from before MFU
        return None
    device, precision = info.get(schema.RUN_DEVICE_NAME) or "GPU", info.get(schema.RUN_PRECISION) or "?"
    impl = info.get(schema.RUN_ATTENTION_IMPL)
    return _since(
        pts,
        i,
        f"{_newest_toks(c, pts, ',.0f')} is {fmt_mfu(utilisation[-1])} MFU of {info['world_size']} x {device} "
        # the floor may come from a config's monitor section or from a `--rules` file: name neither
        f"({info['peak_flops'] / 1e12:g} TFLOP/s each, {precision}), under the floor min_mfu={least:g}: a "
        f"{params / 1e6:.0f}M model should reach several %; check the attention path ({impl or 'run.json'}), "
        "the NSA fallback counters, data_stall and nvidia-smi",
    )


def toks_unjudged_text(why: str) -> str:
    """The line `nsa status` and the dashboard's health panel print for ``why`` (throughput_unjudged's answer), with
    the floor that does judge such a run: one wording for both."""
    return f"tok/s not judged: {why} (`--rules` with throughput_low.min_toks_per_s judges it)"


def throughput_unjudged(h: RunHistory, params: dict[str, Any]) -> str | None:
    """Why throughput_low does not judge the run's tokens/s (its params ``params``): its MFU floor lacks what it
    needs, or leaves the run alone by design (a CPU run, a model under min_params). None when it judges them, when
    the user turned it off (min_mfu null) or set min_toks_per_s, and when there is no tokens/s yet. The previous
    trainer's runs record neither model size nor GPU: 38 tokens/s on two A100s read "health OK" and nothing said it
    was never judged; a CPU run slowed 20x by machine load read the same."""
    if params["min_toks_per_s"] is not None or params["min_mfu"] is None or h.latest["toks_per_s"] is None:
        return None
    if h.dir_missing:
        return None  # run.json went with the directory: nothing says what it recorded (run_dir_gone says why)
    info = h.run_info
    if info.get(schema.RUN_DEVICE_NAME) == "cpu":
        return "a CPU run; the MFU floor judges GPU runs only"  # the tiny default among them
    size, least = info.get(schema.RUN_PARAM_COUNT), params["min_params"]
    if not isinstance(size, int) or isinstance(size, bool):  # the previous trainer's runs, foreign logs
        no_peak = " or GPU peak" if info.get(schema.RUN_PEAK_FLOPS) is None else ""
        return f"the run records no model size{no_peak}"
    if size < least:  # a small model's MFU says little (kernel launches): the rule leaves it alone by design
        return f"a {num(size)}-parameter model, under min_params={num(least)}, whose MFU says little"
    if info.get(schema.RUN_FLOPS_PER_TOKEN) is None:
        return "the run records no FLOPs per token (an older run.json)"
    if info.get(schema.RUN_PEAK_FLOPS) is None:
        return "the run records no peak FLOP/s for its GPU (a card nsa does not know: set monitor.peak_tflops)"
    return None if run_mfu(info, h.latest["toks_per_s"]) is not None else "its MFU cannot be computed"


# at most this many candidate starts of a slow stretch are judged (each costs one median of a window)
MAX_DROP_CANDIDATES = 64


def throughput_drop(c: Context) -> Finding | None:
    """The newest stretch of points all under ``drop_frac`` of the median of the ``window_points`` points
    before it. The median is taken before the stretch, not over the newest points: once slow points were
    half of a trailing window, its median would be the slow rate and the alert would clear while the run
    stayed slow (and at one point a second, never last its 300 s)."""
    pts = _finite(points(c.h, "toks_per_s"))
    if c.h.steps and len(c.h.steps) <= c.params["window_points"]:
        pts = pts[int(c.params["skip_first_points"]) :]  # the first steps (compile, warmup) are slow on purpose
    vals = [v for _, _, v in pts]
    if len(vals) < 6:
        return None
    window, frac = int(c.params["window_points"]), c.params["drop_frac"]
    top = max(vals)
    best: tuple[int, float] | None = None
    slowest_fast = -math.inf  # the stretch [i:]'s largest value
    judged = 0
    for i in range(len(vals) - 1, 4, -1):
        slowest_fast = max(slowest_fast, vals[i])
        if slowest_fast >= frac * top:
            break  # no baseline can be high enough for a stretch holding this value
        if vals[i - 1] <= slowest_fast:
            continue  # [i-1:] has the same maximum: judge the longest stretch of each maximum only
        med = statistics.median(vals[max(0, i - window) : i])
        if slowest_fast < frac * med:
            best = (i, med)
        judged += 1
        if judged >= MAX_DROP_CANDIDATES:
            break
    if best is None:
        return None
    i, med = best
    return Finding(
        pts[i][0],
        pts[i][1],
        f"{vals[-1]:.0f} tokens/s, under {frac * 100:.0f}% of this run's median {med:.0f} before step {pts[i][0]}: "
        "another process on the GPU, thermal throttling, a slow data source, or rising fallbacks",
    )


def memory_high(c: Context) -> Finding | None:
    limit = c.params["max_gpu_mem_gb"]
    if limit is None:
        return None
    h = c.h
    res, alloc = h.column("gpu_mem_reserved_gb"), h.column("gpu_mem_alloc_gb")
    start = window_start(len(h.steps))
    pts = []
    for i in range(start, len(h.steps)):
        v = res[i] if res[i] is not None else alloc[i]
        if v is not None:
            pts.append((h.steps[i], h.ts[i], v))
    i = trailing(pts, [v > limit for _, _, v in pts])
    if i is None:
        return None
    return _since(
        pts,
        i,
        # the limit may come from a config's monitor section or from a `--rules` file: name neither
        f"GPU memory {pts[-1][2]:.1f} GiB reserved, above the limit max_gpu_mem_gb={limit:g}: "
        "OOM risk; lower batch_size/seq_len or enable grad_checkpointing",
    )


def median_interval(ts: list[float]) -> float | None:
    """The median time between the last 51 of these timestamps (progress records'); None before two."""
    recent = ts[-51:]
    gaps = [b - a for a, b in itertools.pairwise(recent) if b > a]
    return statistics.median(gaps) if gaps else None


def heartbeat_stale(c: Context) -> Finding | None:
    if c.state != "running":
        return None
    h = c.h
    last, stepped = h.last_progress_ts, h.last_step_ts
    rank0 = h.attempt_ranks.get(0)
    clock = rank_clock(h, rank0, c.now) if rank0 is not None else None
    if clock is not None and clock.skew_s:
        # its records are off this machine's clock (clock_skew says so): a record stamped ahead read as fresh on a
        # hung run. Its file's last write stands for its last step; none is known for records ahead of now whose
        # file agrees with them (clock_skew warns that a hang is not caught)
        if clock.seen is None:
            return None
        last, stepped = clock.seen, None
    if stepped is not None and (last is None or stepped > last):
        # a step's liveness record: with a large train.log_every, progress records come further apart than this
        # rule's limit, and a run that trains read `no progress for 10m` between every two of them
        last = stepped
    if last is None:
        last = h.last_write_ts  # generic logs without timestamps: the file's mtime
    if last is None:
        return None
    age = c.now - last
    interval = median_interval([t for t in h.ts[window_start(len(h.ts)) :] if t is not None])
    threshold = c.params["stale_s"]
    if threshold is None:  # adaptive: a fast run is caught in minutes, a slow one is not flagged between steps
        threshold = c.params["max_stale_s"]
        if interval is not None:
            threshold = min(threshold, max(c.params["interval_factor"] * interval, c.params["min_stale_s"]))
    if age <= threshold:
        return None
    extra = ""
    stall = h.last_event("stall")
    if stall is not None and stall.ts is not None and stall.ts >= last:
        extra = f"; the watchdog reported a stall (dump: {stall.fields.get('dump') or 'see stackdump files'})"
    elif h.stackdumps:
        extra = f"; stack dumps: {', '.join(h.stackdumps[-2:])}"
    others = [
        f"rank {r.rank} {fmt_age(c.now - r.seen)} ago"
        if r.seen is not None
        # dated ahead of now by a file that agrees: when it last wrote cannot be told, and it is no fresher for it
        else f"rank {r.rank} at a time that cannot be told (its records are {fmt_age(r.skew_s)} ahead of this clock)"
        for r in sorted(attempt_clocks(h, c.now).values(), key=lambda r: r.rank)
        if r.rank != 0
    ]
    if others:
        extra += "; last seen: " + ", ".join(others[:8])
    # one progress record has no interval yet: "usual interval ?" read as a fault of the tool
    # under a second in tenths: "usual interval 0s" of a run logging every 0.7 s read as nonsense
    shown = f"{interval:.2g}s" if interval is not None and interval < 10 else fmt_age(interval)
    usual = f"usual interval {shown}, " if interval is not None else ""
    return Finding(
        h.latest_step,
        last,
        f"no progress for {fmt_age(age)} ({usual}limit {fmt_age(threshold)}), last step {h.latest_step}{extra}: "
        + (stopped_ranks_text(h.stopped_ranks) or "run `nsa dump` for stacks, check console.log"),
    )


def clock_skew(c: Context) -> Finding | None:
    """The records of a live attempt are off this machine's clock (health/clock.py), or a rank's clock stepped back
    while it ran (RunHistory.clock_steps): said once, with how far, since ages of such a run are its files' (or
    none), not its records'."""
    if c.ended:
        return None
    h = c.h
    said = []
    for step in h.clock_steps[-4:]:
        who = "the" if len(h.ranks) < 2 else f"rank {step.rank}'s"
        if step.one_record:  # the records before and after it agree: the one between was misdated, no clock moved
            who = "one record" if len(h.ranks) < 2 else f"one of rank {step.rank}'s records"
            said.append(
                f"{who} (step {step.bad_ts_step}) was dated ~{fmt_age(step.back_s)} "
                f"{'behind' if step.behind else 'ahead of'} the records before and after it: a bad ts, not a clock step"
            )
        else:
            said.append(f"{who} clock stepped back ~{fmt_age(step.back_s)} at step {step.step}")
    clocks = attempt_clocks(h, c.now)
    last = h.clock_steps[-1] if said else None  # one dated behind: the records after it are read as dated
    if last is not None and last.one_record and not last.behind:
        said[-1] += " (the records after it are read on its date"
        # their skew is that date's, said here: no writer's clock to warn of again where their files age them
        rank = last.rank
        k = clocks.get(rank)
        if k and k.seen is not None and abs(k.skew_s - h.clock_offsets.get(rank, 0.0)) <= CLOCK_SKEW_TOLERANCE_S:
            clocks[rank] = replace(k, skew_s=0.0)
            said[-1] += ", and aged from their file's write time"
        said[-1] += ")"
    elif last is not None and not last.one_record:
        said[-1] += " (the records after it are read as continuing the clock before it)"
    if (text := skew_text(clocks)) is not None:
        said.append(text)
    return Finding(h.latest_step, None, "; ".join(said)) if said else None


def skew_text(clocks: dict[int, RankClock]) -> str | None:
    """`clock skew: ...` for the ranks whose records are off this machine's clock; None when none is."""
    off = [k for k in sorted(clocks.values(), key=lambda k: k.rank) if k.skew_s]
    if not off:
        return None
    parts = []
    for k in off:
        way = "ahead of" if k.skew_s > 0 else "behind"
        what = "their file's write time" if k.against == "file" else "this machine's clock"
        who = f"rank {k.rank}'s records are" if len(clocks) > 1 else "the records are"
        parts.append(f"{who} {fmt_age(abs(k.skew_s))} {way} {what}")
    unplaced = [k.rank for k in off if k.seen is None]
    rank0 = clocks.get(0)
    if not unplaced:
        how = "ages are taken from the files' write times"
    elif rank0 is None or rank0.seen is None:  # heartbeat_stale goes by rank 0's
        how = "their age cannot be told, so a hang is not caught"
    else:
        whose = (
            f"rank {unplaced[0]}'s age" if len(unplaced) == 1 else f"the ages of ranks {', '.join(map(str, unplaced))}"
        )
        how = f"{whose} cannot be told (a hang is judged by rank 0's)"
    return f"clock skew: {', '.join(parts)} (beyond {fmt_age(CLOCK_SKEW_TOLERANCE_S)}); {how}"


def watchdog_stall(c: Context) -> Finding | None:
    """The trainer's own watchdog said the step has not advanced for `monitor.stall_s` (a `stall` record), and
    nothing moved since: the user's limit, said by the process itself, minutes before heartbeat_stale's."""
    if c.state not in ("running", "starting"):
        return None
    h = c.h
    stall = h.current_stall
    if stall is None or stall.ts is None:
        return None
    same = [ev for ev in h.attempt_events(schema.KIND_STALL) if ev.step == stall.step]
    ranks = sorted({ev.rank for ev in same if ev.rank is not None})
    who = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks))}" if ranks else "the trainer"
    secs = to_float(stall.fields.get("seconds_since_progress"))
    dumps = [str(d).rsplit("/", 1)[-1] for ev in same if (d := ev.fields.get("dump"))]
    where = f"; stack dumps: {', '.join(dumps[:8])}" if dumps else ""
    return Finding(
        stall.step,
        stall.ts,
        f"the watchdog of {who} reported step {stall.step} not advancing for {fmt_age(secs)} "
        f"(monitor.stall_s), {fmt_age(c.now - stall.ts)} ago, and no step since{where}: "
        + (
            stopped_ranks_text(h.stopped_ranks)
            or "compare the ranks' stacks (a rank elsewhere than the collective the others wait in is the one that "
            "hangs); `nsa dump` for fresh ones"
        ),
    )


def stuck_at_start(c: Context) -> Finding | None:
    h = c.h
    if c.state != "starting":
        return None
    clock = start_clock(h)  # boot (or launch); a resume's replay of a hub stream moves it on
    since = past_on_reader_clock(h, clock.since, c.now) if clock is not None else None
    if clock is None or since is None:
        return None
    waited = c.now - since
    if waited <= c.params["start_timeout_s"]:
        return None
    phase = h.last_phase
    hint = PHASE_HINTS.get(phase or "", "check console.log")
    if clock.replay is not None:
        replay = clock.replay
        done, of = replay.fields.get("replayed"), replay.fields.get("replay_of")
        return Finding(
            replay.step,
            clock.since,
            f"the resume's replay of the data stream stopped: document {done} of {of} reached "
            f"{fmt_age(waited)} ago ({hint})",
        )
    boot = h.boot_event
    if boot is not None:
        what = "boot"
    elif h.events or h.has_progress:  # an earlier attempt's records: the process launched since wrote none
        what = "`nsa launch` (no boot record from the process it started)"
    else:
        what = "`nsa launch` (no telemetry record at all)"
    return Finding(
        boot.step if boot is not None else None,
        clock.since,
        f"no progress record {fmt_age(waited)} after {what}; last phase reached: {phase or 'none'} ({hint})",
    )


def gate_collapse(c: Context) -> Finding | None:
    """The mean gate entropy low or many rows collapsed; or one layer's gates collapsed (``gate_entropy_min``, the
    least per-layer mean: the other layers keep the mean healthy while that layer lost two of its branches)."""
    p = c.params
    by_step: dict[int, list[Any]] = {}
    for j, name in enumerate(("gate_entropy_mean", "gate_collapse_frac", "gate_entropy_min")):
        for s, t, v in points(c.h, name):
            by_step.setdefault(s, [t, None, None, None])[j + 1] = v
    pts = sorted((s, t, (e, f, m)) for s, (t, e, f, m) in by_step.items())
    if not pts:
        return _gates_never_logged(c)

    def bad(e: float | None, f: float | None, lo: float, hi: float) -> bool:
        return (e is not None and e < lo) or (f is not None and f > hi)

    def layer_bad(m: float | None) -> bool:
        return m is not None and m < p["layer_entropy_min"]

    flags = [bad(e, f, p["entropy_min"], p["collapse_max"]) or layer_bad(m) for _, _, (e, f, m) in pts]
    i = trailing(pts, flags)
    if i is None:
        return None
    e, f, m = pts[-1][2]
    severe = bad(e, f, p["entropy_severe"], p["collapse_severe"])
    shares = [c.h.last_value(k) for k in schema.GATE_SHARE_COLUMNS]
    share_txt = ""
    if all(s is not None for s in shares):
        share_txt = f", branch shares cmp/sel/win {shares[0]:.2f}/{shares[1]:.2f}/{shares[2]:.2f}"
    e_txt = f"{e:.3f}" if e is not None else "?"
    f_txt = f"{f:.2f}" if f is not None else "?"
    layer_txt = ""
    if layer_bad(m) and not bad(e, f, p["entropy_min"], p["collapse_max"]):
        layer_txt = f", one layer's entropy {m:.3f} (min {p['layer_entropy_min']:g}) while the mean stays up"
    return Finding(
        pts[i][0],
        pts[i][1],
        f"NSA gates collapsing: entropy {e_txt} (min {p['entropy_min']:g}), collapsed rows {f_txt} "
        f"(max {p['collapse_max']:g}){layer_txt}{share_txt}: one branch takes over; check lr and gate init",
        "critical" if severe else None,
    )


GATES_EXPECTED_WITHIN = 20  # progress records of an NSA run without one gate statistic: its trainer logs none


def _gates_never_logged(c: Context) -> Finding | None:
    """An NSA run (by its config) whose progress records hold no gate statistics: the collapse check had nothing to
    judge and the run read healthy (the seed reports' gate checks "never fired"). Said, so it is not taken as fine."""
    model = c.h.config.get("model") if isinstance(c.h.config, dict) else None
    if not isinstance(model, dict) or model.get("attention") != "nsa":
        return None
    losses = points(c.h, "loss")
    if len(losses) < GATES_EXPECTED_WITHIN:
        return None
    return Finding(
        losses[0][0],
        losses[0][1],
        f"an NSA run with {len(losses)} progress records and no gate statistics (gate_entropy_mean, "
        "gate_collapse_frac): a collapse of its gates cannot be seen; log them (nsa_train does)",
    )


def fallbacks_rising(c: Context) -> Finding | None:
    """Growth of the cumulative counters over the last ``window_steps``, summed record to record: a counter
    that went down was restarted by a new process (a resume), and its new value is all growth."""
    fb = c.h.fallbacks
    if len(fb) < 2:
        return None
    lo = fb[-1][0] - c.params["window_steps"]
    start = 0  # the record just before the window (or the first we have): what the window grows from
    while start + 1 < len(fb) - 1 and fb[start + 1][0] < lo:
        start += 1
    rising: dict[str, float] = {}
    first = None
    for (_, prev), (step, cnt) in itertools.pairwise(fb[start:]):
        for k, v in cnt.items():
            before = prev.get(k, 0.0)
            grew = v - before if v >= before else v
            if grew > 0:
                rising[k] = rising.get(k, 0.0) + grew
                first = step if first is None else first
    if not rising or first is None:
        return None
    order = sorted(rising.items(), key=lambda kv: -kv[1])
    names = ", ".join(f"{k} +{v:.0f}" for k, v in order)
    reasons = c.h.fallback_reasons
    why = "; ".join(f"{k}: {reasons[k][:160]}" for k, _ in order if k in reasons)
    next_step = "check shapes/dtypes and `nsa check`"
    if why:
        next_step = f"why (first cause): {why}; `nsa check` tests the paths"
    return Finding(
        first,
        None,
        f"NSA fallback counters increasing ({names}) in the last {int(c.params['window_steps'])} steps: "
        f"the fast kernels are being bypassed; {next_step}",
    )


def disk_low(c: Context) -> Finding | None:
    """Free space beside the checkpoints, as the newest checkpoint record reports it, below ``checkpoints`` of
    its size; critical when the next one will not fit (a save that fails ends the run, all steps since the
    previous save lost)."""
    if c.state == "finished":
        return None
    ev = c.h.last_event(schema.KIND_CHECKPOINT)
    if ev is None:
        return None
    size, free = to_float(ev.fields.get("bytes")), to_float(ev.fields.get("disk_free_gb"))
    if size is None or free is None or not (math.isfinite(size) and math.isfinite(free)) or size <= 0:
        return None
    free_b = free * 2**30
    if free_b >= size * c.params["checkpoints"]:
        return None
    severe = free_b < size
    room = "the next checkpoint will not fit" if severe else "room for one more checkpoint"
    return Finding(
        ev.step,
        ev.ts,
        f"{human_bytes(free_b)} free beside the checkpoints after step {ev.step}'s ({human_bytes(size)} each): "
        f"{room}; free space (other runs' checkpoints, caches) or lower train.keep_last",
        "critical" if severe else None,
    )


def data_stall(c: Context) -> Finding | None:
    h = c.h
    fetch, step = h.column("dt_fetch_s"), h.column("dt_step_s")
    start = window_start(len(h.steps))
    pts = [
        (h.steps[i], h.ts[i], (fetch[i], step[i]))
        for i in range(start, len(h.steps))
        if fetch[i] is not None and step[i] is not None and step[i] > 0
    ]
    cond = [f >= c.params["min_fetch_s"] and f > c.params["fetch_frac"] * s for _, _, (f, s) in pts]
    i = trailing(pts, cond)
    if i is None:
        return None
    f, s = pts[-1][2]
    return _since(
        pts,
        i,
        f"waiting {f:.2f}s for data per {s:.2f}s step ({f / s * 100:.0f}%): raise data.prefetch, "
        "check the dataset stream/disk and CPU load",
    )


def lr_mismatch(c: Context) -> Finding | None:
    tr = c.h.config.get("train") if isinstance(c.h.config, dict) else None
    if not isinstance(tr, dict):
        return None
    try:
        from nsa_train.config.schedule import lr_at

        kw = {
            "lr": float(tr["lr"]),
            "min_lr": float(tr["min_lr"]),
            "warmup_steps": int(tr["warmup_steps"]),
            "total_steps": int(c.h.total_steps or tr["steps"]),
        }
    except (KeyError, TypeError, ValueError):
        return None
    pts = _finite(points(c.h, "lr"))
    start = c.h.attempt_start_ts
    if start is not None:
        # the config is this attempt's: a resume may change the schedule (steps, lr), and the steps logged
        # before it followed the earlier one
        pts = [p for p in pts if p[1] is None or p[1] >= start]
    tol = c.params["rel_tol"]

    def off(step: int, v: float) -> bool:
        # steps are 1-based in the schedule; accept an off-by-one in what the logger calls "step"
        return all(abs(v - (e := lr_at(s, **kw))) > tol * max(abs(e), 1e-12) for s in (step - 1, step, step + 1))

    # only the stretch that reaches the newest point counts: judged from the end, a healthy run costs one lookup
    i = len(pts)
    while i > 0 and off(pts[i - 1][0], pts[i - 1][2]):
        i -= 1
    if i == len(pts):
        return None
    s, _, v = pts[-1]
    return _since(
        pts,
        i,
        f"logged lr {v:.3g} at step {s} but the config's schedule gives {lr_at(s, **kw):.3g}: "
        "a resumed run with another config, or a scheduler bug",
    )


def grad_spike(c: Context) -> Finding | None:
    pts = _finite(points(c.h, "grad_norm", int(c.params["window_points"])))
    recent = int(c.params["recent_points"])
    if len(pts) < c.params["min_points"] + recent:
        return None
    med = statistics.median(v for _, _, v in pts[:-recent])
    if med <= 0:
        return None
    spikes = [p for p in pts[-recent:] if p[2] > c.params["factor"] * med]
    if not spikes:
        return None
    s, t, v = max(spikes, key=lambda p: p[2])
    return Finding(
        s,
        t,
        f"grad_norm {v:.3g} at step {s}, {v / med:.0f}x its recent median {med:.3g}: "
        "a bad batch or an unstable lr; watch the loss next",
    )


def _val_points(h: RunHistory, *, finite: bool = True) -> list[tuple[int, None, float]]:
    """(step, None, val_loss) of each eval in the rules window: val.csv rows carry no time of their own."""
    start = window_start(len(h.val_steps))
    return [
        (s, None, v)
        for s, v in zip(h.val_steps[start:], h.val_loss[start:], strict=False)
        if v is not None and (math.isfinite(v) or not finite)
    ]


def val_rising(c: Context) -> Finding | None:
    pts = _val_points(c.h)
    frac, need = c.params["rise_frac"], int(c.params["evals"])
    cond, best = [], math.inf
    for _, _, v in pts:
        cond.append(v > best * (1 + frac))
        best = min(best, v)
    i = trailing(pts, cond)
    if i is None or len(pts) - i < need:
        return None
    low, low_step = min((v, s) for s, _, v in pts[:i])
    return _since(
        pts,
        i,
        f"val loss {pts[-1][2]:.4f} is {_rise(pts[-1][2], low).lstrip('+')} above its best {low:.4f} (step {low_step}) "
        f"for {len(pts) - i} evals: the model is fitting its training data, not the task (too little or repeated "
        "data, too many epochs); keep the checkpoint nearest that step",
    )


def _nearest(
    train: list[tuple[int, float | None, float]], j: int, step: int, k: int
) -> list[tuple[int, float | None, float]]:
    """The ``k`` training points nearest ``step`` by step (ties to the earlier one); ``j``: the first one after it."""
    lo, hi = j, j  # train[lo:hi] is the chosen stretch, grown outwards from the gap at j
    while hi - lo < k and (lo > 0 or hi < len(train)):
        if hi >= len(train) or (lo > 0 and step - train[lo - 1][0] <= train[hi][0] - step):
            lo -= 1
        else:
            hi += 1
    return train[lo:hi]


def val_suspicious(c: Context) -> Finding | None:
    """Held-out loss far below the training loss, or near zero: the split leaks or the data is degenerate."""
    pts = _val_points(c.h)
    train = _finite(points(c.h, "loss"))
    ratio, floor, near = c.params["train_ratio"], c.params["min_loss"], int(c.params["train_points"])
    cond, why = [], ""
    j = 0  # both are sorted by step: one pass over the training points, not one per eval
    for s, _, v in pts:
        while j < len(train) and train[j][0] <= s:
            j += 1
        # the points nearest the eval, either side (a logged loss is the mean of the steps before it), and their
        # lowest: a median of the points before it lags a falling curve (0.37 at the eval, 1.59 their median), and
        # noise can only lower the reference, so only val loss far below every nearby training loss counts
        around = _nearest(train, j, s, near)
        ref = min(t for _, _, t in around) if around else None
        if v < floor:
            cond.append(True)
            why = f"val loss {v:.4f} (perplexity {math.exp(v):.3f}) at step {s}: no natural text is that predictable"
        elif ref is not None and v < ratio * ref:
            cond.append(True)
            why = (
                f"val loss {v:.4f} at step {s} is {v / ref:.0%} of the training loss around step {s} "
                f"({ref:.3g}, steps {around[0][0]}-{around[-1][0]})"
            )
        else:
            cond.append(False)
    return _since(
        pts,
        trailing(pts, cond),
        f"{why}: the held-out data probably overlaps the training data or repeats itself; "
        "check the split (data.val_docs) and run `nsa sample` for repetition",
    )


def launcher_exit(c: Context) -> Finding | None:
    """A finished run (every rank completed) whose launcher recorded a nonzero exit status."""
    h = c.h
    if c.state != "finished" or h.exit_status in (None, 0):
        return None
    end = h.end_event
    sigkill = killed_by_sigkill(h.exit_status, h.console_tail)
    status = str(h.exit_status) if sigkill else exit_status_said(h.exit_status)  # the SIGKILL words follow
    why = f"every rank completed (end records with exit status 0), but the launcher recorded exit status {status}"
    if sigkill:
        # when is not known: `kill -9` of torchrun mid-run leaves its ranks training on to their end without it
        why += " (torchrun itself was killed with SIGKILL, by hand or the out-of-memory killer; its ranks completed)"
    return Finding(h.latest_step, end.ts if end else None, why + "; the run's records and checkpoints are whole")


def launcher_gone(c: Context) -> Finding | None:
    """A live run whose ranks train on without torchrun (killed by a signal to its pid): nothing supervises them.
    Seen where the ranks run (``h.ranks_without_launcher``, runs/load.py)."""
    h = c.h
    if c.state not in ("starting", "running", "stalled") or not h.ranks_without_launcher:
        return None
    ranks = ", ".join(f"rank {r} (pid {p})" for r, p in h.ranks_without_launcher[:MAX_LOST_RANKS])
    more = len(h.ranks_without_launcher) - MAX_LOST_RANKS
    ranks += f" and {more} more" if more > 0 else ""
    return Finding(
        h.latest_step,
        None,
        f"torchrun is gone and {ranks} train on without it (a signal to torchrun's pid, such as `kill -USR1` or "
        "`kill -9`, killed it): no rank that fails is noticed and the others stopped, and the exit status will not "
        "say how they ended; `nsa halt` still stops them with a checkpoint, and `--resume` continues under a new "
        "torchrun",
    )


def rank_stopped(c: Context) -> Finding | None:
    """A live run's rank whose process is stopped (SIGSTOP, ctrl-z, a debugger): it makes no step, and under DDP the
    other ranks wait for it in their next collective. Seen where the ranks run (``h.stopped_ranks``, runs/load.py).
    Held since its newest record (a stopped process writes none), on this machine's clock: the `for` window counts
    from the last moment it was known to run."""
    h = c.h
    if c.ended or not h.stopped_ranks:
        return None
    clocks = attempt_clocks(h, c.now)
    stopped = [r.rank for r in h.stopped_ranks]
    seen = [k.seen for r in stopped if (k := clocks.get(r)) is not None and k.seen is not None]
    # the run's step: a rank writes its liveness record every 30 s, and its older step read as the stop's
    return Finding(h.latest_step, min(seen, default=None), stopped_ranks_text(h.stopped_ranks))


def process_exited(c: Context) -> Finding | None:
    h = c.h
    if c.state != "crashed":
        return None
    end = h.end_event
    failures = torchrun_failures(h.console_tail)
    lines, cut = without_torchrun_report(h.console_tail)
    # the wrapper's restatement of an error the trainer's own line above already holds: the same 370 characters
    # twice in one alert
    quoted = last_lines_said_once(lines, int(c.params["console_lines"]))
    if end is not None:
        why = f"the trainer ended with reason {end.fields.get('reason')!r}"
        # the trainer's own status (2: a mistake in config, data or checkpoint; 3: NaN) over torchrun's (1 for any)
        status = end.fields.get("exit_status")
        if status is None:
            status = h.exit_status
        if status not in (None, 0):
            why += f" and exit status {exit_status_said(status) if isinstance(status, int) else status}"
        unrecorded = _console_errors(h)
        why += _errors_said(unrecorded + h.attempt_errors, h.attempt_world_size, quoted)
        # a rank that died without a word (SIGKILL) is the cause the others' errors ("connection reset") hide
        silent = h.ranks_without_end
        # a few named, the rest counted: 64 ranks killed together would otherwise be 64 clauses
        lost = [_lost_rank(h, r, end.ts, failures) for r in silent[:MAX_LOST_RANKS]]
        if len(silent) > MAX_LOST_RANKS:
            lost.append(f"{len(silent) - MAX_LOST_RANKS} more ranks wrote no end record")
        # its own error known, the rank that stopped first is named by it (above), not by how it exited
        first = not unrecorded and any(f.root_cause and f.rank in silent for f in failures)
        why = "; ".join([*lost, why] if first else [why, *lost])
    else:
        why = _without_end_record(h, quoted)
    if end is None and not h.attempt_summary and killed_by_sigkill(h.exit_status, h.console_tail):
        why += f" ({SIGKILL_HINT})"
    if not lines and not h.launch:  # only `nsa launch` writes a console.log: its absence says nothing here
        return Finding(h.latest_step, end.ts if end else None, why)
    tail = " | ".join(quoted) if quoted else "console.log is empty or missing"
    if cut:
        roots = [f.describe() for f in failures if f.root_cause]
        tail += " (torchrun's failure report left out" + (f"; its root cause: {', '.join(roots)})" if roots else ")")
    return Finding(h.latest_step, end.ts if end else None, f"{why}; last lines of console.log: {tail}")


def _without_end_record(h: RunHistory, quoted: list[str]) -> str:
    """Why a run that wrote no end record is crashed, with the errors it said. Its end record cut (a full disk) or
    lost, the summary written just before it tells how it ended: it read as a session gone, or a SIGKILL to look
    for in dmesg."""
    said = _errors_said(_console_errors(h) + h.attempt_errors, h.attempt_world_size, quoted)
    if isinstance(reason := h.attempt_summary.get(schema.SUMMARY_END_REASON), str):
        return (
            f"the trainer ended with reason {reason!r} (said by its summary.json; its end record is cut or missing)"
            + said
        )
    if h.launch_elsewhere:  # `cp -r` of a live run: no trainer of this directory ever ended here
        where = h.launch.get("run_dir") if h.launch else None
        if h.exit_status in (None, 0):
            return (
                f"no trainer of this directory runs and its records end without an end record: its launch.json was "
                f"written for {where}, so it is a copy of that run made while it ran (`--resume` continues the copy)"
            )
    return ended_without_end_record(said, h.exit_status, launched=bool(h.launch))


def ended_without_end_record(said: str, exit_status: int | None, *, launched: bool) -> str:
    """How an attempt that wrote no end record ended, as far as its launcher's exit status (None: not recorded)
    and whether `nsa launch` started it say; ``said``: its errors (_errors_said). The current attempt's crash
    (process_exited) and each earlier attempt's row of a report's Events (nsa_tui.report.events) say it alike."""
    if exit_status not in (None, 0):
        # 137 is followed by the SIGKILL hint (process_exited): its words once
        status = str(exit_status) if exit_status in (137, -9) else exit_status_said(exit_status)
        return f"exit status {status} without an end record{said}"
    if launched:
        return f"the tmux session is gone without an end record{said}"
    # started by hand: judged by its ranks' pids (runs/load.py), which are gone
    if said:
        return f"the trainer's process is gone without an end record{said}"
    return (
        "the trainer's process is gone without an end record: killed without a chance to write one (SIGKILL, most "
        "often the kernel's out-of-memory killer: `dmesg | grep -i -e oom -e killed`) or its machine restarted"
    )


def _console_errors(h: RunHistory) -> list[Event]:
    """The errors of the attempt's ranks without an end record or an error record that console.log holds (their
    heartbeat could not be written: a full disk): the cause, ahead of the others' "lost the connection". Their step
    is not known (None)."""
    recorded = {ev.rank for ev in h.attempt_errors}
    out = []
    for r in h.ranks_without_end:
        if r not in recorded and (said := rank_console_error(h.console_tail, r)) is not None:
            out.append(Event(schema.KIND_ERROR, None, None, r, {"message": said}))
    return out


MAX_OTHER_ERRORS = 3  # the ranks whose later errors are named after the first one's
MAX_LOST_RANKS = 4  # the ranks without an end record named one by one


ERROR_CHARS = 300  # the first error as the alert quotes it, cut after a word beyond this


def _errors_said(errors: list[Event], world_size: int | None, quoted: Sequence[str] = ()) -> str:
    """The first error in full, with its rank when the run has several; then each other rank's first, briefly
    (under DDP they are mostly "connection closed by peer": the first rank's error is the cause). One that the
    console lines the alert ends with (``quoted``) hold whole is named by its first sentence only."""
    if not errors:
        return ""
    first = errors[0]
    whole = str(first.fields.get("message") or "")
    if not whole:
        return ""
    in_tail = len(whole) > 100 and any(whole in line for line in quoted)
    # its first sentence whole: a run directory's long path would push the cause ("no space left") past 100 characters
    msg = f"{brief_error(whole, ERROR_CHARS)}, in full below" if in_tail else clip_words(whole, ERROR_CHARS)
    if not world_size or world_size <= 1:
        return f" (error: {msg})"
    where = f"at step {first.step}" if first.step is not None else "in console.log"
    out = f" (rank {first.rank}'s error {where}: {msg}"
    seen = {first.rank}
    others = []
    for ev in errors[1:]:
        if ev.rank in seen or not ev.fields.get("message"):
            continue
        seen.add(ev.rank)
        said = str(ev.fields["message"])
        others.append(f"rank {ev.rank}: {'the same' if said == whole else brief_error(said)}")
    if len(others) > MAX_OTHER_ERRORS:
        others[MAX_OTHER_ERRORS:] = [f"{len(others) - MAX_OTHER_ERRORS} more ranks"]
    return out + (f"; then {', '.join(others)})" if others else ")")


_SOURCE_POS = re.compile(r"\[[^\]]*\.(?:cc|cpp|cu|h|hpp|py):\d+\]\s*")  # gloo/NCCL's "[/path/pair.cc:553] "


def brief_error(message: str, limit: int = 100) -> str:
    """An error's first sentence without the C++ source position collective libraries put in it."""
    text = _SOURCE_POS.sub("", message, count=1).strip()
    text = text.split(". ", 1)[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _lost_rank(h: RunHistory, rank: int, end_ts: float | None, failures: list[TorchrunFailure]) -> str:
    """A rank of the attempt that wrote no end record, when it was last heard from and what torchrun says killed
    it."""
    st = h.attempt_ranks.get(rank)
    last_step, last_ts = (st.last_step, st.last_ts) if st else (None, None)
    said_error = said_its_error(h.attempt_errors, h.console_tail, rank)
    unwritten = rank_end_unwritten(h.console_tail, rank)
    return lost_rank_said(rank, last_step, last_ts, end_ts, failures, said_error, unwritten)


def said_its_error(errors: Iterable[Event], console: list[str], rank: int) -> bool:
    """Whether ``rank`` said an error of its own: an error record among ``errors``, or its `error:` line in the
    console (its heartbeat unwritable). A rank that did was not killed."""
    return any(ev.rank == rank for ev in errors) or rank_console_error(console, rank) is not None


def lost_rank_said(
    rank: int,
    last_step: int | None,
    last_ts: float | None,
    end_ts: float | None,
    failures: list[TorchrunFailure],
    said_error: bool = False,
    end_unwritten: str | None = None,
) -> str:
    """A rank of an attempt that wrote no end record (its last record's step and time; None: none in the attempt):
    when it was last heard from and what torchrun's report (``failures``) says ended it; ``said_error``: the rank
    said an error of its own (a record, or its console line), so it was not killed; ``end_unwritten``: why its end
    record could not be written, as its own `[end]` console line says (console_tail.rank_end_unwritten)."""
    if last_ts is None:
        said = f"rank {rank} wrote no record in this attempt and no end record"
    else:
        when = ""
        if end_ts is not None:
            gap = end_ts - last_ts
            when = f", {fmt_age(abs(gap))} {'before' if gap >= 0 else 'after'} the end record"
        said = f"rank {rank} stopped with no end record (its last record: step {last_step}{when})"
    how = next((f for f in failures if f.rank == rank and f.exitcode is not None), None)
    if end_unwritten is not None:  # the rank said why itself: no guess
        said += f": {'it said its error (above), then ' if said_error else ''}its end record could not be written: "
        said += end_unwritten
        return said + (f" (torchrun: exitcode {how.exitcode})" if how is not None else "")
    if how is not None and how.exitcode is not None and how.exitcode > 0:
        # an exit, not a kill: the rank ended itself but its end record was not written (a full disk)
        said += f", torchrun: exitcode {how.exitcode} (it exited with status {how.exitcode}, not killed: its end "
        said += "record could not be written)"
    elif how is not None and (how.exitcode == -9 or how.signal == "SIGKILL"):
        said += f", torchrun: exitcode -9 ({SIGKILL_HINT})"
    elif how is not None:
        said += f", torchrun: exitcode {how.exitcode} ({how.signal or 'a signal'})"
    elif said_error:  # so it was not killed: then its end record could not be written
        said += ": it said its error (above), then its end record could not be written (a full disk?)"
    else:  # no torchrun report to say how (a run started without nsa launch has no console.log)
        said += ": killed without a chance to write one (SIGKILL, the OOM killer) or its host lost"
    return said


def run_dir_gone(c: Context) -> Finding | None:
    """Only a live reader sees this (the dashboard following a directory); `nsa status` needs the directory
    to exist before it reads anything. The dashboard follows a directory renamed beside its path or under the runs
    root (nsa_tui.moved_runs): this one was not found there. Whether its trainer still runs, where the tools can tell
    (its tmux session, its ranks' pids on this machine), says which of the two it was."""
    if not c.h.dir_missing:
        return None
    if c.h.dir_candidates:  # copies of it: the dashboard does not choose
        return Finding(
            c.h.latest_step,
            None,
            "the run directory is not there any more, and directories beside it or under the runs root that hold the "
            f"run are {'; '.join(c.h.dir_candidates)} (copies of it?): what is shown was read before; `nsa watch` the "
            "one you mean",
        )
    said = (
        "the run directory is not there any more (deleted, moved, or its disk unmounted), and no directory beside it "
        "or under the runs root holds the run: what is shown was read before; nothing new arrives until it is back"
    )
    pids = sorted({r.pid for r in c.h.attempt_ranks.values() if r.pid})
    if c.h.process_alive:
        its = f" (pid {', '.join(map(str, pids))})" if pids else ""
        said += (
            f"; its trainer is still running{its}: moved, it writes on where it went (`nsa watch` that path); "
            "deleted, it stops after the step it is in"
        )
    elif c.h.process_alive is False:
        said += "; its trainer is not running any more"
    else:
        said += " (a moved run: `nsa watch` its new path)"
    return Finding(c.h.latest_step, None, said)


SIGKILL_HINT = (
    "killed by SIGKILL, which a trainer cannot catch: most often the kernel's out-of-memory killer "
    "(`dmesg | grep -i -e oom -e killed` on the host; the memory chart shows what the process held)"
)


def killed_by_sigkill(exit_status: int | None, console_tail: list[str]) -> bool:
    """128 + 9 from a shell, or torchrun's report of a worker's signal 9 in the console's last lines."""
    if exit_status in (137, -9) or any(f.exitcode == -9 for f in torchrun_failures(console_tail)):
        return True
    return any("SIGKILL" in line for line in console_tail[-20:])


CHECKS: dict[str, Callable[[Context], Finding | None]] = {
    "nan_loss": nan_loss,
    "loss_increase": loss_increase,
    "loss_plateau": loss_plateau,
    "throughput_low": throughput_low,
    "throughput_drop": throughput_drop,
    "memory_high": memory_high,
    "heartbeat_stale": heartbeat_stale,
    "watchdog_stall": watchdog_stall,
    "stuck_at_start": stuck_at_start,
    "gate_collapse": gate_collapse,
    "fallbacks_rising": fallbacks_rising,
    "data_stall": data_stall,
    "lr_mismatch": lr_mismatch,
    "grad_spike": grad_spike,
    "val_rising": val_rising,
    "val_suspicious": val_suspicious,
    "disk_low": disk_low,
    "process_exited": process_exited,
    "launcher_exit": launcher_exit,
    "launcher_gone": launcher_gone,
    "rank_stopped": rank_stopped,
    "run_dir_gone": run_dir_gone,
    "clock_skew": clock_skew,
}


def threshold_check(
    c: Context, metric: str, above: float | None, below: float | None, msg: str | None
) -> Finding | None:
    """A user-added rule: ``metric`` above/below a number."""
    pts = _val_points(c.h, finite=False) if metric == "val_loss" else points(c.h, metric)
    cond = [(above is not None and v > above) or (below is not None and v < below) for _, _, v in pts]
    i = trailing(pts, cond)
    if i is None:
        return None
    limit = f"above {above:g}" if above is not None else f"below {below:g}"
    return _since(pts, i, msg or f"{metric} {pts[-1][2]:.4g} {limit}")
