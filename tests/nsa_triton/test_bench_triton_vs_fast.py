"""bench/triton_vs_fast.py: one clear line without CUDA; a smoke run of the whole table in the interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "triton_vs_fast.py"


def test_without_cuda_says_so_and_exits_2():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, str(BENCH)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "triton_vs_fast.py needs a CUDA GPU (torch.cuda.is_available() is False)"


def test_cpu_without_the_interpreter_says_why_and_exits_2():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--device", "cpu"], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("triton_vs_fast.py cannot run the Triton kernels: no CUDA device")


@pytest.mark.slow
def test_smoke_run_in_the_interpreter_prints_every_branch():
    pytest.importorskip("triton", reason="triton is not installed")
    # 96 tokens, not 128: still 5 compressed blocks (l=32, d=16) and 2 selection blocks (l_sel=64), the second
    # hidden from the first 64 queries, for the block choice to tell; the interpreter's time grows with T
    # (0.75x of 128's CPU time)
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--device", "cpu", "--seq-lens", "96", "--warmup", "0", "--reps", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TRITON_INTERPRET": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| 96 ")]
    assert [r[1].strip() for r in rows[:3]] == ["compressed + block choice", "selection", "sliding window"]
    for row in rows[:3]:
        assert all(float(c) > 0 for c in (row[2], row[3], row[5], row[6]))  # the four timings
    # the block choice table: both ways timed, and they chose the same blocks
    assert len(rows) == 4 and float(rows[3][1]) > 0 and float(rows[3][2]) > 0
    assert rows[3][6].strip() == "yes"
