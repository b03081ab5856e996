"""Reading the three formats, incrementally and from bounded tails."""

from __future__ import annotations

import json
import math

import pytest
from fixtures.runs import append_lines, make_generic_run, make_v1_run, make_vibe_run

from nsa_tui.runs import RunHistory, detect_format, load_run, read_tail_lines
from nsa_tui.runs.bundle import file_limit
from nsa_tui.tail.file_tailer import FileTailer


def test_detect_format(tmp_path):
    make_v1_run(tmp_path / "a", steps=50)
    make_vibe_run(tmp_path / "b", steps=100)
    make_generic_run(tmp_path / "c")
    (tmp_path / "d").mkdir()
    assert [detect_format(tmp_path / n) for n in "abcd"] == ["nsa-v1", "nsa-vibe", "generic", None]


def test_v1_history_merges_csv_and_heartbeat(tmp_path):
    make_v1_run(tmp_path / "r", steps=300, n_ranks=2)
    h = load_run(tmp_path / "r")
    assert h.format == "nsa-v1" and h.corrupt == 0
    assert h.steps == list(range(10, 301, 10))  # one point per step, not two
    assert h.val_steps == [100, 200, 300] and h.total_steps == 1200
    assert h.latest["fallbacks"] == {"sel_triton_unsupported_shape": 0.0, "cmp_sdpa_mask": 2.0}
    assert set(h.ranks) == {0, 1} and h.ranks[1].last_step == 300
    assert h.last_phase == "train" and [e.kind for e in h.events[:2]] == ["boot", "phase"]
    assert len(h.column("loss")) == len(h.steps) and h.column("gate_share_sel")[-1] == 0.36


def test_vibe_format_reads_by_kind_not_last_line(tmp_path):
    """Gate stats sit in `progress`, a `step_end` without them follows: latest values must survive."""
    make_vibe_run(tmp_path / "v", steps=400, anomaly="nan_loss")
    h = load_run(tmp_path / "v")
    assert h.format == "nsa-vibe" and h.corrupt == 0
    assert h.steps == list(range(20, 401, 20))
    lat = h.latest
    assert lat["gate_entropy_mean"] == pytest.approx(0.95, abs=0.02)
    assert lat["gate_max_mean"] == 0.52 and lat["gate_share_win"] == 0.33
    assert lat["gpu_mem_alloc_gb"] == pytest.approx(18.9) and lat["gpu_mem_reserved_gb"] == pytest.approx(21.0)
    assert lat["dt_step_s"] is not None  # from step_end's dt_s
    assert h.val_steps == [200, 400] and h.fallbacks[-1][1]["cmp_sdpa_mask"] == 2
    assert h.anomaly == "nan_loss"
    # header-less training.csv rows have the 4 columns (with the heartbeat gone, the CSV still reads)
    (tmp_path / "v" / "heartbeat_rank0.jsonl").unlink()
    h = load_run(tmp_path / "v")
    assert h.format == "nsa-vibe" and h.steps[-1] == 400 and h.latest["toks_per_s"] > 4000


def test_generic_log_with_aliases(tmp_path):
    log = make_generic_run(tmp_path / "g", steps=500, every=100)
    h = load_run(tmp_path / "g")
    assert h.format == "generic" and h.steps == [100, 200, 300, 400, 500]
    first = json.loads(log.read_text().splitlines()[0])
    assert h.column("loss")[0] == first["train_loss"] and h.column("lr")[0] == first["lr"]
    assert h.val_loss[0] == first["val_loss"]
    assert h.column("dt_step_s")[0] == pytest.approx(1 / first["steps_per_sec"])
    assert h.last_write_ts == pytest.approx(log.stat().st_mtime)


def test_generic_csv_with_header(tmp_path):
    d = tmp_path / "csvrun"
    d.mkdir()
    (d / "metrics.csv").write_text(
        "iteration,train_loss,learning_rate,tokens_per_second\n1,5.0,1e-4,100\n2,4.9,2e-4,101\n"
    )
    h = load_run(d)
    assert h.format == "generic" and h.steps == [1, 2] and h.column("toks_per_s") == [100.0, 101.0]


def test_incremental_feed_equals_snapshot(tmp_path):
    """Feeding appended lines (as nsa watch does) gives the same columns as a cold load."""
    w = make_v1_run(tmp_path / "r", steps=100)
    hb, csv = tmp_path / "r" / "heartbeat_rank0.jsonl", tmp_path / "r" / "training.csv"
    live = RunHistory()
    f_hb, f_csv = FileTailer(hb), FileTailer(csv)  # the dashboard's reader
    live.feed("training.csv", f_csv.poll().lines)
    live.feed("heartbeat_rank0.jsonl", f_hb.poll().lines)
    w.progress(5)
    # a half-written line is held back until its newline arrives
    with open(hb, "a") as fh:
        fh.write('{"v":1,"ts":1,"kind":"liveness","rank":0,')
    live.feed("training.csv", f_csv.poll().lines)
    live.feed("heartbeat_rank0.jsonl", f_hb.poll().lines)
    assert live.corrupt == 0
    with open(hb, "a") as fh:
        fh.write('"step":150,"pid":1}\n')
    live.feed("heartbeat_rank0.jsonl", f_hb.poll().lines)
    cold = load_run(tmp_path / "r")
    assert live.steps == cold.steps == list(range(10, 151, 10))
    for name in ("loss", "lr", "toks_per_s", "gate_entropy_mean"):
        assert live.column(name) == cold.column(name)
    assert live.corrupt == 0 and live.format == "nsa-v1"


def test_corrupt_lines_are_counted_not_fatal(tmp_path):
    make_v1_run(tmp_path / "r", steps=100)
    hb = tmp_path / "r" / "heartbeat_rank0.jsonl"
    append_lines(hb, ['{"v":1,"kind":"progress","step":', "not json", "[1,2,3]", "x" * 200_000, '{"no":"kind"}'])
    with open(hb, "ab") as fh:
        fh.write(b"\xff\xfe\x00garbage\n")
    append_lines(tmp_path / "r" / "training.csv", ["1,2,3", "abc,def"])
    h = load_run(tmp_path / "r")
    assert h.corrupt == 8 and h.steps[-1] == 100
    assert h.corrupt_by_source["training.csv"] == 2


def test_nan_and_infinity_survive(tmp_path):
    w = make_v1_run(tmp_path / "r", steps=50)
    w.progress(1, loss=float("inf"), grad_norm=float("nan"))
    h = load_run(tmp_path / "r")
    assert math.isinf(h.last_value("loss")) and math.isnan(h.last_value("grad_norm"))


def test_tail_reader_drops_partial_first_line(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"aaaa\nbbbb\ncccc\ndd")
    assert read_tail_lines(p, 8) == [b"cccc"]
    assert read_tail_lines(p, 100) == [b"aaaa", b"bbbb", b"cccc"]
    assert read_tail_lines(tmp_path / "missing", 10) == []


def test_big_file_reads_only_a_window(tmp_path):
    """A 40 MB heartbeat: the loader sees the newest records within its window only."""
    w = make_v1_run(tmp_path / "r", steps=10)
    hb = tmp_path / "r" / "heartbeat_rank0.jsonl"
    line = hb.read_text().splitlines()[-1]
    rec = json.loads(line)
    with open(hb, "a") as fh:
        for s in range(20, 100_000, 1):
            rec["step"], rec["ts"] = s, rec["ts"] + 0.01
            fh.write(json.dumps(rec) + "\n")
    (tmp_path / "r" / "training.csv").unlink()
    h = load_run(tmp_path / "r")
    window = file_limit("heartbeat_rank0.jsonl")
    assert h.steps[-1] == 99_999 and h.corrupt == 0
    size = len(json.dumps(rec)) + 1
    assert window // (size + 8) <= len(h.steps) <= window // (size - 8)  # line lengths vary by a few bytes
    del w
