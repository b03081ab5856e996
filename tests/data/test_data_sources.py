"""Local .txt/.jsonl/.parquet sources, the hub streaming path (on a local stand-in), and bad paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from fixtures.corpora import few_distinct, rank1_dealt_nothing

from nsa_train.data import DataError, TrainStream, build_tokenizer, val_batches
from nsa_train.data.sources import hub_hint, open_source, resolve_local_files


def _stream_text(cfg, n_batches: int, rank: int = 0, world_size: int = 1) -> str:
    tok = build_tokenizer(cfg.data)
    stream = TrainStream(cfg, tok, rank, world_size, 2)
    try:
        return "".join(tok.decode(next(stream)[0].reshape(-1).tolist()) for _ in range(n_batches))
    finally:
        stream.close()


def test_txt_files_give_one_document_per_paragraph(tmp_path: Path, make_cfg) -> None:
    (tmp_path / "a.txt").write_text("First para\nstill first.\n\nSecond para.\n\n\n\nThird para.\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Fourth para.\n\nFifth para.\n", encoding="utf-8")
    cfg = make_cfg(seq_len=16, source="local", path=str(tmp_path), val_docs=1)
    source = open_source(cfg, 0, 1)
    docs = source.val_texts() + [t for _, t in source.train_texts(0, 0)]
    assert sorted(d.strip() for d in docs) == sorted(
        ["First para\nstill first.", "Second para.", "Third para.", "Fourth para.", "Fifth para."]
    )
    text = _stream_text(cfg, 20)  # 640 tokens: every training paragraph comes by
    for doc in docs:
        assert (doc.strip() in text) == (doc not in source.val_texts()), doc


def test_jsonl_source_reads_the_text_field(jsonl_corpus, make_cfg) -> None:
    path, docs = jsonl_corpus
    cfg = make_cfg(source="local", path=str(path), text_field="body", val_docs=4)
    source = open_source(cfg, 0, 1)
    train = [t for _, t in source.train_texts(0, 0)]
    assert sorted(train + source.val_texts()) == sorted(docs)
    assert "<doc 00" in _stream_text(cfg, 3)


def test_parquet_file_and_glob(parquet_dir, make_cfg) -> None:
    root, docs = parquet_dir
    cfg = make_cfg(source="local", path=str(root / "data" / "train-0000[01].parquet"), val_docs=2)
    source = open_source(cfg, 0, 1)
    assert sorted([t for _, t in source.train_texts(0, 0)] + source.val_texts()) == sorted(docs[:40])
    single = make_cfg(source="local", path=str(root / "data" / "train-00003.parquet"), val_docs=2)
    assert "<doc 00" in _stream_text(single, 2)


def test_a_text_field_for_txt_files_is_an_error_before_the_thread(tmp_path: Path, make_cfg) -> None:
    (tmp_path / "a.txt").write_text("One paragraph.\n\nAnother one.\n")
    cfg = make_cfg(source="local", path=str(tmp_path / "a.txt"), text_field="body")
    with pytest.raises(DataError, match=r"data.text_field 'body' is not read from the .txt files"):
        TrainStream(cfg, build_tokenizer(cfg.data), 0, 1, 2)


def test_missing_path_is_named_at_construction(tmp_path: Path, make_cfg) -> None:
    cfg = make_cfg(source="local", path=str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match=r"data.path '.*nope.jsonl' does not exist"):
        TrainStream(cfg, build_tokenizer(cfg.data), 0, 1, 2)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "no .txt/.jsonl/.json/.parquet files"),
        (["a.txt", "b.jsonl"], "mixes file types"),
    ],
)
def test_bad_directories(tmp_path: Path, files: list[str], message: str) -> None:
    for name in files:
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        resolve_local_files(str(tmp_path))


def test_unsupported_and_unmatched_globs(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="unsupported file type '.md'"):
        resolve_local_files(str(tmp_path / "*.md"))
    with pytest.raises(DataError, match="matches no files"):
        resolve_local_files(str(tmp_path / "*.parquet"))


def test_corrupt_jsonl_is_a_data_error(tmp_path: Path, make_cfg) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": oops\n', encoding="utf-8")
    cfg = make_cfg(source="local", path=str(bad), val_docs=1)
    with pytest.raises(DataError, match=r"bad\.jsonl line 2 is not JSON \(Expecting value\)$"):  # its file and line
        open_source(cfg, 0, 1)


def test_too_few_documents_for_the_holdout(jsonl_corpus, make_cfg) -> None:
    path, _ = jsonl_corpus
    cfg = make_cfg(source="local", path=str(path), text_field="body", val_docs=60)
    with pytest.raises(DataError, match="none left to train on"):
        open_source(cfg, 0, 1)


# -- the hub path: load_dataset(hf_name, hf_config, split=..., streaming=True) on a local dataset directory ------


@pytest.fixture
def no_shutdown_sleep(hf_cache, monkeypatch: pytest.MonkeyPatch) -> None:
    """`datasets` sleeps 5 s whenever a shuffled multi-shard stream ends (an Arrow thread-shutdown workaround).

    Real hub streams end once per epoch; these tests end dozens of tiny ones, so skip the pause.
    """
    import datasets

    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)


def test_hub_stream_holds_out_the_first_documents_and_shards_disjointly(
    parquet_dir, make_cfg, no_shutdown_sleep
) -> None:
    root, docs = parquet_dir
    cfg = make_cfg(source="hf", hf_name=str(root), hf_config=None, val_docs=5)
    shards = [open_source(cfg, rank, 2) for rank in range(2)]
    assert shards[0].val_texts() == docs[:5] == shards[1].val_texts()
    epoch0 = [[t for _, t in s.train_texts(0, 0)] for s in shards]
    assert not set(epoch0[0]) & set(epoch0[1])
    assert sorted(epoch0[0] + epoch0[1]) == sorted(docs[5:])
    epoch1 = [t for _, t in shards[0].train_texts(1, 0)]
    assert sorted(epoch1) == sorted(epoch0[0]) and epoch1 != epoch0[0]  # same shard, new order


def test_hub_stream_resumes_exactly_across_epochs(parquet_dir, make_cfg, no_shutdown_sleep) -> None:
    root, _ = parquet_dir
    cfg = make_cfg(seq_len=32, source="hf", hf_name=str(root), hf_config=None, val_docs=5)
    tok = build_tokenizer(cfg.data)
    stream = TrainStream(cfg, tok, 1, 2, 4)
    batches, states = [], []
    while not states or states[-1]["epoch"] < 1 or len(batches) < 3:
        batches.append(next(stream))
        states.append(stream.state_dict())
    batches += [next(stream) for _ in range(4)]
    stream.close()
    k = len(states) - 3  # resume shortly before the epoch boundary: replays the shard up to that document
    resumed = TrainStream(cfg, tok, 1, 2, 4)
    resumed.load_state_dict(states[k])
    try:
        for x, _ in batches[k + 1 :]:
            assert torch.equal(next(resumed)[0], x)
    finally:
        resumed.close()
    assert len(val_batches(cfg, tok, 1, 2, 0, 2)) >= 1


@pytest.mark.slow
def test_local_and_embedded_sources_never_touch_the_network(jsonl_corpus) -> None:
    path, _ = jsonl_corpus
    code = textwrap.dedent(
        f"""
        import socket
        def refuse(*args, **kwargs):
            raise AssertionError(f"network attempt: {{args}}")
        socket.socket.connect = refuse
        socket.getaddrinfo = refuse
        import os
        from nsa_train.config.schema import Config, DataConfig
        from nsa_train.data import TrainStream, build_tokenizer, val_batches
        for data in (DataConfig(), DataConfig(source="local", path={str(path)!r}, text_field="body", val_docs=2)):
            cfg = Config(data=data)
            tok = build_tokenizer(cfg.data)
            stream = TrainStream(cfg, tok, 0, 1, 2)
            next(stream)
            stream.close()
            val_batches(cfg, tok, 1, 1, 0, 1)
        assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_DATASETS_OFFLINE"] == "1"
        import datasets
        assert datasets.config.HF_HUB_OFFLINE
        print("offline ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_HOME"] = str(path.parent / "hf-home")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "offline ok" in out.stdout, out.stdout + out.stderr


def test_unreachable_hub_says_what_to_do(tmp_path: Path) -> None:
    """A hub dataset that cannot be reached (here: offline mode, which datasets reports as ConnectionError like a
    failed DNS lookup) fails at once with the dataset's name, the reason and the way out."""
    code = textwrap.dedent(
        """
        from nsa_train.config.schema import Config, DataConfig
        from nsa_train.data import DataError
        from nsa_train.data.sources import open_source
        try:
            open_source(Config(data=DataConfig(source="hf", hf_name="someone/big-corpus", hf_config="x")), 0, 1)
        except DataError as e:
            print("DataError:", e)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "DataError: cannot open hf dataset someone/big-corpus (x) split train: ConnectionError: " in out.stdout, (
        out.stdout + out.stderr
    )
    assert "HF_HUB_OFFLINE set here: train where the hub is reachable, or save the data as" in out.stdout


def test_hub_hint_names_the_cause() -> None:
    online = hub_hint(ConnectionError("Couldn't reach 'a/b' on the Hub"), {})
    assert online.startswith(". This machine cannot reach the Hugging Face Hub: ") and "data.source=local" in online
    both = hub_hint(ConnectionError("x"), {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "ON"})
    assert both.startswith(". HF_HUB_OFFLINE and HF_DATASETS_OFFLINE set here: ")
    assert hub_hint(ConnectionError("x"), {"HF_HUB_OFFLINE": "0"}) == online
    assert hub_hint(PermissionError("gated dataset"), {}) == ""  # not a reachability problem: its own text


def test_parquet_without_the_text_field(tmp_path: Path, make_cfg) -> None:
    pd.DataFrame({"content": ["a", "b", "c"]}).to_parquet(tmp_path / "x.parquet")
    cfg = make_cfg(source="local", path=str(tmp_path / "x.parquet"), val_docs=1)
    with pytest.raises(DataError, match=r"data.text_field 'text' is not a column .*\['content'\]"):
        open_source(cfg, 0, 1)


def test_json_array_file(tmp_path: Path, make_cfg) -> None:
    (tmp_path / "docs.json").write_text(json.dumps([{"text": f"document {i}"} for i in range(5)]), encoding="utf-8")
    cfg = make_cfg(seq_len=8, source="local", path=str(tmp_path / "docs.json"), val_docs=1)
    assert "document" in _stream_text(cfg, 2)


class _SlowShard:
    """A shard whose documents arrive every ``delay`` s (a slow network), or stop coming after ``stall_at``."""

    def __init__(self, shard, delay: float, stall_at: int | None = None) -> None:
        self.shard, self.delay, self.stall_at = shard, delay, stall_at

    def set_epoch(self, epoch: int) -> None:
        self.shard.set_epoch(epoch)

    def __iter__(self):
        for k, row in enumerate(self.shard):
            time.sleep(600 if k == self.stall_at else self.delay)
            yield row


def _resume_state(cfg, tok, batches: int) -> tuple[dict, torch.Tensor]:
    """The data position after ``batches`` batches of rank 0, and the batch that follows it."""
    stream = TrainStream(cfg, tok, 0, 1, 8)
    try:
        for _ in range(batches):
            next(stream)
        state = stream.state_dict()
        return state, next(stream)[0]
    finally:
        stream.close()


def test_a_resume_that_replays_a_slow_stream_is_progress_not_a_timeout(
    parquet_dir, make_cfg, no_shutdown_sleep, monkeypatch
) -> None:
    """Re-reading a hub stream up to the saved document takes as long as the stream needs: longer than
    data.first_batch_timeout_s after days of training. While documents come, it is not a stalled source; the
    trainer hears how far it got (every WAIT_REPORT_S) to say so."""
    import datasets.distributed

    from nsa_train.data import stream as stream_mod

    root, _ = parquet_dir
    cfg = make_cfg(seq_len=64, source="hf", hf_name=str(root), hf_config=None, val_docs=5, first_batch_timeout_s=0.6)
    tok = build_tokenizer(cfg.data)
    state, expected = _resume_state(cfg, tok, 12)
    assert state["doc"] >= 15  # a replay of at least 15 documents at 0.1 s: ~2.5x the timeout
    split = datasets.distributed.split_dataset_by_node
    monkeypatch.setattr(datasets.distributed, "split_dataset_by_node", lambda *a, **k: _SlowShard(split(*a, **k), 0.1))
    monkeypatch.setattr(stream_mod, "WAIT_REPORT_S", 0.3)
    resumed = TrainStream(cfg, tok, 0, 1, 8)
    heard: list[tuple[float, int, int]] = []
    resumed.on_first_batch_wait = lambda *report: heard.append(report)
    resumed.load_state_dict(state)
    try:
        assert torch.equal(next(resumed)[0], expected)  # exact, however slowly
    finally:
        resumed.close()
    assert len(heard) >= 3 and all(target == state["doc"] for _, _, target in heard)
    replayed = [r for _, r, _ in heard]
    assert replayed == sorted(replayed) and replayed[-1] > replayed[0] > 0


def test_a_replay_that_stops_is_one_error_naming_it(parquet_dir, make_cfg, no_shutdown_sleep, monkeypatch) -> None:
    import datasets.distributed

    root, _ = parquet_dir
    cfg = make_cfg(seq_len=64, source="hf", hf_name=str(root), hf_config=None, val_docs=5, first_batch_timeout_s=0.6)
    tok = build_tokenizer(cfg.data)
    state, _ = _resume_state(cfg, tok, 12)
    split = datasets.distributed.split_dataset_by_node
    stalled = lambda *a, **k: _SlowShard(split(*a, **k), 0.0, stall_at=6)  # noqa: E731
    monkeypatch.setattr(datasets.distributed, "split_dataset_by_node", stalled)
    resumed = TrainStream(cfg, tok, 0, 1, 8)
    resumed.load_state_dict(state)
    try:
        stopped = rf"replay of .* to its saved document {state['doc']} stopped at 6 for 0.6s"
        with pytest.raises(DataError, match=stopped):
            next(resumed)
    finally:
        resumed.close()


def test_an_existing_path_with_glob_characters_is_itself(tmp_path: Path, make_cfg) -> None:
    """`data/x[1]/one.jsonl` was a glob matching `data/x1/one.jsonl`: another file, trained on without a word."""
    (tmp_path / "x[1]").mkdir()
    (tmp_path / "x1").mkdir()
    (tmp_path / "x[1]" / "one.jsonl").write_text("".join(json.dumps({"text": f"right {i}"}) + "\n" for i in range(6)))
    (tmp_path / "x1" / "one.jsonl").write_text("".join(json.dumps({"text": f"wrong {i}"}) + "\n" for i in range(6)))
    named = str(tmp_path / "x[1]" / "one.jsonl")
    assert resolve_local_files(named) == ("json", [named])
    assert resolve_local_files(str(tmp_path / "x[1]")) == ("json", [named])  # a directory: "the glob matches no files"
    source = open_source(make_cfg(source="local", path=named, val_docs=1), 0, 1)
    listed = [entry[:2] for entry in source.fingerprint["listing"]]  # [name, bytes, sample]
    assert listed == [["one.jsonl", (tmp_path / "x[1]" / "one.jsonl").stat().st_size]]
    assert all(t.startswith("right") for t in source.val_texts() + [t for _, t in source.train_texts(0, 0)])
    # a glob still is one when nothing has its name (`[1]` in it a character class, as in any glob)
    assert resolve_local_files(str(tmp_path / "x?" / "one.jsonl")) == ("json", [str(tmp_path / "x1" / "one.jsonl")])
    assert resolve_local_files(str(tmp_path / "x[1]" / "*.jsonl")) == ("json", [str(tmp_path / "x1" / "one.jsonl")])


def test_a_directory_leaves_out_hidden_files_and_names_the_kinds_it_does_not_read(tmp_path: Path) -> None:
    from nsa_train.data.sources import skipped_files_warning

    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "a-checkpoint.txt").write_text("one\n\ntwo\n")  # was trained on twice
    (tmp_path / ".hidden.txt").write_text("x\n")
    assert resolve_local_files(str(tmp_path)) == ("text", [str(tmp_path / "a.txt")])
    assert skipped_files_warning(str(tmp_path)) is None
    (tmp_path / "data.csv").write_text("text\nx\n")  # left out without a word
    warning = skipped_files_warning(str(tmp_path))
    assert warning == (
        f"data.path {tmp_path}: 1 file(s) of another kind not read ({tmp_path / 'data.csv'}): "
        "only .txt, .jsonl, .json, .parquet are"
    )


def test_a_linked_directory_is_read_once_and_a_link_up_the_tree_is_no_loop(tmp_path: Path) -> None:
    """Shards linked in from another disk were skipped without a word (a `**` glob read them)."""
    corpus, shards = tmp_path / "corpus", tmp_path / "elsewhere" / "shards"
    (corpus / "real").mkdir(parents=True)
    shards.mkdir(parents=True)
    (corpus / "real" / "a.txt").write_text("one\n\ntwo\n")
    (shards / "s1.txt").write_text("three\n\nfour\n")
    (corpus / "shards").symlink_to(shards)
    (corpus / "again").symlink_to(shards)  # the same directory twice: read once
    (corpus / "real" / "up").symlink_to(corpus)  # a loop
    kind, files = resolve_local_files(str(corpus))
    assert kind == "text" and sorted(Path(f).relative_to(corpus).as_posix() for f in files) == [
        "again/s1.txt",
        "real/a.txt",
    ], files
    from nsa_train.data.sources import skipped_files_warning

    assert skipped_files_warning(str(corpus)) is None
    (corpus / "disk2").symlink_to(tmp_path / "not-mounted" / "shards")  # a disk not mounted: said, not skipped
    assert skipped_files_warning(str(corpus)) == (
        f"data.path {corpus}: 1 link(s) to nothing not read ({corpus / 'disk2'} -> "
        f"{tmp_path / 'not-mounted' / 'shards'}): a disk not mounted?"
    )


def _mixed(n: int, bad: dict[int, object]) -> list[dict[str, object]]:
    return [({"text": bad[i]} if bad[i] != "<missing>" else {"body": "x"}) if i in bad else {"text": f"doc {i}"}
            for i in range(n)]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        # half the records name their text "content": they were empty documents, skipped
        (
            [{"text" if i % 2 else "content": f"doc {i}"} for i in range(20)],
            "data.text_field 'text' of data.path {p}: 10 of 20 records hold no text: missing or null in record 0 "
            "(counted from 0 over its 1 file in order); give every record its text, or set data.text_field to the "
            "field that holds it",
        ),
        # a number among strings passed the start and stopped the run when training reached it
        (
            [{"text": f"doc {i}"} for i in range(20)] + [{"text": 12345}],
            "data.text_field 'text' of data.path {p}: 1 of 21 records holds no text: a number (12345) in record 20 "
            "(counted from 0 over its 1 file in order); give every record its text, or set data.text_field to the "
            "field that holds it",
        ),
        # the first bad record of any kind is named, and every one counted (null was named first, none counted)
        (
            _mixed(300, {5: ["a", "b"], 10: None, 20: 7, 30: "<missing>", 40: 8, 41: {"t": 1}, 50: True}),
            'data.text_field \'text\' of data.path {p}: 7 of 300 records hold no text: a list (["a","b"]) in '
            'record 5, missing or null in record 10, a number (7) in record 20, an object ({{"t":1}}) in record '
            "41, a boolean (true) in record 50 (counted from 0 over its 1 file in order); give every record its "
            "text, or set data.text_field to the field that holds it",
        ),
        (
            [{"text": i} for i in range(20)],
            "data.text_field 'text' of data.path {p} holds int64 values, not text: set data.text_field to the text's "
            "field",
        ),
    ],
    ids=["missing-in-half", "a-number-among-strings", "mixed-kinds", "numbers"],
)
def test_records_without_text_are_refused_at_the_start(tmp_path: Path, make_cfg, rows, says) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as e:
        open_source(make_cfg(source="local", path=str(path), val_docs=2), 0, 1)
    assert str(e.value) == says.format(p=path)


def test_a_parquet_text_column_of_string_view_is_trained_on(tmp_path: Path, make_cfg) -> None:
    """Newer pyarrow and pandas write text as string_view: it was refused as "holds string_view values, not text",
    and pyarrow's string kernels (the empty-document count, the data summary) have no string_view variant."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nsa_train.data.summary import data_summary

    docs = [f"doc {i} " + "w" * i for i in range(12)] + ["   "]
    pq.write_table(pa.table({"text": pa.array(docs, type=pa.string_view())}), tmp_path / "a.parquet")
    cfg = make_cfg(source="local", path=str(tmp_path / "a.parquet"), val_docs=2)
    source = open_source(cfg, 0, 1)
    assert pa.types.is_string_view(source.text_column().type)  # read as written: the cast is not a no-op here
    train = [t for _, t in source.train_texts(0, 0)]
    blank_held_out = "   " in source.val_texts()
    assert sorted(source.val_texts() + train) == sorted(docs if blank_held_out else docs[:-1])  # blank: skipped
    summary = data_summary(cfg, source, "byte")
    assert summary["empty_documents"] == (0 if blank_held_out else 1)
    assert summary["train_documents"] == len(train) and summary["train_bytes"] == sum(len(t.encode()) for t in train)


def test_a_byte_order_mark_of_a_txt_file_is_not_text(tmp_path: Path, make_cfg) -> None:
    """Windows editors start a UTF-8 file with U+FEFF: its 3 bytes were trained on as the first document's start."""
    (tmp_path / "a.txt").write_bytes("\ufeffFirst one.\n\nSecond one.\n".encode())
    (tmp_path / "b.txt").write_bytes("\ufeffThird one.\n\nFourth \ufeff inside.\n".encode())
    source = open_source(make_cfg(source="local", path=str(tmp_path), val_docs=1), 0, 1)
    docs = source.val_texts() + [t for _, t in source.train_texts(0, 0)]
    assert sorted(d.strip() for d in docs) == ["First one.", "Fourth \ufeff inside.", "Second one.", "Third one."]


def test_parquet_files_whose_other_columns_differ_are_read(tmp_path: Path, make_cfg) -> None:
    """An `id` column in one file, a `url` in another: datasets' cast failed ("column names don't match") naming
    no file. Only the text column is read; a file without it is named."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [f"a{i}" for i in range(4)], "id": list(range(4))}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"text": [f"b{i}" for i in range(4)], "url": ["u"] * 4}), tmp_path / "b.parquet")
    source = open_source(make_cfg(source="local", path=str(tmp_path), val_docs=2), 0, 1)
    assert len(source.val_texts()) + len(list(source.train_texts(0, 0))) == 8
    pq.write_table(pa.table({"body": ["c"] * 4}), tmp_path / "c.parquet")
    with pytest.raises(DataError) as e:
        open_source(make_cfg(source="local", path=str(tmp_path), val_docs=2), 0, 1)
    assert str(e.value) == (
        f"data.text_field 'text' is not a column of {tmp_path / 'c.parquet'} (columns: ['body']): set "
        "data.text_field to the column holding the text"
    )


def test_a_parquet_part_file_with_no_rows_holds_no_documents(tmp_path: Path, make_cfg) -> None:
    """A filter or dedup job's empty part file (0 rows) stopped the whole read: "ArrowInvalid: BatchSize must be
    greater than 0", naming no file. It holds no documents, as an empty .jsonl; all of them empty is too few."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [f"a{i}" for i in range(6)]}), tmp_path / "part-0.parquet")
    pq.write_table(pa.table({"text": pa.array([], type=pa.string())}), tmp_path / "part-1.parquet")
    source = open_source(make_cfg(source="local", path=str(tmp_path), val_docs=2), 0, 1)
    assert len(source.val_texts()) + len(list(source.train_texts(0, 0))) == 6
    (tmp_path / "part-0.parquet").unlink()
    with pytest.raises(DataError) as e:
        open_source(make_cfg(source="local", path=str(tmp_path), val_docs=2), 0, 1)
    assert str(e.value).startswith(f"data.path {tmp_path} has 0 documents and data.val_docs=2 are held out"), e.value


def test_a_corpus_of_copies_of_its_held_out_texts_is_refused_at_the_start(tmp_path: Path, make_cfg) -> None:
    """100 copies of one boilerplate text: every training document equals a held-out one and is skipped (a held-out
    text is never trained on). The start counted 92 training documents, passed the every-rank check, and each rank
    failed once training began ("epoch 0 has no training documents for this rank")."""
    path = tmp_path / "dupes.jsonl"
    path.write_text("".join(json.dumps({"text": "same boilerplate text " * 30}) + "\n" for _ in range(100)))
    for world in (1, 2):
        with pytest.raises(DataError) as e:
            open_source(make_cfg(source="local", path=str(path), val_docs=8), 0, world)
        assert e.value.every_rank
        ranks = " for 2 ranks" if world == 2 else ""
        assert f"has 0 training documents{ranks} (100 documents, data.val_docs=8 held out, 92 equal a held-out " in str(
            e.value
        ), e.value


def _epochs_of(source, epochs: int) -> list[tuple[int, int]]:
    """(epoch, document) of the rank's stream (doc_tokens) until it reaches `epochs`."""
    from nsa_train.data.packing import Position
    from nsa_train.data.stream import doc_tokens
    from nsa_train.data.tokenizer import ByteTokenizer

    out = []
    for doc in doc_tokens(source, ByteTokenizer(), Position(0, 0, 0)):
        if doc.start.epoch >= epochs:
            return out
        out.append((doc.start.epoch, doc.start.doc))
    raise AssertionError("unreachable: the stream never ends")


def test_an_epoch_that_deals_a_rank_no_training_document_is_passed_over_in_the_same_order(
    tmp_path: Path, make_cfg
) -> None:
    """Two distinct documents among copies of the held-out text, on two ranks: enough at the start, but an epoch's
    deal can give both to one rank, and the other failed there ("epoch 0 has no training documents for this rank"),
    which every seed met within three epochs: hours into a run. That rank now passes over such an epoch; the order
    of the documents it reads, and of every epoch, is the deal's as before (a resume depends on it)."""
    path = few_distinct(tmp_path)
    passed_over = []
    for seed in range(6):
        cfg = make_cfg(source="local", path=str(path), val_docs=1, seed=seed)
        for rank in (0, 1):
            try:
                source = open_source(cfg, rank, 2)
            except DataError:  # a distinct document held out: one left for two ranks, refused at the start
                continue
            trained = set(source.trained().index)
            dealt = [(e, k) for e in range(3) for k, i in enumerate(source.rank_order(e)) if i in trained]
            assert _epochs_of(source, 3) == dealt
            passed_over += [(seed, e) for e in range(3) if e not in {e_ for e_, _ in dealt}]
    assert len({seed for seed, _ in passed_over}) >= 3, passed_over  # the case was met, for most seeds


def test_a_resume_after_an_epoch_passed_over_lands_on_the_same_document(tmp_path: Path, make_cfg) -> None:
    """The saved position of a rank that passed over an epoch is in the epoch it went on with: a resume from it
    continues with the same tokens, and the rank counts the epoch it passed over."""
    cfg, _ = rank1_dealt_nothing(few_distinct(tmp_path), make_cfg, 6)
    tok = build_tokenizer(cfg.data)
    stream = TrainStream(cfg, tok, 1, 2, 1)
    told: list[tuple[int, str, int]] = []
    stream.on_empty_epoch = lambda epoch, why, count: told.append((epoch, why, count))
    try:
        next(stream)
        state = json.loads(json.dumps(stream.state_dict()))
        rest = [next(stream)[0] for _ in range(6)]
    finally:
        stream.close()
    assert state["epoch"] >= 1 and told[0][:1] == (0,) and told[0][2] == 1 and stream.empty_epochs >= 1, (state, told)
    assert told[0][1].endswith("equal a validation document (held-out texts are never trained on)"), told
    resumed = TrainStream(cfg, tok, 1, 2, 1)
    resumed.load_state_dict(state)
    try:
        again = [next(resumed)[0] for _ in range(6)]
    finally:
        resumed.close()
    assert all(torch.equal(x, x2) for x, x2 in zip(rest, again, strict=True))


def test_epochs_in_a_row_that_deal_a_rank_nothing_are_an_error_naming_why(tmp_path: Path, make_cfg) -> None:
    """Passing over is bounded: an endless run of empty epochs (a corpus changed under the run, not chance) stops
    with why, not a rank that spins while the others wait at their next collective."""
    path = few_distinct(tmp_path)
    for seed in range(200):
        try:
            source = open_source(make_cfg(source="local", path=str(path), val_docs=1, seed=seed), 0, 2)
        except DataError:
            continue
        trained = set(source.trained().index)
        if not any(set(source.rank_order(e)) & trained for e in (0, 1)):
            break
    else:
        raise AssertionError("no seed deals rank 0 nothing in epochs 0 and 1")
    source.empty_epoch_limit = 2  # the bound is MAP_EMPTY_EPOCH_LIMIT: two in a row are what this corpus can show
    with pytest.raises(DataError) as e:
        _epochs_of(source, 3)
    assert str(e.value) == (
        f"local files {path}: epochs 0 to 1 had no training documents for this rank (2 in a row; in epoch 1, of its "
        "6 documents, 6 equal a validation document (held-out texts are never trained on)): give more distinct "
        "documents, lower data.val_docs or train on fewer ranks"
    )


def test_a_paragraph_held_out_is_not_trained_on_from_the_end_of_another_file(tmp_path: Path, make_cfg) -> None:
    """The text loader keeps the line break after a file's last paragraph only: a paragraph held out from the
    middle of one file, found again at the end of another, hashed apart and was trained on."""
    secret = "THE SECRET PARAGRAPH that appears twice"
    a = [f"a paragraph number {i} with text" for i in range(20)] + [secret]
    b = [f"b paragraph number {i} with text" for i in range(10)] + [secret] + [f"b more {i}" for i in range(10)]
    (tmp_path / "a.txt").write_text("\n\n".join(a) + "\n")
    (tmp_path / "b.txt").write_text("\n\n".join(b) + "\n")
    held_out = 0
    for seed in range(40):
        source = open_source(make_cfg(source="local", path=str(tmp_path), val_docs=4, seed=seed), 0, 1)
        if any(secret in v for v in source.val_texts()):
            held_out += 1
            assert not [t for _, t in source.train_texts(0, 0) if secret in t], seed
    assert held_out >= 2  # the case was met


def test_a_blank_txt_file_is_said_to_be_blank_and_whitespace_documents_are_not_trained_on(
    tmp_path: Path, make_cfg
) -> None:
    """A file of line breaks loads as one '\\n' document: the trainer said it "has 1 document" and no blank lines
    to split at, where `nsa check` said it is blank."""
    blank = tmp_path / "blank.txt"
    for text in ("\n\n\n", "   \n\t\n"):  # spaces and tabs too: whitespace-only documents are skipped
        blank.write_text(text)
        with pytest.raises(DataError, match=r"blank\.txt holds no documents \(it is blank\)"):
            open_source(make_cfg(source="local", path=str(blank), val_docs=1), 0, 1)
    text = tmp_path / "t.txt"
    text.write_text("\n\n".join([f"document {i} of the corpus" for i in range(12)] + ["   ", "\t"]) + "\n")
    source = open_source(make_cfg(source="local", path=str(text), val_docs=2, seed=1), 0, 1)
    trained = [t for _, t in source.train_texts(0, 0)]
    assert trained and all(t.strip() for t in trained), trained


def test_fewer_training_documents_than_ranks_is_said_on_every_rank_at_the_start(tmp_path: Path, make_cfg) -> None:
    """One training document on two ranks failed in rank 1's stream thread alone ("epoch 0 has no training documents
    for this rank"); every rank now refuses it when the source opens, with the same line (said once: train.py)."""
    path = tmp_path / "five.jsonl"
    path.write_text("".join(json.dumps({"text": f"document {i}"}) + "\n" for i in range(5)), encoding="utf-8")
    cfg = make_cfg(source="local", path=str(path), val_docs=4)
    said = set()
    for rank in (0, 1):
        with pytest.raises(DataError) as e:
            open_source(cfg, rank, 2)
        assert e.value.every_rank
        said.add(str(e.value))
    (msg,) = said
    assert "has 1 training document for 2 ranks (5 documents, data.val_docs=4 held out)" in msg, msg
    assert len(open_source(cfg, 0, 1).val_texts()) == 4  # one rank: the document is enough


def test_a_holdout_too_small_counts_its_empty_documents(tmp_path: Path, make_cfg) -> None:
    path = tmp_path / "c.jsonl"
    texts = [""] * 40 + [f"document {i} " * 3 for i in range(40)]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    cfg = make_cfg(seq_len=64, source="local", path=str(path), val_docs=8)
    with pytest.raises(DataError) as e:
        val_batches(cfg, build_tokenizer(cfg.data), 4, 1, 0, 1)
    empty = sum(not t.strip() for t in open_source(cfg, 0, 1).val_texts())
    assert empty and f"data.val_docs=8 documents ({empty} of them empty) hold" in str(e.value), str(e.value)
