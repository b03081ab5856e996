"""The one exception type of the data pipeline."""

from __future__ import annotations


class DataError(Exception):
    """A data problem the user can act on; the message is one line and names the source or setting."""
