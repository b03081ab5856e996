"""What a trainer process's start costs on the embedded default: wall and CPU seconds from its spawn to its [data]
line, its [model] line (the start done: torch, data, model, optimizer) and its first step line, and its resident
memory at [model]; each run in a fresh process, killed at its first step line.

    .venv/bin/python bench/start_cost.py [--repeat 5] [--against DIR]

--against DIR: another checkout of this repository (e.g. `git worktree add /tmp/old <commit>`), run by this venv's
interpreter alternately with this one (this, DIR, DIR, this, ...): on a shared machine only alternated runs compare.
CPU seconds (user + system, /proc) move less with the machine's load than wall time. Prints a Markdown table of
medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _args import positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch")

HERE = Path(__file__).resolve().parents[1]
MARKS = ("[data]", "[model]", "step 1 ")
SETS = ["train.steps=2", "train.warmup_steps=1", "train.log_every=1", "train.eval_every=0", "train.save_every=0"]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rss_mib(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def one_start(tree: Path) -> dict[str, tuple[float, float, float]]:
    """{mark: (wall s, cpu s, rss MiB)} of one trainer started in ``tree`` (`-m` imports that tree's nsa_train)."""
    with tempfile.TemporaryDirectory(prefix="start-cost-") as tmp:
        argv = [sys.executable, "-m", "nsa_train.train", "--run-dir", f"{tmp}/run"]
        argv += [a for s in SETS for a in ("--set", s)]
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "PYTHONPATH")}
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen: dict[str, tuple[float, float, float]] = {}
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                mark = next((m for m in MARKS if line.startswith(m)), None)
                if mark is not None and mark not in seen:
                    seen[mark] = (time.perf_counter() - t0, _cpu_s(proc.pid), _rss_mib(proc.pid))
                if len(seen) == len(MARKS):
                    break
        finally:
            proc.kill()
            _, err = proc.communicate()
        if len(seen) < len(MARKS):
            raise SystemExit(f"error: the trainer in {tree} ended before its first step:\n{err[-2000:]}")
        return seen


def _code(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return out.stdout.strip() or str(tree)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=positive_int, default=5)
    ap.add_argument("--against", type=Path, default=None, help="another checkout, run alternately with this one")
    args = ap.parse_args()
    trees = [HERE]
    if args.against is not None:
        if not (args.against / "nsa_train" / "train.py").is_file():
            ap.error(f"--against {args.against}: not a checkout of this repository (no nsa_train/train.py)")
        trees.append(args.against.resolve())
    runs: dict[Path, list[dict[str, tuple[float, float, float]]]] = {t: [] for t in trees}
    for i in range(args.repeat):
        for tree in trees if i % 2 == 0 else trees[::-1]:
            runs[tree].append(one_start(tree))

    def med(tree: Path, mark: str, k: int) -> float:
        return statistics.median(r[mark][k] for r in runs[tree])

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} after, median of {args.repeat}\n")
    print("| code | to [data]: wall, CPU | to [model]: wall, CPU | RSS at [model] | to step 1: wall, CPU |")
    print("|---|---:|---:|---:|---:|")
    for tree in trees:
        data, model, step = ((med(tree, m, 0), med(tree, m, 1)) for m in MARKS)
        print(
            f"| {_code(tree)} | {data[0]:.2f} s, {data[1]:.2f} s | {model[0]:.2f} s, {model[1]:.2f} s "
            f"| {med(tree, '[model]', 2):.0f} MiB | {step[0]:.2f} s, {step[1]:.2f} s |"
        )


if __name__ == "__main__":
    main()
