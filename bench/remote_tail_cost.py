"""CPU cost on the remote host of `nsa watch --host`'s POSIX sh loop, per round.

    .venv/bin/python bench/remote_tail_cost.py [--ranks 4] [--rounds 60] [--append 10] [--tools auto,ls]

Runs nsa_tui.tail.remote_script.SCRIPT with /bin/sh directly (no ssh: what the remote
machine pays, not the link) on a synthetic run directory: --ranks heartbeat files, training.csv,
val.csv, train.log, console.log and the whole files (run.json, launch.json, config.yaml,
exit_status). Between rounds --append lines are appended to rank 0's heartbeat, training.csv
and train.log. The loop's interval is 0, so the numbers are per round: user+system CPU of
the shell and every process it starts (getrusage of children), and wall time. With the
default interval of 1 s, CPU per round in ms / 10 is the % of one core the remote loop uses.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from _args import nonnegative_int, positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("nsa_tui")

from nsa_tui.tail.frames import FrameParser
from nsa_tui.tail.remote_script import MTIME_TOOLS, SCRIPT, script_args


def build(run: Path, ranks: int) -> None:
    run.mkdir(parents=True)
    for r in range(ranks):
        with open(run / f"heartbeat_rank{r}.jsonl", "w") as f:
            for s in range(2000):
                f.write(json.dumps({"v": 1, "kind": "progress", "rank": r, "step": s, "loss": 3.0}) + "\n")
    (run / "training.csv").write_text("".join(f"{s},3.0,0.0003,6800\n" for s in range(2000)))
    (run / "val.csv").write_text("".join(f"{s},2.5,12.1\n" for s in range(0, 2000, 100)))
    (run / "train.log").write_text("".join(f"step {s} loss 3.0\n" for s in range(2000)))
    (run / "console.log").write_text("booting\n")
    for name in ("run.json", "launch.json"):
        (run / name).write_text(json.dumps({"run": "bench", "pad": "x" * 2000}, indent=2))
    (run / "config.yaml").write_text("train:\n  steps: 2000\n" * 20)
    (run / "exit_status").write_text("0\n")


def append(run: Path, n: int, step: int) -> None:
    with open(run / "heartbeat_rank0.jsonl", "a") as f:
        f.writelines(json.dumps({"v": 1, "kind": "progress", "step": step + i}) + "\n" for i in range(n))
    with open(run / "training.csv", "a") as f:
        f.writelines(f"{step + i},3.0,0.0003,6800\n" for i in range(n))
    with open(run / "train.log", "a") as f:
        f.writelines(f"step {step + i}\n" for i in range(n))


def run_loop(run: Path, tool: str, rounds: int, n_append: int) -> float:
    """Run the loop until ``rounds`` rounds after the first (the full read) are done; their wall seconds."""
    proc = subprocess.Popen(
        ["/bin/sh", "-c", SCRIPT, "sh", *script_args(str(run), 0, tool)],  # the arguments nsa watch --host sends
        stdout=subprocess.PIPE,
    )
    parser = FrameParser(wait_for_start=True)  # after the @@nsa-watch@@ line the script starts with
    seen = 0
    step = 10_000
    t0 = time.perf_counter()
    try:
        while seen <= rounds:
            data = proc.stdout.read1(1 << 20)  # type: ignore[union-attr]
            if not data:
                raise SystemExit("the remote loop exited")
            for fr in parser.feed(data):
                if fr.kind != "E":
                    continue
                seen += 1
                if seen == 1:
                    t0 = time.perf_counter()
                if n_append:
                    append(run, n_append, step)
                    step += n_append
    finally:
        wall = time.perf_counter() - t0
        proc.kill()
        proc.wait()
    return wall


def cpu_of(run: Path, tool: str, rounds: int, n_append: int) -> tuple[float, float]:
    """(CPU seconds of the loop and all it started, wall seconds of the rounds after the first)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run_loop(run, tool, rounds, n_append)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=positive_int, default=4)
    ap.add_argument("--rounds", type=positive_int, default=60)
    ap.add_argument("--append", type=nonnegative_int, default=10, help="lines appended to three logs between rounds")
    ap.add_argument("--tools", default="auto,ls", help="mtime sources to measure: auto,stat,perl,ls")
    args = ap.parse_args()
    tools = args.tools.split(",")
    if unknown := [t for t in tools if t not in ("auto", *MTIME_TOOLS)]:
        ap.error(f"--tools: {', '.join(unknown)} is not one of auto, {', '.join(MTIME_TOOLS)}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    for tool in tools:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            build(run, args.ranks)
            # the first round reads everything once; a 1-round run isolates it
            cpu1, _ = cpu_of(run, tool, 0, 0)
            cpu, wall = cpu_of(run, tool, args.rounds, args.append)
            per_round = (cpu - cpu1) / args.rounds * 1000
            print(
                f"mtime tool {tool:5s}: {per_round:6.1f} ms CPU/round, {wall / args.rounds * 1000:6.1f} ms wall/round "
                f"({args.ranks} heartbeat files + 4 logs + 4 whole files, {args.append} lines appended/round); "
                f"first full read {cpu1 * 1000:.0f} ms CPU"
            )


if __name__ == "__main__":
    main()
