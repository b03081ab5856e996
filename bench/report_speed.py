"""How long does `nsa report` take on a long run, and how much memory?

    .venv/bin/python bench/report_speed.py [--lines 100000 1000000] [--repeat 3] [--dir DIR]

For each --lines N: writes a telemetry-v1 run with N progress records in heartbeat_rank0.jsonl and the same rows
in training.csv (bench/status_speed.write_run), then runs the real `nsa report RUN --out DIR` --repeat times and
prints a Markdown table: wall time (median and min), the child's peak RSS (max over the repeats).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import positive_int
from status_speed import write_run


def time_report(run: Path, out: Path) -> tuple[float, float]:
    """(wall s, this child's peak RSS in MiB) of one `nsa report`; ru_maxrss of RUSAGE_CHILDREN is the largest child
    so far, so each repeat runs in a fresh helper process that reports its own child's peak."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "w = time.perf_counter() - t\n"
        "if p.returncode: sys.exit(p.stderr)\n"
        "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    nsa = str(Path(sys.executable).parent / "nsa")
    res = subprocess.run(
        [sys.executable, "-c", probe, nsa, "report", str(run), "--out", str(out)], capture_output=True, text=True
    )
    if res.returncode:
        raise SystemExit(f"nsa report failed: {res.stderr.strip()}")
    wall, rss = res.stdout.split()
    return float(wall), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=positive_int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=positive_int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="keep the runs here (default: a temp dir, removed)")
    args = ap.parse_args()
    if not (Path(sys.executable).parent / "nsa").exists():
        raise SystemExit(
            f"error: no nsa next to {sys.executable}; run it with the project's venv: .venv/bin/python {sys.argv[0]}"
        )
    base = args.dir or Path(tempfile.mkdtemp(prefix="nsa-report-bench-"))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {when}")
    print()
    print("| progress lines | heartbeat MiB | `nsa report` wall s, median (min) | peak RSS MiB |")
    print("|---:|---:|---:|---:|")
    try:
        for n in args.lines:
            run = base / f"run{n}"
            if not (run / "heartbeat_rank0.jsonl").exists():
                write_run(run, n)
            mib = (run / "heartbeat_rank0.jsonl").stat().st_size / 2**20
            walls, peaks = [], []
            for _ in range(args.repeat):
                wall, peak = time_report(run, base / f"out{n}")
                walls.append(wall)
                peaks.append(peak)
            print(f"| {n:,} | {mib:.0f} | {statistics.median(walls):.1f} ({min(walls):.1f}) | {max(peaks):.0f} |")
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
