"""Where each attempt's lr warmup ends, as the lr charts mark it (the report's and the dashboard's alike).

A resume may change train.warmup_steps (`--set`): the run's config then holds the newest attempt's, while the steps
an earlier attempt trained ramped to its own, and a line drawn at the newest value over them marked a warmup end
where the lr still rose. Each attempt's config-done record says its own (schema.CONFIG_DONE_FIELDS); an older
trainer's says none, and such an attempt's warmup is unknown (the newest attempt's is the run's config's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nsa_train.telemetry import schema
from nsa_tui.runs.history import RunHistory
from nsa_tui.runs.records import to_step

WARMUP_FIELD = "warmup_steps"  # in the config-done record and the config's train section


@dataclass(frozen=True)
class AttemptWarmup:
    """An attempt that trained: the step its loop started from, and its train.warmup_steps (0: no warmup; None: not
    recorded)."""

    start_step: int
    warmup_steps: int | None


@dataclass(frozen=True)
class WarmupMarks:
    """What an lr chart marks: the steps a warmup ends at among the steps it shows, ascending, and the shown steps
    (first, last) of attempts whose warmup is not recorded."""

    ends: list[int] = field(default_factory=list)
    unknown: list[tuple[int, int]] = field(default_factory=list)


def warmup_steps_of(value: Any) -> int | None:
    """A train.warmup_steps value as a step count (0: no warmup), None when it is no count."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return int(value) if ok else None


def warmup_marks(attempts: Sequence[AttemptWarmup], last_step: int | None) -> WarmupMarks:
    """Each attempt's warmup end where the chart shows its steps: after its start step, up to the step a later
    attempt started from (that one trained the steps after it again) or the chart's ``last_step`` (None: no lr
    point). A warmup end past those steps is not drawn: it would stretch the axis, or mark another attempt's lr."""
    marks = WarmupMarks()
    if last_step is None:
        return marks
    for i, a in enumerate(attempts):
        upto = min([last_step, *(b.start_step for b in attempts[i + 1 :])])
        if upto <= a.start_step:
            continue  # every step it trained was trained again later
        if a.warmup_steps is None:
            marks.unknown.append((a.start_step + 1, upto))
        elif a.start_step < a.warmup_steps <= upto:
            marks.ends.append(a.warmup_steps)
    marks.ends.sort()
    return marks


def attempt_warmups(h: RunHistory) -> list[AttemptWarmup]:
    """The run's attempts that trained, in time order, by rank 0's records: each from its `train` phase record's
    start_step, with its config-done record's warmup_steps; the newest one's, when its record has none (an older
    trainer), from the run's config, which is its own. A run without such records (another format): one attempt
    from step 0, by the config."""
    train = h.config.get("train") if isinstance(h.config, dict) else None  # a damaged config: no warmup known
    config_warmup = warmup_steps_of(train.get(WARMUP_FIELD) if isinstance(train, dict) else None)
    out: list[AttemptWarmup] = []
    warmup: int | None = None  # the current attempt's, from its config-done record
    rank0 = sorted((e for e in h.events if e.rank in (0, None) and e.ts is not None), key=lambda e: e.ts or 0.0)
    for e in rank0:
        phase = e.fields.get("phase") if e.kind == schema.KIND_PHASE else None
        if e.kind == schema.KIND_BOOT:
            warmup = None
        elif phase == schema.PHASE_CONFIG and e.fields.get("done"):
            warmup = warmup_steps_of(e.fields.get(WARMUP_FIELD))
        elif phase == schema.PHASE_TRAIN:
            start = to_step(e.fields.get("start_step"))
            if start is None and not out:
                start = 0  # an older trainer's record without start_step: the run's first attempt starts at 0
            if start is not None:
                out.append(AttemptWarmup(start, warmup))
    if not out:
        return [AttemptWarmup(0, config_warmup)]
    if out[-1].warmup_steps is None:
        out[-1] = AttemptWarmup(out[-1].start_step, config_warmup)
    return out


def run_warmup_marks(h: RunHistory, last_step: int | None) -> WarmupMarks:
    """warmup_marks of the run ``h``, its lr chart's last step being ``last_step``."""
    return warmup_marks(attempt_warmups(h), last_step)
