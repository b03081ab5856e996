"""The one exception type of the data pipeline."""

from __future__ import annotations


class DataError(Exception):
    """A data problem the user can act on; the message is one line and names the source or setting."""

    def __init__(self, message: str, *, every_rank: bool = False) -> None:
        super().__init__(message)
        # the same on every rank (the corpus itself, not a rank's shard or disk): said once for all (train.py)
        self.every_rank = every_rank
