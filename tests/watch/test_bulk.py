"""The columnar first read of a long training.csv: clean blobs give columns, anything odd gives None."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np

from nsa_train.telemetry import schema
from nsa_tui.runs.history import VIBE_TRAINING_COLUMNS
from nsa_tui.watch.bulk import parse_columns

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


def test_many_blocks_with_empty_cells_equal_one_block(monkeypatch):
    """Columns come from several reader blocks (chunks at nonzero offsets) with nulls: NaN where a cell was
    empty, the numbers elsewhere, in order."""
    import nsa_tui.watch.bulk as bulk

    data = blob([row(s, gpu=s % 3 != 0) for s in range(1, 3001)])
    whole = parse_columns(data)
    monkeypatch.setattr(bulk, "BLOCK_BYTES", 4096)
    blocks = parse_columns(data)
    assert whole is not None and blocks is not None
    for name in whole:
        np.testing.assert_array_equal(whole[name], blocks[name])
    gpu = next(n for n in whole if n.startswith("gpu_mem"))
    assert np.isnan(blocks[gpu][2::3]).all() and not np.isnan(blocks[gpu][0::3]).any()
    assert parse_columns(HEADER + b"\n" + b"\n".join([row(1), b"", row(2)]) + b"\n") is None  # a blank line


def test_the_bulk_parse_does_not_import_pandas():
    """pandas takes ~0.4 s to import, holding the GIL while the dashboard starts."""
    code = (
        "import sys; from nsa_tui.watch.bulk import parse_columns; from nsa_train.telemetry import schema\n"
        "h = ','.join(schema.TRAINING_CSV_HEADER)\n"
        "row = ','.join('1' if c == 'step' else '' for c in schema.TRAINING_CSV_HEADER)\n"
        "assert parse_columns((h + '\\n' + row + '\\n').encode()) is not None\n"
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


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
    monkeypatch.setattr(model_mod, "parse_columns", lambda b, *a, **k: calls.append(len(b)) or real(b, *a, **k))

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


def test_keep_converts_only_the_chart_columns_but_still_checks_every_row_shape():
    keep = ("step", "loss", "ts")
    good = [row(s) for s in range(1, 5)]
    odd = [*good[:2], row(3).replace(b"4.500", b"oops"), *good[3:]]  # toks_per_s: not kept here
    assert b"oops" in odd[2]
    cols = parse_columns(blob(odd), keep=keep)
    assert cols is not None and set(cols) == set(keep) and cols["step"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert parse_columns(blob(odd)) is None  # without keep every column must be a number
    short = [*good[:2], row(3).rsplit(b",", 1)[0], *good[3:]]
    assert parse_columns(blob(short), keep=keep) is None
    assert parse_columns(blob(good), keep=("loss",)) is None  # no step column: nothing to place points by


def test_last_lines_are_the_nonempty_of_the_last_pieces():
    """The non-empty lines among the last n+1 newline-separated pieces (the trailing piece may be empty)."""
    import random

    from nsa_tui.watch.bulk import last_lines

    rng = random.Random(3)
    for _ in range(2000):
        lines = [bytes(rng.choice(b"ab") for _ in range(rng.randint(0, 3))) for _ in range(rng.randint(0, 8))]
        data = b"\n".join(lines) + rng.choice([b"", b"\n"])
        n = rng.randint(1, 5)
        assert last_lines(data, n) == [p for p in data.split(b"\n")[-(n + 1) :] if p][-n:]
