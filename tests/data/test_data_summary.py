"""How much data a run trains on (run.json's data_summary, the [data] line): counted exactly for the byte tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

from nsa_train.data.errors import DataError
from nsa_train.data.sources import open_source
from nsa_train.data.summary import EPOCHS_WARN, data_summary, empty_share_warning, epochs_warning
from nsa_train.data.tokenizer import build_tokenizer
from nsa_train.telemetry import schema
from nsa_train.telemetry.data_said import data_said


def test_local_counts_are_what_training_reads(tmp_path: Path, make_cfg) -> None:
    docs = [f"doc {i} " + "é" * i for i in range(10)] + ["", "   \n"]  # multi-byte text; empty ones are skipped
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs[:6]), encoding="utf-8")
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs[6:]), encoding="utf-8")
    cfg = make_cfg(source="local", path=str(tmp_path), val_docs=2)
    source = open_source(cfg, 0, 1)
    tok = build_tokenizer(cfg.data)
    s = data_summary(cfg, source, tok.name)
    assert tuple(s) == schema.DATA_SUMMARY_FIELDS
    trained = [text for _, text in source.train_texts(0, 0)]
    assert s["files"] == 2 and s["val_documents"] == 2 and s["train_documents"] == len(trained)
    assert s["train_tokens"] == sum(len(tok.encode(t)) + 1 for t in trained)  # the packer's: text, then EOS
    assert s["planned_tokens"] == cfg.train.steps * cfg.train.batch_size * cfg.train.seq_len
    assert s["epochs"] == round(s["planned_tokens"] / s["train_tokens"], 2) > EPOCHS_WARN
    warning = epochs_warning(s, cfg.train.steps)
    assert warning is not None and f"{s['epochs']:g} passes over the {len(trained)} training documents" in warning
    said = data_said(s)
    assert said is not None and said.startswith(f"local files {tmp_path}: 2 files, {len(trained)} training documents")


def test_copies_of_held_out_texts_are_not_counted_as_training_documents(tmp_path: Path, make_cfg) -> None:
    """Training skips a document whose text equals a held-out one; the summary counted it all the same (21 training
    documents where 3 were read)."""
    texts = ["boiler plate text"] * 20 + [f"distinct text {i}" for i in range(3)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    cfg = make_cfg(source="local", path=str(tmp_path), val_docs=2, seed=0)
    source = open_source(cfg, 0, 1)
    assert set(source.val_texts()) == {"boiler plate text"}  # seed 0 holds out two copies
    s = data_summary(cfg, source, "byte")
    trained = [text for _, text in source.train_texts(0, 0)]
    assert len(trained) == 3 and s["train_documents"] == 3 and s["held_out_copies"] == 18
    assert s["train_bytes"] == sum(len(t.encode()) for t in trained)
    said = data_said(s)
    assert (
        said is not None and ": 1 file, 3 training documents (2 held out, 18 more equal to them not trained on)" in said
    )


def test_bpe_says_documents_and_bytes_only(jsonl_corpus, make_cfg) -> None:
    path, docs = jsonl_corpus
    cfg = make_cfg(source="local", path=str(path), text_field="body", tokenizer="gpt2", val_docs=4)
    s = data_summary(cfg, open_source(cfg, 0, 1), "gpt2")
    assert s["train_documents"] == len(docs) - 4 and isinstance(s["train_bytes"], int)
    assert s["train_tokens"] is None and s["epochs"] is None and epochs_warning(s, cfg.train.steps) is None


def test_the_default_run_on_the_bundled_corpus_warns_of_nothing() -> None:
    from nsa_train.config.schema import Config

    cfg = Config()  # the defaults: embedded corpus, byte tokenizer, 600 steps
    s = data_summary(cfg, open_source(cfg, 0, 1), "byte")
    assert s["files"] == 38 and s["train_documents"] == 783 - cfg.data.val_docs
    assert 0 < s["epochs"] <= EPOCHS_WARN and epochs_warning(s, cfg.train.steps) is None


def test_a_streamed_source_is_not_counted() -> None:
    s = dict.fromkeys(schema.DATA_SUMMARY_FIELDS)
    s.update(source="hf", description="hf dataset x split train", planned_tokens=10)
    assert data_said(s) == "hf dataset x split train: streaming (not counted)"
    assert data_said(None) is None  # a run.json from before the key


def test_a_short_runs_epochs_are_said_to_two_figures() -> None:
    """run.json keeps 2 decimals: 8 steps of the tiny default over the bundled corpus read '0 epochs planned'."""
    s = dict.fromkeys(schema.DATA_SUMMARY_FIELDS)
    s.update(source="embedded", description="embedded corpus", train_documents=775, val_documents=8)
    s.update(train_bytes=4_928_414, train_tokens=4_929_189, planned_tokens=8 * 2048, epochs=0.0)
    assert data_said(s).endswith(", 4,928,414 bytes = 4,929,189 tokens, 0.0033 epochs planned")
    s.update(planned_tokens=600 * 2048, epochs=0.25)
    assert data_said(s).endswith(" 0.25 epochs planned")
    s.update(planned_tokens=1_228_800, train_tokens=12_318, epochs=99.75)
    assert data_said(s).endswith(" 99.75 epochs planned")


def test_empty_documents_are_counted_and_said(tmp_path: Path, make_cfg) -> None:
    """Training skips empty and whitespace-only documents (blank paragraphs, empty records); the summary counted the
    held-out copies it skips but said nothing of these."""
    texts = [f"distinct text {i}" for i in range(6)] + ["", "   \n", "\t"] + ["boiler plate"] * 4
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    cfg = make_cfg(source="local", path=str(tmp_path), val_docs=2, seed=0)
    source = open_source(cfg, 0, 1)
    held = source.val_texts()
    s = data_summary(cfg, source, "byte")
    trained = [text for _, text in source.train_texts(0, 0)]
    empty = sum(1 for t in texts if not t.strip()) - sum(1 for t in held if not t.strip())
    copies = sum(1 for t in texts if t.strip() and t in held) - len([t for t in held if t.strip()])
    assert empty > 0 and s["empty_documents"] == empty and s["held_out_copies"] == copies
    assert s["train_documents"] == len(trained) == len(texts) - 2 - empty - copies
    copied = f"{copies} more equal to them and " if copies else ""
    assert f"training documents (2 held out, {copied}{empty} empty not trained on), " in data_said(s)


def test_the_empty_documents_are_said_only_where_there_are_some() -> None:
    s = dict.fromkeys(schema.DATA_SUMMARY_FIELDS)
    s.update(source="local", description="local files /d", files=1, train_documents=8, val_documents=8)
    s.update(held_out_copies=0, empty_documents=3)
    assert data_said(s) == "local files /d: 1 file, 8 training documents (8 held out, 3 empty not trained on)"
    s.update(held_out_copies=2)
    assert "(8 held out, 2 more equal to them and 3 empty not trained on)" in data_said(s)
    s.update(empty_documents=0)
    assert "(8 held out, 2 more equal to them not trained on)" in data_said(s)
    # a run.json of an earlier version has neither key
    old = {k: v for k, v in s.items() if k not in ("held_out_copies", "empty_documents")}
    assert data_said(old) == "local files /d: 1 file, 8 training documents (8 held out)"


def test_a_corpus_thin_for_its_ranks_warns_that_a_rank_may_skip_an_epoch(tmp_path: Path, make_cfg) -> None:
    """Two distinct documents among copies of a held-out text passed the start's check (one per rank), and nothing
    said before training that a rank's share of an epoch would often hold none of them (that rank skips to its
    next epoch). The chance said is the one the epochs' deals show."""
    path = tmp_path / "few.jsonl"
    texts = ["the same boilerplate text " * 4] * 10 + ["the first distinct text " * 3, "the second distinct text " * 3]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    for seed in range(20):
        cfg = make_cfg(source="local", path=str(path), val_docs=1, seed=seed)
        try:
            source = open_source(cfg, 0, 2)  # a copy held out: 2 of the 11 training documents are trained on
        except DataError:  # a distinct one held out: 1 for 2 ranks, refused at the start
            continue
        break
    s = data_summary(cfg, source, "byte")
    assert (s["train_documents"], s["held_out_copies"]) == (2, 9)
    warning = empty_share_warning(s, 2)
    assert warning is not None and warning.startswith(
        f"local files {path} deals its 11 training documents to 2 ranks each epoch, 9 equal a held-out document: only "
        "2 are trained on, so in up to 45% of epochs some rank's share holds none of them and that rank skips to its "
        "next epoch"
    ), warning
    trained, epochs = set(source.trained().index), 2000
    order = [source.epoch_order(e) for e in range(epochs)]
    met = sum(any(not set(o[r::2]) & trained for r in range(2)) for o in order) / epochs
    assert abs(met - 0.4545) < 0.05, met  # C(9,6)/C(11,6) + C(9,5)/C(11,5): two ranks are never both dealt none
    assert empty_share_warning(s, 1) is None  # one rank reads every document


def test_distinct_documents_on_many_ranks_warn_of_no_empty_share(jsonl_corpus, make_cfg) -> None:
    path, _ = jsonl_corpus
    cfg = make_cfg(source="local", path=str(path), text_field="body", val_docs=4)
    s = data_summary(cfg, open_source(cfg, 0, 1), "byte")
    assert empty_share_warning(s, 8) is None  # none skipped: every share holds documents trained on
    s = {**s, "train_documents": 40, "held_out_copies": 16}  # 56 dealt to 8 ranks: 7 each, 16 skipped
    assert empty_share_warning(s, 8) is None  # 8 x C(16,7)/C(56,7): some rank in 1 epoch of 2,500
