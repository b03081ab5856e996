"""FileTailer: appended bytes only, partial lines wait, truncation/rotation/deletion handled."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsa_tui.tail.file_tailer import FileTailer
from nsa_tui.tail.lines import LineSplitter

line_text = st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line_text, min_size=1, max_size=30), cuts=st.lists(st.integers(0, 2000), max_size=12))
def test_lines_split_at_random_byte_boundaries(tmp_path, lines, cuts):
    path = tmp_path / "hb.jsonl"
    path.unlink(missing_ok=True)
    data = "".join(x + "\n" for x in lines).encode()
    bounds = sorted({min(c, len(data)) for c in cuts} | {len(data)})
    t = FileTailer(path)
    got: list[bytes] = []
    written = 0
    for b in bounds:
        with open(path, "ab") as f:
            f.write(data[written:b])
        written = b
        chunk = t.poll()
        assert not chunk.reset
        got += chunk.lines
        # never a line that is not complete yet
        assert len(got) == data[:written].count(b"\n")
    assert got == [x.encode() for x in lines]
    assert t.offset == len(data)


def test_partial_line_waits_for_newline(tmp_path):
    p = tmp_path / "f.log"
    p.write_bytes(b'{"a":1}\n{"b":')
    t = FileTailer(p)
    assert t.poll().lines == [b'{"a":1}']
    assert t.poll().lines == []
    with open(p, "ab") as f:
        f.write(b"2}\n")
    assert t.poll().lines == [b'{"b":2}']


def test_missing_file_is_waited_for(tmp_path):
    p = tmp_path / "later.csv"
    t = FileTailer(p)
    assert not t.poll() and not t.exists
    p.write_text("a\nb\n")
    assert t.poll().lines == [b"a", b"b"]


def test_truncation_restarts_from_zero(tmp_path):
    p = tmp_path / "f.log"
    p.write_text("one\ntwo\nthree\n")
    t = FileTailer(p)
    assert len(t.poll().lines) == 3
    p.write_text("x\n")  # shorter: truncated and rewritten
    c = t.poll()
    assert c.reset and c.lines == [b"x"]


def test_rotation_reads_the_new_file(tmp_path):
    p = tmp_path / "train.log"
    p.write_text("old 1\nold 2\n")
    t = FileTailer(p)
    t.poll()
    os.rename(p, tmp_path / "train.log.1")
    p.write_text("new 1\nnew 2\nnew 3 is longer than the old file\n")
    c = t.poll()
    assert c.reset and c.lines == [b"new 1", b"new 2", b"new 3 is longer than the old file"]


def test_deletion_then_recreation(tmp_path):
    p = tmp_path / "hb.jsonl"
    p.write_text("a\n")
    t = FileTailer(p)
    assert t.poll().lines == [b"a"]
    p.unlink()
    assert not t.poll() and not t.exists
    p.write_text("b\n")
    c = t.poll()
    assert c.reset and c.lines == [b"b"]


def test_only_appended_bytes_are_read(tmp_path):
    p = tmp_path / "big.jsonl"
    p.write_bytes(b"x" * 1000 + b"\n")
    t = FileTailer(p)
    t.poll()
    with open(p, "ab") as f:
        f.write(b"y\n")
    assert t.poll().lines == [b"y"]
    assert t.offset == 1003


def test_a_rewrite_in_place_to_the_same_size_starts_over(tmp_path):
    """Same inode, same size, other bytes (a tool that rewrote the log): the old lines are void."""
    p = tmp_path / "train.log"
    p.write_bytes(b"a1\nb2\n")
    t = FileTailer(p)
    assert t.poll().lines == [b"a1", b"b2"]
    ino = p.stat().st_ino
    with open(p, "r+b") as f:
        f.write(b"c3\nd4\n")
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert p.stat().st_ino == ino
    chunk = t.poll()
    assert chunk.reset and chunk.lines == [b"c3", b"d4"]
    assert not t.poll()  # nothing moved since: no re-read


def test_a_longer_rewrite_in_place_is_not_taken_for_an_append(tmp_path):
    p = tmp_path / "hb.jsonl"
    p.write_bytes(b"old\n" * 40)
    t = FileTailer(p, window=64)  # the first read starts mid-file: the edge still comes from what was read
    assert t.poll().lines == [b"old"] * 15
    with open(p, "r+b") as f:
        f.write(b"new\n" * 50)
    chunk = t.poll()
    assert chunk.reset and chunk.lines == [b"new"] * 50
    with open(p, "ab") as f:
        f.write(b"more\n")
    chunk = t.poll()
    assert not chunk.reset and chunk.lines == [b"more"]


def test_line_splitter_strips_crlf_and_keeps_partial():
    s = LineSplitter()
    assert s.feed(b"a\r\nb") == [b"a"]
    assert s.pending == 1
    assert s.feed(b"\n") == [b"b"]


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(max_size=60)),
        st.tuples(st.just("truncate"), st.binary(max_size=10)),
        st.tuples(st.just("rotate"), st.binary(max_size=30)),
        st.tuples(st.just("delete"), st.just(b"")),
        st.tuples(st.just("create"), st.binary(max_size=30)),
        st.tuples(st.just("rewrite"), st.binary(max_size=30)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops)
def test_any_mix_of_appends_truncation_rotation_deletion(tmp_path, script):
    """After every poll, the lines read since the last reset are exactly the complete lines
    of the file as it is now (nothing lost, nothing twice, partial lines held back)."""
    d = tmp_path / f"case{abs(hash(tuple(script))) % 10**9}"
    d.mkdir()
    path = d / "hb.jsonl"
    t = FileTailer(path)
    seen: list[bytes] = []
    for n, (op, data) in enumerate(script):
        if op == "append":
            with open(path, "ab") as f:
                f.write(data)
        elif op == "truncate" and path.exists():
            path.write_bytes(data[: max(0, path.stat().st_size - 1)])  # strictly shorter
        elif op == "rotate" and path.exists():
            os.rename(path, d / f"old{n}")
            path.write_bytes(data)
        elif op == "delete" and path.exists():
            path.unlink()
        elif op == "create" and not path.exists():
            path.write_bytes(data)
        elif op == "rewrite" and path.exists():
            # in place, same inode, every old byte changed, then maybe longer; mtime moved for sure
            old = path.read_bytes()
            with open(path, "r+b") as f:
                f.write(bytes((b + 1) % 256 for b in old) + data)
            st_ = path.stat()
            os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))
        chunk = t.poll()
        if chunk.reset:
            seen = []
        seen += chunk.lines
        if path.exists():
            content = path.read_bytes()
            complete = content[: content.rfind(b"\n") + 1]
            assert seen == [ln[:-1] if ln.endswith(b"\r") else ln for ln in complete.split(b"\n")[:-1]]


def test_a_line_that_never_ends_does_not_grow_the_buffer_without_limit():
    """A binary file under a telemetry name (no newline for gigabytes) grew the dashboard's partial line without
    limit; what is kept past MAX_LINE_BYTES already makes the line one too long, dropped where it is read."""
    from nsa_tui.runs.tail import MAX_LINE_BYTES
    from nsa_tui.tail.lines import LineSplitter

    split = LineSplitter()
    for _ in range(5):
        assert split.feed_blob(b"x" * MAX_LINE_BYTES) == b""
    assert len(split._partial) == MAX_LINE_BYTES + 1
    [long, ok] = split.feed(b"\n{}\n")
    assert len(long) > MAX_LINE_BYTES and ok == b"{}"
