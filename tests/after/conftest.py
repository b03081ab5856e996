"""A tiny trained run shared by the sample, report and best/summary tests (trained once per session)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TINY_OVERRIDES = [
    "train.steps=30",
    "model.dim=32",
    "model.n_layers=1",
    "train.seq_len=64",
    "train.batch_size=4",
    "train.warmup_steps=5",
    "train.eval_every=10",
    "train.eval_batches=2",
    "train.log_every=5",
    "runtime.tensorboard=false",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("after") / "tiny"
    argv = [sys.executable, "-m", "nsa_train.train", "--run-dir", str(run_dir)]
    for o in TINY_OVERRIDES:
        argv += ["--set", o]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run_dir
