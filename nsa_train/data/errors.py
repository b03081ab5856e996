"""The one exception type of the data pipeline."""

from __future__ import annotations


class DataError(Exception):
    """A data problem the user can act on; the message is one line and names the source or setting."""

    def __init__(self, message: str, *, every_rank: bool = False) -> None:
        super().__init__(message)
        # the same on every rank (the corpus itself, not a rank's shard or disk): said once for all (train.py)
        self.every_rank = every_rank


# how a refused resume's weights are kept when its data position cannot continue (train.init_from: a new run from
# the checkpoint's weights, its own data order and holdout): the refusals' closing words
INIT_FROM_HINT = "(--set train.init_from=RUN_DIR, in another --run-dir)"
