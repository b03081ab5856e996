"""The one exception type of the data pipeline."""

from __future__ import annotations


class DataError(Exception):
    """A data problem the user can act on; the message is one line and names the source or setting."""

    def __init__(self, message: str, *, every_rank: bool = False) -> None:
        super().__init__(message)
        # the same on every rank (the corpus itself, not a rank's shard or disk): said once for all (train.py)
        self.every_rank = every_rank


def init_from_hint(weights: object) -> str:
    """How a refused resume's weights are kept when its data position cannot continue (train.init_from: a new run
    from the checkpoint's weights, its own data order and holdout), naming ``weights``, the run directory or
    checkpoint file: the refusals' closing words."""
    return f"(--set train.init_from={weights}, in another --run-dir)"
