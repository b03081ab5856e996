"""SVG snapshots of the main screens (pytest-textual-snapshot), with a frozen clock.

Regenerate after an intended change: pytest tests/watch/test_snapshots.py --snapshot-update
and look at the new SVGs before keeping them."""

from __future__ import annotations

import pytest

from watch.helpers import make_app, wait_loaded


def _snap(snap_compare, app, size, press=()):
    async def ready(pilot):
        await wait_loaded(pilot, app)

    return snap_compare(app, press=list(press), terminal_size=size, run_before=ready)


@pytest.mark.slow
def test_healthy_run_80x24(snap_compare, healthy_run):
    assert _snap(snap_compare, make_app(healthy_run), (80, 24))


@pytest.mark.slow
def test_healthy_run_200x50(snap_compare, healthy_run):
    assert _snap(snap_compare, make_app(healthy_run), (200, 50))


@pytest.mark.slow
def test_critical_alerts(snap_compare, critical_run):
    assert _snap(snap_compare, make_app(critical_run), (120, 40))


@pytest.mark.slow
def test_stuck_start(snap_compare, stuck_run):
    assert _snap(snap_compare, make_app(stuck_run), (100, 30))


@pytest.mark.slow
def test_finished_run_log_scale(snap_compare, finished_run):
    assert _snap(snap_compare, make_app(finished_run), (120, 40), press=["l"])


@pytest.mark.slow
def test_previous_trainer_run(snap_compare, vibe_run):
    assert _snap(snap_compare, make_app(vibe_run), (120, 40))


@pytest.mark.slow
def test_events_screen(snap_compare, finished_run):
    """`e`: every event, oldest first, with their dates; the keys that scroll it."""
    assert _snap(snap_compare, make_app(finished_run), (100, 30), press=["e"])


@pytest.mark.slow
def test_help_screen_120x36(snap_compare, healthy_run):
    """`?` at 120 columns: each key's description wraps under its own column (`with`, `the pane` stood alone at
    the left margin)."""
    assert _snap(snap_compare, make_app(healthy_run), (120, 36), press=["question_mark"])
