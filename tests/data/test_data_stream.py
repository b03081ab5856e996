"""The training stream: batches, exact resume, epochs, DDP shards, holdout, prefetch thread errors and timeouts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nsa_train.data import DataError, TrainStream, build_tokenizer, val_batches
from nsa_train.data.sources import open_source


def _take(stream: TrainStream, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    try:
        return [next(stream) for _ in range(n)]
    finally:
        stream.close()


def test_batches_are_shifted_windows(make_cfg) -> None:
    cfg = make_cfg(seq_len=64)
    tok = build_tokenizer(cfg.data)
    (x, y), (x2, _) = _take(TrainStream(cfg, tok, rank=0, world_size=1, micro_batch=3), 2)
    assert x.shape == y.shape == (3, 64) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(x[1:, 0], y[:-1, -1])  # row k+1 starts with the last target of row k
    assert x2[0, 0] == y[-1, -1]  # and so does the next batch
    assert tok.decode(x[0].tolist()).isprintable() or "\n" in tok.decode(x[0].tolist())


def test_exact_resume_after_three_batches(make_cfg) -> None:
    cfg = make_cfg(seq_len=48)
    tok = build_tokenizer(cfg.data)
    stream = TrainStream(cfg, tok, 0, 1, 2)
    first = [next(stream) for _ in range(3)]
    state = json.loads(json.dumps(stream.state_dict()))  # what a checkpoint stores
    rest = _take(stream, 4)
    # the prefetch thread has read ahead by now; the saved position must not have moved with it
    resumed = TrainStream(cfg, tok, 0, 1, 2)
    resumed.load_state_dict(state)
    again = _take(resumed, 4)
    for (x, y), (x2, y2) in zip(rest, again, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(first[0][0], again[0][0])


def test_stream_repeats_with_a_new_order_each_epoch_and_resumes_across_epochs(jsonl_corpus, make_cfg) -> None:
    path, docs = jsonl_corpus
    cfg = make_cfg(seq_len=32, source="local", path=str(path), text_field="body", val_docs=4)
    tok = build_tokenizer(cfg.data)
    corpus_tokens = sum(len(d) + 1 for d in docs)
    n = 3 * corpus_tokens // (32 * 4) + 1  # about three epochs
    stream = TrainStream(cfg, tok, 0, 1, 4)
    seen, states = [], []
    for _ in range(n):
        seen.append(next(stream))
        states.append(stream.state_dict())
    stream.close()
    assert states[-1]["epoch"] >= 2
    text = "".join(tok.decode(x.reshape(-1).tolist()) for x, _ in seen)  # rows of x tile the stream
    val = set(open_source(cfg, 0, 1).val_texts())
    assert len(val) == 4
    for doc in docs:
        tag = doc[: len("<doc 0000>")]
        if doc in val:
            assert tag not in text
        else:
            assert text.count(tag) >= 2, tag  # epochs 0 and 1 complete, epoch 2 under way
    k = next(i for i, s in enumerate(states) if s["epoch"] == 1) - 1  # resume just before the epoch boundary
    resumed = TrainStream(cfg, tok, 0, 1, 4)
    resumed.load_state_dict(states[k])
    again = _take(resumed, 5)
    for (x, _), (x2, _) in zip(seen[k + 1 : k + 6], again, strict=True):
        assert torch.equal(x, x2)


def test_epoch_order_is_reshuffled(make_cfg) -> None:
    cfg = make_cfg()
    source = open_source(cfg, 0, 1)
    assert source.rank_order(0).tolist() != source.rank_order(1).tolist()
    assert sorted(source.rank_order(0).tolist()) == sorted(source.rank_order(1).tolist())


def test_two_ranks_read_disjoint_shards_and_never_see_validation(make_cfg) -> None:
    cfg = make_cfg()
    shards = [open_source(cfg, rank, 2) for rank in range(2)]
    texts = [[t for _, t in s.train_texts(0, 0)] for s in shards]
    val = shards[0].val_texts()
    assert val == shards[1].val_texts() and len(val) == cfg.data.val_docs
    assert not set(texts[0]) & set(texts[1])
    from nsa_train.data.corpus import embedded_documents

    everything = embedded_documents()
    assert len(texts[0]) + len(texts[1]) + len(val) == len(everything)
    training_text = "\x00".join(texts[0] + texts[1])
    for doc in val:
        assert doc not in training_text


def test_training_windows_of_two_ranks_differ(make_cfg) -> None:
    cfg = make_cfg(seq_len=64)
    tok = build_tokenizer(cfg.data)
    a = _take(TrainStream(cfg, tok, 0, 2, 4), 3)
    b = _take(TrainStream(cfg, tok, 1, 2, 4), 3)
    rows_a = {tuple(r.tolist()) for x, _ in a for r in x}
    rows_b = {tuple(r.tolist()) for x, _ in b for r in x}
    assert not rows_a & rows_b


def test_val_batches_are_deterministic_held_out_and_split_over_ranks(make_cfg) -> None:
    cfg = make_cfg(seq_len=64)
    tok = build_tokenizer(cfg.data)
    one = val_batches(cfg, tok, micro_batch=4, n_batches=3, rank=0, world_size=1)
    assert len(one) == 3 and one[0][0].shape == (4, 64)
    assert all(torch.equal(x, x2) for (x, _), (x2, _) in zip(one, val_batches(cfg, tok, 4, 3, 0, 1), strict=True))
    r0, r1 = (val_batches(cfg, tok, 4, 3, rank, 2) for rank in range(2))
    assert len(r0) == len(r1) == 3
    assert not {tuple(r.tolist()) for x, _ in r0 for r in x} & {tuple(r.tolist()) for x, _ in r1 for r in x}
    # two ranks with half the micro-batch (the same global batch) score exactly the windows one rank does
    h0, h1 = (val_batches(cfg, tok, 2, 3, rank, 2) for rank in range(2))
    assert sorted(tuple(r.tolist()) for x, _ in h0 + h1 for r in x) == sorted(
        tuple(r.tolist()) for x, _ in one for r in x
    )
    val_text = "".join(tok.decode(x.reshape(-1).tolist()) for x, _ in one)
    assert val_text[:200] in "".join(open_source(cfg, 0, 1).val_texts())


def test_a_holdout_cut_short_scores_the_same_windows_however_the_batch_is_split(make_cfg) -> None:
    """With fewer windows than eval_batches x batch_size, the cut fell at a micro-batch boundary: grad_accum 1 and 2
    (the same batch, the same training loss) scored 16 and 20 sequences, and their val losses did not compare."""
    cfg = make_cfg(seq_len=64)
    tok = build_tokenizer(cfg.data)
    n_windows = len(val_batches(cfg, tok, 1, 10**6, 0, 1))  # every window, one a micro-batch
    batch = 8
    asked = n_windows // batch + 2  # more batches than the holdout holds

    def scored(micro: int, world: int, accum: int) -> list[tuple[int, ...]]:
        ranks = [val_batches(cfg, tok, micro, asked * accum, r, world, accum) for r in range(world)]
        return sorted(tuple(row.tolist()) for part in ranks for x, _ in part for row in x)

    base = scored(8, 1, 1)
    assert len(base) == (n_windows // batch) * batch
    for micro, world, accum in ((4, 1, 2), (2, 2, 2), (1, 2, 4), (4, 2, 1)):
        assert scored(micro, world, accum) == base, (micro, world, accum)


def test_too_small_holdout_is_a_clear_error(make_cfg) -> None:
    """It said only "raise data.val_docs": on a small corpus the next error was "lower data.val_docs" (none left to
    train on), a circle. It gives the sizes and every way out."""
    cfg = make_cfg(seq_len=4096, val_docs=1)
    with pytest.raises(DataError) as e:
        val_batches(cfg, build_tokenizer(cfg.data), 8, 4, 0, 1)
    said = str(e.value)
    assert "data.val_docs=1 documents hold " in said and " windows of 4097, and one evaluation batch takes 8 " in said
    assert "(8 per rank x 1 rank(s), 32,776 tokens)" in said
    assert said.endswith("raise data.val_docs, lower train.seq_len or train.batch_size, or give more text")


def test_resume_with_another_world_size_is_refused(make_cfg) -> None:
    cfg = make_cfg()
    tok = build_tokenizer(cfg.data)
    state = TrainStream(cfg, tok, 0, 2, 4).state_dict()
    with pytest.raises(DataError, match="world_size=2"):
        TrainStream(cfg, tok, 0, 1, 4).load_state_dict(state)


def test_another_text_column_is_refused_and_a_position_saved_without_one_is_not(jsonl_corpus, make_cfg) -> None:
    path, _ = jsonl_corpus
    cfg = make_cfg(source="local", path=str(path), text_field="body", val_docs=4)
    tok = build_tokenizer(cfg.data)
    state = TrainStream(cfg, tok, 0, 1, 4).state_dict()
    other = make_cfg(source="local", path=str(path), text_field="title", val_docs=4)
    with pytest.raises(DataError, match="text_field='body', this run has 'title'"):
        TrainStream(other, tok, 0, 1, 4).load_state_dict(state)
    del state["text_field"]  # a checkpoint from before the field was recorded
    TrainStream(cfg, tok, 0, 1, 4).load_state_dict(state)


def test_thread_errors_surface_in_next(jsonl_corpus, make_cfg) -> None:
    path, _ = jsonl_corpus
    cfg = make_cfg(source="local", path=str(path), text_field="content")
    stream = TrainStream(cfg, build_tokenizer(cfg.data), 0, 1, 2)
    with pytest.raises(DataError, match="'content' is not a column"):
        next(stream)
    stream.close()


@pytest.mark.slow
def test_first_batch_timeout_names_the_source(tmp_path: Path, make_cfg) -> None:
    """A hub that accepts connections and never answers: the first batch must time out, not hang."""
    with socket.socket() as silent_hub:
        silent_hub.bind(("127.0.0.1", 0))
        silent_hub.listen(16)
        port = silent_hub.getsockname()[1]
        code = textwrap.dedent(
            """
            from nsa_train.config.schema import Config, DataConfig
            from nsa_train.data import DataError, TrainStream, build_tokenizer
            data = DataConfig(source="hf", hf_name="someone/big-corpus", hf_config="default", first_batch_timeout_s=1.5)
            cfg = Config(data=data)
            stream = TrainStream(cfg, build_tokenizer(cfg.data), 0, 1, 2)
            try:
                next(stream)
            except DataError as e:
                print("DataError:", e)
            """
        )
        env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp_path / "hf")}
        for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            env.pop(k, None)
        repo = Path(__file__).parents[2]
        argv = [sys.executable, "-c", code]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd=repo)
    expected = "DataError: no training batch from hf dataset someone/big-corpus (default) split train within 1.5s"
    assert expected in out.stdout, out.stdout + out.stderr


def test_a_position_past_its_document_says_the_data_changed() -> None:
    """A streamed source has no fingerprint: a resume whose saved document is now shorter than the saved offset
    said only that the position was past its end, not why nor what to do."""
    from types import SimpleNamespace

    from nsa_train.config.schema import DataConfig
    from nsa_train.data.packing import Position
    from nsa_train.data.stream import doc_tokens

    source = SimpleNamespace(description="hf dataset x split train", train_texts=lambda epoch, first: iter([(0, "ab")]))
    with pytest.raises(DataError, match=r"past the end of its document: the data changed since the checkpoint"):
        next(doc_tokens(source, build_tokenizer(DataConfig()), Position(0, 0, 512)))


def test_the_rest_of_an_epoch_resumed_mid_way_that_holds_nothing_is_not_an_empty_epoch(tmp_path: Path, make_cfg):
    """Review revBF: after `--resume --reshard` onto more ranks, a new rank whose rest of the resumed epoch held only
    skipped documents was told 'epoch 7 ... deals this rank nothing to train on, of its 3 documents', which used up
    the once-only message and counted towards the limit of empty epochs in a row, though its share of that epoch
    held documents the old rank had read. It goes on with the next epoch without a word."""
    from fixtures.corpora import few_distinct

    from nsa_train.data.packing import Position
    from nsa_train.data.stream import doc_tokens

    path = few_distinct(tmp_path)
    for seed in range(200):
        cfg = make_cfg(seq_len=16, source="local", path=str(path), val_docs=1, seed=seed)
        try:
            source = open_source(cfg, 0, 2)
        except DataError:
            continue
        trained = set(source.trained().index)
        dealt = [[i in trained for i in source.rank_order(e)] for e in range(2)]
        # epoch 0 has a trained document before its last ones (cut: after its last trained one), epoch 1 has one too
        cut = max((k + 1 for k, kept in enumerate(dealt[0]) if kept), default=0)
        if 0 < cut < len(dealt[0]) and any(dealt[1]):
            break
    else:
        raise AssertionError("no seed under 200 leaves an epoch's last documents all skipped")
    told: list[tuple[int, str]] = []
    first = next(doc_tokens(source, build_tokenizer(cfg.data), Position(0, cut, 0), lambda e, w: told.append((e, w))))
    assert first.start.epoch == 1 and told == [], (first.start, told)
    # a whole epoch dealt nothing is still said (test_data_sources.py has the rank that meets one)


def test_a_holdout_or_order_drawn_otherwise_than_the_checkpoints_is_refused(make_cfg) -> None:
    """Review revBF: the holdout (random.sample) and the epoch order (NumPy's Generator.permutation) are drawn from
    data.seed by libraries that do not promise the same draws across versions, and nothing recorded them: a resume
    after an upgrade could train on former validation documents. The saved position keeps a digest of both and the
    versions that drew them; a resume that draws others is refused, naming both."""
    from nsa_train.data.stream import drawn_by

    cfg = make_cfg(seq_len=48)
    tok = build_tokenizer(cfg.data)
    stream = TrainStream(cfg, tok, 0, 1, 2)
    try:
        next(stream)
        state = json.loads(json.dumps(stream.state_dict()))
    finally:
        stream.close()
    assert len(state["order_digest"]) == 16 and state["drawn_by"] == drawn_by()
    TrainStream(cfg, tok, 0, 1, 2).load_state_dict(state)  # drawn alike here
    other = {**state, "order_digest": "0" * 16, "drawn_by": "Python 3.9.0, NumPy 1.20.0"}
    with pytest.raises(DataError, match=r"this Python [\d.]+, NumPy [\d.]+ draws others than Python 3\.9\.0, NumPy"):
        TrainStream(cfg, tok, 0, 1, 2).load_state_dict(other)
    older = {k: v for k, v in state.items() if k not in ("order_digest", "drawn_by")}  # saved before it was kept
    TrainStream(cfg, tok, 0, 1, 2).load_state_dict(older)
    same = {**state, "order_digest": "0" * 16}  # the same versions: other documents drew them
    with pytest.raises(DataError, match=r"the same Python [\d.]+, NumPy [\d.]+ drew them from other documents"):
        TrainStream(cfg, tok, 0, 1, 2).load_state_dict(same)
