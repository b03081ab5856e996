"""Fast columnar load of a long training.csv for the charts (pandas' C parser).

RunHistory parses a line in ~30 µs, which is 30 s for a million rows; the charts need the
whole history, the health rules only recent windows. So a big first batch of training.csv
is parsed here into columns for the charts, and only its last rows go through RunHistory.
Anything unexpected (unknown header, a corrupt row) returns None: the caller then feeds
every line to RunHistory, which counts corrupt lines as usual.

pandas' C reader parses a million rows about 3x faster than numpy.loadtxt and releases the GIL
while it does, so the dashboard's start-up runs beside it; pandas is imported only here, for big
first reads.
"""

from __future__ import annotations

import io
import itertools
from concurrent.futures import ThreadPoolExecutor

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


PARALLEL_MIN_BYTES = 8 << 20  # above this, the rows are parsed in two halves on two threads


def line_ranges(blob: bytes, start: int, parts: int) -> list[tuple[int, int]]:
    """blob[start:] cut into at most `parts` (begin, end) ranges of whole lines."""
    bounds = [start]
    for k in range(1, parts):
        at = blob.find(b"\n", start + (len(blob) - start) * k // parts)
        if at < 0 or at + 1 >= len(blob):
            break
        if at + 1 > bounds[-1]:
            bounds.append(at + 1)
    bounds.append(len(blob))
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def parse_columns(blob: bytes) -> dict[str, np.ndarray] | None:
    """{column: float64 array} for the rows of a training.csv blob of whole lines, or None when it is not clean."""
    if not blob:
        return None
    head = header_of(blob)
    if head is None:
        return None
    names, has_header = head
    n_rows = blob.count(b"\n") - int(has_header) + (not blob.endswith(b"\n"))
    # every row must have exactly one cell per column (pandas would pad a short row with NaN)
    if blob.count(b",") != (n_rows + int(has_header)) * (len(names) - 1) or n_rows < 1:
        return None
    import pandas as pd

    start = blob.find(b"\n") + 1 if has_header else 0
    view = memoryview(blob)
    pieces = [view[a:b] for a, b in line_ranges(blob, start, 2 if len(blob) >= PARALLEL_MIN_BYTES else 1)]

    def read(piece: memoryview):
        # empty cells (CPU runs leave the GPU memory columns empty) become NaN; a non-number raises
        return pd.read_csv(io.BytesIO(piece), header=None, dtype=np.float64, engine="c", names=names)

    try:
        if len(pieces) == 1:
            frames = [read(pieces[0])]
        else:  # the C reader releases the GIL: two halves take about half the time on two cores
            with ThreadPoolExecutor(max_workers=len(pieces)) as pool:
                frames = list(pool.map(read, pieces))
    except (ValueError, pd.errors.ParserError):
        return None
    if sum(len(f) for f in frames) != n_rows:
        return None
    cols = {n: np.concatenate([f[n].to_numpy(dtype=np.float64) for f in frames]) for n in names}
    steps = cols["step"]
    if len(steps) > 1 and (np.diff(steps) <= 0).any():
        return None  # out of order or repeated steps: leave it to RunHistory's merging
    return cols
