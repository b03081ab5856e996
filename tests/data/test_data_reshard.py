"""--reshard: the positions W_old ranks saved continue on W_new ranks, no document skipped, the ones read again
counted (nsa_train/data/reshard.py)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from fixtures.corpora import few_distinct, rank1_dealt_nothing

from nsa_train.data import DataError, TrainStream, build_tokenizer
from nsa_train.data.packing import Position
from nsa_train.data.reshard import plan_reshard, share
from nsa_train.data.sources import open_source


def _read(positions: list[Position], n: int) -> dict[tuple[int, int], int]:
    """(epoch, entry) -> how many old ranks had read it (whole, or begun at an offset)."""
    world, seen = len(positions), {}
    for r, p in enumerate(positions):
        for e in range(p.epoch + 1):
            last = p.doc * world + r if e == p.epoch else n
            for g in range(r, last + (1 if e == p.epoch and p.offset else 0), world):
                seen[(e, g)] = seen.get((e, g), 0) + 1
    return seen


@pytest.mark.parametrize("old, new", [(2, 1), (1, 2), (4, 3), (3, 5), (2, 2)])
def test_the_new_ranks_read_everything_past_the_frontier_once_and_the_rest_was_read(old: int, new: int) -> None:
    rng = random.Random(old * 10 + new)
    for n in (7, 23, 40):
        for _ in range(30):
            positions = []
            for r in range(old):
                epoch = rng.choice((2, 3))
                doc = rng.randrange(share(n, r, old))
                positions.append(Position(epoch, doc, rng.choice((0, 0, 17))))
            plan = plan_reshard(positions, n)
            seen = _read(positions, n)
            frontier = (plan.epoch, plan.first)
            # nothing before the frontier is skipped: every entry there was read whole by its rank
            for e, g in itertools.product(range(plan.epoch + 1), range(n)):
                if (e, g) < frontier:
                    assert seen.get((e, g)) == 1 and (e, g) not in {(a, b) for a, b, _ in plan.reread}
            # the new ranks read every entry from the frontier to the end of its epoch once
            got: dict[int, int] = {}
            for r in range(new):
                start = plan.start(r, new)
                if start.epoch == plan.epoch:
                    for g in range(start.doc * new + r, n, new):
                        got[g] = got.get(g, 0) + 1
                else:  # its share of the frontier's epoch holds nothing past the frontier
                    assert start == Position(plan.epoch + 1, 0, 0)
                    assert all(g < plan.first for g in range(r, n, new))
            assert got == {g: 1 for g in range(plan.first, n)}
            # read again: exactly what the old ranks had begun at or past the frontier
            again = {(e, g) for (e, g), k in seen.items() if (e, g) >= frontier}
            assert {(e, g) for e, g, _ in plan.reread} == again and len(plan.reread) == len(again)
            assert all(off == positions[g % old].offset for e, g, off in plan.reread if off)


def test_a_worked_example_across_an_epoch_boundary() -> None:
    # 10 documents an epoch; rank 0 at epoch 1 entry 0 (all of epoch 0 read), rank 1 at epoch 0 entry 7
    plan = plan_reshard([Position(1, 0, 5), Position(0, 3, 0)], 10)
    assert (plan.epoch, plan.first) == (0, 7)
    assert plan.reread == ((0, 8, 0), (1, 0, 5))  # rank 0's last of epoch 0, and its first of epoch 1 begun
    assert [plan.start(r, 1) for r in range(1)] == [Position(0, 7, 0)]
    # entries 9, 7, 8 go to ranks 0, 1, 2 of 3 (documents 3, 2, 2 of their shares)
    assert [plan.start(r, 3) for r in range(3)] == [Position(0, 3, 0), Position(0, 2, 0), Position(0, 2, 0)]
    # with 4 ranks: 8, 9, 7 to ranks 0, 1, 3; rank 2's share (2, 6) holds none past 7: it starts the next epoch
    assert [plan.start(r, 4) for r in range(4)] == [Position(0, 2, 0), Position(0, 2, 0), Position(1, 0, 0),
                                                     Position(0, 1, 0)]  # fmt: skip


def test_a_position_past_the_documents_is_refused() -> None:
    with pytest.raises(DataError, match="past its share of the 10 training documents"):
        plan_reshard([Position(0, 5, 0), Position(0, 1, 0)], 10)


def test_two_ranks_resharded_onto_three_read_on_without_a_gap(jsonl_corpus, make_cfg) -> None:
    path, docs = jsonl_corpus
    cfg = make_cfg(seq_len=32, source="local", path=str(path), text_field="body", val_docs=4)
    tok = build_tokenizer(cfg.data)
    states, before = [], ""
    for r in range(2):
        stream = TrainStream(cfg, tok, r, 2, 2)
        before += "".join(tok.decode(x.reshape(-1).tolist()) for x, _ in (next(stream) for _ in range(9)))
        states.append(json.loads(json.dumps(stream.state_dict())))
        stream.close()
    after, plan = "", None
    for r in range(3):
        stream = TrainStream(cfg, tok, r, 3, 2)
        plan = stream.reshard(states)
        if r == 0:
            documents, tokens = stream.reread(plan)
        while stream.state_dict()["epoch"] == plan.epoch:  # this rank's share of the frontier's epoch
            after += "".join(tok.decode(x.reshape(-1).tolist()) for x in next(stream)[0])
        stream.close()
    assert plan is not None
    order = open_source(cfg, 0, 1).epoch_order(plan.epoch)
    tag = {i: docs[i][: len("<doc 0000>")] for i in range(len(docs))}
    for g, i in enumerate(order):
        assert tag[int(i)] in (after if g >= plan.first else before), g  # no document skipped
    whole = [int(order[g]) for _, g, off in plan.reread if not off]
    assert all(tag[i] in before and tag[i] in after for i in whole)
    assert tokens == sum(off or len(tok.encode_array(docs[int(order[g])])) + 1 for _, g, off in plan.reread)
    assert documents == len(plan.reread)  # distinct documents, none empty: every entry read again is one


def test_a_streamed_source_is_not_resharded(make_cfg, monkeypatch) -> None:
    cfg = make_cfg(source="hf", hf_name="someone/data")
    stream = TrainStream(cfg, build_tokenizer(cfg.data), 0, 1, 2)
    with pytest.raises(DataError, match=r"--reshard: .* is streamed \(data.source=hf\).*Resume with 2 rank"):
        stream.reshard([{}, {}])


def test_a_share_passed_over_is_not_counted_as_read_again(tmp_path: Path, make_cfg) -> None:
    """A rank whose share of epoch 0 held only copies of a held-out text went on with epoch 1: the frontier is in
    epoch 0, and the plan's entries read again hold that rank's share of epoch 0 past it, which nobody read.
    They were counted as documents read again (tokens: none, rightly)."""
    path = few_distinct(tmp_path)
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    cfg, source = rank1_dealt_nothing(path, make_cfg, 40)
    tok = build_tokenizer(cfg.data)
    states = []
    for r in range(2):
        stream = TrainStream(cfg, tok, r, 2, 1)
        next(stream)
        states.append(json.loads(json.dumps(stream.state_dict())))
        stream.close()
    assert states[0]["epoch"] == 0 and states[1]["epoch"] >= 1, states
    stream = TrainStream(cfg, tok, 0, 1, 1)
    try:
        plan = stream.reshard(states)
        documents, tokens = stream.reread(plan)
    finally:
        stream.close()
    trained = set(source.trained().index)
    read = [(e, g, off) for e, g, off in plan.reread if off or source.epoch_order(e)[g] in trained]
    assert len(plan.reread) > len(read), plan  # the case was met: entries dealt that nobody read
    assert documents == len(read)
    assert tokens == sum(off or len(tok.encode_array(texts[int(source.epoch_order(e)[g])])) + 1 for e, g, off in read)
