"""bench/attention_triton.py: clean exit without CUDA, and its NSA-like block selection."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench" / "attention_triton.py"


def _load_bench():
    if str(BENCH.parent) not in sys.path:  # as when the script runs: its directory first (bench/_needs.py)
        sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("bench_attention_triton", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exits_2_with_one_line_without_cuda():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--seq-lens", "8192"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "attention_triton.py needs a CUDA GPU (torch.cuda.is_available() is False)"
    ]


def test_bench_selection_is_distinct_visible_and_keeps_initial_and_local_blocks():
    bench = _load_bench()
    T, H, S, BS = 300, 2, 4, 16
    idx = bench.nsa_like_block_indices(2, T, H, S, BS, torch.device("cpu"))  # [B, T, H, S]
    assert idx.shape == (2, T, H, S) and idx.dtype == torch.int32
    current = (torch.arange(T) // BS).view(1, T, 1)
    chosen = idx.long()
    assert torch.all(chosen <= current.unsqueeze(-1))  # never a future block
    assert torch.all((chosen == 0).any(-1)) and torch.all((chosen == current.unsqueeze(-1)).any(-1))
    has_prev = (chosen == (current - 1).unsqueeze(-1)).any(-1) | (current == 0)
    assert torch.all(has_prev)
    valid = chosen[chosen >= 0]
    assert valid.numel() > 0
    for row in chosen.view(-1, S).tolist():
        ids = [i for i in row if i >= 0]
        assert len(ids) == len(set(ids))


def test_layer_smoke_run_on_cpu_prints_one_row_per_length():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--layer", "--device", "cpu", "--seq-lens", "300", "700", "--warmup", "0",
         "--reps", "1"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    head, *rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert "NSA fwd+bwd ms" in head
    assert "nsa.impl auto, path: fast; fallbacks during the run: 0" in proc.stdout
    assert [row.split("|")[1].strip() for row in rows] == ["300", "700"]
    for row in rows:
        cells = [c.strip() for c in row.split("|")[2:-1]]
        assert all(float(c) > 0 for c in (cells[0], cells[1], cells[3], cells[4]))  # the four timings
        assert cells[-2:] == ["-", "-"]  # no memory figure on CPU


def test_layer_smoke_run_counts_the_fallbacks_of_triton_without_a_gpu():
    """--nsa-impl triton where the kernels cannot run (no CUDA, no interpreter): the fast path runs, and the
    table says how many times it stood in for a kernel instead of passing it off as the Triton path."""
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--layer", "--device", "cpu", "--nsa-impl", "triton", "--seq-lens", "300",
         "--warmup", "0", "--reps", "1"],
        capture_output=True, text=True, timeout=180, env={**os.environ, "TRITON_INTERPRET": "0"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    fell_back = re.search(r"nsa.impl triton, path: fast; fallbacks during the run: (\d+)\)", proc.stdout)
    assert fell_back and int(fell_back.group(1)) > 0, proc.stdout


def test_layer_mode_refuses_the_selection_ops_shape_options():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--layer", "--device", "cpu", "--n-sel", "8"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("--n-sel set the selection op's shape; --layer uses "
                                                         "bench/attention.py's layers")  # fmt: skip


@pytest.mark.slow
def test_branches_smoke_run_in_the_interpreter_times_nsa_against_sdpa():
    """--branches (the paper's kernel comparison) runs all three branches' kernels end to end: here in the Triton
    interpreter, a smoke run of the code the GPU check measures."""
    pytest.importorskip("triton", reason="triton is not installed")
    # 96 tokens, not 128: still 5 compressed blocks (l=32, d=16) and 2 selection blocks (l_sel=64), the second
    # hidden from the first 64 queries, for every branch's kernels to run on; the interpreter's time grows with T
    # (0.7x of 128's CPU time)
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--branches", "--device", "cpu", "--seq-lens", "96", "--warmup", "0",
         "--reps", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TRITON_INTERPRET": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "NSA attention, its 3 branches (Triton; l=32, d=16, w=512) vs causal SDPA" in proc.stdout
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("| 96 ")]
    cells = [c.strip() for c in row.split("|")[2:-1]]
    assert all(float(c) > 0 for c in (cells[0], cells[1], cells[3], cells[4]))  # the four timings


def test_branches_on_cpu_without_the_interpreter_says_why_and_exits_2():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--branches", "--device", "cpu"], capture_output=True, text=True, timeout=120,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("attention_triton.py cannot run the Triton kernels: no CUDA device")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--layer", "--branches"], "--layer and --branches are two different tables: pick one"),
        (["--device", "cpu"], "--device cpu is for --layer or --branches only (a smoke run, not a measurement)"),
        (
            ["--heads", "6", "--kv-heads", "4"],
            "--heads (6) must be a multiple of --kv-heads (4): each KV head serves a group",
        ),
    ],
)
def test_mode_mistakes_end_in_one_message(flags, message):
    proc = subprocess.run([sys.executable, str(BENCH), *flags], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(message)
