"""Fixtures for the `nsa watch` tests: run directories of every kind, with a frozen clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.runs import make_generic_run, make_v1_run, make_vibe_run

from watch.helpers import NOW, freeze_mtimes


@pytest.fixture
def healthy_run(tmp_path) -> Path:
    make_v1_run(tmp_path / "healthy-125m", steps=2000, state="running", now=NOW, log_every=10)
    freeze_mtimes(tmp_path / "healthy-125m")
    return tmp_path / "healthy-125m"


@pytest.fixture
def critical_run(tmp_path) -> Path:
    path = tmp_path / "diverged"
    make_v1_run(
        path, steps=1500, state="running", now=NOW, alerts=["nan_loss", "gate_collapse_severe", "throughput_drop"]
    )
    freeze_mtimes(path)
    return path


@pytest.fixture
def stuck_run(tmp_path) -> Path:
    path = tmp_path / "stuck-at-data"
    make_v1_run(path, steps=0, state="stuck", now=NOW)
    freeze_mtimes(path, NOW - 7200)
    return path


@pytest.fixture
def finished_run(tmp_path) -> Path:
    path = tmp_path / "done"
    make_v1_run(path, steps=1000, state="finished", now=NOW, age_s=600.0)
    freeze_mtimes(path, NOW - 600)
    return path


@pytest.fixture
def vibe_run(tmp_path) -> Path:
    path = tmp_path / "train_showcase"
    make_vibe_run(path, steps=3000, state="running", now=NOW)
    freeze_mtimes(path)
    return path


@pytest.fixture
def generic_run(tmp_path) -> Path:
    path = tmp_path / "bigdata"
    make_generic_run(path, steps=3000, now=NOW)
    freeze_mtimes(path)
    return path
