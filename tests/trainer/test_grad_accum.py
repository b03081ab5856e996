"""train.grad_accum splits a step's batch, it does not change the run: the same losses, the same gradient
norms and the same validation loss as the whole batch at once.

The validation set used to shrink with grad_accum (eval_batches micro-batches instead of eval_batches
batches): two runs of one config, one on a GPU that needed grad_accum 2, were scored on different held-out
windows, 0.025 nats apart after six steps of the same training."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainer_helpers import records, run_train

from nsa_train.telemetry import schema


def _run(tmp_path: Path, accum: int) -> list[dict]:
    run = tmp_path / f"accum{accum}"
    sets = [f"train.grad_accum={accum}", "train.steps=4", "train.eval_every=2", "train.eval_batches=3"]
    proc = run_train(run, *sets, "train.batch_size=8", "model.attention=dense")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return records(run)


def test_grad_accum_trains_and_evaluates_like_the_whole_batch(tmp_path: Path) -> None:
    whole, split = _run(tmp_path, 1), _run(tmp_path, 4)
    for kind, keys in ((schema.KIND_PROGRESS, ("loss", "grad_norm")), (schema.KIND_EVAL, ("val_loss",))):
        a = [r for r in whole if r["kind"] == kind]
        b = [r for r in split if r["kind"] == kind]
        assert [r["step"] for r in a] == [r["step"] for r in b] and a
        for ra, rb in zip(a, b, strict=True):
            for k in keys:
                assert rb[k] == pytest.approx(ra[k], rel=1e-5), (kind, ra["step"], k)
