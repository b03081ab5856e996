"""Local files that cannot be used say why in one line naming the file (not datasets' "An error occurred while
generating the dataset"), in the trainer and in `nsa check`'s data path row alike."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nsa_train.config import load_config
from nsa_train.data import DataError
from nsa_train.data.sources import open_source
from nsa_tui.check_cheap import check_data_path

BAD_UTF8 = b"hello world\n\n" * 50 + b"\xff\xfe bad\n\n" + b"more text " * 50  # 0xff at byte 650


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def _refusal(make_cfg, path: Path, **data) -> str:
    cfg = make_cfg(source="local", path=str(path), **data)
    with pytest.raises(DataError) as e:
        open_source(cfg, 0, 1)
    msg = str(e.value)
    assert "DatasetGenerationError" not in msg and "An error occurred" not in msg and "\n" not in msg
    return msg


def _check_row(path: Path | str):
    return check_data_path(load_config(None, ["data.source=local", f"data.path={path}"]))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", r"empty\.txt holds no documents \(it is empty\)$"),
        ("newlines.txt", b"\n\n\r\n\n", r"newlines\.txt holds no documents \(it is blank\)$"),
        ("empty.jsonl", b"", r"empty\.jsonl holds no documents \(it is empty\)$"),
        ("bad.txt", BAD_UTF8, r"bad\.txt is not valid UTF-8 \(byte 0xff at position 650\): save it as UTF-8"),
        ("bin.txt", bytes(range(256)) * 200, r"bin\.txt is not valid UTF-8 \(byte 0x80 at position 128\)"),
    ],
    ids=["empty", "newlines", "empty-jsonl", "bad-utf8", "binary"],
)
def test_the_trainer_and_nsa_check_name_the_file_and_the_cause(
    tmp_path: Path, make_cfg, name: str, data: bytes, message: str
) -> None:
    path = _write(tmp_path, name, data)
    assert re.search(message, _refusal(make_cfg, path))
    row = _check_row(path)
    assert row.status == "fail" and re.search(message, row.reason), row.reason


def test_the_byte_position_is_the_files_not_a_decoder_chunks(tmp_path: Path, make_cfg, monkeypatch) -> None:
    """datasets reports the position inside the chunk it was decoding; the message gives the file offset, also
    where a character is cut by a chunk boundary of our own re-read."""
    from nsa_train.data import diagnose

    data = "é".encode() * 5000 + b"\n\n" + b"x\n\n" * 3 + b"\xc3("  # 0xc3 then no continuation byte
    path = _write(tmp_path, "far.txt", data)
    _write(tmp_path, "first.txt", "valid UTF-8, and read first")
    assert f"(byte 0xc3 at position {len(data) - 2})" in _refusal(make_cfg, path)
    # past datasets' 10 MB read chunk its error says e.g. "position 1020287" for byte 22000000 of the file
    in_chunk = UnicodeDecodeError("utf-8", b"ab\xc3(", 2, 3, "invalid continuation byte")
    files = [str(tmp_path / "first.txt"), str(path)]
    msg = diagnose.read_error("local files x", str(path), "text", files, "text", in_chunk)
    assert msg.startswith(f"{path} is not valid UTF-8 (byte 0xc3 at position {len(data) - 2})")
    monkeypatch.setattr(diagnose, "CHUNK", 7)  # odd: splits the 2-byte characters
    assert diagnose.first_invalid_utf8(str(path)) == (len(data) - 2, 0xC3)
    assert diagnose.first_invalid_utf8(str(path), limit=len(data) - 2) is None  # a budget that stops before it
    assert diagnose.first_invalid_utf8(str(_write(tmp_path, "cut.txt", b"ok \xc3"))) == (3, 0xC3)  # cut at the end


def test_several_empty_files_and_a_lone_empty_one(tmp_path: Path, make_cfg) -> None:
    _write(tmp_path, "d/a.txt", "")
    _write(tmp_path, "d/b.txt", "\n\n")
    assert _refusal(make_cfg, tmp_path / "d").endswith(
        "the 2 files of data.path " + f"{tmp_path / 'd'} hold no documents (all empty or blank)"
    )
    _write(tmp_path, "d/c.txt", "\n\n".join(f"paragraph {i}" for i in range(12)))
    assert len(open_source(make_cfg(source="local", path=str(tmp_path / "d")), 0, 1).val_texts()) == 8
    assert _check_row(tmp_path / "d").status == "pass"


@pytest.mark.parametrize("dict_split", [None, "train"])
def test_a_save_to_disk_directory_says_how_to_export_it(tmp_path: Path, make_cfg, dict_split) -> None:
    import datasets

    ds = datasets.Dataset.from_dict({"text": [f"doc {i}" for i in range(20)]})
    saved = tmp_path / "saved"
    (datasets.DatasetDict({"train": ds, "test": ds}) if dict_split else ds).save_to_disk(str(saved))
    msg = _refusal(make_cfg, saved)
    assert msg.startswith(f"data.path {saved} is a `datasets` save_to_disk directory")
    select = "['train']" if dict_split else ""
    out = f"{saved}-train.parquet" if dict_split else f"{saved}.parquet"
    assert f"datasets.load_from_disk('{saved}'){select}.to_parquet('{out}')" in msg and msg.endswith(f"to {out}")
    assert _check_row(saved).reason == msg  # before the thread: the rule of resolve_local_files
    parent = _refusal(make_cfg, tmp_path)  # data.path above it reads its JSON metadata too
    assert parent.startswith(f"data.path {tmp_path} holds {saved}, a `datasets` save_to_disk directory")


def test_a_stray_json_next_to_jsonl_is_named(tmp_path: Path, make_cfg) -> None:
    _write(tmp_path, "d/docs.jsonl", "".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(30)))
    _write(tmp_path, "d/config.json", json.dumps({"vocab": 5, "name": "x"}))
    msg = _refusal(make_cfg, tmp_path / "d")
    assert msg.startswith(f"{tmp_path / 'd' / 'config.json'} holds records without data.text_field 'text'")
    assert "(fields: ['name', 'vocab'])" in msg and msg.endswith(f"(e.g. {tmp_path / 'd' / '**' / '*.jsonl'})")


@pytest.mark.parametrize("stray", [["x", "y", "z"], [{"name": "a"}, {"name": "b"}]], ids=["strings", "records"])
def test_a_stray_json_that_loads_is_named_too(tmp_path: Path, make_cfg, stray) -> None:
    """A list of strings loaded as three documents ("x", "y", "z") and records without the text field as empty
    ones: the load succeeds, so the check that names a stray file ran only for the ones that failed it."""
    _write(tmp_path, "d/docs.jsonl", "".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(30)))
    _write(tmp_path, "d/meta.json", json.dumps(stray))
    msg = _refusal(make_cfg, tmp_path / "d")
    assert msg.startswith(f"{tmp_path / 'd' / 'meta.json'} holds records without data.text_field 'text'"), msg


def test_a_json_line_that_does_not_parse_is_named(tmp_path: Path, make_cfg) -> None:
    path = _write(tmp_path, "bad.jsonl", '{"text": "fine"}\n{"text": oops}\n')
    assert _refusal(make_cfg, path, val_docs=1) == f"{path} line 2 is not JSON (Expecting value)"


def test_a_file_that_is_not_parquet_is_named(tmp_path: Path, make_cfg) -> None:
    path = _write(tmp_path, "bad.parquet", "not parquet at all")
    assert _refusal(make_cfg, path).startswith(f"{path} is not a readable Parquet file (")


def test_other_causes_keep_the_innermost_reason(tmp_path: Path) -> None:
    from nsa_train.data.diagnose import read_error

    class DatasetGenerationError(Exception):  # datasets' wrapper, by name
        pass

    path = _write(tmp_path, "a.txt", "fine text\n\nmore")
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as inner:
            raise DatasetGenerationError("An error occurred while generating the dataset") from inner
    except DatasetGenerationError as e:
        msg = read_error("local files x", str(path), "text", [str(path)], "text", e)
    assert msg == "cannot read local files x: OSError: [Errno 28] No space left on device"


def test_paths_under_the_working_directory_are_shown_as_typed(tmp_path: Path, make_cfg, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "data/empty.txt", "")
    cfg = load_config(None, ["data.source=local", "data.path=data/empty.txt"])  # made absolute
    with pytest.raises(DataError, match=r"^data/empty\.txt holds no documents"):
        open_source(cfg, 0, 1)


# -- defect: a .txt with single newlines between paragraphs is one document ------------------------------------


def test_a_txt_without_blank_lines_says_how_txt_is_split(tmp_path: Path, make_cfg) -> None:
    path = _write(tmp_path, "lines.txt", "".join(f"line {i} of a paragraph\n" for i in range(40)))
    msg = _refusal(make_cfg, path)
    assert msg.startswith(f"data.path {path} has 1 document and data.val_docs=8 are held out: none left to train on")
    assert ".txt files are split into documents at blank lines and this file has none" in msg
    assert 'write .jsonl with one {"text": ...} object per document' in msg
    few = _write(tmp_path, "few.txt", "one\n\ntwo\n\nthree\n")
    assert _refusal(make_cfg, few, val_docs=3).endswith(
        "has 3 documents and data.val_docs=3 are held out: none left to train on. .txt files are split into "
        "documents at blank lines: lower data.val_docs, or give more text"
    )


def test_too_few_json_documents_have_no_txt_hint(jsonl_corpus, make_cfg) -> None:
    path, _ = jsonl_corpus
    msg = _refusal(make_cfg, path, text_field="body", val_docs=60)
    assert msg.endswith("has 60 documents and data.val_docs=60 are held out: none left to train on")


def test_nsa_check_reads_a_large_corpus_only_partly(tmp_path: Path, monkeypatch) -> None:
    import nsa_tui.check_cheap as cc

    path = _write(tmp_path, "big.txt", b"fine text\n\n" * 100_000 + b"\xff")  # 1.1 MB
    monkeypatch.setattr(cc, "DATA_READ_BUDGET", 1 << 20)
    row = _check_row(path)
    assert row.status == "pass" and row.reason.endswith("1 text file(s) (UTF-8 checked in at most the first 1 MiB)")
    monkeypatch.setattr(cc, "DATA_READ_BUDGET", 2 << 20)
    assert "is not valid UTF-8 (byte 0xff at position 1100000)" in _check_row(path).reason


def _jsonl_with_a_bad_document(path: Path, n: int = 40, bad: int = 23) -> int:
    """``n`` JSON-lines documents, document ``bad`` holding a 0xff byte in its string; returns that byte's offset."""
    lines = [json.dumps({"text": f"document {i} " + "words " * 20}).encode() for i in range(n)]
    lines[bad] = lines[bad].replace(b"words", b"wo\xffrds", 1)
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(data)
    return data.index(b"\xff")


def test_text_that_is_not_utf8_inside_jsonl_is_refused_at_the_start(tmp_path: Path, make_cfg) -> None:
    """pyarrow keeps the bytes and fails when the document is read: a run stopped at step 119 of 200 with
    "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff", naming neither the document nor the byte."""
    at = _jsonl_with_a_bad_document(tmp_path / "c.jsonl")
    msg = _refusal(make_cfg, tmp_path / "c.jsonl", val_docs=2)
    assert msg.startswith(f"{tmp_path / 'c.jsonl'} is not valid UTF-8 (byte 0xff at position {at})"), msg
    row = _check_row(tmp_path / "c.jsonl")  # nsa check reads JSON files' bytes too
    assert row.status == "fail" and f"byte 0xff at position {at}" in row.reason, row.reason


def _raw_strings(texts: list[bytes]):
    """A pyarrow string array holding the bytes as they are: pyarrow's readers keep invalid UTF-8 like this."""
    import pyarrow as pa

    offsets = pa.array([sum(map(len, texts[:i])) for i in range(len(texts) + 1)], pa.int32())
    return pa.Array.from_buffers(pa.string(), len(texts), [None, offsets.buffers()[1], pa.py_buffer(b"".join(texts))])


def test_the_first_bad_row_is_found_in_every_chunk_and_within_the_budget() -> None:
    import pyarrow as pa

    from nsa_train.data.diagnose import first_invalid_text_row

    good = [b"fine %d" % i for i in range(37)]
    for bad_at in (0, 1, 17, 36):
        texts = list(good)
        texts[bad_at] = b"x\xc3("
        col = pa.chunked_array([_raw_strings(good[:5]), _raw_strings(texts), _raw_strings(good)])
        assert first_invalid_text_row(col, 1 << 20) == 5 + bad_at
        assert first_invalid_text_row(col, 1) is None  # the first chunk spends the budget: the rest is not read
    assert first_invalid_text_row(pa.chunked_array([_raw_strings(good)]), 1 << 20) is None
    assert first_invalid_text_row(pa.chunked_array([pa.array([1, 2])]), 1 << 20) is None  # not text


def test_a_string_view_row_that_is_not_utf8_is_found() -> None:
    """string_view columns (newer pyarrow and pandas) are text: their bad bytes are looked for as a string's are."""
    import pyarrow as pa

    from nsa_train.data.diagnose import first_invalid_text_row

    raw = pa.array([b"fine", b"also fine", b"x\xc3(", b"fine"], pa.binary_view())
    assert first_invalid_text_row(pa.chunked_array([raw.view(pa.string_view())]), 1 << 20) == 2


def test_a_parquet_document_that_is_not_utf8_is_named_by_its_row(tmp_path: Path, make_cfg) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [b"parquet document %d " % i + b"words " * 10 for i in range(30)]
    texts[12] = b"bad \xff here"
    pq.write_table(pa.table({"text": _raw_strings(texts)}), tmp_path / "d.parquet")
    msg = _refusal(make_cfg, tmp_path / "d.parquet", val_docs=2)
    assert msg.startswith(f"document 12 of data.path {tmp_path / 'd.parquet'} (counted from 0 over its 1 file"), msg


def test_past_the_budget_the_document_is_named_when_it_is_read(tmp_path: Path, make_cfg, monkeypatch) -> None:
    from nsa_train.data import sources

    _jsonl_with_a_bad_document(tmp_path / "c.jsonl", n=40, bad=23)
    monkeypatch.setattr(sources, "UTF8_SCAN_BUDGET", 0)  # a corpus larger than the start's check reads
    cfg = make_cfg(source="local", path=str(tmp_path / "c.jsonl"), val_docs=2)
    with pytest.raises(DataError, match=r"^document 23 of .* holds text that is not valid UTF-8 \(invalid start"):
        source = open_source(cfg, 0, 1)
        for _ in source.train_texts(0, 0):
            pass


def test_a_utf16_file_is_told_to_be_converted_from_utf16(tmp_path: Path) -> None:
    """The hint said `iconv -f latin1`, which turns UTF-16 into text with a NUL between letters: and that passed."""
    from nsa_train.data.diagnose import utf8_problem

    (tmp_path / "w.txt").write_bytes("para one\n\npara two\n".encode("utf-16"))  # with its byte-order mark
    assert utf8_problem(str(tmp_path / "w.txt")) == (
        f"{tmp_path / 'w.txt'} is not valid UTF-8 (byte 0xff at position 0, which starts with a UTF-16 byte-order "
        "mark): save it as UTF-8 (e.g. iconv -f utf-16 -t utf-8), or move it out of data.path"
    )
    (tmp_path / "l.txt").write_bytes("caf\u00e9\n".encode("latin1"))
    assert "(byte 0xe9 at position 3): save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)" in utf8_problem(
        str(tmp_path / "l.txt")
    )


def _docs_jsonl(n: int, tag: str) -> str:
    return "".join(json.dumps({"text": f"{tag} document {i} " * 3, "id": i}) + "\n" for i in range(n))


def test_a_one_line_json_array_next_to_jsonl_is_its_records(tmp_path: Path, make_cfg) -> None:
    """json.dump without indent writes the array on one line: that line is the file's records, not one record that
    is a list (which named the file a stray one, "fields: a JSON list")."""
    _write(tmp_path, "d/a.jsonl", _docs_jsonl(10, "a"))
    _write(tmp_path, "d/b.json", json.dumps([{"text": f"b document {i}", "id": i} for i in range(10)]))
    source = open_source(make_cfg(source="local", path=str(tmp_path / "d"), val_docs=4), 0, 1)
    assert source.fingerprint is not None and source.fingerprint["documents"] == 20


@pytest.mark.parametrize(
    ("name", "blank"),
    [("a.jsonl", "\n"), ("a.jsonl", ""), ("a.jsonl", " \n\n"), ("a.json", "[]\n"), ("a.jsonl", "[]\n[]\n")],
    ids=["newline", "empty", "spaces", "empty-list", "lines-of-empty-lists"],
)
def test_a_blank_jsonl_sorted_first_is_left_out_and_named(tmp_path: Path, make_cfg, name: str, blank: str) -> None:
    """A blank .jsonl (or a `[]`) read first gave datasets an empty schema ("Couldn't cast text: string id: int64 to
    {}", "All the data files must have the same columns"), naming no file; `nsa check` failed an empty or blank one as
    "not JSON". It is left out, and both name it; the files the run reads are counted without it."""
    from nsa_train.data.sources import data_listing, skipped_files_warning

    corpus = tmp_path / "d"
    _write(tmp_path, f"d/{name}", blank)
    _write(tmp_path, "d/b.jsonl", _docs_jsonl(12, "b"))
    cfg = make_cfg(source="local", path=str(corpus), val_docs=4)
    source = open_source(cfg, 0, 1)
    assert source.fingerprint is not None and source.fingerprint["documents"] == 12
    assert source.files == 1  # data_summary.files: the files read
    # still listed: a resume compares the same files as run.json's listing, the blank one included
    assert [e[0] for e in source.fingerprint["listing"]] == [name, "b.jsonl"] == [e[0] for e in data_listing(cfg.data)]
    said = f"1 file(s) without documents not read ({corpus / name}: empty, blank or an empty list)"
    assert skipped_files_warning(str(corpus)) == f"data.path {corpus}: {said}"
    row = _check_row(corpus)
    assert row.status == "warn" and said in row.reason, row.reason


_KEY = (
    "the objects of the field '{where}' have the key '{key}' in {{b}} but not in the first file {{a}} (keys: {keys}): "
)


@pytest.mark.parametrize(
    ("first", "second", "said", "check"),
    [
        ({"a": 1}, "s", "the field 'meta' holds an object in {a} and text in {b}: ", "fail"),
        ("s", [1], "the field 'meta' holds text in {a} and a list in {b}: ", "fail"),
        (1, "x", "the field 'meta' holds a number in {a} and text in {b}: ", "pass"),  # "1" would load: unsure
        (None, 1, "the field 'meta' is in {b} but not in the first file {a}: ", "pass"),  # a.jsonl: no 'meta'
        # objects whose keys differ: fewer keys load, a key the first file's objects lack does not; `nsa check`
        # passes them (a file's other records may hold the key)
        ({"a": 1}, {"b": "x"}, _KEY.format(where="meta", key="b", keys=["a"]), "pass"),
        ({"a": 1}, {"a": 2, "b": "x"}, _KEY.format(where="meta", key="b", keys=["a"]), "pass"),
        ({"x": {"a": 1}}, {"x": {"b": 1}}, _KEY.format(where="meta.x", key="b", keys=["a"]), "pass"),
        ([{"a": 1}], [{"a": 2, "c": 1}], _KEY.format(where="meta[]", key="c", keys=["a"]), "pass"),
    ],
    ids=[
        "object-then-text",
        "text-then-list",
        "number-then-text",
        "missing-in-the-first",
        "object-keys-differ",
        "object-key-added",
        "nested-object-keys-differ",
        "list-of-objects-keys-differ",
    ],
)
def test_extra_fields_that_do_not_fit_the_first_file_are_named(
    tmp_path: Path, make_cfg, first: object, second: object, said: str, check: str
) -> None:
    """datasets casts every JSON file to the first one's fields and types, extra fields too: "Couldn't cast array of
    type string to {'a': Value('int64')}" (or "... because column names don't match") named neither the file nor
    the field. The trainer names both; `nsa check` (each file's first record) fails what always fails."""

    def records(tag: str, meta: object) -> str:
        extra = {} if meta is None else {"meta": meta}
        return "".join(json.dumps({"text": f"{tag} doc {i}", **extra}) + "\n" for i in range(9))

    a, b = _write(tmp_path, "d/a.jsonl", records("a", first)), _write(tmp_path, "d/b.jsonl", records("b", second))
    expected = said.format(a=a, b=b)
    assert _refusal(make_cfg, tmp_path / "d", val_docs=4).startswith(expected)
    row = _check_row(tmp_path / "d")
    assert row.status == check and (check == "pass" or row.reason.startswith(expected)), row.reason


def test_a_field_missing_from_the_first_file_names_the_first_file_read_not_a_blank_one(
    tmp_path: Path, make_cfg
) -> None:
    """A blank .jsonl sorted first is left out of the load: the message named it as "the first file" whose fields
    datasets takes, where the first file with records is."""

    def records(tag: str, extra: dict) -> str:
        return "".join(json.dumps({"text": f"{tag} doc {i}", **extra}) + "\n" for i in range(9))

    blank = _write(tmp_path, "d/0.jsonl", "\n")
    a, b = _write(tmp_path, "d/a.jsonl", records("a", {})), _write(tmp_path, "d/b.jsonl", records("b", {"meta": 1}))
    msg = _refusal(make_cfg, tmp_path / "d", val_docs=4)
    assert msg.startswith(f"the field 'meta' is in {b} but not in the first file {a}: "), msg
    assert str(blank) not in msg


def test_text_that_is_a_list_is_said_before_the_document_count(tmp_path: Path, make_cfg) -> None:
    """A .json object of lists loads as one document whose text is a list: "has 1 document and data.val_docs=4 are
    held out" hid what is wrong."""
    path = _write(tmp_path, "a.json", json.dumps({"text": [f"sentence {i}" for i in range(40)]}))
    msg = _refusal(make_cfg, path, val_docs=4)
    assert msg.startswith("data.text_field 'text' of data.path") and "list" in msg and "held out" not in msg, msg


@pytest.mark.parametrize("kind", ["named pipe", "character device"])
def test_a_data_path_that_is_no_regular_file_is_refused_by_what_it_is(tmp_path: Path, make_cfg, kind: str) -> None:
    """A named pipe passed the launch checks, then the trainer said "cannot read local files ...hang.txt:
    FileNotFoundError: Unable to find ...hang.txt" (and reading one waits for a writer that never comes)."""
    import os

    if kind == "named pipe":
        path = tmp_path / "hang.txt"
        os.mkfifo(path)
    else:
        path = Path("/dev/null")
    said = f"data.path {str(path)!r} is a {kind}, not a file or a directory"
    msg = _refusal(make_cfg, path)
    assert msg.startswith(said), msg
    row = _check_row(path)
    assert (row.status, row.reason) == ("fail", msg)


@pytest.mark.parametrize("as_glob", [False, True])
def test_a_named_pipe_in_a_data_directory_is_left_out_and_named(tmp_path: Path, make_cfg, as_glob: bool) -> None:
    """As a link to nothing there: not read, and said at the start (a silent skip looks like part of the corpus);
    a glob that matches one said nothing of it."""
    import os

    d = tmp_path / "corpus"
    _write(d, "a.txt", "".join(f"doc {i}\n\n" for i in range(20)))
    os.mkfifo(d / "b.txt")
    os.mkfifo(d / ".hidden.txt")  # hidden: left out without a word, as hidden files are
    path = f"{d}/*.txt" if as_glob else str(d)
    cfg = make_cfg(source="local", path=path, val_docs=2)
    assert len(open_source(cfg, 0, 1).val_texts()) == 2  # the pipe is not opened: this would wait forever
    row = _check_row(path)
    assert row.status == "warn", row.reason
    assert row.reason == (
        f"1 text file(s) read; data.path {path}: 1 entry that is not a file not read ({d / 'b.txt'}: a named pipe)"
    )
