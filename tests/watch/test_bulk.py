"""The columnar first read of a long training.csv: clean blobs give columns, anything odd gives None."""

from __future__ import annotations

import itertools
import math

import numpy as np

from nsa_train.telemetry import schema
from nsa_tui.runs.history import VIBE_TRAINING_COLUMNS
from nsa_tui.watch.bulk import line_ranges, parse_columns

HEADER = ",".join(schema.TRAINING_CSV_HEADER).encode()
N_COLS = len(schema.TRAINING_CSV_HEADER)


def row(step: int, *, gpu: bool = True) -> bytes:
    cells = [str(step)] + [f"{step * 0.5 + i:.3f}" for i in range(1, N_COLS)]
    if not gpu:  # a CPU run leaves the two GPU memory cells empty
        for name in ("gpu_mem_alloc_gb", "gpu_mem_reserved_gb"):
            cells[schema.TRAINING_CSV_HEADER.index(name)] = ""
    return ",".join(cells).encode()


def blob(rows: list[bytes], *, header: bool = True, final_newline: bool = True) -> bytes:
    text = b"\n".join(([HEADER] if header else []) + rows)
    return text + b"\n" if final_newline else text


def test_clean_blob_gives_contiguous_float_columns():
    cols = parse_columns(blob([row(s) for s in range(10, 60, 10)]))
    assert cols is not None and set(cols) == set(schema.TRAINING_CSV_HEADER)
    assert cols["step"].tolist() == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert cols["loss"][2] == 30 * 0.5 + 1
    assert all(c.dtype == np.float64 and c.flags.c_contiguous for c in cols.values())


def test_empty_cells_are_nan_and_a_missing_final_newline_is_fine():
    cols = parse_columns(blob([row(1, gpu=False), row(2, gpu=False)], final_newline=False))
    assert cols is not None and len(cols["step"]) == 2
    assert all(math.isnan(v) for v in cols["gpu_mem_alloc_gb"]) and cols["rss_gb"][1] == 2 * 0.5 + 10


def test_previous_trainer_rows_without_header():
    data = b"".join(f"{s},{1 / s:.4f},0.001,900\n".encode() for s in range(1, 6))
    cols = parse_columns(data)
    assert cols is not None and set(cols) == set(VIBE_TRAINING_COLUMNS)
    assert cols["toks_per_s"].tolist() == [900.0] * 5


def test_short_long_and_non_numeric_rows_fall_back():
    good = [row(s) for s in range(1, 5)]
    short = [*good[:2], row(3).rsplit(b",", 1)[0], *good[3:]]
    long = [*good[:2], row(3) + b",7", *good[3:]]
    word = [*good[:2], row(3).replace(b"3", b"x", 1), *good[3:]]
    for rows in (short, long, word):
        assert parse_columns(blob(rows)) is None


def test_unknown_header_out_of_order_and_empty_fall_back():
    assert parse_columns(b"") is None
    assert parse_columns(b"a,b,c\n1,2,3\n") is None
    assert parse_columns(blob([row(2), row(1)])) is None
    assert parse_columns(blob([row(1), row(1)])) is None
    assert parse_columns(HEADER + b"\n") is None


def test_line_ranges_cut_at_line_ends_and_cover_everything():
    data = b"head\n" + b"".join(f"{i},{i * i}\n".encode() for i in range(50))
    start = data.find(b"\n") + 1
    for parts in (1, 2, 3, 7):
        ranges = line_ranges(data, start, parts)
        assert ranges[0][0] == start and ranges[-1][1] == len(data) and len(ranges) <= parts
        assert all(a < b and data[b - 1 : b] == b"\n" for a, b in ranges)
        assert all(b == a2 for (_, b), (a2, _) in itertools.pairwise(ranges))
    assert line_ranges(b"1,2\n", 0, 2) == [(0, 4)]


def test_a_big_blob_parsed_in_halves_equals_one_piece(monkeypatch):
    import nsa_tui.watch.bulk as bulk

    data = blob([row(s, gpu=s % 3 != 0) for s in range(1, 2001)])
    whole = parse_columns(data)
    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", 1)
    halves = parse_columns(data)
    assert whole is not None and halves is not None
    for name in whole:
        np.testing.assert_array_equal(whole[name], halves[name])
    assert parse_columns(blob([row(s) for s in range(1, 2001)][::-1])) is None


def test_model_first_read_takes_the_bulk_path_and_matches_the_line_path(tmp_path, monkeypatch):
    """A training.csv over BULK_MIN_BYTES is read as columns; charts and health see what line-by-line reading
    gives (the same points, the same latest step)."""
    from fixtures.runs import make_v1_run

    import nsa_tui.watch.model as model_mod
    from nsa_tui.tail.local import LocalRunSource

    run = make_v1_run(tmp_path / "big", steps=9000, log_every=1, state="running").path
    assert (run / schema.TRAINING_CSV).stat().st_size >= model_mod.BULK_MIN_BYTES
    calls = []
    real = model_mod.parse_columns
    monkeypatch.setattr(model_mod, "parse_columns", lambda b: calls.append(len(b)) or real(b))

    def first_read():
        m = model_mod.RunModel(run.name, LocalRunSource(run, force_poll=True))
        m.pump()
        m.source.close()
        return m

    bulk = first_read()
    assert calls, "the bulk path was not taken"
    monkeypatch.setattr(model_mod, "BULK_MIN_BYTES", 1 << 40)
    lines = first_read()
    assert len(calls) == 1
    for name in ("loss", "lr", "toks_per_s"):
        a, b = bulk.table.view(name, "step"), lines.table.view(name, "step")
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_allclose(a.y, b.y)
    assert bulk.table.last_step == lines.table.last_step == 9000
    assert bulk.history.latest_step == lines.history.latest_step == 9000
