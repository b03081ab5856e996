"""run.json's `data_summary` in words: the trainer's [data] start line, `nsa status` and `nsa report` say it alike."""

from __future__ import annotations

from typing import Any

from nsa_train.telemetry import schema


def _n(x: int, noun: str) -> str:
    return f"{x:,} {noun}" if x == 1 else f"{x:,} {noun}s"


def data_counts_said(s: Any) -> str | None:
    """'3 files, 36 training documents (4 held out, 2 more equal to them and 5 empty not trained on), 12,345 bytes
    = 12,381 tokens, 93.4 epochs planned' (the copies and the empty ones said only where there are some);
    'streaming' for a hub source; None for what is not a data_summary (a run.json from before it)."""
    if not isinstance(s, dict):
        return None
    if not isinstance(s.get(schema.DATA_TRAIN_DOCUMENTS), int):
        return "streaming (not counted)" if s.get(schema.DATA_SOURCE) == "hf" else None
    parts = []
    if isinstance(s.get(schema.DATA_FILES), int):
        parts.append(_n(s[schema.DATA_FILES], "file"))
    held = s.get(schema.DATA_VAL_DOCUMENTS)
    # both absent from a run.json of an earlier version
    copies, empty = s.get(schema.DATA_HELD_OUT_COPIES), s.get(schema.DATA_EMPTY_DOCUMENTS)
    docs = _n(s[schema.DATA_TRAIN_DOCUMENTS], "training document")
    if isinstance(held, int):
        skipped = []
        if isinstance(copies, int) and copies:
            skipped.append(f"{copies:,} more equal to them")
        if isinstance(empty, int) and empty:
            skipped.append(f"{empty:,} empty")
        not_trained = f", {' and '.join(skipped)} not trained on" if skipped else ""
        docs += f" ({held:,} held out{not_trained})"
    parts.append(docs)
    if isinstance(s.get(schema.DATA_TRAIN_BYTES), int):
        size = f"{s[schema.DATA_TRAIN_BYTES]:,} bytes"
        if isinstance(s.get(schema.DATA_TRAIN_TOKENS), int):
            size += f" = {s[schema.DATA_TRAIN_TOKENS]:,} tokens"
        parts.append(size)
    if isinstance(s.get(schema.DATA_EPOCHS), (int, float)):
        parts.append(f"{_epochs(s)} epochs planned")
    return ", ".join(parts)


def _epochs(s: dict[str, Any]) -> str:
    """The planned passes, from the token counts where run.json has them: its `epochs` keeps 2 decimals, and a short
    run's 0.0033 read '0 epochs planned'."""
    planned, tokens = s.get(schema.DATA_PLANNED_TOKENS), s.get(schema.DATA_TRAIN_TOKENS)
    if s[schema.DATA_EPOCHS] < 1 and isinstance(planned, int) and isinstance(tokens, int) and tokens > 0:
        return f"{planned / tokens:.2g}"
    return f"{s[schema.DATA_EPOCHS]:g}"


def data_said(s: Any) -> str | None:
    """The source and its counts: 'local files /data/x: 3 files, ...'; None for what is not a data_summary."""
    if not isinstance(s, dict) or not isinstance(s.get(schema.DATA_DESCRIPTION), str):
        return None
    counts = data_counts_said(s)
    return s[schema.DATA_DESCRIPTION] + (f": {counts}" if counts else "")
