"""Reading a run directory's heartbeat from its end (no torch, no tmux)."""

from __future__ import annotations

import json

import pytest

from nsa_train.telemetry.readback import checkpoint_world_size, records_backwards


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_records_backwards_is_the_file_reversed_whatever_the_chunk(tmp_path, chunk):
    recs = [{"v": 1, "ts": 1.0 * i, "kind": "progress", "rank": 0, "step": i, "pad": "x" * (i % 13)} for i in range(40)]
    lines = [json.dumps(r) for r in recs]
    lines.insert(10, '{"v": 1, "broken')  # a corrupt line is skipped
    path = tmp_path / "heartbeat_rank0.jsonl"
    path.write_text("\n".join(lines) + '\n{"v": 1, "ts": 99, "kin')  # the last line is still being written
    got = list(records_backwards(path, chunk=chunk))
    assert [r["step"] for r in got] == list(range(39, -1, -1))


def test_records_backwards_of_nothing(tmp_path):
    assert list(records_backwards(tmp_path / "missing.jsonl")) == []
    (tmp_path / "empty.jsonl").write_text("")
    assert list(records_backwards(tmp_path / "empty.jsonl")) == []


def test_the_writer_of_a_checkpoint_is_the_boot_before_its_record(tmp_path):
    def rec(kind, **kw):
        return json.dumps({"v": 1, "ts": 1.0, "kind": kind, "rank": 0, "step": 0, **kw})

    lines = [
        rec("boot", world_size=4),
        rec("checkpoint", path="/r/checkpoints/step_00000100.pt", seconds=1),
        rec("boot", world_size=2),  # a later process with 2 ranks
        rec("checkpoint", path="/elsewhere/checkpoints/step_00000200.pt", seconds=1),
        rec("boot", world_size=1),
    ]
    (tmp_path / "heartbeat_rank0.jsonl").write_text("\n".join(lines) + "\n")
    assert checkpoint_world_size(tmp_path, "step_00000100.pt") == 4
    assert checkpoint_world_size(tmp_path, "step_00000200.pt") == 2  # matched by file name: the dir may have moved
    assert checkpoint_world_size(tmp_path, "step_00000300.pt") is None
    assert checkpoint_world_size(tmp_path / "nowhere", "step_00000100.pt") is None
