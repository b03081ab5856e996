"""bench/attention.py: the JSON contract of one measurement, and a clear error without the peer's environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "attention.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("impl", ["nsa", "dense"])
def test_one_measurement_prints_the_json_fields(impl):
    out = _run("--impl", impl, "--seq-len", "96", "--repeats", "1", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["impl"] == impl and r["seq_len"] == 96
    assert r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0 and r["peak_rss_mb"] > 0


def test_the_peer_needs_its_own_environment():
    """The project's environment never has lucidrains' package: one line says how to make the peer's."""
    out = _run("--impl", "lucidrains", "--seq-len", "64", "--json")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "bash bench/peer_env.sh" in out.stderr and "Traceback" not in out.stderr
