"""Fast columnar load of a long training.csv for the charts (numpy's C parser).

RunHistory parses a line in ~30 µs, which is 30 s for a million rows; the charts need the
whole history, the health rules only recent windows. So a big first batch of training.csv
is parsed here into columns for the charts, and only its last rows go through RunHistory.
Anything unexpected (unknown header, a corrupt row) returns None: the caller then feeds
every line to RunHistory, which counts corrupt lines as usual.
"""

from __future__ import annotations

import io

import numpy as np

from nsa_train.telemetry import schema
from nsa_tui.runs.history import VIBE_TRAINING_COLUMNS


def header_of(blob: bytes) -> tuple[tuple[str, ...], bool] | None:
    """The column names and whether the blob starts with them (the old format has none)."""
    first = blob[: blob.find(b"\n")].rstrip(b"\r").split(b",")
    try:
        float(first[0])
    except ValueError:
        names = tuple(c.strip().strip(b'"').decode("ascii", "replace") for c in first)
        return (names, True) if names == schema.TRAINING_CSV_HEADER else None
    return (VIBE_TRAINING_COLUMNS, False) if len(first) == len(VIBE_TRAINING_COLUMNS) else None


def last_lines(blob: bytes, n: int) -> list[bytes]:
    """The last n complete lines of a blob of lines, cheaply (no split of the whole blob)."""
    parts = blob.rsplit(b"\n", n + 1)
    return [p for p in parts[-(n + 1) :] if p][-n:]


def parse_columns(blob: bytes) -> dict[str, np.ndarray] | None:
    """{column: float64 array} for the rows of a training.csv blob, or None when it is not clean."""
    if not blob:
        return None
    head = header_of(blob)
    if head is None:
        return None
    names, has_header = head
    body = blob
    if b",," in body or b",\n" in body:
        # CPU runs leave the GPU memory cells empty; twice, for runs of adjacent empty cells
        body = body.replace(b",,", b",nan,").replace(b",,", b",nan,").replace(b",\n", b",nan\n")
    try:
        # a row with the wrong number of cells or a non-number raises: the caller falls back
        table = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.float64, ndmin=2, skiprows=int(has_header))
    except ValueError:
        return None
    if table.shape[1] != len(names):
        return None
    columns = np.ascontiguousarray(table.T)  # one copy, then every column is contiguous
    cols = {n: columns[i] for i, n in enumerate(names)}
    steps = cols["step"]
    if len(steps) > 1 and (np.diff(steps) <= 0).any():
        return None  # out of order or repeated steps: leave it to RunHistory's merging
    return cols
