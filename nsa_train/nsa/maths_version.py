"""Which NSA maths this code computes, as checkpoints record it: a resume or a start from another run's weights
whose checkpoint was trained with other maths says so (the run goes on, but not as it would have).

Bump NSA_MATHS when the layer's outputs for the same weights and inputs change on purpose (a rule of the paper
read otherwise), add a line to MATHS_CHANGES, and say it in docs/nsa.md (Maths versions). Torch-free."""

from __future__ import annotations

from typing import Any

NSA_MATHS = 2

# version -> what it computes, as the start warning names it
MATHS_CHANGES = {
    1: "every nsa before 5e0335d of 2026-12-07: Eq. 9 counted each compressed block overlapping a selection block once",
    2: "from 5e0335d on: Eq. 9 as the paper prints it, each overlapping compressed block weighted by its overlap in "
    "strides",
}


def checkpoint_maths(state: dict[str, Any], key: str) -> int | None:
    """The NSA maths version a checkpoint was trained with: its record under ``key``; for one written before the
    record, 2 when its data positions hold an order digest (recorded since 97c3fb8, after Eq. 9 changed), else
    None (not known: version 1 if it predates 5e0335d; a streamed source's positions never hold the digest)."""
    saved = state.get(key)
    if isinstance(saved, int) and not isinstance(saved, bool):
        return saved
    data = state.get("data")
    if isinstance(data, list) and data and all(isinstance(d, dict) and d.get("order_digest") for d in data):
        return 2
    return None


def maths_note(name: str, saved: int | None, doing: str) -> str | None:
    """The start warning when the checkpoint ``name`` was trained with other NSA maths than this code's (``doing``:
    what the run does with it, e.g. 'the resumed steps'); None when they are the same."""
    if saved == NSA_MATHS:
        return None
    now = f"this nsa computes version {NSA_MATHS} ({MATHS_CHANGES[NSA_MATHS]})"
    if saved is None:
        # a streamed (hf) run's positions never hold the digest that dates the others: so version 1 or 2
        was = "records no NSA maths version (written by an nsa before the record, 2026-12-07: version 1 if it "
        was += f"predates 5e0335d, {MATHS_CHANGES[1].split(': ', 1)[1]})"
    else:
        what = MATHS_CHANGES.get(saved, "newer than this nsa" if saved > NSA_MATHS else "not a version nsa wrote")
        was = f"was trained with NSA maths version {saved} ({what})"
    unsure = "if it is version 1, " if saved is None else ""
    return (
        f"{name} {was}; {now}: {unsure}{doing} choose their selected blocks by other scores than the weights were "
        "trained with (docs/nsa.md, Maths versions)"
    )
