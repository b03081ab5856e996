"""The lr schedule: warmup from lr/warmup at step 1, cosine to an explicit floor."""

from __future__ import annotations

import itertools
import math

import pytest

from nsa_train.config import lr_at, phase_at

KW = dict(lr=1e-3, min_lr=1e-4, warmup_steps=10, total_steps=110)


def test_warmup_is_linear_from_step_one():
    assert lr_at(1, **KW) == pytest.approx(1e-4)  # lr/warmup: small on purpose, not a bug
    assert lr_at(5, **KW) == pytest.approx(5e-4)
    assert lr_at(10, **KW) == pytest.approx(1e-3)


def test_cosine_midpoint_and_floor():
    assert lr_at(60, **KW) == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4))
    assert lr_at(110, **KW) == pytest.approx(1e-4)
    assert lr_at(500, **KW) == pytest.approx(1e-4)  # stays at min_lr, never below


def test_monotone_after_warmup():
    vals = [lr_at(s, **KW) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(vals))
    assert all(v >= KW["min_lr"] - 1e-15 for v in vals)
    assert not any(math.isnan(v) for v in vals)


def test_no_warmup_starts_at_peak():
    assert lr_at(1, lr=1.0, min_lr=0.0, warmup_steps=0, total_steps=100) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 100))
    )


def test_phase():
    assert phase_at(3, warmup_steps=10, total_steps=100) == "warmup"
    assert phase_at(50, warmup_steps=10, total_steps=100) == "cosine"
    assert phase_at(100, warmup_steps=10, total_steps=100) == "done"
