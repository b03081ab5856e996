"""How long `nsa watch` takes to open a run with N heartbeat lines (default 1,000,000).

    .venv/bin/python bench/watch_load.py [--n 1000000] [--app [--repeat 5]]

Builds (once, cached under /tmp/nsa-bench) a telemetry-v1 run with N progress records in
heartbeat_rank0.jsonl and training.csv, then measures in a fresh process:
- model: first read of every file (RunHistory + chart columns) and the health verdict;
- charts: drawing all six charts at 200x50 cell sizes, every point downsampled;
- with --app: the real Textual app, headless at 200x50, in --repeat fresh processes: the wall time
  from spawning the interpreter until the first full screen with the whole history is drawn
  (min / median / max).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import positive_int

T_START = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=positive_int, default=1_000_000)
    ap.add_argument("--app", action="store_true", help="also time the Textual app to its first screen")
    ap.add_argument("--repeat", type=positive_int, default=5, help="fresh app processes for --app")
    ap.add_argument("--app-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.app_child:
        app_child(args.n)
        return
    from watch_fixture import build

    run = build(Path(f"/tmp/nsa-bench/run-{args.n}"), args.n)
    size_mb = sum(p.stat().st_size for p in run.iterdir()) / 2**20
    print(f"run: {run} ({size_mb:.0f} MiB, {args.n} heartbeat lines)")

    t0 = time.perf_counter()
    from nsa_tui.tail.local import LocalRunSource
    from nsa_tui.watch.chart_render import render
    from nsa_tui.watch.charts import CHARTS, RunCharts, ViewSettings
    from nsa_tui.watch.model import RunModel
    from nsa_tui.watch.verdict import evaluate

    t_import = time.perf_counter() - t0
    from nsa_tui.watch import model as model_mod

    parse_s = [0.0]
    real_parse = model_mod.parse_columns

    def timed_parse(blob, *a, **k):  # how much of the first read is the CSV parser
        t = time.perf_counter()
        try:
            return real_parse(blob, *a, **k)
        finally:
            parse_s[0] += time.perf_counter() - t

    model_mod.parse_columns = timed_parse
    t0 = time.perf_counter()
    m = RunModel(run.name, LocalRunSource(run, force_poll=True))
    m.pump()
    t_model = time.perf_counter() - t0
    model_mod.parse_columns = real_parse
    t0 = time.perf_counter()
    v = evaluate(m.history, time.time())
    t_health = time.perf_counter() - t0
    t0 = time.perf_counter()
    charts = RunCharts(m)
    view = ViewSettings()
    for c in CHARTS:
        render(charts.spec(c, view), 45, 20)
    t_charts = time.perf_counter() - t0
    pts = m.table.cols["loss"].n
    print(
        f"imports {t_import:.2f}s  first read {t_model:.2f}s (of which training.csv column parse {parse_s[0]:.2f}s)"
        f"  health {t_health:.3f}s  6 charts {t_charts:.3f}s"
    )
    print(f"chart points: {pts} (full history); RunHistory points: {len(m.history.steps)}; state {v.state}")
    total = t_import + t_model + t_health + t_charts
    print(f"TOTAL model+charts: {total:.2f}s (process start to here {time.perf_counter() - T_START:.2f}s)")
    m.source.close()
    older_scan(run)

    if args.app:
        times = []
        for _ in range(args.repeat):
            t0 = time.monotonic()  # CLOCK_MONOTONIC: one clock for this process and the child
            child = subprocess.run(
                [sys.executable, __file__, "--n", str(args.n), "--app-child"], capture_output=True, text=True
            )
            if child.returncode != 0 or "first-screen" not in child.stdout:
                raise SystemExit(f"error: the app child failed:\n{child.stderr.strip()}")
            times.append(float(child.stdout.split("first-screen", 1)[1].split()[0]) - t0)
        print(
            f"Textual app, process spawn to first full screen (200x50, headless), {args.repeat} runs: "
            f"min {min(times):.2f}s  median {statistics.median(times):.2f}s  max {max(times):.2f}s"
        )


def older_scan(run: Path) -> None:
    """The events before the heartbeat's first-read window, as the dashboard finds them a moment after its first
    screen: the grep of older_sh (a child process: its CPU from getrusage), then the kept lines parsed into events."""
    import resource

    from nsa_train.telemetry import schema
    from nsa_tui.tail.older_sh import scan_older, window_end
    from nsa_tui.tail.source import HEARTBEAT_WINDOW
    from nsa_tui.watch.older import older_events

    path = run / schema.heartbeat_name(0)
    size = path.stat().st_size
    if size <= HEARTBEAT_WINDOW:
        print("older events: the heartbeat fits its first-read window, nothing to scan")
        return
    with open(path, "rb") as f:
        end = window_end(f, size - HEARTBEAT_WINDOW)
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        kept = scan_older(f, end)
        t_scan = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    events = older_events(path.name, kept, None)
    t_parse = time.perf_counter() - t0
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(
        f"older events: {end / 2**20:.0f} MiB before the window scanned in {t_scan:.2f}s ({cpu:.2f}s CPU of the "
        f"scan's processes), {len(kept) / 1000:.0f} KB kept, {len(events)} events parsed in {t_parse * 1000:.0f} ms"
    )


def app_child(n: int) -> None:
    """One `nsa watch` start in this fresh process; prints the monotonic clock at its first full screen."""
    from nsa_tui.tail.local import LocalRunSource
    from nsa_tui.watch.model import RunModel

    run = Path(f"/tmp/nsa-bench/run-{n}")
    model = RunModel(run.name, LocalRunSource(run, force_poll=True))
    model.prefetch()  # as `nsa watch` does: before Textual is imported
    from nsa_tui.watch.app import WatchApp

    async def run_app() -> float:
        app = WatchApp([model])
        async with app.run_test(size=(200, 50)) as pilot:
            while not app.loaded_on_screen:  # the app drew every pane from the whole history
                await pilot.pause(0.01)
            await pilot.pause()  # ... and the compositor painted it
            return time.monotonic()

    print(f"first-screen {asyncio.run(run_app())}")


if __name__ == "__main__":
    main()
