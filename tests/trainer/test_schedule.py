"""The lr schedule as the trainer uses it (1-based steps)."""

from __future__ import annotations

import math

import pytest

from nsa_train.config import lr_at

KW = {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 50, "total_steps": 600}


def test_warmup_step_one_is_lr_over_warmup() -> None:
    assert lr_at(1, **KW) == pytest.approx(3e-3 / 50)


def test_peak_at_end_of_warmup() -> None:
    assert lr_at(50, **KW) == pytest.approx(3e-3)


def test_cosine_midpoint_is_halfway_between_lr_and_min_lr() -> None:
    mid = 50 + (600 - 50) // 2
    assert lr_at(mid, **KW) == pytest.approx((3e-3 + 3e-4) / 2)


def test_last_step_is_min_lr_and_never_below() -> None:
    assert lr_at(600, **KW) == pytest.approx(3e-4)
    assert min(lr_at(s, **KW) for s in range(51, 601)) >= 3e-4 - 1e-12
    assert all(lr_at(s + 1, **KW) <= lr_at(s, **KW) + 1e-15 for s in range(50, 600))


@pytest.mark.slow
def test_trainer_logs_the_schedule(tmp_path) -> None:
    """The lr in progress records is lr_at(step) (a tiny real run)."""
    from trainer_helpers import records, run_train

    proc = run_train(tmp_path / "run", "train.steps=4", "train.lr=1e-3", "train.min_lr=1e-4")
    assert proc.returncode == 0, proc.stderr
    lrs = {r["step"]: r["lr"] for r in records(tmp_path / "run") if r["kind"] == "progress"}
    for step, lr in lrs.items():
        assert math.isclose(lr, lr_at(step, lr=1e-3, min_lr=1e-4, warmup_steps=2, total_steps=4))
    assert sorted(lrs) == [1, 2, 3, 4]
