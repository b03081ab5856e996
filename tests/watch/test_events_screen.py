"""The `e` screen: every event the dashboard holds, wrapped and scrolled (the pane cuts long lines and keeps the
newest only: an eval, a checkpoint or a start warning that scrolled off, or the end of a long one, was unreadable)."""

from __future__ import annotations

import time

from nsa_train.telemetry import schema
from nsa_tui.watch.screens.events import EventsScreen
from nsa_tui.watch.widgets.events_pane import EventsPane
from watch.helpers import async_test, make_app, screen_lines, wait_loaded, write_long_run


async def _until(pilot, cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


@async_test
async def test_e_lists_every_event_wrapped_and_scrolls_by_keys(tmp_path):
    run = tmp_path / "long"
    events = write_long_run(run)
    app = make_app(run)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        await _until(pilot, lambda: app.model.older)  # the heartbeat's part before the window: read in the background
        await pilot.press("e")
        scr = app.screen
        assert isinstance(scr, EventsScreen)
        assert [(e.kind, e.step) for e in scr.events] == events  # all of them, oldest first
        await pilot.pause()
        scroll = scr.query_one("#events-scroll")
        assert scroll.max_scroll_y > 0 and scroll.scroll_y == scroll.max_scroll_y  # opens at the newest
        assert "end completed" in "\n".join(screen_lines(app))

        await pilot.press("home")
        await pilot.pause()
        assert scroll.scroll_y == 0
        text = "\n".join(screen_lines(app))
        # the first event, and the whole of a start warning longer than the screen is wide: wrapped, not cut
        assert "boot world=1" in text and "END-OF-WARNING" in text, text
        await pilot.press("pagedown")
        await pilot.pause()
        assert scroll.scroll_y > 0
        await pilot.press("escape")
        assert not isinstance(app.screen, EventsScreen)

        # a click on the pane opens it too
        await pilot.click(EventsPane)
        assert isinstance(app.screen, EventsScreen)
        await pilot.press("e")
        assert not isinstance(app.screen, EventsScreen)


@async_test
async def test_an_event_written_while_the_screen_is_open_comes_in_below(healthy_run):
    app = make_app(healthy_run)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("e")
        scr = app.screen
        assert isinstance(scr, EventsScreen)
        n = len(scr.events)
        rec = schema.make_record(schema.KIND_CHECKPOINT, 0, 2000, 4242, 1_790_000_000.0, path="checkpoints/new.pt")
        with open(healthy_run / schema.heartbeat_name(0), "a") as f:
            f.write(schema.encode(rec))
        await _until(pilot, lambda: len(scr.events) == n + 1)
        await pilot.pause(0.2)
        assert "checkpoint checkpoints/new.pt" in "\n".join(screen_lines(app))
