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
KEYS |= {"cpu", "cpu_kernels", "base_rss_mb"}


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
    assert 0 < r["base_rss_mb"] <= r["peak_rss_mb"]


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


def test_table_over_rounds_reports_medians_and_the_ratio_range():
    """--rounds 2: both impls measured twice at one tiny length; the dense row's ratios are a median with the
    range of the two per-round ratios, and each of the 4 measurements is logged to stderr."""
    out = subprocess.run(
        [sys.executable, str(BENCH), "--table", "--lengths", "64", "--rounds", "2", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    logged = [json.loads(line[2:]) for line in out.stderr.splitlines() if line.startswith("# {")]
    assert sorted(r["impl"] for r in logged) == ["dense", "dense", "nsa", "nsa"]
    rows = [line.split(" | ") for line in out.stdout.splitlines() if line.startswith("| 64 |")]
    assert [r[1] for r in rows] == ["NSA", "dense SDPA"]
    nsa_fwd = [r["fwd_ms"] for r in logged if r["impl"] == "nsa"]
    assert float(rows[0][2]) == pytest.approx(sum(nsa_fwd) / 2, abs=0.06)  # the median of two
    # the machine, once, as the measurements name it: the README's tables come from CPUs that differ
    cpu, isa, threads = (logged[0][k] for k in ("cpu", "cpu_kernels", "threads"))
    assert out.stdout.splitlines()[-1] == f"CPU: {cpu} (torch's kernels: {isa}), threads: {threads}"
    ratio = rows[1][5]  # "NSA fwd speedup": median (min-max)
    median, low, high = (float(x) for x in ratio.replace("x (", " ").replace(")", "").replace("-", " ").split())
    assert low <= median <= high


def test_combine_rounds_keeps_errors_and_drops_incomplete_measurements(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))
    from attention import combine_rounds

    ok = {"impl": "nsa", "seq_len": 8, "fwd_ms": 1.0, "fwd_bwd_ms": 3.0, "peak_rss_mb": 10.0}
    slow = ok | {"fwd_ms": 3.0, "fwd_bwd_ms": 5.0, "peak_rss_mb": 30.0}
    assert combine_rounds([ok, slow, ok | {"fwd_ms": 2.0}]) == ok | {"fwd_ms": 2.0, "rounds": 3, "peak_rss_mb": 10.0}
    oom = ok | {"fwd_bwd_ms": None, "error": "forward+backward: out of memory"}
    got = combine_rounds([ok, oom])
    assert got["fwd_bwd_ms"] is None and got["fwd_ms"] == 1.0 and got["error"] == oom["error"]


def _main(monkeypatch, *argv: str) -> int:
    """bench/attention.py's main in this process (its table's measurements still run in children)."""
    monkeypatch.syspath_prepend(str(BENCH.parent))
    from attention import main

    try:
        return main(list(argv))
    except SystemExit as e:  # argparse's refusal
        return int(e.code)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ("--table --lengths 0", "--lengths must all be at least 1: 0"),
        ("--table --lengths=64,-8", "--lengths must all be at least 1: 64,-8"),
        ("--table --impls nsa,nsa", "--impls names an impl twice: nsa,nsa"),  # measured once, printed twice
        ("--impl nsa --seq-len 64 --rounds 2", "--rounds is for --table only"),  # ignored without --table
        ("--impl nsa --seq-len 64 --lengths 64 --impls nsa", "--lengths and --impls are for --table only"),
    ],
)
def test_table_options_out_of_place_or_range_are_refused(monkeypatch, capsys, argv, said):
    assert _main(monkeypatch, *argv.split()) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.strip().splitlines()[-1].endswith(f": error: {said}")  # PROG: error: ...


def test_a_table_with_a_cell_that_is_no_measurement_exits_1(monkeypatch, capsys):
    """Every cell of a table can be 'over time' (or out of memory, or failed): it is printed whole, and the
    exit status says that it is not all measurements."""
    argv = ["--table", "--lengths", "64", "--impls", "dense", "--repeats", "1", "--time-limit-s", "0.0001"]
    assert _main(monkeypatch, *argv) == 1
    out = capsys.readouterr()
    assert "| 64 | dense SDPA | over time | over time |" in out.out
    assert out.err.strip().splitlines()[-1].startswith("error: some measurements did not finish")


def test_a_length_that_runs_out_of_the_memory_cap_is_a_result_not_a_failure(monkeypatch, capsys):
    """The README's peer table has an `out of memory` cell by design (its forward+backward at 4k): that command
    exited 1 once cells that are no measurement did; a length over the cap is what it needs, measured."""
    argv = ["--table", "--lengths", "64", "--impls", "dense", "--repeats", "1", "--mem-limit-gb", "0.3"]
    assert _main(monkeypatch, *argv) == 0
    out = capsys.readouterr()
    assert "| 64 | dense SDPA | out of memory | out of memory |" in out.out
