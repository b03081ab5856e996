"""Helpers for the launch tests: run the real `nsa` CLI in a subprocess, poll files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

# The tiny CPU run, shrunk so a launch shows progress in seconds on a shared 2-core box.
TINY = [
    "--set", "train.steps=2000",
    "--set", "model.dim=32",
    "--set", "model.n_layers=1",
    "--set", "model.n_heads=2",
    "--set", "model.n_kv_heads=1",
    "--set", "train.seq_len=64",
    "--set", "train.batch_size=2",
    "--set", "train.log_every=1",
    "--set", "train.eval_every=0",
    "--set", "train.eval_batches=1",
    "--set", "train.save_every=0",
    "--set", "train.warmup_steps=1",
    "--set", "runtime.device=cpu",
    "--set", "runtime.threads=1",
    "--set", "runtime.tensorboard=false",
]  # fmt: skip


def later_sets_win(args: tuple[str, ...] | list[str]) -> list[str]:
    """The arguments with a `--set KEY=...` given again (a test's own over TINY's) in place of the first: the CLI
    refuses a key given twice with different values."""
    out: list[str] = []
    where: dict[str, int] = {}
    for i, arg in enumerate(args):
        if i and args[i - 1] == "--set" and "=" in arg:
            key = arg.split("=", 1)[0]
            if key in where:
                out[where[key]] = arg
                out.pop()  # its "--set"
                continue
            where[key] = len(out)
        out.append(arg)
    return out


def nsa(*args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path | None = None):
    """Run the real CLI; returns the CompletedProcess (text). A `--set` of a key given again replaces the first."""
    return subprocess.run(
        [sys.executable, "-m", "nsa_tui", *later_sets_win(args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd or REPO,
        stdin=subprocess.DEVNULL,
    )


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def records(run_dir: Path, rank: int = 0) -> list[dict]:
    p = run_dir / f"heartbeat_rank{rank}.jsonl"
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def tmux_sessions() -> list[str]:
    sock = os.environ["NSA_TMUX_SOCKET"]
    res = subprocess.run(["tmux", "-L", sock, "list-sessions", "-F", "#{session_name}"], capture_output=True, text=True)
    return res.stdout.splitlines() if res.returncode == 0 else []


def exit_status(run_dir: Path) -> int | None:
    p = run_dir / "exit_status"
    return int(p.read_text()) if p.exists() else None


def trainer_available() -> bool:
    """The e2e tests need `python -m nsa_train.train` (written in parallel by another engineer)."""
    return (REPO / "nsa_train" / "train.py").exists() or (REPO / "nsa_train" / "train" / "__main__.py").exists()
