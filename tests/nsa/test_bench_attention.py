"""bench/attention.py: the JSON contract of one measurement, a clear error without the peer's environment, and
limits that end a measurement with a message instead of a killed machine or a hung bench."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "attention.py"
KEYS = {"impl", "seq_len", "fwd_ms", "fwd_bwd_ms", "peak_rss_mb", "repeats", "threads", "torch", "mem_limit_gb"}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("impl", ["nsa", "dense"])
def test_one_measurement_prints_the_json_fields(impl):
    out = _run("--impl", impl, "--seq-len", "96", "--repeats", "1", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(r) == KEYS
    assert r["impl"] == impl and r["seq_len"] == 96
    assert r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0 and r["peak_rss_mb"] > 0


def test_the_peer_needs_its_own_environment():
    """The project's environment never has lucidrains' package: one line says how to make the peer's."""
    out = _run("--impl", "lucidrains", "--seq-len", "64", "--json")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "bash bench/peer_env.sh" in out.stderr and "Traceback" not in out.stderr


def test_running_out_of_memory_is_reported_not_crashed():
    """The input alone (1M tokens x 512 fp32 = 2 GB) exceeds a 2 GiB address-space cap."""
    out = _run("--impl", "dense", "--seq-len", "1000000", "--mem-limit-gb", "2", "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["fwd_ms"] is None and r["fwd_bwd_ms"] is None and "out of memory" in r["error"]
    assert out.stderr == f"error: {r['error']}\n"


def test_a_measurement_past_its_time_limit_stops_with_a_message():
    out = _run("--impl", "nsa", "--seq-len", "4096", "--time-limit-s", "0.01", "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["fwd_bwd_ms"] is None and r["error"] == "over the 0.01 s time limit"
