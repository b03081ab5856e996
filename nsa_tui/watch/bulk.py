"""Fast columnar load of a long training.csv for the charts (pyarrow's CSV reader).

RunHistory parses a line in ~30 µs, which is 30 s for a million rows; the charts need the
whole history, the health rules only recent windows. So a big first batch of training.csv
is parsed here into columns for the charts, and only its last rows go through RunHistory.
Anything unexpected (unknown header, a corrupt row) returns None: the caller then feeds
every line to RunHistory, which counts corrupt lines as usual.

pyarrow (a dependency of `datasets`, so always there) imports in ~30 ms where pandas takes ~250 ms,
parses a million 19-column rows in ~0.3 s on two threads, and releases the GIL meanwhile, so the
dashboard's start-up runs beside it. It is imported only here, for big first reads.
"""

from __future__ import annotations

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


BLOCK_BYTES = 4 << 20  # the reader's unit of parallel work


def last_lines(blob: bytes, n: int) -> list[bytes]:
    """The last n complete lines of a blob of lines, cheaply (no split of the whole blob)."""
    # find where the tail starts first: rsplit would also copy the whole head (100+ MB) into a new bytes
    at = len(blob)
    for _ in range(n + 1):
        at = blob.rfind(b"\n", 0, at)
        if at < 0:
            break
    return [p for p in blob[at + 1 :].split(b"\n") if p][-n:]


def float_column(chunked) -> np.ndarray:
    """A float64 pyarrow column as one numpy array, nulls as NaN. By hand from the buffers: pyarrow's own
    to_numpy() and fill_null() import pandas (~0.4 s holding the GIL, while the dashboard starts)."""
    parts = []
    for ch in chunked.chunks:
        validity, data = ch.buffers()[:2]
        vals = np.frombuffer(data, dtype=np.float64, count=ch.offset + len(ch))[ch.offset :]
        if ch.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
            vals = np.where(bits[ch.offset : ch.offset + len(ch)].astype(bool), vals, np.nan)
        parts.append(vals)
    return np.concatenate(parts) if parts else np.empty(0)


def parse_columns(blob: bytes, keep: tuple[str, ...] | None = None) -> dict[str, np.ndarray] | None:
    """{column: float64 array} for the rows of a training.csv blob of whole lines, or None when it is not clean.
    ``keep``: convert only these columns (every row must still have one cell per column; RunHistory reads a
    non-number in any other column as a missing value, so it need not be checked here)."""
    if not blob:
        return None
    head = header_of(blob)
    if head is None:
        return None
    names, has_header = head
    start = blob.find(b"\n") + 1 if has_header else 0
    # blank lines are skipped by the reader: counting lines first turns them into a mismatch (fall back)
    n_rows = blob.count(b"\n", start) + (not blob.endswith(b"\n"))
    if n_rows < 1:
        return None
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(column_names=list(names), use_threads=True, block_size=BLOCK_BYTES)
    # empty cells (CPU runs leave the GPU memory columns empty) become NaN; a short or long row, or a
    # non-number, raises
    wanted = [n for n in names if keep is None or n in keep]
    if "step" not in wanted:
        return None
    convert = pacsv.ConvertOptions(column_types={n: pa.float64() for n in wanted}, include_columns=wanted)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(blob).slice(start)), read_options=read, convert_options=convert
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    if table.num_rows != n_rows:
        return None
    cols = {n: float_column(table.column(n)) for n in wanted}
    steps = cols["step"]
    if len(steps) > 1 and (np.diff(steps) <= 0).any():
        return None  # out of order or repeated steps: leave it to RunHistory's merging
    return cols
