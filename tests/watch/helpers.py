"""Helpers for the `nsa watch` tests: a frozen clock, and opening the real app under Pilot
until its first read is on screen."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fixtures.runs import healthy_metrics, stamp_heartbeats, v1_config

from nsa_train.telemetry import schema
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.tail.source import HEARTBEAT_WINDOW
from nsa_tui.watch.app import WatchApp
from nsa_tui.watch.model import RunModel

NOW = 1_790_000_000.0  # the frozen "now" of every deterministic screen


def freeze_mtimes(run: Path, ts: float = NOW - 2.0) -> None:
    """File mtimes feed the health engine (last_write_ts): pin them to the frozen clock. A heartbeat file keeps its
    newest record's time, as the trainer's appends leave it: one pinned elsewhere reads as a writer on another clock
    (health/clock.py)."""
    for p in run.iterdir():
        if p.is_file() and schema.heartbeat_rank(p.name) is None:
            os.utime(p, (ts, ts))
    stamp_heartbeats(run)


def make_app(*runs: Path, clock=lambda: NOW, poll: bool = True) -> WatchApp:
    models = [RunModel(r.name, LocalRunSource(r, force_poll=poll), where=str(r)) for r in runs]
    return WatchApp(models, clock=clock)


async def wait_loaded(pilot, app: WatchApp, timeout: float = 10.0) -> None:
    """Until every run's first read is applied and drawn."""
    waited = 0.0
    while not all(m.loaded for m in app.runs) and waited < timeout:
        await pilot.pause(0.05)
        waited += 0.05
    assert all(m.loaded for m in app.runs), "the first read did not finish"
    app._redraw(force=True)
    await pilot.pause()


def watch_here(run: Path) -> tuple[RunModel, WatchApp]:
    """The dashboard on a run of this machine, asking after its processes as `nsa watch RUN` does."""
    import time

    model = RunModel(run.name, LocalRunSource(run, force_poll=True), where=str(run), check_liveness=True)
    return model, WatchApp([model], clock=time.time)


async def loaded_and_checked(pilot, app: WatchApp, model: RunModel) -> None:
    """Until the first read is drawn and the first liveness check is in the verdict."""
    await wait_loaded(pilot, app)
    await until_liveness(pilot, model, lambda: model._tmux_at > 0)
    app._redraw(force=True)


async def until_liveness(pilot, model: RunModel, done, timeout: float = 8.0) -> None:
    """Ask for the model's next liveness check now (it comes every TMUX_EVERY_S) and wait until ``done()``."""
    import time

    model._tmux_at = -1e9
    t0 = time.monotonic()
    while not done() and time.monotonic() - t0 < timeout:
        await pilot.pause(0.05)


def async_test(fn):
    """Run an async test function with asyncio (no pytest-asyncio here); fixtures pass through."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def screen_lines(app: WatchApp) -> list[str]:
    """The screen's text as it is drawn, one string a row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


T0 = 1_789_990_000.0
WARNING = "the lr schedule changes with this resume (train.steps 600 -> 800): " + "x" * 150 + " END-OF-WARNING"


def write_long_run(path: Path, n: int = 4000) -> list[tuple[str, int]]:
    """A telemetry-v1 run whose heartbeat is over HEARTBEAT_WINDOW: boot and phases (the train phase with a long
    warning), ``n`` progress records 10 steps apart, an eval every 100 steps, a checkpoint every 1000 and an end.
    Returns its events as (kind, step), oldest first."""
    path.mkdir(parents=True, exist_ok=True)
    total = n * 10
    cfg = v1_config(total, 10)
    (path / schema.RUN_JSON).write_text(json.dumps({"v": 1, "format": schema.FORMAT_NAME, "run": path.name}))
    events: list[tuple[str, int]] = []
    ts = T0
    with open(path / schema.heartbeat_name(0), "w") as hb:

        def rec(kind: str, step: int, **fields) -> None:
            hb.write(schema.encode(schema.make_record(kind, 0, step, 4242, ts, **fields)))
            if kind not in (schema.KIND_PROGRESS, schema.KIND_LIVENESS):
                events.append((kind, step))

        rec(schema.KIND_BOOT, 0, world_size=1)
        for ph in schema.PHASES:
            rec(schema.KIND_PHASE, 0, phase=ph, **({"warnings": [WARNING]} if ph == schema.PHASE_TRAIN else {}))
        for i in range(1, n + 1):
            ts += 1.0
            step = i * 10
            rec(schema.KIND_PROGRESS, step, **healthy_metrics(step, total, cfg))
            rec(schema.KIND_LIVENESS, step)
            if step % 100 == 0:
                rec(schema.KIND_EVAL, step, val_loss=3.0 - step / total, val_ppl=20.0)
            if step % 1000 == 0:
                rec(schema.KIND_CHECKPOINT, step, path=f"checkpoints/step_{step:08d}.pt", seconds=1.0, bytes=1)
        rec(schema.KIND_END, n * 10, reason=schema.END_COMPLETED, exit_status=0)
    assert (path / schema.heartbeat_name(0)).stat().st_size > 2 * HEARTBEAT_WINDOW
    return events
