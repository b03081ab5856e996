"""The real app under Pilot: keys change its state, live lines reach the screen, h and d
call the `nsa halt` / `nsa dump` code, corrupt lines are counted on screen."""

from __future__ import annotations

import json
import re
import time

import pytest
from fixtures.runs import append_lines, boot, make_v1_run, start_training
from textual.widgets import Label

from nsa_tui import fmt
from nsa_tui.watch.screens.confirm import ConfirmScreen
from nsa_tui.watch.screens.help import HelpScreen
from nsa_tui.watch.widgets.line_chart import LineChart
from nsa_tui.watch.widgets.run_header import RunHeader
from nsa_tui.watch.widgets.run_tabs import RunTabs
from nsa_tui.watch.widgets.text_line import TextLine
from watch.helpers import NOW, async_test, freeze_mtimes, make_app, screen_lines, wait_loaded


@async_test
async def test_view_keys_change_state(healthy_run):
    app = make_app(healthy_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        assert (app.view.smoothing, app.view.log_y, app.view.x_axis) == (10, False, "step")

        def loss_title() -> str:
            return app.query_one("#chart-loss", LineChart).query_one(TextLine).text.plain

        # the loss title names the moving average drawn (nothing said the curve was smoothed)
        assert loss_title().endswith("  ma10"), loss_title()
        await pilot.press("s")
        assert app.view.smoothing == 50 and loss_title().endswith("  ma50"), loss_title()
        await pilot.press("s", "s")
        assert app.view.smoothing == 0 and "ma" not in loss_title().split("  ■")[0], loss_title()
        await pilot.press("s")
        assert app.view.smoothing == 10  # off (0) came in between and cycles back
        await pilot.press("l")
        assert app.view.log_y
        await pilot.press("x")
        assert app.view.x_axis == "time"
        assert app.charts[0].spec("loss", app.view).x_format(3725) == "1h02m"
        await pilot.press("x")
        assert app.view.x_axis == "tokens"
        await pilot.press("x")
        assert app.view.x_axis == "step"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        # one run: nothing to compare or switch to, and the footer leaves those keys out (80 columns cut them)
        await pilot.press("c")
        assert not app.view.compare
        # ... and `c` says why it does nothing
        assert [n.message for n in app._notifications][-1].startswith("compare overlays the loss curves of several")
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled and b.binding.show}
        assert "reread" in shown and not shown & {"compare", "next_run", "prev_run"}


@async_test
async def test_tabs_compare_and_reread(healthy_run, vibe_run, finished_run):
    app = make_app(healthy_run, vibe_run, finished_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        tabs = app.query_one(RunTabs)
        assert tabs.display and app.active == 0
        await pilot.press("tab")
        assert app.active == 1 and app.query_one(RunHeader).info["name"] == "train_showcase"
        await pilot.press("right")
        assert app.active == 2
        await pilot.press("right")
        assert app.active == 0
        await pilot.press("left")
        assert app.active == 2
        await pilot.press("c")
        assert app.view.compare and app.has_class("-compare")
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled and b.binding.show}
        assert {"compare", "next_run"} <= shown
        spec = app._compare_spec()
        assert [ln.label for ln in spec.lines] == ["healthy-125m", "train_showcase", "done"]
        assert all(ln.series.n > 0 for ln in spec.lines)
        await pilot.press("c")
        assert not app.view.compare
        assert not any(n.message.startswith("compare overlays") for n in app._notifications)
        model = app.runs[2]
        steps_before = len(model.history.steps)
        resets = model.resets
        await pilot.press("r")
        await wait_loaded(pilot, app)
        deadline = time.monotonic() + 5
        while (model.resets == resets or len(model.history.steps) < steps_before) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert model.resets == resets + 1 and len(model.history.steps) == steps_before


@async_test
async def test_click_a_run_name_switches(healthy_run, vibe_run):
    app = make_app(healthy_run, vibe_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.click(RunTabs, offset=(len(" 1:healthy-125m  ") + 3, 0))
        assert app.active == 1


@async_test
async def test_live_line_reaches_screen_fast_and_corrupt_lines_are_counted(tmp_path):
    w = make_v1_run(tmp_path / "live", steps=200, state="running")
    app = make_app(tmp_path / "live", clock=time.time, poll=False)  # inotify, real clock
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        header = app.query_one(RunHeader)
        assert header.info["step"] == 200
        w.progress(1)
        t0 = time.monotonic()
        while header.info.get("step") != 210 and time.monotonic() - t0 < 3:
            await pilot.pause(0.02)
        latency = time.monotonic() - t0
        assert header.info["step"] == 210
        assert latency < 0.5, f"new line took {latency:.2f}s to reach the screen"
        append_lines(tmp_path / "live" / "heartbeat_rank0.jsonl", ["{not json", "\x00\x01garbage"])
        w.progress(1)
        t0 = time.monotonic()
        while header.info.get("corrupt") != 2 and time.monotonic() - t0 < 3:
            await pilot.pause(0.05)
        assert header.info["corrupt"] == 2 and header.info["step"] == 220
        assert "2 corrupt lines skipped" in header.shown


@async_test
async def test_the_header_names_unreadable_files(tmp_path):
    """`nsa status` named a damaged run.json; the dashboard showed the run without it and said nothing."""
    make_v1_run(tmp_path / "r", steps=200, state="finished")
    (tmp_path / "r" / "run.json").write_text('{"a": ')
    app = make_app(tmp_path / "r")
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_loaded(pilot, app)
        header = app.query_one(RunHeader)
        assert header.info["unreadable"] == ["run.json"] and "unreadable run.json" in header.shown


@async_test
async def test_the_header_says_newer_telemetry_as_read_not_unreadable(tmp_path):
    """Records of telemetry v2 were `unreadable heartbeat_rank0.jsonl` above charts drawn from that very file."""
    make_v1_run(tmp_path / "r", steps=200, state="finished")
    hb = tmp_path / "r" / "heartbeat_rank0.jsonl"
    hb.write_text("".join(re.sub(r'^\{"v": ?1', '{"v": 2', ln) + "\n" for ln in hb.read_text().splitlines()))
    app = make_app(tmp_path / "r")
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_loaded(pilot, app)
        header = app.query_one(RunHeader)
        assert header.info["unreadable"] == [] and header.info["newer"] == {"heartbeat_rank0.jsonl": 2}
        assert "unreadable" not in header.shown
        assert "newer telemetry (v2) heartbeat_rank0.jsonl: update nsa here" in header.shown, header.shown
    # files of two newer versions: each version with its files (it said `(v2/v3) heartbeat_rank0.jsonl, run.json`)
    run_json = tmp_path / "r" / "run.json"
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "v": 3}))
    app = make_app(tmp_path / "r")
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_loaded(pilot, app)
        header = app.query_one(RunHeader)
        assert header.info["newer"] == {"heartbeat_rank0.jsonl": 2, "run.json": 3}
        said = "newer telemetry (v2) heartbeat_rank0.jsonl; (v3) run.json: update nsa here"
        assert said in header.shown, header.shown


@async_test
async def test_halt_asks_then_calls_nsa_halt(healthy_run):
    app = make_app(healthy_run)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("h")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not (healthy_run / ".HALT").exists()
        await pilot.press("h")
        await pilot.press("y")
        deadline = time.monotonic() + 5
        while not (healthy_run / ".HALT").exists() and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert (healthy_run / ".HALT").exists()
        while "halt requested" not in app.last_message and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert "halt requested" in app.last_message


@async_test
async def test_halt_of_an_ended_run_says_so_without_asking_first(finished_run):
    """`h` on a finished run asked "Halt run? It stops after the current step." and only after a yes said there was
    nothing to halt."""
    app = make_app(finished_run)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        assert app.verdicts[app.active].state == "finished"
        await pilot.press("h")
        assert not isinstance(app.screen, ConfirmScreen)
        deadline = time.monotonic() + 5
        while not app.last_message and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert "already ended (completed)" in app.last_message, app.last_message
        assert not (finished_run / ".HALT").exists()


@async_test
async def test_the_palettes_screenshot_is_saved_here_and_named(healthy_run, tmp_path, monkeypatch):
    """The palette's Screenshot saved to ~/Downloads, missing on a headless box: "Failed to save screenshot", no
    reason. And two commands were named "Keys" (Textual's widget help and ours)."""
    monkeypatch.chdir(tmp_path)
    app = make_app(healthy_run)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert titles.count("Keys") == 1 and "Screenshot" in titles
        app.action_screenshot()
        await pilot.pause()
        saved = list(tmp_path.glob("*.svg"))
        assert len(saved) == 1 and saved[0].read_text().startswith("<svg")
        said = [n.message for n in app._notifications]
        assert f"screenshot saved: {saved[0]}" in said, said
        app.action_screenshot(path=str(tmp_path / "no" / "such" / "dir"))
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert any(m.startswith(f"cannot save a screenshot in {tmp_path / 'no' / 'such' / 'dir'}") for m in said), said


@async_test
async def test_the_screenshot_typed_in_the_palette_is_saved_here(healthy_run, tmp_path, monkeypatch):
    """ctrl+p, `scre`, Enter said "Failed to save screenshot" and saved nothing: the palette's entry was Textual's own
    (to ~/Downloads, missing on a headless box), not the app's action. Through the palette, as a user does it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no Downloads folder: Textual's own entry fails here
    app = make_app(healthy_run)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"scre")
        await pilot.pause(0.3)
        await pilot.press("enter")
        deadline = time.monotonic() + 5
        while not list(tmp_path.glob("*.svg")) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        saved = list(tmp_path.glob("*.svg"))
        said = [n.message for n in app._notifications]
        assert len(saved) == 1, said
        assert f"screenshot saved: {saved[0]}" in said, said
        assert "Search for commands" not in saved[0].read_text()  # the dashboard, not the palette over it


@async_test
async def test_dump_reports_why_nothing_was_signalled(healthy_run):
    # The fixture's pids are not trainer processes of this run: nsa dump refuses, and so do we.
    app = make_app(healthy_run)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("d")
        deadline = time.monotonic() + 10
        while not app.last_message and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert "no live trainer process" in app.last_message


@async_test
async def test_command_palette_has_every_action(healthy_run):
    app = make_app(healthy_run)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for t in (
            "Halt run",
            "Stack dump",
            "Toggle smoothing",
            "Toggle log scale",
            "Cycle x axis",
            "Compare runs",
            "Next run",
            "Previous run",  # the README says every action is in the palette: ← was not
            "Re-read from scratch",
            "Keys",
        ):
            assert t in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"log scale")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.view.log_y


@pytest.mark.parametrize("fixture", ["stuck_run", "generic_run", "critical_run"])
@async_test
async def test_every_format_and_state_loads(request, fixture):
    run = request.getfixturevalue(fixture)
    app = make_app(run)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        info = app.query_one(RunHeader).info
        v = app.verdicts[0]
        assert not v.problem
        if fixture == "stuck_run":
            assert info["state"] == "stalled" and any(a.rule == "stuck_at_start" for a in v.alerts)
        if fixture == "generic_run":
            assert app.runs[0].history.format == "generic" and info["step"] == 3000
        if fixture == "critical_run":
            assert v.health == "critical" and {"nan_loss", "gate_collapse"} <= {a.rule for a in v.alerts}
        assert info["hb_age"] is None or info["hb_age"] >= 0
        assert NOW > 0


@pytest.mark.parametrize("fixture", ["healthy_run", "generic_run"])
@async_test
async def test_header_names_the_attention_path_from_run_json(request, fixture):
    """run.json's attention_impl (which branch runs on which path) is on the header, as in `nsa status`;
    a run without it (another trainer's CSV) shows no such field rather than a guess."""
    app = make_app(request.getfixturevalue(fixture))
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_loaded(pilot, app)
        shown = app.query_one(RunHeader).shown
        if fixture == "healthy_run":
            assert shown.split("\n")[1].endswith("attention reference")
        else:
            assert "attention" not in shown


@async_test
async def test_the_first_complete_read_fills_every_pane_at_once(healthy_run):
    """Events, ranks and charts show the loaded run as soon as it is read, not at the charts' 4 s pace
    (no forced redraw from the test: the app does it when the first read lands)."""
    from nsa_tui.watch.widgets.events_pane import EventsPane
    from nsa_tui.watch.widgets.ranks_panel import RanksPanel

    app = make_app(healthy_run)
    async with app.run_test(size=(200, 50)) as pilot:
        t0 = time.monotonic()
        while not app.loaded_on_screen and time.monotonic() - t0 < 10:
            await pilot.pause(0.02)
        assert app.loaded_on_screen
        assert time.monotonic() - t0 < 3.0
        assert app.query_one(EventsPane).events, "the events pane waited for the next chart redraw"
        assert app.query_one(RanksPanel).rows and app.query_one(RanksPanel).rows[0][1] == 2000
        assert app.query_one(RunHeader).info["step"] == 2000


@async_test
async def test_loaded_history_is_frozen_out_of_the_collector_until_exit(healthy_run):
    """After the first full screen the long-lived heap is frozen (full GC passes stop walking it, see
    bench/watch_live.py), and unfrozen when the app ends so an embedding process gets it back."""
    import gc

    from nsa_tui.watch import app as app_mod

    assert gc.get_freeze_count() == 0
    app = make_app(healthy_run)
    async with app.run_test(size=(120, 40)) as pilot:
        t0 = time.monotonic()
        while not app.loaded_on_screen and time.monotonic() - t0 < 10:
            await pilot.pause(0.02)
        assert gc.get_freeze_count() == 0, "froze before the first screen was painted"
        await pilot.pause(app_mod.FREEZE_AFTER_S + 0.5)
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


@async_test
async def test_a_freeze_due_as_the_app_quits_leaves_nothing_frozen(healthy_run):
    """The freeze timer could fire after on_unmount had unfrozen the heap (an app quit about FREEZE_AFTER_S after its
    load; seen as the next test's heap already frozen): then nothing thawed it."""
    import gc

    app = make_app(healthy_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
    app._freeze_heap()  # what the timer does when it fires during the exit
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    assert frozen == 0


@async_test
async def test_an_age_tick_does_not_delay_the_next_new_line(healthy_run):
    """The clock's once-a-second header redraw must not count as a data redraw: a line read right after
    it is drawn at once, not MIN_REDRAW_GAP_S later (that added up to 0.2 s to the latency)."""
    app = make_app(healthy_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        app._redraw(force=True)
        app._last_draw = time.monotonic() - 0.25  # the last new line was drawn 0.25 s ago (gap 0.2 s)
        app._last_age_tick = 0.0  # the age tick is due: this redraw only moves the clock
        app._redraw()
        assert app._timer is None
        m = app.model
        with m.lock:
            m.version += 1  # what the reader does when a line arrives
        drawn_before = app._last_draw
        app._redraw()
        assert app._timer is None and app._last_draw > drawn_before, "the new line waited for the redraw gap"


@async_test
async def test_a_run_directory_that_goes_away_and_comes_back(tmp_path):
    """Moved away: the dashboard keeps what it read, says the directory is gone, and judges nothing as alive or
    stale (a moved run may still be writing); moved back, or restored as a new directory, it follows it again.
    Moved to another parent: one beside it or under the runs root is followed (test_renamed_run.py)."""
    import shutil

    from nsa_tui.watch.widgets.health_panel import HealthPanel

    run, away = tmp_path / "live", tmp_path / "elsewhere" / "archive"
    away.parent.mkdir()
    w = make_v1_run(run, steps=200, state="running")
    app = make_app(run, clock=time.time, poll=False)  # inotify, real clock

    async def until(cond, what: str, timeout: float = 8.0) -> None:
        t0 = time.monotonic()
        while not cond() and time.monotonic() - t0 < timeout:
            await pilot.pause(0.05)
        assert cond(), what

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        header, panel = app.query_one(RunHeader), app.query_one(HealthPanel)
        assert (header.info["state"], header.info["health"]) == ("running", "ok")

        run.rename(away)
        await until(lambda: header.info["state"] == "unknown", "the move was not noticed")
        assert header.info["health"] == "critical" and header.info["step"] == 200  # what was read stays
        assert [a.rule for a in panel.verdict.alerts] == ["run_dir_gone"]
        # run.json went with it: not "the run records no model size" (it did; seen in review)
        assert not panel.verdict.toks_not_judged

        away.rename(run)
        await until(lambda: header.info["state"] == "running", "the move back was not noticed")
        assert header.info["health"] == "ok" and not panel.verdict.alerts
        w.progress(1)
        await until(lambda: header.info["step"] == 210, "new lines after the move back did not arrive")

        shutil.copytree(run, away)
        shutil.rmtree(run)
        await until(lambda: header.info["state"] == "unknown", "the deletion was not noticed")
        away.rename(run)  # restored from a copy: a new directory (inode) at the same path
        await until(lambda: header.info["state"] == "running", "the restored directory was not read")
        assert header.info["step"] == 210 and header.info["health"] == "ok"


@async_test
async def test_start_warnings_stay_in_the_health_panel(tmp_path):
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    w = make_v1_run(tmp_path / "r", steps=200, state="running", now=NOW, run_info={"device_name": "cpu"})
    w.phase("train", warnings=["bf16 on CPU is about 3x slower than fp32 here"])
    app = make_app(tmp_path / "r")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        panel = app.query_one(HealthPanel)
        assert panel.verdict.start_warnings == ["bf16 on CPU is about 3x slower than fp32 here"]
        lines = panel.render().plain.splitlines()
        assert len(lines) <= panel.size.height and all(len(line) <= panel.size.width for line in lines), lines
        # a CPU run's tok/s is not judged (said first, whole), then the verdict and the warning
        ok = lines.index("✓ no active alerts")
        assert " ".join(lines[:ok]) == panel.verdict.toks_not_judged and "a CPU run" in lines[0], lines
        assert " ".join(lines[ok + 1 :]) == "at start bf16 on CPU is about 3x slower than fp32 here"


@async_test
async def test_several_start_warnings_share_the_panel_and_none_is_lost(tmp_path):
    """Three warnings: Textual wrapped the first over the panel's rows and the third was never shown. The
    1M-parameter fixture's `tok/s not judged` line gives up its rows to them (it hid two)."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    warnings = [
        "NSA_DDP_COMPRESS=1 is not read by this trainer (an earlier trainer's switch?); its setting is the config's "
        "runtime.ddp_compress",
        "a 5000-step run with no periodic checkpoints (train.save_every=0): a crash loses everything",
        "model.attention=dense: the nsa section is not used (w=32)",
    ]
    w = make_v1_run(tmp_path / "r", steps=200, state="running", now=NOW)
    w.phase("train", warnings=warnings)
    app = make_app(tmp_path / "r")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        panel = app.query_one(HealthPanel)
        lines = panel.render().plain.splitlines()
        assert len(lines) <= panel.size.height and all(len(line) <= panel.size.width for line in lines), lines
        assert [line[:20] for line in lines if line.startswith("at start")] == [
            ("at start " + x)[:20] for x in warnings
        ], lines
        assert lines[0].startswith("tok/s not judged: a 1M-parameter model"), lines


@async_test
async def test_an_alerts_message_wraps_and_the_start_warnings_stay_in_view_beside_it(tmp_path):
    """A message showed its first line's width however tall the panel (one unwrapped line), and the start warnings,
    after the alerts, fell off its bottom (`nsa status` printed both in full)."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    # min_mfu null: no `tok/s not judged` line (the 1M-parameter fixture's) takes the rows the message wraps over
    w = make_v1_run(
        tmp_path / "r", steps=1000, step_time_s=2.0, alerts=["fallbacks_rising"], now=NOW, monitor={"min_mfu": None}
    )
    w.phase("train", warnings=["train.eval_every=100 exceeds train.steps: only the final evaluation runs"])
    app = make_app(tmp_path / "r")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        panel = app.query_one(HealthPanel)
        assert len(panel.verdict.alerts) == 1 and panel.size.height == 6
        lines = panel.render().plain.splitlines()
        message = panel.verdict.alerts[0].message
        assert len(lines) <= panel.size.height and lines[-1].startswith("at start train.eval_every=100"), lines
        assert all(len(line) <= panel.size.width for line in lines[:-1]), lines  # no line the panel would crop
        assert len(message) > panel.size.width and " ".join(lines[1:-1]) == message, lines  # whole, wrapped at words


@async_test
async def test_the_health_panel_says_an_old_trainers_tokens_per_s_is_not_judged(vibe_run, healthy_run):
    """The previous trainer's run records no model size or GPU peak: `nsa status` said its tokens/s was not judged,
    the dashboard showed them beside "no active alerts" and nothing more. A run the rule leaves alone by design (the
    fixture's 1M-parameter model) says why."""
    from nsa_tui.runs import load_run
    from nsa_tui.watch.verdict import evaluate as watch_evaluate
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    app = make_app(vibe_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        panel = app.query_one(HealthPanel)
        said = "tok/s not judged: the run records no model size or GPU peak"
        assert panel.verdict.toks_not_judged.startswith(said), panel.verdict
        lines = panel.render().plain.splitlines()
        assert len(lines) <= panel.size.height and all(len(line) <= panel.size.width for line in lines), lines
        ok = lines.index("✓ no active alerts")  # under the whole line, its hint included
        assert ok and " ".join(lines[:ok]) == panel.verdict.toks_not_judged and lines[ok - 1].endswith("judges it)")
        assert any(said[:30] in line for line in screen_lines(app)), "not on screen"
    small = "tok/s not judged: a 1M-parameter model, under min_params=50M, whose MFU says little"
    assert watch_evaluate(load_run(healthy_run), NOW).toks_not_judged.startswith(small)


@async_test
async def test_a_bad_monitor_section_is_named_and_the_run_judged_with_the_defaults(tmp_path):
    """It showed no verdict at all (no state, no alerts: a NaN went unflagged), where `nsa status` and `nsa report`
    judge such a run with the default rules and say why."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    run = tmp_path / "bad"
    make_v1_run(run, steps=100, state="nan", monitor={"rules": {"loss_spike": {"severity": "warning"}}}, now=NOW)
    app = make_app(run)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_loaded(pilot, app)
        v = app.query_one(HealthPanel).verdict
        assert v.problem == ""
        # the fixture's run.json holds the config (read first): that file is named
        assert v.rules_problem.startswith("judged with the default rules: the run's run.json: config monitor.rules")
        assert v.health == "critical" and "nan_loss" in [a.rule for a in v.alerts], v
        lines = app.query_one(HealthPanel).render().plain.splitlines()
        assert lines[0].startswith("judged with the default rules") and lines[1].startswith("tok/s not judged")
        end = next(n for n, line in enumerate(lines) if line.endswith("judges it)"))  # the tok/s line's last
        assert "nan_loss" in lines[end + 1], lines


@async_test
async def test_an_ended_runs_throughput_title_is_its_mean(tmp_path):
    """A finished run's tok/s chart title showed its last window; `nsa status` shows its mean ("425 tok/s mean")."""
    import json

    from nsa_tui.watch.widgets.line_chart import LineChart
    from nsa_tui.watch.widgets.text_line import TextLine

    w = make_v1_run(tmp_path / "done", steps=1000, state="finished", now=NOW)
    (w.path / "summary.json").write_text(json.dumps({"v": 1, "steps_completed": w.step, "mean_toks_per_s": 425.3}))
    app = make_app(w.path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        title = app.query_one("#chart-toks", LineChart).query_one(TextLine).text.plain
        assert title.startswith("tok/s 425 mean")


@async_test
async def test_eta_counts_down_with_the_clock_between_verdicts(tmp_path):
    """The ETA stood still between verdicts (every 10 s) and then jumped; it counts from the moment the run
    reached its step, so neither a verdict without a new step nor a new step makes it jump back up; and no further
    than the next progress record is due."""
    from nsa_tui.watch import app as app_mod

    w = make_v1_run(tmp_path / "r", steps=2000, total_steps=8000, state="running", now=NOW, age_s=0.0)
    clock = [NOW]
    app = make_app(w.path, clock=lambda: clock[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        header = app.query_one(RunHeader)
        eta0 = header.info["eta"]
        assert eta0 and eta0 > 100
        shown = []
        for dt in (1, 2, 5, app_mod.HEALTH_EVERY_S + 1, 2 * app_mod.HEALTH_EVERY_S + 3):  # two verdicts in between
            clock[0] = NOW + dt
            app._redraw(force=True)
            shown.append(header.info["eta"])
        # progress every 4 s: it counts down for two of those, then holds (a hung trainer's ETA went on counting
        # down, a run making progress to look at, where `nsa status` held it)
        assert shown == [eta0 - 1, eta0 - 2, eta0 - 5, eta0 - 8, eta0 - 8]
        assert f"ETA {fmt.duration(eta0 - 8)}" in header.shown


@async_test
async def test_eta_holds_on_a_run_with_one_progress_record(tmp_path):
    """With one progress record no usual interval is known, and the ETA counted down without a limit: a trainer
    hung after its first logged step read "running ... ETA 23m26s" counting down for 10 minutes, where `nsa
    status` held it. It holds, as status does."""
    from nsa_tui.health.engine import evaluate

    w = make_v1_run(tmp_path / "r", steps=10, total_steps=8000, state="running", now=NOW, age_s=0.0)
    clock = [NOW]
    app = make_app(w.path, clock=lambda: clock[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        assert len(app.model.history.steps) == 1
        header = app.query_one(RunHeader)
        eta0 = header.info["eta"]
        assert eta0 and eta0 > 100
        for dt in (5, 60, 300):
            clock[0] = NOW + dt
            app._redraw(force=True)
            status = evaluate(app.model.history, clock[0]).eta_s  # what `nsa status` says at that time
            assert header.info["eta"] == eta0 == float(int(status)), (dt, header.info["eta"], status)


@async_test
async def test_a_new_step_between_verdicts_gets_its_own_eta(tmp_path):
    """The ETA counted down from the verdict's step for up to 10 s next to a newer step (a resumed run read "step
    8/30 ETA 2s", then "ETA 1m20s", while `nsa status` gave the new step's estimate). A newer step is given the
    engine's estimate of its own (as `nsa status` gives it), without judging the whole run again (a third more
    CPU)."""
    from nsa_tui.health.engine import eta_seconds

    w = make_v1_run(tmp_path / "r", steps=2000, total_steps=8000, state="running", now=NOW, age_s=0.0)
    clock = [NOW]
    app = make_app(w.path, clock=lambda: clock[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        judged = app.verdicts[app.active]
        step = app.model.history.latest_step
        w.step_time_s *= 1.3  # the run slows down: the verdict's pace is no longer quite the run's
        w.progress(1, dt_step_s=w.step_time_s)  # step 2010, its step time (the ETA's pace) saying so too
        clock[0] = w.ts + 1.0  # within HEALTH_EVERY_S of the verdict
        deadline = time.monotonic() + 5
        while app.model.history.latest_step == step and time.monotonic() < deadline:
            await pilot.pause(0.05)
        app._redraw()
        assert app.model.history.latest_step == 2010 and app.verdicts[app.active] is judged  # not judged again
        want = eta_seconds(app.model.history, "running") - 1.0
        assert app.query_one(RunHeader).info["eta"] == float(int(want))
        assert want - (judged.eta_s - (clock[0] - NOW)) > 5  # the old step's estimate, counted down, said less


@async_test
async def test_header_tokens_are_of_the_step_they_say(tmp_path):
    """Liveness records move the header's step past the last progress record, which alone has tokens_seen:
    "step 2004 ... tokens 4.1M" was step 2000's count."""
    w = make_v1_run(tmp_path / "r", steps=2000, total_steps=8000, state="running", now=NOW)
    w.step += 4
    w.liveness()
    app = make_app(w.path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        header = app.query_one(RunHeader)
        assert header.info["step"] == 2004
        assert "tokens 4.1M at step 2000" in header.shown.split("\n")[1]
        w.progress(1)
        deadline = time.monotonic() + 5
        while header.info["step"] != 2014 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert header.info["step"] == 2014 and "at step" not in header.shown  # the same record: no label


@pytest.mark.parametrize("state", ["crashed", "finished", "running"])
@async_test
async def test_ranks_of_an_ended_run_are_not_shown_alive(tmp_path, state):
    """A run whose process was killed seconds ago showed a green ● rank: the marker looked at the age only."""
    from nsa_tui.watch.widgets.ranks_panel import RanksPanel

    make_v1_run(tmp_path / state, steps=300, state=state, now=NOW, age_s=2.0)
    app = make_app(tmp_path / state)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        assert app.verdicts[0].state == state
        shown = app.query_one(RanksPanel).render()
        marker = shown.plain.index("r0") - 2
        ch, styles = shown.plain[marker], {str(s.style) for s in shown.spans if s.start <= marker < s.end}
        want = {"crashed": ("○", "red"), "finished": ("○", "grey62"), "running": ("●", "green")}[state]
        assert (ch, styles) == (want[0], {want[1]})


def test_a_rank_is_alive_for_three_liveness_intervals_and_unknown_while_out_of_reach():
    """A crashed run whose directory was moved away showed a green ● (unknown state, a fresh-looking age); and a rank
    was red after a fixed 120 s whatever monitor.liveness_every_s said."""
    from nsa_tui.watch.widgets.ranks_panel import RanksPanel

    def marker(panel: RanksPanel) -> tuple[str, set[str]]:
        shown = panel.render()
        at = shown.plain.index("r0") - 2
        return shown.plain[at], {str(s.style) for s in shown.spans if s.start <= at < s.end}

    panel = RanksPanel()
    panel.show([(0, 40, 200.0)], liveness_every_s=100.0)  # 2 intervals: alive
    assert marker(panel) == ("●", {"green"})
    panel.show([(0, 40, 200.0)])  # the default interval: past 120 s
    assert marker(panel) == ("○", {"red"})
    panel.show([(0, 40, 5.0)], ended="unknown")
    assert marker(panel) == ("?", {"grey62"})


@async_test
async def test_an_open_dashboard_follows_a_relaunch_at_once(tmp_path, tmux_socket):
    """`nsa launch --resume` of a halted run while the dashboard is open: it showed `crashed critical` (the old
    session gone) for ~5 s and, past the resume's boot, kept its old verdict up to 10 s, while `nsa status` said
    `starting`. A new launch.json asks for the session at once and re-judges the run."""
    import json
    import subprocess

    from nsa_train.telemetry import schema
    from nsa_tui.tail.local import LocalRunSource
    from nsa_tui.watch.app import WatchApp
    from nsa_tui.watch.model import RunModel

    run = tmp_path / "r"
    make_v1_run(run, steps=200, state="halted", now=time.time() - 30)
    record = {"name": "r", "tmux_session": "nsa-r", "tmux_socket": tmux_socket, "ts": time.time() - 60}
    (run / schema.LAUNCH_JSON).write_text(json.dumps(record))  # the first launch; its session ended with the halt
    model = RunModel("r", LocalRunSource(run, force_poll=True), where=str(run), check_liveness=True)
    app = WatchApp([model], clock=time.time)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        header = app.query_one(RunHeader)
        assert header.info["state"] == "halted"
        model._tmux_at = -1e9  # its periodic check of the session (every TMUX_EVERY_S): the old one is gone
        while model._tmux is None:
            await pilot.pause(0.05)
        subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-r", "sleep 60"], check=True)
        (run / schema.EXIT_STATUS).unlink()  # as the launcher does, then its new record
        (run / schema.LAUNCH_JSON).write_text(json.dumps({**record, "ts": time.time()}))
        seen = set()
        t0 = time.monotonic()
        while header.info.get("state") != "starting" and time.monotonic() - t0 < 4:
            seen.add(header.info.get("state"))
            await pilot.pause(0.05)
        assert header.info["state"] == "starting", header.info
        assert time.monotonic() - t0 < 2.5 and "crashed" not in seen, seen


@async_test
async def test_a_crashed_runs_elapsed_stops_at_its_last_record(tmp_path):
    """The header counted a killed run's `elapsed` on to now: an hour later it read 1h02m for a 2-minute run."""
    run = tmp_path / "killed"
    w = make_v1_run(run, steps=300, state="crashed", now=NOW - 3600)
    app = make_app(run)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        info = app.query_one(RunHeader).info
        assert info["state"] == "crashed"
        started = w.ts - 2.5 - 300 * 0.4  # make_v1_run's phases, then 30 points of 10 steps at 0.4 s
        assert info["elapsed"] == pytest.approx(w.ts - started, abs=1.0), info


@async_test
async def test_a_resumed_runs_elapsed_says_it_is_this_attempts(tmp_path):
    """`elapsed 22s  tokens 205k`: the attempt's time beside the run's tokens (tokens_seen goes on from the
    checkpoint) read as 205k tokens in 22 s."""
    w = make_v1_run(tmp_path / "r", steps=300, state="halted", now=NOW - 600)
    boot(w, resume=True)
    start_training(w, w.total_steps, start_step=300)
    w.progress(2)
    app = make_app(w.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        second = app.query_one(RunHeader).shown.splitlines()[1]
        assert re.match(r" elapsed \S+ \(this attempt\)  tokens \S+  heartbeat \S+ ago", second), second


@async_test
async def test_the_header_says_whose_weights_a_run_started_from(tmp_path):
    """Review revBJ: a run started from another run's weights (train.init_from) showed a loss curve starting at 3.4,
    not ln 257, and nothing on the dashboard said why; `nsa status` and the report name the file."""
    from nsa_train.telemetry import schema

    record = {"path": "/runs/src/checkpoints/step_00000600.pt", "run_id": "9e28ab", "run_name": "src", "step": 600}
    w = make_v1_run(tmp_path / "r", steps=50, now=NOW, run_info={schema.RUN_INIT_FROM: record})
    fresh = make_v1_run(tmp_path / "fresh", steps=50, now=NOW)
    for run, said in ((w.path, "  weights from src step 600"), (fresh.path, None)):
        app = make_app(run)
        async with app.run_test(size=(160, 30)) as pilot:
            await wait_loaded(pilot, app)
            second = app.query_one(RunHeader).shown.splitlines()[1]
            assert (said in second) if said else "weights from" not in second, second


@async_test
async def test_the_halt_question_is_shown_whole(tmp_path):
    """At 120x36 over --host it read "Halt run 'rem' on root@127.0.0.1? It stops after the c": cut, not wrapped."""
    run = tmp_path / "tiny-cpu-20261205-221530"
    make_v1_run(run, steps=50, now=NOW)
    app = make_app(run)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        assert "attempt" not in app.query_one(RunHeader).shown  # one attempt: its elapsed is the run's
        question = f"Halt run {run.name!r} on root@gpu-box-07.example.com? It stops after the current step."
        app.push_screen(ConfirmScreen(question))
        await pilot.pause()
        label = app.screen.query_one(Label)
        box = label.parent.content_size
        # wrapped inside its box, every word on screen (as wide as the question, it ran past the box's edge)
        assert label.size.width <= box.width and label.size.height >= 2, (label.size, box)
        assert any("Halt run 'tiny-cpu-20261205-221530' on" in line for line in screen_lines(app))


@async_test
async def test_the_heartbeat_age_is_the_verdicts(tmp_path):
    """An emptied heartbeat file: the header said `heartbeat none yet` where `nsa status` gave its age."""
    import os

    from nsa_tui.health import build_rules, evaluate
    from nsa_tui.runs import load_run

    w = make_v1_run(tmp_path / "r", steps=100, state="finished", now=NOW)
    (w.path / "heartbeat_rank0.jsonl").write_text("")
    os.utime(w.path / "heartbeat_rank0.jsonl", (NOW - 6, NOW - 6))
    h = load_run(w.path)
    want = evaluate(h, NOW, build_rules(h.config)).last_heartbeat_age_s
    assert want is not None
    clock = [NOW]
    app = make_app(w.path, clock=lambda: clock[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        app._redraw(force=True)
        assert app.query_one(RunHeader).info["hb_age"] == float(int(want))


@async_test
async def test_the_header_says_a_heartbeat_dated_ahead_of_this_clock(tmp_path):
    """A finished run copied with the mtimes of a writer a day ahead: no age can be told, and the header said
    `heartbeat none yet` of a run whose records it shows."""
    make_v1_run(tmp_path / "r", steps=100, state="finished", now=NOW + 86400, age_s=600)
    app = make_app(tmp_path / "r", clock=lambda: NOW)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_loaded(pilot, app)
        app._redraw(force=True)
        header = app.query_one(RunHeader)
        assert header.info["hb_age"] is None and "heartbeat dated 23h50m ahead" in header.shown, header.shown


@pytest.mark.parametrize("how", ["stall-ends", "resume", "fresh"])
@async_test
async def test_a_new_step_of_a_starting_or_stalled_run_is_judged_at_once(tmp_path, how):
    """The header's state trailed the step by up to 10 s (HEALTH_EVERY_S): `starting phase train 13s` beside `step
    1/30` after a resume or a fresh start (its first step is said by a liveness record, before the first progress
    record), `stalled critical` beside the step that ended a stall. A new step of a starting or stalled run is
    judged at once. The clock stands still here: only the new step can make it judge again."""
    from nsa_train.telemetry import schema

    if how == "stall-ends":
        w = make_v1_run(tmp_path / "r", steps=500, total_steps=1000, state="stalled", now=NOW)
        freeze_mtimes(w.path, NOW - 3600)
        before = "stalled"
    elif how == "resume":
        w = make_v1_run(tmp_path / "r", steps=300, total_steps=600, state="halted", now=NOW - 600)
        for done in (schema.EXIT_STATUS, schema.HALT_FILE):  # as the launcher and the resumed trainer do
            (w.path / done).unlink()
        boot(w, resume=True)
        start_training(w, 600, 300)
        before = "starting"
    else:
        w = make_v1_run(tmp_path / "r", steps=0, total_steps=30, state="starting", now=NOW)
        w.phase("train", start_step=0, warnings=[])
        before = "starting"
    clock = [NOW if how == "stall-ends" else w.ts + 1.0]
    freeze_mtimes(w.path, clock[0] - 1.0)
    app = make_app(w.path, clock=lambda: clock[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        header = app.query_one(RunHeader)
        assert header.info["state"] == before, header.info
        if how == "stall-ends":
            w.ts = clock[0] - w.step_time_s * w.log_every  # the new record is a second before now
            w.progress(1)
        else:  # the attempt's first step: the rank's liveness record says it
            w.step += 1
            w.liveness(0, advance_s=0.5)
        t0 = time.monotonic()
        while header.info.get("step") != w.step and time.monotonic() - t0 < 4:
            await pilot.pause(0.05)
        while header.info.get("state") != "running" and time.monotonic() - t0 < 4:
            await pilot.pause(0.05)
        assert (header.info["state"], header.info["step"]) == ("running", w.step), header.info
        assert time.monotonic() - t0 < 2.0


@async_test
async def test_an_empty_directory_has_no_health_and_says_it_waits(tmp_path):
    """`mkdir d && nsa watch d` showed `d  unknown  ok` and `✓ no active alerts`, while `nsa status d` said `error: no
    telemetry in ...` (exit 3): the `unknown` state (nothing readable) was given the engine's "ok". The trainer's
    first files then turn it into a run judged as any other."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    d = tmp_path / "d"
    d.mkdir()
    app = make_app(d)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        header, panel = app.query_one(RunHeader), app.query_one(HealthPanel)
        assert (header.info["state"], header.info["health"]) == ("unknown", ""), header.info
        first = header.shown.splitlines()[0]
        assert "unknown" in first and " ok" not in first, first
        said = " ".join(panel.render().plain.split())
        assert said == "no run files here yet (waiting for the trainer)", said
        assert any("no run files here yet" in row for row in screen_lines(app))  # wrapped within the panel
        make_v1_run(d, steps=200, state="running", now=NOW)
        freeze_mtimes(d)
        t0 = time.monotonic()
        while header.info["state"] != "running" and time.monotonic() - t0 < 5:
            await pilot.pause(0.05)
        assert (header.info["state"], header.info["health"]) == ("running", "ok"), header.info
        assert "✓ no active alerts" in panel.render().plain
