"""Arrow text columns in each layout pyarrow has (string, large_string, string_view), for its compute kernels.

Newer pyarrow and pandas write Parquet text as string_view, and `datasets` loads it as such; pyarrow's string
kernels (trim, length, is_in) have no string_view variant, so such a column is cast a chunk at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def is_text_type(t: Any) -> bool:
    """A pyarrow string type: string, large_string or string_view."""
    import pyarrow as pa  # a dependency of datasets

    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def text_chunks(column: Any) -> Iterator[Any]:
    """The chunks of an Arrow text column (a ChunkedArray), string_view ones cast to large_string: one chunk's copy
    in memory at a time, not the corpus's."""
    import pyarrow as pa

    for chunk in column.chunks:
        yield chunk.cast(pa.large_string()) if pa.types.is_string_view(chunk.type) else chunk
