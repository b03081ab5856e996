"""Schedule edge cases the trainer tests do not cover: no warmup, and the phase names the tools show."""

from __future__ import annotations

import math

import pytest

from nsa_train.config import lr_at, phase_at

KW = dict(lr=1e-3, min_lr=1e-4, warmup_steps=10, total_steps=110)


def test_no_warmup_starts_at_peak():
    assert lr_at(1, lr=1.0, min_lr=0.0, warmup_steps=0, total_steps=100) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 100))
    )


def test_phase():
    assert phase_at(3, warmup_steps=10, total_steps=100) == "warmup"
    assert phase_at(50, warmup_steps=10, total_steps=100) == "cosine"
    assert phase_at(100, warmup_steps=10, total_steps=100) == "done"
