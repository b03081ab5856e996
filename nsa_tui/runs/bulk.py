"""Whole files into a RunHistory in blocks: what `nsa report` reads (every line of a long run, twice per step).

``RunHistory.feed`` parses one line at a time, ~30 µs a step for a heartbeat record and its training.csv row: a
million-step run took a minute. Here the plain lines (the trainer's own, well-formed) are parsed a block at a time,
training.csv with the same conversions the line parser uses, applied to whole columns, the heartbeat's progress
records with pyarrow's JSON reader, and applied to the history as the line parser would have applied them one by one.
A block that holds anything else (a corrupt or partial line, a header, a record of another kind, a step back of a
resume, a value the line parser would read differently) is halved until the lines that are not plain go through
``RunHistory.feed`` alone: every damaged line is counted and named exactly as before, and the history is the same
(tests/runs/test_bulk_feed.py compares the two field by field).

Status and watch read bounded tails through ``feed`` and never import this module (nor pyarrow through it).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import re
from bisect import bisect_left
from dataclasses import dataclass
from operator import ge
from typing import Any

import numpy as np

from nsa_train.telemetry import schema
from nsa_tui.runs.history import FORMAT_V1, RankState, RunHistory, source_kind
from nsa_tui.runs.records import MAX_PID, METRICS, to_float
from nsa_tui.runs.tail import MAX_LINE_BYTES, iter_complete_lines

BLOCK_BYTES = 4 << 20  # a block: ~9,000 heartbeat lines, big enough that the per-block cost vanishes
# a block or run this small goes to the line parser as it is: liveness records come every few progress ones, and
# evals every few tens
SMALL_BLOCK = 4
# after this many blocks that were not plain, the rest of the file goes line by line: a file damaged all over would
# otherwise be parsed once per halving
MAX_MISSES = 256
_PROGRESS = b'"kind":"progress"'
_FALLBACKS = b'"fallbacks"'
# a fallbacks object of numbers: up to its first "}" (a nested object's would leave it unbalanced: json refuses it)
_FALLBACKS_OBJECTS = re.compile(rb'"fallbacks":(\{[^}]*\})')
_FALLBACK_REASONS = b'"fallback_reasons"'
# the records applied in runs: progress, and the liveness records between them (rank state only); the other kinds
# (boot, phases, evals, checkpoints: events, attempt starts) go through the line parser between the runs
_RUN_KINDS = (schema.KIND_PROGRESS, schema.KIND_LIVENESS)
MAX_STEP = 10**15  # records.to_step's ceiling


@dataclass
class Fed:
    """What feed_whole did: the records accepted, and how many lines of them were applied in blocks."""

    accepted: int = 0
    in_blocks: int = 0


def feed_whole(
    h: RunHistory,
    source: str,
    data: bytes,
    *,
    from_middle: bool = False,
    head: bytes = b"",
    block_bytes: int = BLOCK_BYTES,
) -> Fed:
    """``h.feed`` of a file's complete lines (nsa_tui.runs.tail.iter_complete_lines of ``data``, after ``head``),
    faster: the same history and counts."""
    kind = source_kind(source)
    fed = _feed_whole(h, source, kind, data, from_middle, head, block_bytes)
    rest = data[data.rfind(b"\n") + 1 :]
    if kind == "heartbeat" and rest.strip() and (not from_middle or b"\n" in data):
        h.unfinished_line(source, rest)  # a file read whole has stopped growing: its last record was cut
    return fed


def _feed_whole(
    h: RunHistory, source: str, kind: str, data: bytes, from_middle: bool, head: bytes, block_bytes: int
) -> Fed:
    if h.max_points is not None or kind not in ("heartbeat", "training_csv"):
        # a bounded history trims as it goes: only the line parser keeps that order
        lines = iter_complete_lines(data, from_middle=from_middle)
        return Fed(h.feed(source, itertools.chain([head], lines) if head else lines))
    feeder = _Feeder(h, source, kind)
    if head:
        feeder.lines([head])
    start, end = 0, data.rfind(b"\n")  # past the last newline: a partial line (or nothing)
    if from_middle:
        first = data.find(b"\n")
        start = end + 1 if first < 0 else first + 1
    if kind == "training_csv" and start <= end:  # its header, as a rule: the blocks of rows start after it
        nl = data.find(b"\n", start)
        feeder.lines([data[start:nl]])
        start = nl + 1
    # blocks cut at newlines by their bytes: no Python work per line before a block is parsed
    while start <= end:
        stop = data.rfind(b"\n", start, min(end + 1, start + block_bytes))
        if stop < 0:  # one line longer than a block
            stop = data.find(b"\n", start)
        feeder.block(data[start:stop].split(b"\n"))
        start = stop + 1
    return feeder.fed


class _Feeder:
    """One file's blocks, in order: plain ones applied whole, the rest halved down to the line parser."""

    def __init__(self, h: RunHistory, source: str, kind: str) -> None:
        self.h, self.source, self.kind = h, source, kind
        self.fed = Fed()
        self.misses = 0
        self.rank_hint = schema.heartbeat_rank(source)
        self._fallbacks: dict[bytes, dict[str, float] | None] = {}  # a fallbacks object's text -> its counters

    def lines(self, block: list[bytes]) -> None:
        self.fed.accepted += self.h.feed(self.source, block)

    def block(self, block: list[bytes]) -> None:
        if self.misses > MAX_MISSES or len(block) <= SMALL_BLOCK:
            self.lines(block)
            return
        try:
            done = self._csv(block) if self.kind == "training_csv" else self._heartbeat(block)
        except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
            done = False  # a value the column conversion refuses: the line parser decides
        if not done:
            self.halve(block)

    def halve(self, block: list[bytes]) -> None:
        self.misses += 1
        mid = len(block) // 2
        self.block(block[:mid])
        self.block(block[mid:])

    def applied(self, n: int) -> None:
        if n:  # records (never a boot, nor an end) after an unreadable line: it is corrupt, not an attempt's cut end
            self.h.settle(self.source, cut=False)
            self.h.note_ended(self.source, False)
        self.fed.accepted += n
        self.fed.in_blocks += n
        self.h.records += n

    # ------------------------------------------------------------------ training.csv
    def _csv(self, block: list[bytes]) -> bool:
        """A block of plain training.csv rows, applied as ``_fast_training_row`` would one by one; False (nothing
        changed) when any row is not plain or the history is not in a state where they only append."""
        h, source = self.h, self.source
        joined = b"\n".join(block)
        # numbers only: no space for str.strip(), no quote, no inf, nan or "1_0", which float() reads and pyarrow's
        # parser may not; what is left both read alike (correctly rounded), or pyarrow refuses it
        if joined.translate(None, _CSV_NUMBER_BYTES):
            return False
        # the step cell short: the line parser reads it as a number, not a header (records.to_float's 64)
        if not all(0 < line.find(b",") <= 15 for line in block):
            return False
        width = block[0].count(b",") + 1
        header = h._csv_headers.get(source) or h._default_header(self.kind, width)
        if header is None or len(header) != width or header[0] != "step":
            return False  # the first cell is the step: the line parser's header test and its step are one cell
        step_i, ts_i, idx, names, missing = h.csv_plan(header)
        pa, _ = _pyarrow()
        import pyarrow.csv as pcsv

        cells = [f"c{i}" for i in range(width)]
        wanted = [step_i, *idx] + ([ts_i] if ts_i >= 0 else [])
        try:
            table = pcsv.read_csv(
                io.BytesIO(joined),
                read_options=pcsv.ReadOptions(column_names=cells, block_size=8 << 20),
                parse_options=pcsv.ParseOptions(ignore_empty_lines=False),
                convert_options=pcsv.ConvertOptions(
                    column_types={c: pa.int64() if i == step_i else pa.float64() for i, c in enumerate(cells)},
                    include_columns=[cells[i] for i in wanted],
                    quoted_strings_can_be_null=False,
                ),
                memory_pool=pa.system_memory_pool(),
            )
        except pa.ArrowInvalid:
            return False  # a row of another width, a cell that is no number
        if table.num_rows != len(block):
            return False
        step_col = table.column(cells[step_i])
        if step_col.null_count:
            return False
        steps_np = _numpy(step_col, np.int64)
        if steps_np[0] < 0 or (len(steps_np) > 1 and not (np.diff(steps_np) > 0).all()):
            return False  # a step again or back: an upsert or a restart, the line parser's
        ts: list[float | None]
        if ts_i >= 0:
            ts_col = table.column(cells[ts_i])
            ts_np = _numpy(ts_col, np.float64)  # nulls read as anything: masked below
            valid = np.ones(len(block), bool) if ts_col.null_count == 0 else _valid(ts_col)
            if not np.isfinite(ts_np[valid]).all():
                return False
            if h.cuts and (ts_np[valid] < h._newest_cut_ts).any():
                return False  # maybe an earlier attempt's rows
            ts = ts_np.tolist() if ts_col.null_count == 0 else ts_col.to_pylist()
        else:
            ts = [None] * len(block)
        steps = steps_np.tolist()
        if steps[0] <= h._row_step.get(source, -1) or (h.steps and steps[0] <= h.steps[-1]):
            return False
        h._row_step[source] = steps[-1]
        h.steps += steps
        h.ts += ts
        for i, name in zip(idx, names, strict=True):
            h._cols[name] += _floats(table.column(cells[i])) or [None] * len(steps)
        for col in missing:
            col += [None] * len(steps)
        self.applied(len(steps))
        return True

    # ------------------------------------------------------------------ heartbeat progress records
    def _heartbeat(self, block: list[bytes]) -> bool:
        """A block of heartbeat lines: its runs of plain progress records applied whole, its other records (boot,
        phases, evals, liveness: a few in a hundred) through the line parser, in order. False (nothing changed)
        when pyarrow cannot read the block as json would."""
        if self.h.format != FORMAT_V1 or max(map(len, block)) > MAX_LINE_BYTES:
            return False
        joined = b"\n".join(block)
        if not _json_reads_alike(joined):
            return False
        pa, pj = _pyarrow()
        try:
            table = pj.read_json(
                io.BytesIO(joined),
                parse_options=pj.ParseOptions(explicit_schema=_progress_schema(pa), unexpected_field_behavior="ignore"),
                read_options=pj.ReadOptions(use_threads=True, block_size=1 << 20),  # a few blocks: threads
                memory_pool=pa.system_memory_pool(),  # malloc's: gives its blocks back (mimalloc kept ~35 MB)
            )
        except (pa.ArrowInvalid, UnicodeDecodeError):
            return False
        if table.num_rows != len(block):
            return False  # two objects on a line
        # a progress record with the rare fallback_reasons (a dict of strings) goes to the line parser
        kinds = table.column("kind").to_pylist()
        progress = np.fromiter((k in _RUN_KINDS for k in kinds), dtype=bool, count=len(kinds))
        if _FALLBACK_REASONS in joined:
            progress &= np.fromiter((_FALLBACK_REASONS not in line for line in block), dtype=bool, count=len(block))
        # the runs: where the flag changes
        edges = [0, *(np.flatnonzero(progress[1:] != progress[:-1]) + 1).tolist(), len(block)]
        for a, b in itertools.pairwise(edges):
            if not progress[a] or b - a <= SMALL_BLOCK:
                self.lines(block[a:b])
            elif self._progress(table.slice(a, b - a), block[a:b], kinds[a:b]):
                self.applied(b - a)
            else:
                self.halve(block[a:b])
        return True

    def _progress(self, table: Any, block: list[bytes], kinds: list[str]) -> bool:
        """Plain progress (and liveness) records of one rank and process, applied as ``add_record`` would one by
        one; False (nothing changed) when any is not plain or they do not simply extend or restate the history."""
        try:
            return self._apply_progress(table, block, kinds)
        except (ValueError, TypeError, OverflowError):
            return False

    def _apply_progress(self, table: Any, block: list[bytes], kinds: list[str]) -> bool:
        h = self.h
        n = len(block)
        v = table.column("v")
        if v.null_count < n and (_numpy(v, np.int64)[_valid(v)] > schema.SCHEMA_VERSION).any():
            return False  # a newer trainer's: the line parser says so
        step_col, ts_col = table.column("step"), table.column("ts")
        if step_col.null_count or ts_col.null_count:
            return False  # no step or time: the line parser rejects or places it
        steps_np, ts_np = _numpy(step_col, np.int64), _numpy(ts_col, np.float64)
        if steps_np.min() < 0 or steps_np.max() > MAX_STEP:
            return False
        if not np.isfinite(ts_np).all() or (np.diff(ts_np) < 0).any():
            return False
        rank, pid = _same(table.column("rank")), _same(table.column("pid"))
        if rank is False or pid is False:
            return False  # ranks or processes mixed: the line parser's
        rank, pid = self._rank(rank), _pid(pid)
        if rank is not None and rank in h.clock_offsets:
            return False  # its clock stepped back: the line parser reads its records on the clock before
        # the progress records among the liveness ones: only they carry points and counters
        all_progress = kinds.count(schema.KIND_PROGRESS) == n
        sel = list(range(n)) if all_progress else [i for i, k in enumerate(kinds) if k == schema.KIND_PROGRESS]
        if sel and len(sel) < n:
            table, block = table.take(sel), [block[i] for i in sel]
        p_steps_np = steps_np if len(sel) == n else steps_np[sel]
        if (np.diff(p_steps_np) <= 0).any():
            return False  # a step again or back: the line parser's
        steps, ts = steps_np.tolist(), ts_np.tolist()
        p_steps, p_ts = (steps, ts) if len(sel) == n else (p_steps_np.tolist(), ts_np[sel].tolist())
        metrics, every = self._metrics(table, len(sel)) if sel else ({}, True)
        if not every:
            return False  # a record without metrics adds no point: the line parser's
        counters = self._counters(b"\n".join(block), table.column("fallbacks")) if sel else []
        if counters is None:
            return False
        if h.cuts and ts[0] < h._newest_cut_ts:
            return False  # maybe an earlier attempt's records
        st = h.ranks.get(rank) if rank is not None else None
        if st is not None and st.last_ts is not None and ts[0] < st.last_ts:
            return False
        with_fb = [i for i, c in enumerate(counters) if c]
        if with_fb and h.fallbacks and p_steps[with_fb[0]] <= h.fallbacks[-1][0]:
            return False
        if sel and not self._upsert(p_steps, p_ts, metrics):
            return False
        # the rank and process said it: their newest record is the run's last
        if rank is not None:
            if st is None:
                st = h.ranks[rank] = RankState(rank)
            st.last_ts, st.last_kind, st.last_step = ts[-1], kinds[-1], steps[-1]
            for t, s in zip(ts[-2:], steps[-2:], strict=True):  # where a clock step back is measured from
                h.note_rank_ts(rank, t, s)
            st.stepped_ts, st.stepped_step = ts[-1], steps[-1]  # progress and liveness both say a step was taken
            st.pid = pid if pid is not None else st.pid
            st.records += n
        if pid is not None and ts[-1] > h.pid_last_ts.get(pid, -math.inf):
            h.pid_last_ts[pid] = ts[-1]
            h.pid_last_step[pid] = steps[ts.index(ts[-1])]  # the first record at the newest time set it
        if len(with_fb) == len(counters):  # the trainer's: counters in every record
            h.fallbacks += zip(
                p_steps, map(dict, counters), strict=True
            )  # each its own dict: the next record updates it
            h._fallback_ts += p_ts
        else:
            for i in with_fb:
                h.fallbacks.append((p_steps[i], dict(counters[i])))
                h._fallback_ts.append(p_ts[i])
        return True

    def _rank(self, value: int | None) -> int | None:
        return value if value is not None and value >= 0 else self.rank_hint  # records._rank

    def _metrics(self, table: Any, n: int) -> tuple[dict[str, list[float | None]], bool]:
        """({metric: values, None where a record has none}, whether every record has a metric: one without adds no
        point, the line parser's)."""
        out: dict[str, list[float | None]] = {}
        has = [False] * n
        every = False
        for name in METRICS:
            col = table.column(name)
            vals = _floats(col)
            if vals is None:
                continue
            out[name] = vals
            if col.null_count == 0:
                every = True
            elif not every:
                has = [a or v is not None for a, v in zip(has, vals, strict=True)]
        shares = table.column(schema.GATE_SHARES)
        if shares.null_count == n:
            return out, every or all(has)
        k = len(schema.GATE_SHARE_COLUMNS)
        flat = _share_values(shares, k)
        if flat is not None:  # three values in every record: they are its gate_share_* (gate_share_columns)
            for j, name in enumerate(schema.GATE_SHARE_COLUMNS):
                out[name] = flat[j::k]
            return out, True
        cols = [out.setdefault(name, [None] * n) for name in schema.GATE_SHARE_COLUMNS]
        for i, lst in enumerate(shares.to_pylist()):
            if lst is None or len(lst) != k:
                continue  # gate_share_columns: {} for anything but three values
            has[i] = True
            for col, v in zip(cols, lst, strict=True):
                col[i] = v  # null too: it replaces a gate_share_* field of the record, as normalise_v1 does
        return out, every or all(has)

    def _counters(self, joined: bytes, column: Any) -> list[dict[str, float]] | None:
        """Each record's fallback counters as normalise_v1 and add_record take them ({} for none), read from the
        lines' own text (its key order is the dict's); None when a line's object cannot be told apart."""
        n = len(column)
        if column.null_count == n:
            return [{}] * n
        # the text holds one "fallbacks" string for each record that has the top-level key (pyarrow says which),
        # none elsewhere, each an object: each record's is its own, and no other line has one
        pieces = _FALLBACKS_OBJECTS.findall(joined)
        if len(pieces) != n - column.null_count or joined.count(_FALLBACKS) != len(pieces):
            return None
        cache = self._fallbacks
        for piece in set(pieces).difference(cache):
            cache[piece] = _parse_counters(piece)
        counters = list(map(cache.__getitem__, pieces))
        if None in counters:
            return None
        if column.null_count == 0:
            return counters
        it = iter(counters)
        return [next(it) if has else {} for has in column.is_valid().to_pylist()]

    def _upsert(self, steps: list[int], ts: list[float], metrics: dict[str, list[float | None]]) -> bool:
        """The records' points, as ``_upsert`` would place them one by one: all after the last point (appended), or
        all the very steps already there, none older than what is there (the usual case: training.csv read
        first)."""
        h, n = self.h, len(steps)
        if not h.steps or steps[0] > h.steps[-1]:
            h.steps += steps
            h.ts += ts
            for name, col in h._cols.items():
                col += metrics.get(name) or [None] * n
            return True
        i = bisect_left(h.steps, steps[0])
        if h.steps[i : i + n] != steps:
            return False
        olds = h.ts[i : i + n]
        newer = (
            all(map(ge, ts, olds))
            if None not in olds
            else all(o is None or t >= o for t, o in zip(ts, olds, strict=True))
        )
        if not newer:
            return False  # an older record of a step logged again only fills gaps: the line parser's
        h.ts[i : i + n] = ts
        for name, vals in metrics.items():
            col = h._cols[name]
            if None in vals:
                col[i : i + n] = [v if v is not None else old for v, old in zip(vals, col[i : i + n], strict=True)]
            else:
                col[i : i + n] = vals
        return True


# printable ASCII but the backslash, and the newlines between the lines; I and N are looked at apart (Inf, NaN)
_JSON_PLAIN_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in b"\\IN") + b"\n"
_INT_MINUS_ZERO = re.compile(rb"-0(?![.0-9eE])")


def _json_reads_alike(joined: bytes) -> bool:
    """Whether pyarrow's JSON reader reads these lines as json.loads does, or refuses them: printable ASCII only
    (json refuses a raw control character in a string, and the line parser strips more whitespace), no backslash
    (every key as written, for the fallbacks' text), no Inf or NaN (pyarrow takes "Inf", json does not) and no
    integer -0 (json's 0, pyarrow's -0.0)."""
    rest = joined.translate(None, _JSON_PLAIN_BYTES)  # one pass: what is left is I and N, or what is not plain
    if rest and (rest.translate(None, b"IN") or b"Inf" in joined or b"NaN" in joined):
        return False
    return b"-0" not in joined or _INT_MINUS_ZERO.search(joined) is None


def _parse_counters(piece: bytes) -> dict[str, float] | None:
    """normalise_v1's counters of a fallbacks object, then add_record's floats; None when the text is not the whole
    object (a nested one) or a value would make the line corrupt."""
    try:
        fb = json.loads(piece)
        if not isinstance(fb, dict):
            return None
        return {str(k): float(v) for k, v in fb.items() if to_float(v) is not None}
    except (ValueError, OverflowError, RecursionError):
        return None


def _same(chunked: Any) -> int | bool | None:
    """The one value of an int column (None: all null); False when they differ."""
    if chunked.null_count == len(chunked):
        return None
    if chunked.null_count:
        return False
    vals = _numpy(chunked, np.int64)
    return int(vals[0]) if (vals == vals[0]).all() else False


def _pid(value: int | None) -> int | None:
    return value if value is not None and 0 < value <= MAX_PID else None  # records._pid


_CSV_NUMBER_BYTES = b"0123456789.,eE+-\n"


def _numpy(chunked: Any, dtype: type) -> np.ndarray:
    """A column's values as one numpy array, by hand from the buffers (pyarrow's to_numpy imports pandas); a null's
    slot holds anything."""
    chunks = chunked.chunks if hasattr(chunked, "chunks") else [chunked]
    parts = [np.frombuffer(ch.buffers()[1], dtype=dtype, count=ch.offset + len(ch))[ch.offset :] for ch in chunks]
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def _valid(chunked: Any) -> np.ndarray:
    return np.asarray(chunked.is_valid().to_pylist(), dtype=bool)


def _buffer_values(chunked: Any, dtype: type) -> list[Any]:
    """A column (or one array) without nulls as Python values."""
    return _numpy(chunked, dtype).tolist()


def _share_values(chunked: Any, k: int) -> list[float] | None:
    """A list column's values flattened, when every row is a list of ``k`` numbers (None otherwise)."""
    if chunked.null_count:
        return None
    parts = []
    for ch in chunked.chunks:
        offsets = np.frombuffer(ch.buffers()[1], dtype=np.int32, count=ch.offset + len(ch) + 1)[ch.offset :]
        if len(offsets) > 1 and not (np.diff(offsets) == k).all():
            return None
        values = ch.flatten()
        if values.null_count:
            return None
        parts.append(values)
    return np.concatenate([_numpy(part, np.float64) for part in parts]).tolist() if parts else []


def _floats(chunked: Any) -> list[float | None] | None:
    """A float64 column as Python floats, None for nulls; None when every value is null (the field is absent)."""
    if chunked.null_count == len(chunked):
        return None
    return _buffer_values(chunked, np.float64) if chunked.null_count == 0 else chunked.to_pylist()


def _ints(chunked: Any) -> list[int | None] | None:
    if chunked.null_count == len(chunked):
        return None
    return _buffer_values(chunked, np.int64) if chunked.null_count == 0 else chunked.to_pylist()


def _pyarrow() -> tuple[Any, Any]:
    import pyarrow as pa
    import pyarrow.json as pj

    return pa, pj


_SCHEMA: Any = None


def _progress_schema(pa: Any) -> Any:
    """The fields of a progress record the history reads, typed as the line parser reads them: an integer field
    given as a float (or a string, a bool) fails the block, and the line parser decides."""
    global _SCHEMA
    if _SCHEMA is None:
        ints = [(k, pa.int64()) for k in ("v", "rank", "step", "pid")]
        floats = [(k, pa.float64()) for k in ("ts", *METRICS)]
        shares = (schema.GATE_SHARES, pa.list_(pa.float64()))
        _SCHEMA = pa.schema([*ints, ("kind", pa.string()), *floats, shares, ("fallbacks", pa.struct([]))])
    return _SCHEMA
