"""nsa_tui.runs.bulk (what `nsa report` reads whole files with) builds the very history the line parser does: every
field of it, the corrupt-line counts included, on clean files, damaged ones and resumed runs. Small blocks make a
few hundred lines span several of them, so a bad line sits inside a block that must be halved around it."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures.runs import append_lines, boot, make_v1_run, start_training, write_exit_status

from nsa_train.telemetry import schema
from nsa_tui.runs.bulk import feed_whole
from nsa_tui.runs.history import RunHistory
from nsa_tui.runs.load import _feed_key, source_kind
from nsa_tui.runs.tail import MAX_LINE_BYTES, iter_complete_lines

BLOCK = 32 << 10  # bytes a block: ~70 heartbeat lines, ~250 csv rows; a few hundred lines are several blocks


def plain(v: Any) -> Any:
    """A value compared with ==: NaN as a string (NaN != NaN), -0.0 told from 0.0, dataclasses and objects by
    their fields."""
    if isinstance(v, float):
        return repr(v) if v == 0.0 or not math.isfinite(v) else v
    if isinstance(v, dict):
        return [(plain(k), plain(x)) for k, x in v.items()]  # in order: a dict's key order is what it prints
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if is_dataclass(v) and not isinstance(v, type):
        return plain(asdict(v))
    if hasattr(v, "__dict__"):
        return plain(vars(v))
    return v


def state(h: RunHistory) -> Any:
    return plain({k: v for k, v in vars(h).items() if k not in ("_csv_plans", "_refusals_cache")})


def feed_both(run: Path) -> tuple[RunHistory, RunHistory, int]:
    """The run's telemetry files fed line by line and in blocks, in the order a report feeds them; the lines the
    blocks took."""
    names = sorted(
        (p.name for p in run.iterdir() if source_kind(p.name) in ("heartbeat", "training_csv")), key=_feed_key
    )
    by_line, by_block = RunHistory(schema.FORMAT_NAME), RunHistory(schema.FORMAT_NAME)
    in_blocks = 0
    for name in names:
        data = (run / name).read_bytes()
        by_line.feed(name, iter_complete_lines(data, from_middle=False))
        fed = feed_whole(by_block, name, data, block_bytes=BLOCK)
        in_blocks += fed.in_blocks
    return by_line, by_block, in_blocks


def assert_same(run: Path) -> RunHistory:
    by_line, by_block, in_blocks = feed_both(run)
    assert in_blocks >= 0.8 * len(by_line.steps)  # the blocks took most of the lines: they are what is tested
    assert state(by_block) == state(by_line)
    return by_block


def insert_lines(path: Path, at: int, lines: list[bytes]) -> None:
    """Put raw lines (bytes: any damage) before line ``at`` of a file."""
    old = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([*old[:at], *lines, *old[at:]]))


def long_run(path: Path) -> Path:
    make_v1_run(path, steps=4000, total_steps=8000, log_every=10, state="running", now=time.time() - 60)
    return path


def test_a_clean_run_gives_the_same_history(tmp_path):
    h = assert_same(long_run(tmp_path / "r"))
    assert h.corrupt == 0 and len(h.steps) == 400


def loss(line: bytes, value: bytes) -> bytes:
    return re.sub(rb'"loss":[^,}]*', b'"loss":' + value, line)


# each: a trainer's progress line (the one before, a step on) made into lines the trainer never writes, or rarely,
# which the blocks must leave to the line parser, or read as it does
DAMAGE: dict[str, Callable[[bytes], list[bytes]]] = {
    "cut mid-record": lambda x: [x[: len(x) // 2]],
    "not utf-8": lambda x: [loss(x, b'"\xff"')],
    "two objects on a line": lambda x: [x + x],
    "Inf, which json refuses": lambda x: [loss(x, b"Inf")],
    "NaN loss, which json reads": lambda x: [loss(x, b"NaN")],
    "integer -0, which json reads as 0": lambda x: [loss(x, b"-0")],
    "-0.0, read alike": lambda x: [loss(x, b"-0.0")],
    "a key twice": lambda x: [x[:-1] + b',"loss":2.0}'],
    "a newer schema": lambda x: [x.replace(b'"v":1', b'"v":2')],
    "a float rank": lambda x: [x.replace(b'"rank":0', b'"rank":0.0')],
    "a string loss": lambda x: [loss(x, b'"1.5"')],
    "an escaped key": lambda x: [x.replace(b'"loss"', b'"lo\\u0073s"')],
    "fallback reasons": lambda x: [x[:-1] + b',"fallback_reasons":{"cmp_sdpa_mask":"x"}}'],
    "a nested fallbacks": lambda x: [re.sub(rb'"fallbacks":\{[^}]*\}', b'"fallbacks":{"a":{"b":1}}', x)],
    "fallbacks in another order": lambda x: [
        re.sub(rb'"fallbacks":\{[^}]*\}', b'"fallbacks":{"cmp_sdpa_mask":3,"sel_triton_unsupported_shape":1}', x)
    ],
    "no metric": lambda x: [re.sub(rb',"loss".*', b"}", x)],
    "another pid": lambda x: [x.replace(b'"pid":', b'"pid":1')],
    "a blank line and spaces": lambda x: [b"", b"   ", b" " + x + b" "],
    "over a MiB": lambda x: [x[:-1] + b',"pad":"' + b"x" * MAX_LINE_BYTES + b'"}'],
    "a step back": lambda x: [re.sub(rb'"step":\d+', b'"step":15', x)],
}


@pytest.mark.parametrize("csv", [True, False], ids=["with its csv row", "heartbeat alone"])
@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_heartbeat_line_goes_to_the_line_parser(tmp_path, damage, csv):
    """With training.csv, its records restate the rows read before them; alone, they append the points."""
    run = long_run(tmp_path / "r")
    hb = run / schema.heartbeat_name(0)
    lines = hb.read_bytes().split(b"\n")
    at = len(lines) // 2  # inside a block: the blocks around it still apply whole
    prev = next(x for x in reversed(lines[:at]) if b'"kind":"progress"' in x)
    step = json.loads(prev)["step"]
    insert_lines(hb, at, DAMAGE[damage](prev.replace(b'"step":%d' % step, b'"step":%d' % (step + 1))))
    table = run / schema.TRAINING_CSV
    if csv:  # the step's row too: a damaged record would otherwise be left out of its block as a new step
        rows = table.read_bytes().split(b"\n")
        i = next(i for i, r in enumerate(rows) if r.startswith(b"%d," % step))
        insert_lines(table, i + 1, [b"%d," % (step + 1) + rows[i].split(b",", 1)[1]])
    else:
        table.unlink()
    h = assert_same(run)
    assert h.corrupt == h.corrupt_by_source.get(hb.name, 0)


WIDTH = len(schema.TRAINING_CSV_HEADER)
CSV_DAMAGE: dict[str, list[bytes]] = {
    "cut mid-row": [b"%(step)d,1.5,0.001"],
    "not utf-8": [b"%(step)d,\xff"],
    "a header again": [",".join(schema.TRAINING_CSV_HEADER).encode()],
    "empty cells": [b"%(step)d" + b"," * (WIDTH - 1) + b"%(ts)s"],
    "1_0 and inf, which float() reads": [b"%(step)d,1_0," + b"inf," * (WIDTH - 4) + b"1e3,%(ts)s"],
    "a step back (a fresh start appended)": [b"5," + b"1.0," * (WIDTH - 2) + b"%(ts)s"],
    "a quoted step": [b'"%(step)d",' + b"1.0," * (WIDTH - 2) + b"%(ts)s"],
    "spaces": [b" %(step)d, 1.0" + b",1.0" * (WIDTH - 3) + b",%(ts)s "],
}


@pytest.mark.parametrize("damage", CSV_DAMAGE, ids=list(CSV_DAMAGE))
def test_a_damaged_csv_row_goes_to_the_line_parser(tmp_path, damage):
    run = long_run(tmp_path / "r")
    csv = run / schema.TRAINING_CSV
    lines = csv.read_bytes().split(b"\n")
    at = len(lines) // 2
    step, ts = lines[at - 1].split(b",")[0], lines[at - 1].split(b",")[-1]  # after the row before it, at its time
    bad = [b % {b"step": int(step) + 1, b"ts": ts} for b in CSV_DAMAGE[damage]]
    insert_lines(csv, at, bad)
    assert_same(run)


def test_a_resumed_run_gives_the_same_history(tmp_path):
    """An attempt killed at 4000, resumed from 3000: the heartbeat's records step back, a cut drops points."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=4000, total_steps=8000, log_every=10, state="running", now=time.time() - 600)
    write_exit_status(path, 1)
    (path / schema.EXIT_STATUS).unlink()
    boot(w, resume=True)
    start_training(w, 8000, 3000)
    w.progress(200)
    assert_same(path)


def test_ddp_ranks_give_the_same_history(tmp_path):
    assert_same(make_v1_run(tmp_path / "r", steps=2000, n_ranks=2, log_every=10, state="finished").path)


def test_a_corrupt_tail_is_counted_once(tmp_path):
    run = long_run(tmp_path / "r")
    append_lines(run / schema.heartbeat_name(0), ["{not json"])
    assert assert_same(run).corrupt == 1


@pytest.mark.parametrize("csv", [True, False], ids=["with training.csv", "heartbeat alone"])
def test_liveness_records_between_the_progress_ones_give_the_same_history(tmp_path, csv):
    """The trainer's liveness record (every 30 s) falls between progress records: the runs of records applied
    whole take them in, and the rank's state is the last record's, a liveness one's too."""
    run = long_run(tmp_path / "r")
    hb = run / schema.heartbeat_name(0)
    out = []
    for i, line in enumerate(hb.read_bytes().splitlines()):
        out.append(line)
        rec = json.loads(line)
        if rec["kind"] == schema.KIND_PROGRESS and i % 3 == 0:  # a few steps on, at the same time
            out.append(
                schema.encode(schema.make_record(schema.KIND_LIVENESS, 0, rec["step"] + 5, rec["pid"], rec["ts"]))
                .strip()
                .encode()
            )
    # and a killed attempt's last records: ten more steps, then the liveness record it last wrote
    last = [json.loads(x) for x in out if b'"kind":"progress"' in x][-1]
    for k in range(1, 11):
        step, ts = last["step"] + 10 * k, last["ts"] + 4.0 * k
        out.append(json.dumps({**last, "step": step, "ts": ts}, separators=(",", ":")).encode())
    out.append(
        schema.encode(schema.make_record(schema.KIND_LIVENESS, 0, step + 3, last["pid"], ts + 1)).strip().encode()
    )
    hb.write_bytes(b"\n".join(out) + b"\n")
    if not csv:
        (run / schema.TRAINING_CSV).unlink()
    assert_same(run)
