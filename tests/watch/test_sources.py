"""Local run sources: inotify wakes the reader, --poll and the silent-inotify fallback work."""

from __future__ import annotations

import os
import threading
import time

from nsa_tui.tail.local import LocalRunSource
from nsa_tui.tail.notify import ChangeNotifier


def _drain(src, until, timeout=5.0):
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += src.read()
        if until(got):
            return got
        src.wait(0.2)
    return got


def test_inotify_source_sees_appends_and_whole_files(tmp_path):
    (tmp_path / "heartbeat_rank0.jsonl").write_text('{"a":1}\n')
    src = LocalRunSource(tmp_path)
    try:
        assert src.describe() == "inotify"
        first = _drain(src, lambda g: g)
        assert [u.lines for u in first if u.name == "heartbeat_rank0.jsonl"] == [[b'{"a":1}']]
        with open(tmp_path / "heartbeat_rank0.jsonl", "a") as f:
            f.write('{"a":2}\n')
        (tmp_path / "exit_status").write_text("0\n")
        t0 = time.monotonic()
        got = _drain(src, lambda g: any(u.name == "exit_status" for u in g) and any(u.lines for u in g))
        assert time.monotonic() - t0 < 1.0
        assert any(u.lines == [b'{"a":2}'] for u in got)
        assert any(u.content == b"0\n" for u in got)
        (tmp_path / "exit_status").unlink()
        assert any(u.deleted for u in _drain(src, lambda g: any(u.deleted for u in g)))
    finally:
        src.close()


def test_forced_polling_and_directory_created_later(tmp_path):
    run = tmp_path / "not-yet"
    src = LocalRunSource(run, force_poll=True)
    try:
        assert src.read() == []
        assert src.describe().startswith("polling")
        run.mkdir()
        (run / "training.csv").write_text("step,loss\n1,2.0\n")
        got = _drain(src, lambda g: g)
        assert got[0].lines == [b"step,loss", b"1,2.0"]
    finally:
        src.close()


def test_restart_announces_a_full_reset(tmp_path):
    (tmp_path / "a.log").write_text("x\n")
    src = LocalRunSource(tmp_path, force_poll=True)
    try:
        src.read()
        src.restart()
        got = src.read()
        assert got[0].name == "" and got[0].reset
        assert got[1].lines == [b"x"]
    finally:
        src.close()


def test_restart_during_a_read_loses_nothing(tmp_path, monkeypatch):
    """`r` in the dashboard calls restart() on the UI thread while a reader thread may be inside read(). Seen in a
    fresh clone's test run on a loaded machine: the read in flight made new tailers for the files after the
    restart, the next read announced the reset and then had nothing left to send: an empty dashboard."""
    (tmp_path / "config.yaml").write_text("model: {}\n")  # a whole file, read before the line files below
    (tmp_path / "heartbeat_rank0.jsonl").write_text('{"a":1}\n')
    (tmp_path / "training.csv").write_text("step,loss\n1,2.0\n")
    src = LocalRunSource(tmp_path, force_poll=True)
    try:
        src.read()
        read_whole = src._read_whole

        def restart_in_the_middle(name):  # the UI thread's restart() lands while this read is under way
            monkeypatch.setattr(src, "_read_whole", read_whole)
            src.restart()
            return read_whole(name)

        monkeypatch.setattr(src, "_read_whole", restart_in_the_middle)
        src.read()
        got = src.read()
        assert got[0].name == "" and got[0].reset
        lines = {u.name: u.lines for u in got[1:] if u.data}
        assert lines == {"heartbeat_rank0.jsonl": [b'{"a":1}'], "training.csv": [b"step,loss", b"1,2.0"]}
        assert [u.name for u in got[1:] if u.content is not None] == ["config.yaml"]
    finally:
        src.close()


def test_silent_inotify_falls_back_to_polling(tmp_path):
    n = ChangeNotifier(tmp_path)
    try:
        assert n.mode == "inotify"
        # Sizes that move while no event is counted: what NFS or some container mounts look like.
        n._events_seen = 0
        for size in (1, 2, 3):
            n._events_at_last_sizes = n._events_seen
            n.note_sizes({"hb": size})
        assert n.mode == "poll" and "silent" in n.fallback_reason
    finally:
        n.close()


def test_real_events_keep_inotify(tmp_path):
    f = tmp_path / "hb.jsonl"
    n = ChangeNotifier(tmp_path)
    try:
        for _ in range(4):
            with open(f, "a") as fh:
                fh.write("x\n")
            n.wait(2.0)
            n.note_sizes({"hb": os.path.getsize(f)})
        assert n.mode == "inotify"
    finally:
        n.close()


def test_inotify_wakes_for_followed_files_only(tmp_path):
    """A checkpoint written next to the logs must not wake the reader; a heartbeat line must, and so must
    a poke (re-read, shutdown)."""
    run = tmp_path / "run"
    run.mkdir()
    src = LocalRunSource(run)
    n = src._notifier
    try:
        assert n.mode == "inotify"
        (run / "model.ckpt.tmp").write_bytes(b"\0" * 4096)
        t0 = time.monotonic()
        assert not n.wait(0.3) and time.monotonic() - t0 >= 0.25
        with open(run / "heartbeat_rank0.jsonl", "a") as fh:
            fh.write("{}\n")
        assert n.wait(2.0)
        threading.Timer(0.1, n.poke).start()
        t0 = time.monotonic()
        assert n.wait(5.0) and time.monotonic() - t0 < 2.0
    finally:
        src.close()
