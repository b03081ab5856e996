"""CPU use and screen latency of `nsa watch` while a trainer writes 10 progress lines/s.

    .venv/bin/python bench/watch_live.py [--history 100000] [--rate 10] [--seconds 30] [--poll] [--profile FILE]

Runs the real `nsa watch` in a private tmux server (200x50), appends progress records to
heartbeat_rank0.jsonl / training.csv / train.log at --rate lines/s, and measures
- CPU: user+system time of the `nsa watch` process (all its threads) over the live window,
  as a percentage of one core;
- latency: for each written step, the time until `capture-pane` shows it in the header.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import nonnegative_int, positive_float
from watch_fixture import LOG_EVERY, build, progress_record

from nsa_train.telemetry import schema

NSA = str(Path(sys.executable).parent / "nsa")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime (all threads for a pid)


def thread_cpu(pid: int) -> dict[int, float]:
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(t.name)] = cpu_seconds(pid, int(t.name))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def profile_child(out: str, argv: list[str]) -> None:
    """`nsa watch ...` in this process, its UI thread under cProfile from PROFILE_AFTER_S until it quits."""
    import cProfile

    from nsa_tui.cli import main as nsa_main
    from nsa_tui.watch import app as app_mod

    prof = cProfile.Profile()
    mount, unmount = app_mod.WatchApp.on_mount, app_mod.WatchApp.on_unmount

    def on_mount(self) -> None:
        mount(self)
        self.set_timer(PROFILE_AFTER_S, lambda: prof.enable())

    def on_unmount(self) -> None:
        prof.disable()
        prof.dump_stats(out)
        unmount(self)

    app_mod.WatchApp.on_mount, app_mod.WatchApp.on_unmount = on_mount, on_unmount
    sys.argv = ["nsa", *argv]
    nsa_main()


PROFILE_AFTER_S = 4.0


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--profile-child":
        profile_child(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--history", type=nonnegative_int, default=100_000)
    ap.add_argument("--rate", type=positive_float, default=10.0)
    ap.add_argument("--seconds", type=positive_float, default=30.0)
    ap.add_argument("--poll", action="store_true", help="run nsa watch --poll (no inotify)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile nsa watch's UI thread over the live window into FILE")
    args = ap.parse_args()
    src = build(Path(f"/tmp/nsa-bench/run-{args.history}"), args.history)
    run = Path(f"/tmp/nsa-bench/live-{uuid.uuid4().hex[:6]}")
    shutil.copytree(src, run)
    sock = f"nsa-bench-{uuid.uuid4().hex[:6]}"

    def tmux(*a: str) -> str:
        return subprocess.run(["tmux", "-L", sock, *a], capture_output=True, text=True, check=True).stdout

    # --profile: this script's profile_child() runs nsa watch and profiles its UI thread from 4 s on (after the load)
    nsa = (
        f"{sys.executable} {Path(__file__).resolve()} --profile-child {Path(args.profile).resolve()}"
        if args.profile
        else NSA
    )
    cmd = f"env -u COLUMNS -u LINES {nsa} watch {run}{' --poll' if args.poll else ''}"
    tmux("new-session", "-d", "-s", "b", "-x", "200", "-y", "50", cmd)
    try:
        shell = int(tmux("display", "-p", "-t", "b", "#{pane_pid}").strip())
        last = args.history * LOG_EVERY
        t0 = time.monotonic()
        while f"step {last}/" not in tmux("capture-pane", "-p", "-t", "b"):
            if time.monotonic() - t0 > 60:
                raise SystemExit("nsa watch did not show the run within 60 s")
            time.sleep(0.05)
        print(f"opened {args.history}-line history in {time.monotonic() - t0:.2f}s (to the header on screen)")
        # sh usually execs the single command, so the pane's pid is nsa itself; else its child
        children = subprocess.run(["pgrep", "-P", str(shell)], capture_output=True, text=True).stdout.split()
        pid = int(children[0]) if children else shell
        time.sleep(2.0)  # let the first full draw settle
        hb = open(run / schema.heartbeat_name(0), "a")  # noqa: SIM115
        csv = open(run / schema.TRAINING_CSV, "a")  # noqa: SIM115
        log = open(run / schema.TRAIN_LOG, "a")  # noqa: SIM115
        cpu0, wall0, threads0 = cpu_seconds(pid), time.monotonic(), thread_cpu(pid)
        latencies: list[float] = []
        i = args.history
        period = 1.0 / args.rate
        next_t = time.monotonic()
        t_run0 = json.loads((run / schema.RUN_JSON).read_text())["start_time"]
        pending: dict[int, float] = {}
        while time.monotonic() - wall0 < args.seconds:
            rec, row = progress_record(i, t_run0)
            rec["ts"] = time.time()
            hb.write(schema.encode(rec))
            hb.flush()
            csv.write(",".join(repr(v) for v in row) + "\n")
            csv.flush()
            log.write(f"step {rec['step']} | loss {rec['loss']:.4f}\n")
            log.flush()
            pending[rec["step"]] = time.monotonic()
            i += 1
            next_t += period
            # check the screen until the next write is due
            while time.monotonic() < next_t:
                screen = tmux("capture-pane", "-p", "-t", "b").split("\n", 1)[0]
                now = time.monotonic()
                for step in [s for s in pending if f"step {s}/" in screen]:
                    # a later step on screen implies the earlier ones were processed too
                    for s in [s for s in pending if s <= step]:
                        latencies.append(now - pending.pop(s))
                time.sleep(0.01)
        cpu1, wall1, threads1 = cpu_seconds(pid), time.monotonic(), thread_cpu(pid)
        pct = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
        per = {t: 100.0 * (c - threads0.get(t, 0.0)) / (wall1 - wall0) for t, c in threads1.items()}
        busy = sorted(
            ((v, "main (UI)" if t == pid else f"thread {t}") for t, v in per.items() if v > 0.05), reverse=True
        )
        lat = sorted(latencies)
        mode = "poll" if args.poll else "inotify"
        print(f"rate {args.rate}/s for {wall1 - wall0:.1f}s, {i - args.history} lines, mode {mode}")
        print(f"nsa watch CPU: {pct:.2f}% of one core (process {pid}, all threads)")
        print("  per thread: " + ", ".join(f"{name} {v:.2f}%" for v, name in busy))
        if lat:
            print(
                f"latency write->screen: p50 {statistics.median(lat) * 1000:.0f} ms, "
                f"p95 {lat[round(0.95 * (len(lat) - 1))] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms "
                f"({len(lat)} lines seen, {len(pending)} not yet seen at the end)"
            )
        if args.profile:  # quit cleanly so cProfile writes its stats
            tmux("send-keys", "-t", "b", "q")
            t_quit = time.monotonic()
            while pid_alive(pid) and time.monotonic() - t_quit < 10:
                time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
