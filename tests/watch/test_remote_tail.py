"""Remote tailing over one ssh connection against the loopback sshd fixture."""

from __future__ import annotations

import os
import time

import pytest

from nsa_tui.tail.remote import RemoteRunSource


def _collect(src, pred, timeout=15.0):
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += src.read()
        if pred(got):
            return got
        src.wait(0.2)
    raise AssertionError(f"timed out; got {got!r}; {src.describe()}")


def _lines(updates, name):
    return [ln for u in updates if u.name == name for ln in u.lines]


@pytest.mark.slow
def test_remote_appends_rotation_garbage_and_reconnect(sshd, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    hb = run / "heartbeat_rank0.jsonl"
    hb.write_bytes(b'{"s":1}\n{"s":2}\n{"s":')  # a partial last line waits
    (run / "run.json").write_text('{"run": "r"}')
    src = RemoteRunSource(sshd.host, str(run), interval=0.2)
    try:
        got = _collect(src, lambda g: len(_lines(g, hb.name)) == 2 and any(u.content for u in g))
        assert _lines(got, hb.name) == [b'{"s":1}', b'{"s":2}']
        assert [u.content for u in got if u.name == "run.json"] == [b'{"run": "r"}']
        assert src.connected and src.describe() == f"ssh {sshd.host}"
        proc = src._proc

        # binary garbage with fake frame headers inside a log line cannot desync the stream
        with open(hb, "ab") as f:
            f.write(b'3}\n\x00\xffE 9\nD 1 2 3 x\n{"s":4}\n')
        got = _collect(src, lambda g: b'{"s":4}' in _lines(g, hb.name))
        assert _lines(got, hb.name) == [b'{"s":3}', b"\x00\xffE 9", b"D 1 2 3 x", b'{"s":4}']
        assert src._proc is proc  # still the same single connection

        # a dropped connection reconnects and resumes at our offsets: nothing is read twice
        proc.kill()
        with open(hb, "ab") as f:
            f.write(b'{"s":5}\n')
        got = _collect(src, lambda g: b'{"s":5}' in _lines(g, hb.name))
        assert _lines(got, hb.name) == [b'{"s":5}']
        assert src._proc is not proc

        # rotation: a new file under the same name is read from its start, with a reset
        os.rename(hb, run / "old.jsonl.1")
        hb.write_bytes(b'{"s":"new"}\n')
        got = _collect(src, lambda g: any(u.reset for u in g if u.name == hb.name))
        assert _lines(got, hb.name) == [b'{"s":"new"}']

        # truncation
        time.sleep(0.3)
        hb.write_bytes(b"")
        got = _collect(src, lambda g: any(u.reset for u in g if u.name == hb.name))
    finally:
        src.close()


@pytest.mark.slow
def test_remote_run_directory_gone_and_back(sshd, tmp_path):
    """dir_missing follows the remote directory round by round: moved away (its whole files reported deleted),
    moved back, moved away and made again empty (no file frames, but there)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"run": "r"}')
    src = RemoteRunSource(sshd.host, str(run), interval=0.2)

    def until(cond, what: str) -> list:
        got: list = []
        deadline = time.monotonic() + 15
        while not cond(got) and time.monotonic() < deadline:
            got += src.read()
            src.wait(0.2)
        assert cond(got), f"{what}; {src.describe()}"
        return got

    try:
        until(lambda g: any(u.content for u in g), "run.json never came")
        assert not src.dir_missing
        run.rename(tmp_path / "away")
        got = until(lambda g: src.dir_missing, "the move was not noticed")
        got += until(lambda g: any(u.deleted for u in got + g), "run.json was not reported gone")
        assert src.describe() == f"ssh {sshd.host} (run directory not there)"
        (tmp_path / "away").rename(run)
        until(lambda g: not src.dir_missing, "the move back was not noticed")
        # read again from the start: its whole files came back told deleted, and unchanged they were never sent
        # again (the watch read the run as stalled with run.json unreadable until `r`)
        got = until(lambda g: any(u.name == "run.json" and u.content for u in g), "run.json did not come again")
        assert any(u.name == "" and u.reset for u in got)
        run.rename(tmp_path / "away2")
        until(lambda g: src.dir_missing, "the second move was not noticed")
        run.mkdir()  # a new, empty directory: no file frames, but there
        until(lambda g: not src.dir_missing, "the new empty directory was not noticed")
    finally:
        src.close()


@pytest.mark.slow
def test_remote_rewrite_in_place_with_equal_size_and_mtimes(sshd, tmp_path):
    """A log rewritten in place to the same size (same inode, so offsets alone cannot tell) is read again
    from its start with a reset; mtimes come over on our clock."""
    run = tmp_path / "run"
    run.mkdir()
    log = run / "training.csv"
    first = b"".join(f"{i},old-row-{i:04d}\n".encode() for i in range(20))
    log.write_bytes(first)
    src = RemoteRunSource(sshd.host, str(run), interval=0.2)
    try:
        got = _collect(src, lambda g: len(_lines(g, log.name)) == 20)
        ino = log.stat().st_ino
        deadline = time.monotonic() + 10
        while log.name not in src.mtimes and time.monotonic() < deadline:
            src.wait(0.2)
        assert abs(src.mtimes[log.name] - log.stat().st_mtime) < 3.0
        second = first.replace(b"old", b"new")
        assert len(second) == len(first)
        with open(log, "r+b") as f:  # same inode, same size, other bytes
            f.write(second)
        assert log.stat().st_ino == ino and log.stat().st_size == len(first)
        got = _collect(src, lambda g: any(u.reset for u in g if u.name == log.name))
        got += _collect(src, lambda g: len(_lines(got + g, log.name)) >= 20)
        assert _lines(got, log.name) == second.splitlines()
    finally:
        src.close()


@pytest.mark.slow
def test_unreachable_host_shows_disconnected_since(tmp_path, monkeypatch):
    monkeypatch.setenv("NSA_SSH_COMMAND", "ssh -F /dev/null -p 1 -o BatchMode=yes")
    src = RemoteRunSource("root@127.0.0.1", str(tmp_path), interval=0.2)
    try:
        deadline = time.monotonic() + 10
        while not src.last_error and time.monotonic() < deadline:
            time.sleep(0.1)
        text = src.describe()
        assert "disconnected since" in text and "connection refused" in text
        assert not src.connected
    finally:
        src.close()
