"""The embedded corpus read without `datasets` (text_rows.TextRows) trains on what the `datasets.Dataset` built from
the same texts gave: the same holdout, the same documents in the same order on every rank, the same counts and the
same tokens, so runs and checkpoints from before resume on the same data."""

from __future__ import annotations

import itertools

import datasets
import numpy as np

from nsa_train.data import build_tokenizer
from nsa_train.data.corpus import embedded_documents, plays_dir
from nsa_train.data.packing import Position
from nsa_train.data.sources import MapSource, open_source
from nsa_train.data.stream import doc_tokens
from nsa_train.data.summary import data_summary
from nsa_train.data.text_rows import TextRows


def _as_datasets_gave(cfg, rank: int, world: int) -> MapSource:
    """The embedded source as open_source built it through `datasets.Dataset.from_dict`."""
    d = cfg.data
    ds = datasets.Dataset.from_dict({"text": list(embedded_documents())})
    source = MapSource(ds, "text", d.val_docs, d.seed, rank, world, d.source_description)
    source.files = sum(1 for _ in plays_dir().rglob("*.md"))
    return source


def test_the_embedded_source_gives_what_the_datasets_one_gave(make_cfg) -> None:
    cfg = make_cfg()
    tok = build_tokenizer(cfg.data)
    for rank, world in ((0, 1), (0, 2), (1, 2)):
        new, old = open_source(cfg, rank, world), _as_datasets_gave(cfg, rank, world)
        assert isinstance(new._ds, TextRows)
        assert new.val_texts() == old.val_texts() and len(new.val_texts()) == cfg.data.val_docs
        assert new.order_digest == old.order_digest
        assert new.text_column().equals(old.text_column())
        assert data_summary(cfg, new, tok.name) == data_summary(cfg, old, tok.name)
        for epoch in (0, 1):
            assert list(new.train_texts(epoch, 0)) == list(old.train_texts(epoch, 0))
        # the tokens training reads, across the end of epoch 0 into epoch 1
        n = len(new.rank_order(0)) + 5
        new_docs = list(itertools.islice(doc_tokens(new, tok, Position(0, 0, 0)), n))
        old_docs = list(itertools.islice(doc_tokens(old, tok, Position(0, 0, 0)), n))
        assert [d.start for d in new_docs] == [d.start for d in old_docs] and new_docs[-1].start.epoch == 1
        assert np.array_equal(
            np.concatenate([d.tokens for d in new_docs]), np.concatenate([d.tokens for d in old_docs])
        )


def test_rows_and_column_keep_the_texts_as_given() -> None:
    texts = ["first\n", "", "  ", "é ✓ 𝄞\n", "last"]
    rows = TextRows("body", texts)
    assert len(rows) == 5 and [rows[i] for i in range(5)] == [{"body": t} for t in texts]
    assert rows.data.column("body").to_pylist() == texts
    assert rows.data.column("body").equals(datasets.Dataset.from_dict({"body": texts}).data.column("body"))
