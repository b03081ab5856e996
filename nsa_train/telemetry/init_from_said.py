"""run.json's `init_from` in words: the trainer's [init] start line and `nsa status` say it alike."""

from __future__ import annotations

from typing import Any

from nsa_train.telemetry import schema


def init_from_said(record: Any) -> str | None:
    """'initialized from PATH (run NAME, id ID, step 600)': what the run's initial weights were (train.init_from);
    None for a run started from random weights, or what is not such a record (a run.json of an earlier version, a
    hand edit)."""
    if not isinstance(record, dict) or not isinstance(path := record.get(schema.INIT_FROM_PATH), str):
        return None
    name, run_id, step = (record.get(k) for k in (schema.INIT_FROM_RUN_NAME, schema.INIT_FROM_RUN_ID,
                                                   schema.INIT_FROM_STEP))  # fmt: skip
    parts = [f"run {name}" if isinstance(name, str) and name else None]
    parts.append(f"id {run_id}" if isinstance(run_id, str) and run_id else None)
    # a checkpoint written before runs had ids records neither: said, so no one looks for them
    if parts == [None, None]:
        parts = ["no run recorded"]
    parts.append(f"step {step}" if isinstance(step, int) and not isinstance(step, bool) else None)
    return f"initialized from {path} ({', '.join(p for p in parts if p)})"


def init_from_short(record: Any) -> str | None:
    """'a step 600': the run (else the checkpoint file's name) and step a run's initial weights came from, for the
    dashboard's header; None as init_from_said."""
    if init_from_said(record) is None:
        return None
    name, step = record.get(schema.INIT_FROM_RUN_NAME), record.get(schema.INIT_FROM_STEP)
    who = name if isinstance(name, str) and name else record[schema.INIT_FROM_PATH].rsplit("/", 1)[-1]
    return f"{who} step {step}" if isinstance(step, int) and not isinstance(step, bool) else who
