"""Remote tailing when a log is replaced under the same name and size, and mtimes over ssh (loopback sshd)."""

from __future__ import annotations

import os
import time

import pytest
from fixtures.runs import make_generic_run

from nsa_tui.health import evaluate
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.tail.remote import RemoteRunSource
from nsa_tui.watch.model import RunModel


def _collect(src, pred, timeout=15.0):
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += src.read()
        if pred(got):
            return got
        src.wait(0.2)
    raise AssertionError(f"timed out; got {got!r}; {src.describe()}")


def _replay(updates, name, lines=None):
    """The lines a consumer holds for ``name`` after applying ``updates`` in order (resets drop them)."""
    lines = [] if lines is None else list(lines)
    for u in updates:
        if u.name in ("", name):
            if u.reset:
                lines = []
            lines += u.lines
    return lines


def _rows(tag: str, n: int, head: bytes = b"") -> bytes:
    return head + b"".join(f"{i},{tag}-row-{i:04d}\n".encode() for i in range(n))


HEAD = b"step,loss,lr,toks_per_s  # the same first line in both files, longer than 64 bytes....\n"


def _follow(sshd, run, **kw):
    return RemoteRunSource(sshd.host, str(run), interval=0.2, **kw)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "size", "idle_s"),
    [
        ("in-place", "long-same-head", 0.0),
        ("in-place", "short", 0.0),
        ("inode-reuse", "long-same-head", 0.0),
        ("inode-reuse", "short", 0.0),
        # idle long enough that the remote skips the file as quiet (stat's times over a second old)
        ("in-place", "long-same-head", 2.5),
        ("inode-reuse", "short", 2.5),
    ],
)
def test_equal_size_replacement_is_read_from_the_start(sshd, tmp_path, how, size, idle_s):
    """Same name, same size, and either the same inode (rewritten in place) or a deleted file's inode
    reused by its successor; for long files the first 64+ bytes are equal too. The consumer gets a
    reset and then exactly the new file's lines, never the old ones or a mix."""
    run = tmp_path / "run"
    run.mkdir()
    log = run / "training.csv"
    old, new = (_rows("aaa", 30, HEAD), _rows("bbb", 30, HEAD)) if size == "long-same-head" else (b"1,a\n", b"1,b\n")
    assert len(old) == len(new) and (size == "short" or old[:64] == new[:64])
    log.write_bytes(old)
    src = _follow(sshd, run)
    try:
        got = _collect(src, lambda g: _replay(g, log.name) == old.splitlines())
        ino = log.stat().st_ino
        rounds = src.rounds
        while src.rounds < rounds + 2:  # the remote has settled on this file (edge recorded)
            src.wait(0.2)
        time.sleep(idle_s)
        rounds = src.rounds
        while src.rounds < rounds + 2:
            src.wait(0.2)
        got += src.read()
        if how == "in-place":
            with open(log, "r+b") as f:
                f.write(new)
            assert log.stat().st_ino == ino
        else:
            log.unlink()
            log.write_bytes(new)  # ext4 hands the freed inode to the next file: same inode, same size
        assert log.stat().st_size == len(old)
        got += _collect(src, lambda g: any(u.reset for u in g if u.name == log.name))
        got += _collect(src, lambda g: _replay(got + g, log.name) == new.splitlines(), timeout=5)
        assert _replay(got, log.name) == new.splitlines()
    finally:
        src.close()


@pytest.mark.slow
def test_replaced_by_a_longer_file_with_the_same_head_is_not_continued(sshd, tmp_path):
    """The old offset is inside the new file and its head is the same: continuing there would join two
    files' bytes. The checksum of the last bytes sent tells them apart."""
    run = tmp_path / "run"
    run.mkdir()
    log = run / "train.log"
    old, new = _rows("old", 10, HEAD), _rows("new", 40, HEAD)
    log.write_bytes(old)
    src = _follow(sshd, run)
    try:
        got = _collect(src, lambda g: _replay(g, log.name) == old.splitlines())
        tmp = run / "train.log.tmp"
        tmp.write_bytes(new)
        with open(log, "r+b") as f:  # same inode, grows: only a content check can tell
            f.write(new)
        tmp.unlink()
        got += _collect(src, lambda g: _replay(got + g, log.name) == new.splitlines())
        assert any(u.reset for u in got if u.name == log.name)
    finally:
        src.close()


@pytest.mark.slow
def test_replacement_while_disconnected_is_caught_after_reconnect(sshd, tmp_path):
    """The checksum travels back with the offsets on reconnect, so a file swapped during the outage
    (same inode, same size) is not resumed at the old offset."""
    run = tmp_path / "run"
    run.mkdir()
    log = run / "heartbeat_rank0.jsonl"
    boot = b'{"kind":"boot","run":"r","note":"the same first record in both files, over 64 bytes"}\n'
    old = boot + b"".join(b'{"kind":"progress","step":%d,"tag":"old"}\n' % i for i in range(50))
    new = old.replace(b'"old"', b'"new"')
    log.write_bytes(old)
    src = _follow(sshd, run)
    try:
        got = _collect(src, lambda g: _replay(g, log.name) == old.splitlines())
        proc = src._proc
        proc.kill()
        with open(log, "r+b") as f:
            f.write(new)
        deadline = time.monotonic() + 15
        while (src._proc is proc or not src.connected) and time.monotonic() < deadline:
            src.wait(0.2)
        assert src._proc is not proc and src.connected
        got += _collect(src, lambda g: _replay(got + g, log.name) == new.splitlines())
        assert any(u.reset for u in got if u.name == log.name)
    finally:
        src.close()


def _wait_mtime(src, name, pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        src.read()
        m = src.mtimes.get(name)
        if m is not None and pred(m):
            return m
        src.wait(0.2)
    raise AssertionError(f"mtime of {name}: {src.mtimes.get(name)!r}")


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["stat", "perl", "ls"])
def test_mtimes_over_ssh_by_tool(sshd, tmp_path, tool):
    """Each remote mtime source, forced: stat/perl to the second; POSIX ls within its minute at first
    sight (never earlier than the truth), then within a round of each change."""
    run = tmp_path / "run"
    run.mkdir()
    log = run / "train.log"
    log.write_bytes(b"line 1\n")
    old = time.time() - 1200
    os.utime(log, (old, old))
    whole = run / "run.json"
    whole.write_text("{}")
    src = _follow(sshd, run, mtime_tool=tool)
    try:
        if tool == "ls":
            m = _wait_mtime(src, log.name, lambda m: True)
            assert old - 2 <= m <= old + 62
        else:
            m = _wait_mtime(src, log.name, lambda m: True)
            assert abs(m - old) < 2
        assert src.clock_offset_s is not None and abs(src.clock_offset_s) < 3  # one machine: one clock
        m_whole = _wait_mtime(src, whole.name, lambda m: True)
        assert abs(m_whole - whole.stat().st_mtime) < (62 if tool == "ls" else 2)
        with open(log, "ab") as f:
            f.write(b"line 2\n")
        fresh = log.stat().st_mtime
        m = _wait_mtime(src, log.name, lambda m: m > old + 600)
        assert fresh - 2 <= m <= fresh + 3
    finally:
        src.close()


def test_unknown_mtime_tool_is_refused():
    with pytest.raises(ValueError, match="mtime_tool"):
        RemoteRunSource("nowhere", "/x", mtime_tool="find")


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["stat", "ls"])
def test_watch_heartbeat_age_over_ssh_comes_from_remote_mtimes(sshd, tmp_path, tool):
    """A generic log has no timestamps: its age is the file's mtime. Over ssh the dashboard's model gets
    the same age as locally (within the tool's precision) and the same heartbeat_stale verdict."""
    run = tmp_path / "foreign"
    log = make_generic_run(run, steps=500, age_s=1800)

    def judged(model):
        deadline = time.monotonic() + 15
        while model.history.last_write_ts is None and time.monotonic() < deadline:
            model.pump()
            model.source.wait(0.2)
        model.pump()
        return evaluate(model.history, time.time())

    local = LocalRunSource(run, force_poll=True)
    try:
        v_local = judged(RunModel("foreign", local, where=str(run)))
    finally:
        local.close()
    remote = _follow(sshd, run, mtime_tool=tool)
    try:
        model = RunModel("foreign", remote, where=f"{sshd.host}:{run}")
        v_remote = judged(model)
        if tool == "stat":
            # an mtime that moves with no new line still reaches the model (it acts on updates only)
            older = time.time() - 3600
            os.utime(log, (older, older))
            deadline = time.monotonic() + 10
            while abs((model.history.last_write_ts or 0) - older) > 3 and time.monotonic() < deadline:
                model.pump()
                remote.wait(0.2)
            assert abs((model.history.last_write_ts or 0) - older) <= 3
    finally:
        remote.close()
    assert v_local.last_heartbeat_age_s is not None and abs(v_local.last_heartbeat_age_s - 1800) < 5
    assert v_remote.last_heartbeat_age_s is not None
    slack = 62 if tool == "ls" else 3
    assert v_local.last_heartbeat_age_s - slack <= v_remote.last_heartbeat_age_s <= v_local.last_heartbeat_age_s + 3
    assert v_remote.state == v_local.state
    assert {a.rule for a in v_remote.alerts} == {a.rule for a in v_local.alerts}
