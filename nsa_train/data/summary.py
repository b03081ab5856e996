"""How much data a run trains on: its files, its training and held-out documents, and, where cheap to know exactly
(the byte tokenizer), its training tokens and the passes over them the planned steps make.

A 10-document corpus was trained ~93 times over by the default 600 steps without a word: the [data] start line,
run.json's `data_summary` (schema.DATA_SUMMARY_FIELDS), `nsa status` and `nsa report` say these numbers, and a plan
of more than EPOCHS_WARN passes is a start warning, and so is a corpus thin for its ranks (empty_share_warning);
`nsa check` gives both (data_warnings).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nsa_train.telemetry import schema

from .arrow_text import text_chunks

EPOCHS_WARN = 10  # passes over the training data past which the start warns (memorising, not learning)
# the chance an epoch deals some rank nothing it trains on past which the start warns: that rank then skips to its
# next epoch (stream.doc_tokens), which 1 epoch in 100 and more makes a run's usual course, not a rare event
EMPTY_SHARE_WARN = 0.01


def text_bytes(column: Any, index: np.ndarray) -> int:
    """UTF-8 bytes of the rows ``index`` of an Arrow string column, vectorised in pyarrow: no Python loop."""
    import pyarrow.compute as pc

    lengths = [pc.fill_null(pc.binary_length(c), 0).to_numpy(zero_copy_only=False) for c in text_chunks(column)]
    return int(np.concatenate(lengths)[index].sum()) if lengths else 0


def data_summary(cfg: Any, source: Any, tokenizer_name: str) -> dict[str, Any]:
    """run.json's `data_summary` of an opened source (sources.MapSource or StreamSource)."""
    d, t = cfg.data, cfg.train
    planned = t.steps * t.batch_size * t.seq_len  # run.json's tokens_per_step x train.steps
    out: dict[str, Any] = dict.fromkeys(schema.DATA_SUMMARY_FIELDS)
    out[schema.DATA_SOURCE] = d.source
    out[schema.DATA_PATH] = d.path if d.source == "local" else None
    out[schema.DATA_DESCRIPTION] = d.source_description
    out[schema.DATA_PLANNED_TOKENS] = planned
    if not hasattr(source, "train_index"):  # streamed: nothing to count without reading it all
        return out
    out[schema.DATA_FILES] = source.files
    out[schema.DATA_VAL_DOCUMENTS] = source.n_val
    trained = source.trained()  # what training reads: empty ones and copies of held-out texts aside
    docs, size = len(trained.index), text_bytes(source.text_column(), trained.index)
    out[schema.DATA_TRAIN_DOCUMENTS] = docs
    out[schema.DATA_HELD_OUT_COPIES] = trained.copies
    out[schema.DATA_EMPTY_DOCUMENTS] = trained.empty  # counted in the same Arrow pass
    out[schema.DATA_TRAIN_BYTES] = size
    if tokenizer_name == "byte" and docs:  # one token per UTF-8 byte and one EOS per document: exact
        tokens = size + docs
        out[schema.DATA_TRAIN_TOKENS] = tokens
        out[schema.DATA_EPOCHS] = round(planned / tokens, 2)
    return out


def replanned(s: dict[str, Any], planned: int) -> dict[str, Any]:
    """``s`` with a plan of ``planned`` tokens (a resume's: the tokens the run trained, then the rest of train.steps
    at this attempt's tokens per step), its epochs with it."""
    out = {**s, schema.DATA_PLANNED_TOKENS: planned}
    tokens = s.get(schema.DATA_TRAIN_TOKENS)
    if isinstance(tokens, int) and tokens > 0:
        out[schema.DATA_EPOCHS] = round(planned / tokens, 2)
    return out


def epochs_warning(s: dict[str, Any], steps: int) -> str | None:
    """The start warning of a plan that goes over the training data more than EPOCHS_WARN times."""
    epochs = s.get(schema.DATA_EPOCHS)
    if not isinstance(epochs, (int, float)) or epochs <= EPOCHS_WARN:
        return None
    return (
        f"train.steps={steps:,} trains {s[schema.DATA_PLANNED_TOKENS]:,} tokens: {epochs:g} passes over the "
        f"{s[schema.DATA_TRAIN_DOCUMENTS]:,} training documents of {s[schema.DATA_DESCRIPTION]} "
        f"({s[schema.DATA_TRAIN_TOKENS]:,} tokens); the model will memorise them: give more data or fewer steps"
    )


def empty_share_chance(entries: int, trained: int, world_size: int) -> float:
    """At most the chance that an epoch deals some rank none of the ``trained`` documents among the ``entries`` it
    shuffles (the skipped ones, held-out copies and empty ones, are dealt too): the sum over the ranks of the
    chance that a uniform permutation puts only skipped entries in a share of that rank's size (hypergeometric:
    C(skipped, share) / C(entries, share)), a union bound, exact for two ranks."""
    skipped, chance = entries - trained, 0.0
    for rank in range(min(world_size, entries)):
        share = len(range(rank, entries, world_size))
        if share > skipped:
            continue  # it holds a trained document whatever the order
        chance += math.exp(
            math.lgamma(skipped + 1) - math.lgamma(skipped - share + 1)
            - math.lgamma(entries + 1) + math.lgamma(entries - share + 1)
        )  # fmt: skip
    return min(chance, 1.0)


def empty_share_warning(s: dict[str, Any], world_size: int) -> str | None:
    """The start warning of a map-style corpus so thin for ``world_size`` ranks, once its skipped documents are
    dealt too, that EMPTY_SHARE_WARN of the epochs or more may give some rank nothing to train on."""
    trained = s.get(schema.DATA_TRAIN_DOCUMENTS)
    if not isinstance(trained, int) or world_size < 2:
        return None
    copies, empty = s.get(schema.DATA_HELD_OUT_COPIES) or 0, s.get(schema.DATA_EMPTY_DOCUMENTS) or 0
    entries = trained + copies + empty
    chance = empty_share_chance(entries, trained, world_size)
    if chance < EMPTY_SHARE_WARN:
        return None
    skipped = " and ".join(
        f"{k:,} {what}" for k, what in ((copies, "equal a held-out document"), (empty, "empty")) if k
    )
    return (
        f"{s[schema.DATA_DESCRIPTION]} deals its {entries:,} training documents to {world_size} ranks each epoch, "
        f"{skipped}: only {trained:,} are trained on, so in up to {chance:.0%} of epochs some rank's share holds "
        "none of them and that rank skips to its next epoch (said once on the console; docs/data.md): give more "
        "distinct documents or train on fewer ranks"
    )


def data_warnings(s: dict[str, Any] | None, steps: int, world_size: int) -> list[str]:
    """The trainer's start warnings about its data, from its data summary: the trainer and `nsa check` say these."""
    if not s:
        return []
    return [w for w in (epochs_warning(s, steps), empty_share_warning(s, world_size)) if w]
