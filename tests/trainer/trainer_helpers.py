"""Helpers for the trainer tests: run the real entry point in a subprocess with tiny shapes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# A model and batch small enough that a step takes milliseconds on one core.
TINY = [
    "model.dim=32",
    "model.n_layers=2",
    "model.n_heads=2",
    "model.n_kv_heads=1",
    "nsa.w=16",
    "train.seq_len=32",
    "train.batch_size=4",
    "train.warmup_steps=2",
    "train.log_every=1",
    "train.eval_every=0",
    "train.eval_batches=2",
    "train.save_every=0",
    "runtime.tensorboard=false",
    "runtime.threads=1",
]


def sets(*items: str) -> list[str]:
    """--set arguments, a later item replacing an earlier one of its key (a test's own over TINY's): the trainer
    refuses a key given twice with different values."""
    last = {item.split("=", 1)[0]: item for item in items}
    out = []
    for item in last.values():
        out += ["--set", item]
    return out


def train_cmd(run_dir: Path, *overrides: str, resume: bool = False, torchrun: int = 0) -> list[str]:
    head = [sys.executable, "-m", "nsa_train.train"]
    if torchrun:
        torchrun_bin = str(Path(sys.executable).parent / "torchrun")  # the real launcher
        head = [torchrun_bin, "--nproc-per-node", str(torchrun), "-m", "nsa_train.train"]
    cmd = [*head, "--run-dir", str(run_dir), *sets(*TINY, *overrides)]
    return [*cmd, "--resume"] if resume else cmd


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIG", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(extra)
    return env


def run_train(run_dir: Path, *overrides: str, resume: bool = False, timeout: float = 120, **env: str):
    return subprocess.run(
        train_cmd(run_dir, *overrides, resume=resume),
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def training(run_dir: Path, *overrides: str, resume: bool = False, **env: str) -> Iterator[subprocess.Popen]:
    """The trainer running in the background (stdout and stderr in one pipe); killed if still running when the
    block ends, so a failed assertion leaves no process behind."""
    proc = subprocess.Popen(
        train_cmd(run_dir, *overrides, resume=resume),
        cwd=REPO,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def trained_once(tmp_path_factory: Any, folder: str, name: str, *overrides: str) -> Path:
    """A finished run `folder/name` of these overrides, trained by a module fixture once: read-only to its tests
    (each changes its own copy)."""
    run = tmp_path_factory.mktemp(folder) / name
    proc = run_train(run, *overrides)
    assert proc.returncode == 0, proc.stderr
    return run


def kill_with_ranks(proc: subprocess.Popen) -> None:
    """torchrun, still running when a test ends, killed with its ranks: torch's agent starts each rank in a session
    of its own, so killing torchrun alone left them training (train.steps=100000) through the rest of the suite."""
    if proc.poll() is not None:
        return
    try:
        ranks = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    except OSError:
        ranks = []
    proc.kill()
    proc.wait()
    for pid in ranks:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def records(run_dir: Path, rank: int = 0) -> list[dict]:
    path = run_dir / f"heartbeat_rank{rank}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(pred, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
