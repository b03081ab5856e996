"""Normalising one record or CSV row of any supported format into our metric names.

Formats:
- ``nsa-v1``: our telemetry (nsa_train/telemetry/schema.py); records have ``kind``.
- ``nsa-vibe``: the previous trainer; records have ``msg`` (boot, progress, step_end,
  watchdog_dump, ...), GPU memory in MiB, gate fields ``gate_max_gate``, counters ``fb_*``.
- ``generic``: JSONL/CSV training logs, read through field aliases.
"""

from __future__ import annotations

import math
from typing import Any

from nsa_train.telemetry import schema

MIB_PER_GIB = 1024.0

# Our metric names (the columns of RunHistory); all floats or None.
METRICS: tuple[str, ...] = tuple(k for k in schema.TRAINING_CSV_HEADER if k not in ("step", "ts"))

# Field aliases for generic logs (and the odd names of the previous trainer's CSVs).
ALIASES: dict[str, tuple[str, ...]] = {
    "step": ("step", "global_step", "iter", "iteration", "it", "steps"),
    "ts": ("ts", "time", "timestamp", "wall_time", "wallclock"),
    "loss": ("loss", "train_loss", "training_loss", "train/loss"),
    "lr": ("lr", "learning_rate", "train/lr"),
    "toks_per_s": ("toks_per_s", "tokens_per_second", "tokens_per_sec", "tok_per_s", "tok_per_sec", "tps"),
    "grad_norm": ("grad_norm", "gnorm", "grad_norm_total"),
    "tokens_seen": ("tokens_seen", "tokens", "total_tokens"),
    "dt_step_s": ("dt_step_s", "step_time", "step_time_s", "dt"),
    "dt_fetch_s": ("dt_fetch_s", "data_time", "fetch_time_s"),
    "val_loss": ("val_loss", "eval_loss", "valid_loss", "validation_loss", "val/loss"),
    "val_ppl": ("val_ppl", "ppl", "eval_ppl", "val/ppl"),
    "steps_per_sec": ("steps_per_sec", "steps_per_s", "it_per_s", "it/s"),
    "gpu_mem_alloc_gb": ("gpu_mem_alloc_gb", "gpu_mem_gb", "mem_gb"),
}

VIBE_GATE_RENAMES = {"gate_max_gate": "gate_max_mean"}


def to_float(x: Any) -> float | None:
    """A number from a JSON value or CSV cell; NaN/inf survive (a NaN loss must stay visible)."""
    t = type(x)  # the exact types first: every metric of every record passes here (a 1M-line report)
    if t is float:
        return x
    if t is int:
        return float(x)
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        s = x.strip()
        if not s or len(s) > 64:
            return None
        try:
            return float(s)
        except ValueError:
            return None
    return None


def to_step(x: Any) -> int | None:
    v = to_float(x)
    if v is None or not math.isfinite(v) or v < 0 or v > 1e15:
        return None
    return int(v)


def _first(rec: dict[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        if n in rec:
            return rec[n]
    return None


class Normalised:
    """One record in our terms: its kind, step, time, rank, metrics and everything else."""

    __slots__ = ("fallbacks", "fields", "kind", "metrics", "pid", "rank", "step", "ts")

    def __init__(self, kind: str, step: int | None, ts: float | None, rank: int | None) -> None:
        self.kind = kind
        self.step = step
        self.ts = ts
        self.rank = rank
        self.pid: int | None = None
        self.metrics: dict[str, float | None] = {}
        self.fields: dict[str, Any] = {}
        self.fallbacks: dict[str, float] | None = None


def _ts(rec: dict[str, Any]) -> float | None:
    v = to_float(_first(rec, ALIASES["ts"]))
    return v if v is not None and math.isfinite(v) else None


MAX_PID = 1 << 22  # Linux's pid_max ceiling: a larger (or a bool, or a negative) "pid" is no process id


def _pid(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_PID
    return value if ok else None


def _rank(value: Any, hint: int | None) -> int | None:
    """A record's rank, else the one its file name says (a negative or non-integer rank is none)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else hint


def normalise_v1(rec: dict[str, Any], rank_hint: int | None) -> Normalised | None:
    """A v1 record in our terms; None (counted as corrupt) when its kind is not a string, or its ``ts`` or ``step``
    is there but no usable time or step: such a record can be placed neither in time nor in the history."""
    kind = rec.get("kind")
    if not isinstance(kind, str):
        return None
    ts, step = _ts(rec), to_step(rec.get("step"))
    if ("ts" in rec and ts is None) or ("step" in rec and step is None):
        return None
    n = Normalised(kind, step, ts, _rank(rec.get("rank"), rank_hint))
    n.pid = _pid(rec.get("pid"))
    if kind == schema.KIND_PROGRESS:
        n.metrics = {k: to_float(rec[k]) for k in METRICS if k in rec}
        for name, v in schema.gate_share_columns(rec.get(schema.GATE_SHARES)).items():
            n.metrics[name] = to_float(v)
        fb = rec.get("fallbacks")
        if isinstance(fb, dict):
            n.fallbacks = {str(k): v for k, v in fb.items() if to_float(v) is not None}
    elif kind == schema.KIND_EVAL:
        n.metrics["val_loss"] = to_float(rec.get("val_loss"))
        n.metrics["val_ppl"] = to_float(rec.get("val_ppl"))
    n.fields = rec
    return n


# previous trainer's msg values -> our kinds
VIBE_KINDS = {
    "boot": schema.KIND_BOOT,
    "progress": schema.KIND_PROGRESS,
    "step_end": schema.KIND_LIVENESS,
    "watchdog_dump": schema.KIND_STALL,
    "eval": schema.KIND_EVAL,
    "val": schema.KIND_EVAL,
    "checkpoint": schema.KIND_CHECKPOINT,
    "save": schema.KIND_CHECKPOINT,
    "halt": schema.KIND_END,
    "end": schema.KIND_END,
    "done": schema.KIND_END,
    "error": schema.KIND_ERROR,
    "anomaly": schema.KIND_ERROR,
}


def normalise_vibe(rec: dict[str, Any], rank_hint: int | None) -> Normalised | None:
    msg = rec.get("msg")
    if not isinstance(msg, str):
        return None
    kind = VIBE_KINDS.get(msg, schema.KIND_PHASE)
    n = Normalised(kind, to_step(rec.get("step")), _ts(rec), _rank(rec.get("rank"), rank_hint))
    n.pid = _pid(rec.get("pid"))
    # Metrics are read from any record that carries them: the old trainer spread them
    # over several message kinds (gate stats in one record, then a step_end without them).
    for k in ("loss", "lr", "toks_per_s", "grad_norm", "dt_fetch_s", "dt_step_s", "tokens_seen"):
        if k in rec:
            n.metrics[k] = to_float(rec[k])
    if "dt_step_s" not in n.metrics and "dt_s" in rec:
        n.metrics["dt_step_s"] = to_float(rec["dt_s"])
    for src, dst in (("gpu_mem_alloc", "gpu_mem_alloc_gb"), ("gpu_mem_reserved", "gpu_mem_reserved_gb")):
        v = to_float(rec.get(src))
        if v is not None:
            n.metrics[dst] = v / MIB_PER_GIB
    for k, v in rec.items():
        if k.startswith("gate_"):
            if k == schema.GATE_SHARES:
                for name, s in schema.gate_share_columns(v).items():
                    n.metrics[name] = to_float(s)
            else:
                name = VIBE_GATE_RENAMES.get(k, k)
                if name in METRICS:
                    n.metrics[name] = to_float(v)
    fb = {k[3:]: v for k, v in rec.items() if k.startswith("fb_") and to_float(v) is not None}
    if fb:
        n.fallbacks = fb
    if kind == schema.KIND_EVAL:
        n.metrics["val_loss"] = to_float(rec.get("val_loss"))
        n.metrics["val_ppl"] = to_float(_first(rec, ("val_ppl", "ppl")))
    if kind == schema.KIND_PHASE:
        n.fields = {"phase": msg, **rec}
    else:
        n.fields = rec
    return n


def normalise_generic(rec: dict[str, Any]) -> Normalised | None:
    step = to_step(_first(rec, ALIASES["step"]))
    n = Normalised(schema.KIND_PROGRESS, step, _ts(rec), 0)
    for name in ("loss", "lr", "toks_per_s", "grad_norm", "tokens_seen", "dt_step_s", "dt_fetch_s", "gpu_mem_alloc_gb"):
        v = _first(rec, ALIASES[name])
        if v is not None:
            n.metrics[name] = to_float(v)
    sps = to_float(_first(rec, ALIASES["steps_per_sec"]))
    if sps is not None and sps > 0 and "dt_step_s" not in n.metrics:
        n.metrics["dt_step_s"] = 1.0 / sps
    val = _first(rec, ALIASES["val_loss"])
    if val is not None:
        n.fields = {"val_loss": to_float(val), "val_ppl": to_float(_first(rec, ALIASES["val_ppl"]))}
    if step is None or (not n.metrics and not n.fields):
        return None
    return n
