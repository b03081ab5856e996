"""runtime.env reaches the trainer however it is started: `nsa launch` sets it for the processes it starts, and
a trainer started another way (torchrun by hand) sets it itself before torch loads, instead of running without
it and saying nothing (the users' runs depended on exported NCCL and allocator variables)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from trainer_helpers import REPO, clean_env, records, train_cmd

from nsa_train.runtime.preflight import apply_runtime_env
from nsa_train.telemetry import schema


def test_apply_runtime_env_sets_replaces_and_says_what_it_cannot() -> None:
    environ = {"NCCL_ALGO": "Tree", "KEEP": "1", "PYTHONHASHSEED": "0"}
    want = {"NCCL_ALGO": "Ring", "KEEP": "1", "NCCL_IB_DISABLE": "1", "LD_PRELOAD": "x.so", "PYTHONHASHSEED": "1"}
    applied, warnings = apply_runtime_env(want, environ)
    assert applied == ["NCCL_ALGO", "NCCL_IB_DISABLE"]
    assert environ == {"NCCL_ALGO": "Ring", "KEEP": "1", "PYTHONHASHSEED": "0", "NCCL_IB_DISABLE": "1"}
    assert len(warnings) == 3
    assert "NCCL_ALGO=Ring replaces NCCL_ALGO=Tree" in warnings[0]
    assert "LD_PRELOAD=x.so is read when a process starts" in warnings[1] and "without it" in warnings[1]
    assert "PYTHONHASHSEED=1" in warnings[2] and "with PYTHONHASHSEED=0" in warnings[2] and "nsa launch" in warnings[2]
    assert apply_runtime_env(want, environ) == ([], warnings[1:])  # applied once: nothing left to set


def test_trainer_started_by_hand_applies_runtime_env_before_torch_loads(tmp_path: Path) -> None:
    """OMP_NUM_THREADS is read when torch loads: a trainer that set it any later would still run on every core."""
    run = tmp_path / "run"
    cmd = train_cmd(run, "train.steps=2", "runtime.threads=null", "runtime.env.OMP_NUM_THREADS=1")
    env = clean_env()
    env.pop("OMP_NUM_THREADS", None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[env] runtime.env set by the trainer: OMP_NUM_THREADS" in proc.stdout
    config = next(r for r in records(run) if r["kind"] == schema.KIND_PHASE and r.get("done"))
    assert config["threads"] == 1  # torch's default here is one per core (2 on the CI machine)
