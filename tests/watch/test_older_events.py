"""A heartbeat longer than the window `nsa watch` first reads: its earlier events (evals, checkpoints, phases with
their warnings, errors) still reach the events pane and the `e` screen, locally and over ssh, read once by a
byte-level scan (nsa_tui/tail/older_sh.py), while the health rules judge the window as `nsa status` does."""

from __future__ import annotations

import io
import tempfile
import time

import pytest

from nsa_train.telemetry import schema
from nsa_tui.runs.history import FORMAT_GENERIC, FORMAT_V1, FORMAT_VIBE
from nsa_tui.tail.lines import LineSplitter
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.tail.older_sh import OLDER_BYTES, scan_older, window_end
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.older import all_events, older_events
from watch.helpers import WARNING, write_long_run


def _pump_until_older(m: RunModel, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    m.pump()
    while not m.older:
        assert time.monotonic() < deadline, "the older events never came"
        m.source.wait(0.2)
        m.pump()


def _kinds_steps(events) -> list[tuple[str, int]]:
    return [(e.kind, e.step) for e in sorted(events, key=lambda e: (e.ts, e.step))]


# ------------------------------------------------------------ the byte-level scan (real sh and grep)
def test_the_scan_keeps_every_record_but_progress_and_liveness():
    lines = [
        b'{"v":1,"ts":1,"kind":"progress","rank":0,"step":10,"loss":2.0}',
        b'{"v":1,"ts":2,"kind":"liveness","rank":1,"step":10}',
        b'{"v":1,"ts":3,"kind":"eval","rank":0,"step":10,"val_loss":2.1}',
        b'{"v":1,"ts":4,"kind":"error","rank":0,"step":10,"message":"a \\"kind\\":\\"progress\\" quoted"}',
        b'{"ts": 5, "msg": "step_end", "step": 10}',  # the previous trainer's, with spaces
        b'{"ts": 6, "msg": "progress", "step": 10, "loss": 2.0}',
        b'{"ts": 7, "msg": "save", "step": 10}',
        b'{"v":1,"ts":8,"kind":"phase","rank":0,"step":0,"phase":"train","warnings":["\x00 a NUL"]}',
    ]
    blob = b"\n".join(lines) + b"\n"
    with tempfile.TemporaryFile() as f:  # a real file: the scan is a process reading its descriptor
        f.write(blob + b'{"v":1,"ts":9,"kind":"eval","rank":0,"step":20,"val_loss":2.0}\n')
        kept = scan_older(f, len(blob)).splitlines()
    assert kept == [lines[2], lines[3], lines[6], lines[7]]  # the record after END is not looked at


def test_the_scan_keeps_only_the_newest_lines_of_a_heartbeat_it_cannot_sort():
    line = b'{"v":1,"ts":1,"kind":"eval","rank":0,"step":1,"val_loss":2.0}\n'
    with tempfile.TemporaryFile() as f:
        f.write(line * (2 * OLDER_BYTES // len(line)))
        out = scan_older(f, f.tell())
    assert len(out) == OLDER_BYTES and out.endswith(line)


def test_window_end_is_where_the_lines_the_window_drops_end():
    data = b"first line\nsecond\n\nfourth line here\nfifth\n"
    for start in range(1, len(data)):
        s = LineSplitter()
        s.start_mid_line()
        kept = s.feed_blob(data[start:])
        assert window_end(io.BytesIO(data), start) == len(data) - len(kept), start


# ------------------------------------------------------------ parsing (pure)
def test_older_lines_become_events_as_the_history_reads_them():
    v1 = [
        b'"step":3,"pid":1}',  # the cut first line of a capped scan
        b'{"v":1,"ts":3,"kind":"eval","rank":0,"step":10,"pid":1,"val_loss":2.5,"val_ppl":12.2}',
        b"not json",
        b'{"v":1,"ts":4,"kind":"phase","rank":1,"step":0,"pid":1,"phase":"train"}',
    ]
    got = older_events("heartbeat_rank1.jsonl", b"\n".join(v1) + b"\n", FORMAT_V1)
    assert [(e.kind, e.step, e.rank, e.fields.get("val_loss")) for e in got] == [
        ("eval", 10, 0, 2.5),
        ("phase", 0, 1, None),
    ]
    vibe = b'{"ts": 5, "rank": 0, "msg": "checkpoint", "step": 50}\n{"ts": 6, "rank": 0, "msg": "halt", "step": 60}\n'
    assert [(e.kind, e.step) for e in older_events("heartbeat_rank0.jsonl", vibe, FORMAT_VIBE)] == [
        ("checkpoint", 50),
        ("end", 60),
    ]
    assert older_events("heartbeat_rank0.jsonl", vibe, FORMAT_GENERIC) == []
    held = older_events("heartbeat_rank0.jsonl", v1[1] + b"\n", None)
    assert all_events({"b": held, "a": got}, ["held"]) == [*got, *held, "held"]


# ------------------------------------------------------------ a local run
def test_a_long_heartbeat_shows_the_events_before_its_window(tmp_path):
    """A 1M-line run showed 3 events: those of the last MiB. All of them come now, once, after the first read."""
    run = tmp_path / "long"
    events = write_long_run(run)
    m = RunModel(run.name, LocalRunSource(run, force_poll=True), where=str(run))
    try:
        m.pump()
        first = _kinds_steps(m.events)
        assert ("boot", 0) not in first and len(first) < len(events) // 2  # the window only, at first
        _pump_until_older(m)
        assert _kinds_steps(m.events) == events
        # the health rules judge the window (as `nsa status`): the history itself holds its events only
        assert _kinds_steps(m.history.events) == first
        train = next(e for e in m.events if e.kind == "phase" and e.fields.get("phase") == "train")
        assert train.fields["warnings"] == [WARNING]

        # `r`: every file read again, the older events once more, not twice
        m.restart()
        m.pump()
        assert not m.older
        _pump_until_older(m)
        assert _kinds_steps(m.events) == events
    finally:
        m.source.close()


# ------------------------------------------------------------ over ssh
@pytest.mark.slow
def test_over_ssh_the_events_before_the_window_come_once(sshd, tmp_path):
    from nsa_tui.tail.remote import RemoteRunSource

    run = tmp_path / "long"
    events = write_long_run(run)
    src = RemoteRunSource(sshd.host, str(run), interval=0.2)
    m = RunModel(run.name, src, where=f"{sshd.host}:{run}")
    try:
        _pump_until_older(m)
        assert _kinds_steps(m.events) == events
        # only event lines crossed the link: no progress record among them
        assert len(m.older) == 1 and len(m.older[schema.heartbeat_name(0)]) == len(events) - len(m.history.events)

        # a dropped connection resumes at our offsets: the scan is not sent again
        proc = src._proc
        proc.kill()
        deadline = time.monotonic() + 20
        while src._proc is proc or not src.connected:
            assert time.monotonic() < deadline, src.describe()
            time.sleep(0.1)
        rounds = src.rounds
        while src.rounds < rounds + 3:
            assert time.monotonic() < deadline, src.describe()
            time.sleep(0.1)
        assert not any(u.older for u in src.read())
    finally:
        src.close()
