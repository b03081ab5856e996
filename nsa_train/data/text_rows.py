"""In-memory documents with the part of a `datasets.Dataset` that sources.MapSource reads: its length, a row by
index and the Arrow table (``.data``) its text column comes from.

For the embedded corpus, whose texts are already in memory: `datasets.Dataset.from_dict` gave the same rows and the
same Arrow column, but importing `datasets` (the hub client and ~340 modules with it) cost every trainer process,
every rank, ~0.3 s of CPU at its start (docs/data.md). pyarrow alone is what the start's counts need
(sources.trained_rows, summary.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TextRows:
    """``texts`` as rows ``{field: text}``, in order, and as one Arrow string column named ``field``."""

    def __init__(self, field: str, texts: Sequence[str]):
        import pyarrow as pa

        self._field = field
        self._texts = tuple(texts)
        self.data: Any = pa.table({field: pa.array(self._texts, type=pa.string())})

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, i: int) -> dict[str, str]:
        return {self._field: self._texts[i]}
