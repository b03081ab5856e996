"""Helpers for the `nsa watch` tests: a frozen clock, and opening the real app under Pilot
until its first read is on screen."""

from __future__ import annotations

import os
from pathlib import Path

from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.app import WatchApp
from nsa_tui.watch.model import RunModel

NOW = 1_790_000_000.0  # the frozen "now" of every deterministic screen


def freeze_mtimes(run: Path, ts: float = NOW - 2.0) -> None:
    """File mtimes feed the health engine (last_write_ts): pin them to the frozen clock."""
    for p in run.iterdir():
        if p.is_file():
            os.utime(p, (ts, ts))


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
