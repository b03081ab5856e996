"""The `nsa watch` Textual app: one or several runs, live charts, health, events."""

from __future__ import annotations

import dataclasses
import gc
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer

from nsa_train.telemetry import schema
from nsa_train.telemetry.init_from_said import init_from_short
from nsa_tui import fmt
from nsa_tui.health.checks import median_interval
from nsa_tui.health.clock import attempt_clocks
from nsa_tui.health.engine import ENDED_STATES, eta_seconds, heartbeat_age, heartbeat_ahead
from nsa_tui.health.start import phase_entered
from nsa_tui.rundir import runs_root
from nsa_tui.runs.history import RunHistory
from nsa_tui.watch import actions
from nsa_tui.watch.chart_render import ChartSpec, Line
from nsa_tui.watch.charts import CHARTS, RUN_COLORS, RunCharts, ViewSettings, x_formatter
from nsa_tui.watch.downsample import nice_ceil
from nsa_tui.watch.events import pane_events
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.screens.confirm import ConfirmScreen
from nsa_tui.watch.screens.events import EventsScreen
from nsa_tui.watch.screens.help import HelpScreen
from nsa_tui.watch.verdict import VerdictView, evaluate, run_mark
from nsa_tui.watch.widgets.events_pane import EventsPane
from nsa_tui.watch.widgets.health_panel import HealthPanel
from nsa_tui.watch.widgets.line_chart import LineChart
from nsa_tui.watch.widgets.ranks_panel import RanksPanel
from nsa_tui.watch.widgets.run_header import RunHeader
from nsa_tui.watch.widgets.run_tabs import RunTabs

MIN_REDRAW_GAP_S = 0.2  # header/titles: at most 5 redraws a second (data comes at most every READ_GAP_S)
PLOT_REDRAW_GAP_S = 4.0  # charts, log tail, ranks: every 4 s is plenty for curves of hours, and keeps CPU low
AGE_TICK_S = 1.0  # ages and ETA move with the clock even when no data arrives
HEALTH_EVERY_S = 10.0  # the rules engine runs at most this often per run (its rules look at minutes)
COALESCE_S = 0.03  # after a file event, wait this long so one trainer step's writes are read together
IDLE_WAIT_S = 1.0  # a quiet run: the reader sleeps until a change wakes it (a polling source caps this at its interval)
FREEZE_AFTER_S = 1.0  # after the first full screen is painted (the collection before the freeze takes ~70 ms)
READ_GAP_S = 0.3  # at most ~3 reads a second: a fast trainer's lines are read in batches (latency < 0.35 s)
STEP_REJUDGED_STATES = ("starting", "stalled")  # states a new step ends: judged again at once when it comes


class DataChanged(Message):
    """A reader thread applied new data."""


class RunMoved(Message):
    """A reader thread followed run ``index``'s directory from ``old`` to ``new`` (renamed while watched)."""

    def __init__(self, index: int, old: str, new: str) -> None:
        super().__init__()
        self.index, self.old, self.new = index, old, new


class WatchApp(App):
    CSS_PATH = "watch.tcss"
    TITLE = "nsa watch"
    HORIZONTAL_BREAKPOINTS: ClassVar = [(0, "-narrow"), (140, "-wide")]
    # Ordered by what a user on a small terminal needs first (the footer crops from the right), with labels short
    # enough that every key fits 80 columns with several runs open: at 80 columns "next run" was cut and "re-read"
    # gone. `?` lists every key, with the command palette (ctrl+p), whose footer entry gave way for them.
    BINDINGS: ClassVar = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        # a viewer that replaces `tail -f`: ctrl+c quits at once (Textual's default only says "press ctrl+q")
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("h", "halt", "halt"),
        Binding("d", "dump", "dump"),
        Binding("r", "reread", "re-read"),
        # not in the footer (with several runs at 80 columns it pushed `x axis` off): the events pane's border says it
        Binding("e", "events", "events", show=False),
        Binding("tab,right", "next_run", "next"),
        Binding("shift+tab,left", "prev_run", "prev", show=False),
        Binding("c", "compare", "compare"),
        Binding("s", "smoothing", "smooth"),
        Binding("l", "log_y", "log"),
        Binding("x", "x_axis", "axis"),
    ]

    def __init__(
        self,
        runs: list[RunModel],
        *,
        clock: Callable[[], float] = time.time,
        host: str | None = None,
        remote_runs: list[str] | None = None,
        remote_dir: str | None = None,
        start_readers: bool = True,
    ) -> None:
        super().__init__()
        self.runs = runs
        self.charts = [RunCharts(m) for m in runs]
        self.clock = clock
        self.host = host
        self.remote_runs = remote_runs or [m.name for m in runs]
        self.remote_dir = remote_dir  # where the host's `nsa` is, for the h and d keys
        self.view = ViewSettings()
        self.active = 0
        self.verdicts: list[VerdictView] = [VerdictView() for _ in runs]
        self._drawn: tuple = ()
        self._last_age_tick = 0.0
        self._last_draw = 0.0
        self._last_plot = 0.0
        self._last_ranks = 0.0
        self._timer: Timer | None = None  # a throttled redraw of new data
        self._plot_timer: Timer | None = None  # the charts' (slower) turn
        self._posted: dict[int, int] = {}  # model id -> version announced to the UI
        self._drawn_loads: set[tuple[int, int]] = set()  # (model id, resets) whose first complete read is on screen
        self._frozen = False  # gc.freeze() done after the first load
        self._health_at: dict[int, tuple] = {}  # run -> (clock, version, shape, latest step) of its verdict
        # run -> (the step of its verdict's ETA, when that step was reached)
        self._eta_from: dict[int, tuple[int | None, float]] = {}
        self._status_cmds: dict[int, str] = {}  # run -> the `nsa status` command that lists all its alerts
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._mounted = threading.Event()  # readers post to the UI only once it can take messages
        self.last_message = ""
        if start_readers:
            # read from the start, not from mount: a big first read overlaps Textual's own start-up
            for i, m in enumerate(runs):
                t = threading.Thread(target=self._reader, args=(i, m), name=f"nsa-watch-{i}", daemon=True)
                t.start()
                self._threads.append(t)

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield RunTabs([m.name for m in self.runs], id="tabs")
        yield RunHeader(id="header")
        with Container(id="body"):
            with Vertical(id="main"):
                with Vertical(id="charts"):
                    for c in CHARTS:
                        yield LineChart(self._spec_fn(c), self._title_fn(c), id=f"chart-{c}")
                yield LineChart(self._compare_spec, self._compare_title, self._marks, id="compare")
            with Vertical(id="side"):
                yield HealthPanel(id="health")
                with Vertical(id="side-right"):
                    yield RanksPanel(id="ranks")
                    yield EventsPane(id="events")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        if len(self.runs) < 2:
            self.query_one(RunTabs).display = False
        self.set_interval(AGE_TICK_S, self._redraw)  # ages and ETA move even when no data comes
        self._redraw(force=True)
        self._mounted.set()

    def on_unmount(self) -> None:
        gc.unfreeze()  # an embedding process (tests) gets its objects back into the collector
        self._stop.set()
        for m in self.runs:
            m.source.close()
        for t in self._threads:
            t.join(timeout=2)

    # ------------------------------------------------------------ data
    def _reader(self, index: int, model: RunModel) -> None:
        last_read = 0.0
        moves_said = 0
        while not self._stop.is_set():
            last_read = time.monotonic()
            try:
                model.pump()
            except Exception as e:  # keep following: one bad read must not end the dashboard, and say it
                if model.read_error != (msg := f"read error: {type(e).__name__}: {e}"):
                    model.read_error = msg
                    self.post_message(DataChanged())
            else:
                model.read_error = ""
                while not self._mounted.wait(0.05) and not self._stop.is_set():
                    pass  # the first read can finish before the UI is up
                for old, new in model.moved[moves_said:]:
                    self.post_message(RunMoved(index, old, new))
                moves_said = len(model.moved)
                if model.version != self._posted.get(id(model)):
                    self._posted[id(model)] = model.version
                    self.post_message(DataChanged())  # thread-safe; the UI redraws at once
            model.source.wait(IDLE_WAIT_S)
            # each read wakes the UI for a redraw: batch what a fast trainer writes rather than chase each line
            self._stop.wait(max(COALESCE_S, READ_GAP_S - (time.monotonic() - last_read)))

    def on_data_changed(self, _msg: DataChanged) -> None:
        m = self.model
        if m.loaded and (id(m), m.resets) not in self._drawn_loads:
            # the first complete read (or a re-read): every pane at once, not at the charts' slower pace
            self._drawn_loads.add((id(m), m.resets))
            self._redraw(force=True)
            if not self._frozen:
                self._frozen = True
                self.set_timer(FREEZE_AFTER_S, self._freeze_heap)
            return
        self._schedule()

    def on_run_moved(self, msg: RunMoved) -> None:
        """Said once, and the run named where it went from then on (its tab, its `nsa status` command)."""
        on = f" on {self.host}" if self.host else ""
        self.notify(f"run directory {msg.old}{on} is now {msg.new}", title="renamed", timeout=30)
        if self.host:  # its `nsa status --host` command and the actions' target name it where it is
            self.remote_runs[msg.index] = msg.new
        tabs = self.query_one(RunTabs)
        tabs.names[msg.index] = self.runs[msg.index].name
        tabs.refresh()
        self._status_cmds.pop(msg.index, None)
        self._redraw(force=True)

    def _freeze_heap(self) -> None:
        # The loaded history and Textual's widgets live as long as the app: keep them out of the cyclic
        # GC's full collections, which otherwise walk them all every ~20 s (~70 ms each, bench/watch_live.py)
        if self._stop.is_set():
            return  # fired after on_unmount's unfreeze (an app quit ~1 s after its load): nothing would thaw it
        gc.collect()
        gc.freeze()

    @property
    def loaded_on_screen(self) -> bool:
        """The active run's first complete read has been drawn in every pane (the screen then only needs painting)."""
        m = self.model
        return (id(m), m.resets) in self._drawn_loads

    def _schedule(self) -> None:
        """Redraw now, or when the minimum gap since the last redraw has passed."""
        wait = MIN_REDRAW_GAP_S - (time.monotonic() - self._last_draw)
        if wait <= 0:
            self._redraw()
        elif self._timer is None:
            self._timer = self.set_timer(wait, self._timed_redraw)

    def _timed_redraw(self) -> None:
        self._timer = None
        self._redraw(due=True)

    def _timed_plot(self) -> None:
        self._plot_timer = None
        self._redraw(due=True)

    @property
    def model(self) -> RunModel:
        return self.runs[self.active]

    def _spec_fn(self, chart: str) -> Callable[[], ChartSpec | None]:
        return lambda: self.charts[self.active].spec(chart, self.view)

    def _title_fn(self, chart: str) -> Callable[[], list[str]]:
        return lambda: self.charts[self.active].title_fields(
            chart, self.view, self.verdicts[self.active].mean_toks_per_s, self.model.history.resumed
        )

    def _compare_spec(self) -> ChartSpec:
        lines: list[Line] = []
        hi = 1.0
        for i, (m, ch) in enumerate(zip(self.runs, self.charts, strict=True)):
            key = f"cmp-{self.view.x_axis}"
            lines.append(ch._line(key, m.name, RUN_COLORS[i % len(RUN_COLORS)], m.table.view("loss", self.view.x_axis)))
            hi = max(hi, ch.x_range(self.view)[1] if self.view.x_axis != "step" else (m.table.last_step or 1))
        return ChartSpec(lines, 0.0, nice_ceil(hi), log_y=self.view.log_y, x_format=x_formatter(self.view.x_axis))

    def _compare_title(self) -> list[str]:
        return [f"loss of {len(self.runs)} runs", f" (x: {self.view.x_axis})"]

    def _marks(self) -> list[tuple[str, str]]:
        """Each run's health mark (verdict.run_mark) for its tab and the compare legend: the active run's panel is
        the only one in view."""
        # a run that cannot be read gets none: its last data's verdict would vouch for a run nobody can see
        return [
            ("", "") if m.history.source_lost else run_mark(v) for m, v in zip(self.runs, self.verdicts, strict=True)
        ]

    def _redraw(self, force: bool = False, due: bool = False) -> None:
        """Bring the screen up to date. ``force``: everything, now; ``due``: a scheduled redraw
        (its gap has passed, timers may fire a little early); otherwise at most every gap."""
        now = self.clock()
        mono = time.monotonic()
        key = (self.active, tuple(m.version for m in self.runs), repr(sorted(self.view.__dict__.items())))
        age_tick = now - self._last_age_tick >= AGE_TICK_S
        data_changed = key != self._drawn
        throttled = mono - self._last_draw < MIN_REDRAW_GAP_S and not due
        if not force and not age_tick and (not data_changed or throttled):
            if data_changed and self._timer is None:
                self._timer = self.set_timer(MIN_REDRAW_GAP_S - (mono - self._last_draw), self._timed_redraw)
            return
        try:
            main = self.screen_stack[0]  # the dashboard, also while help or a confirmation is on top
            main.query_one(RunHeader)
        except (IndexError, NoMatches):
            return  # not composed yet, or shutting down: a late timer or reader message has nothing to draw
        self._last_age_tick = now
        if data_changed or force:
            self._last_draw = mono  # only data draws space out data draws: an age tick must not delay a new line
        self._drawn = key
        if len(self.runs) > 1:
            self._judge_others(now, force)
        m = self.model
        now -= m.clock_offset_s  # the run machine's clock, which its records' timestamps are on
        with m.lock:
            v = self._verdict(self.active, now, force)
            if len(self.runs) > 1:  # every run judged: the marks are up to date, the active run's too
                main.query_one(RunTabs).show_marks(self._marks())
            if m.history.source_lost:  # an "ok" on the last data that came would vouch for a run nobody can see
                v = dataclasses.replace(v, health="", unreachable=m.source.trouble() or "the run cannot be read")
            main.query_one(RunHeader).show(self._header_info(m, v, now))
            main.query_one(HealthPanel).show(v, self._status_cmd())
            if force or mono - self._last_ranks >= PLOT_REDRAW_GAP_S - 0.05:
                # at the charts' pace, data or not (a rank that went quiet must age on screen). Not with the
                # header: the compositor repaints the box around all dirty regions, and header + this panel
                # span most of the screen
                self._last_ranks = mono
                live_every = (m.history.config.get("monitor") or {}).get("liveness_every_s")
                every = float(live_every) if isinstance(live_every, (int, float)) and live_every > 0 else 0.0
                stopped = frozenset(r.rank for r in m.history.stopped_ranks)
                main.query_one(RanksPanel).show(
                    self._rank_rows(m, now), ended=_ended(v.state), liveness_every_s=every, stopped=stopped
                )
            if data_changed or force:
                plot = force or mono - self._last_plot >= PLOT_REDRAW_GAP_S - 0.05  # timers fire early
                if plot:
                    self._last_plot = mono
                else:
                    self._drawn = ()  # the charts still owe this data: come back for them
                    if self._plot_timer is None:
                        wait = PLOT_REDRAW_GAP_S - (mono - self._last_plot)
                        self._plot_timer = self.set_timer(wait, self._timed_plot)
                if plot:
                    # charts and the log tail once a second; the header carries the newest
                    # step at 4 Hz
                    main.query_one(EventsPane).show(pane_events(m.events, 50), m.log_tail(50))
                    if isinstance(self.screen, EventsScreen):
                        self.screen.show(self._all_events(m))
                    if self.view.compare:
                        main.query_one("#compare", LineChart).redraw()
                    else:
                        for c in CHARTS:
                            main.query_one(f"#chart-{c}", LineChart).redraw()

    def _judge_others(self, now: float, force: bool) -> None:
        """The runs not in view judged at the active one's pace (HEALTH_EVERY_S each; ~2 ms a run), for the marks
        in their tabs and the compare legend: a run's mark said nothing of a run not looked at since."""
        for i, m in enumerate(self.runs):
            if i != self.active:
                with m.lock:
                    self._verdict(i, now - m.clock_offset_s, force)

    def _verdict(self, i: int, now: float, force: bool) -> VerdictView:
        """Run ``i``'s verdict from the health engine, re-evaluated at most every HEALTH_EVERY_S per run (under its
        model's lock)."""
        m = self.runs[i]
        last = self._health_at.get(i)
        h = m.history
        # a change of phase (first progress, the end, an exit status, the directory gone, the process gone, a new
        # launch or boot, a resume's first step, torchrun gone under its ranks) is judged at once
        shape = (
            h.has_progress,
            h.end_event is not None,
            h.exit_status,
            h.halt_requested,
            len(h.ranks),
            h.dir_missing,
            len(h.dir_candidates),
            h.source_lost,
            h.process_alive,
            h.attempt_start_ts,
            h.restarted_since_progress,
            len(h.ranks_without_launcher),  # torchrun killed under live ranks (launcher_gone)
            tuple(h.stopped_ranks),  # a rank's process stopped or continued (rank_stopped)
        )
        # A starting or stalled run whose step moves is running again: judged at once (the header said `starting
        # phase train 13s` beside step 1/30, or `stalled` beside a new step, for up to HEALTH_EVERY_S). Not the step in
        # `shape`: a running run would be judged at every record, which costs CPU on a fast trainer
        moved = last is not None and h.latest_step != last[3] and self.verdicts[i].state in STEP_REJUDGED_STATES
        stale = (
            last is not None and m.version != last[1] and (now - last[0] >= HEALTH_EVERY_S or shape != last[2] or moved)
        )
        if force or last is None or stale or now - last[0] >= HEALTH_EVERY_S:
            self.verdicts[i] = evaluate(m.history, now, m.run_dir)
            self._health_at[i] = (now, m.version, shape, h.latest_step)
            # the engine's ETA counts from the moment its step was reached (not from now)
            self._eta_from[i] = (h.latest_step, _step_reached_ts(h) or now)
        return self.verdicts[i]

    def _header_info(self, m: RunModel, v: VerdictView, now: float) -> dict:
        h = m.history
        tokens, tokens_step = _last_with_step(h.steps, h.column("tokens_seen"))
        return {
            "name": m.name,
            "state": v.state if not v.problem else ("starting" if not h.has_progress else "unknown"),
            "health": v.health if not v.problem else "",
            "halt": v.halt_requested,
            "stop_signal": v.stop_signal,
            "halt_overtaken": v.halt_overtaken,
            "step": h.latest_step,
            "total": h.total_steps,
            "eta": _whole(self._eta_now(v, now, h)),
            "elapsed": _whole(h.attempt_elapsed(now, ended=v.state in ENDED_STATES)),
            "resumed": h.resumed,  # the elapsed beside the tokens is this attempt's, they the run's
            "tokens": tokens,
            "tokens_step": tokens_step,
            "hb_age": _whole(heartbeat_age(h, now)),  # as `nsa status` gives it (a generic log: its file's mtime)
            "hb_ahead": _whole(heartbeat_ahead(h, now)),  # why it has none, where the records are dated ahead
            "corrupt": h.corrupt,
            "unreadable": sorted(h.unreadable_files),
            "newer": dict(sorted(h.newer_files.items())),  # read, as this version: not unreadable
            "source": self._source_line(m),
            "attention": h.run_info.get(schema.RUN_ATTENTION_IMPL),
            "init_from": init_from_short(h.run_info.get(schema.RUN_INIT_FROM)),
            "phase": _start_phase(h, now) if v.state == "starting" else None,
        }

    def _eta_now(self, v: VerdictView, now: float, h: RunHistory) -> float | None:
        """The verdict's ETA less the time since the step it was judged at: it counts down with the clock
        between verdicts (every HEALTH_EVERY_S) and between a slow run's records. Counted from the verdict
        instead, it would jump back up at each verdict that sees no new step. A newer step than the verdict's gets
        the engine's estimate of its own (what `nsa status` says of it), from where it was reached: the old step's
        counted down beside it for up to HEALTH_EVERY_S ("ETA 2s" next to a step whose own estimate was 1m20s), and
        judging the whole run again at each step cost the live dashboard a third more CPU."""
        judged = self._eta_from.get(self.active)
        if v.eta_s is None or judged is None:
            return v.eta_s
        step, since = judged
        latest = h.latest_step
        # no further than the next record is due: a hung trainer's ETA went on counting down, a run making progress
        # to look at, until heartbeat_stale fired minutes later (`nsa status` holds it)
        due = median_interval([t for t in h.ts[-51:] if t is not None])
        if step is not None and latest is not None and latest > step and (reached := _step_reached_ts(h)) is not None:
            eta = eta_seconds(h, v.state)  # the engine's own estimate (a slice of the last points: cheap)
            if eta is not None:
                return max(0.0, eta - _counted(now - reached, due))
        return max(0.0, v.eta_s - _counted(now - since, due))

    def _status_cmd(self) -> str:
        """The command that lists every alert of the active run, for the health panel's "+N more" line: the run's
        name where `nsa status` finds it by name, else its path (on the host with --host)."""
        i = self.active
        if i not in self._status_cmds:
            m = self.runs[i]
            if self.host:
                cmd = f"nsa status --host {shlex.quote(self.host)} {shlex.quote(self.remote_runs[i])}"
            else:
                try:
                    by_name = Path(m.where).resolve() == (runs_root() / m.name).resolve()
                except (OSError, ValueError):
                    by_name = False
                cmd = f"nsa status {shlex.quote(m.name if by_name or not m.where else m.where)}"
            self._status_cmds[i] = cmd
        return self._status_cmds[i]

    def _source_line(self, m: RunModel) -> str:
        """How a remote run is read; for a local one only what goes wrong (an unreadable file); and the last
        read's failure."""
        how = m.source.describe() if self.host else m.source.trouble()
        return "; ".join(s for s in (how, m.read_error) if s)

    def _rank_rows(self, m: RunModel, now: float) -> list[tuple[int, int | None, float | None]]:
        h = m.history
        clocks = attempt_clocks(h, now)  # a rank on a clock ahead is aged from its file, not `0s` (health/clock.py)
        return [
            (r.rank, r.last_step, (now - seen) if (seen := clocks[r.rank].seen) is not None else None)
            for r in sorted(h.attempt_ranks.values(), key=lambda r: r.rank)  # not a stale rank's file
        ]

    # ------------------------------------------------------------ actions
    def action_smoothing(self) -> None:
        self.view.cycle_smoothing()
        self.notify(f"smoothing: {f'{self.view.smoothing}-point moving average' if self.view.smoothing else 'off'}")
        self._redraw(force=True)

    def action_log_y(self) -> None:
        self.view.log_y = not self.view.log_y
        self._redraw(force=True)

    def action_x_axis(self) -> None:
        self.view.cycle_x()
        self.notify(f"x axis: {self.view.x_axis}")
        self._redraw(force=True)

    MULTI_RUN_ACTIONS: ClassVar[frozenset[str]] = frozenset({"compare", "next_run", "prev_run"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """With one run, comparing and switching runs mean nothing: their keys leave the footer, which at 80
        columns then has room for the rest (it cut "compare", "next run" and "re-read")."""
        return action not in self.MULTI_RUN_ACTIONS or len(self.runs) > 1

    def on_key(self, event: events.Key) -> None:
        # with one run `c` is not bound (check_action): a key that did nothing without a word read as broken
        if event.key == "c" and len(self.runs) == 1 and self.screen is self.screen_stack[0]:
            self.notify("compare overlays the loss curves of several runs: `nsa watch RUN RUN ...`")

    def action_compare(self) -> None:
        self.view.compare = not self.view.compare
        self.set_class(self.view.compare, "-compare")
        self._redraw(force=True)

    # The screen binds tab/shift+tab to focus moves; on the dashboard (nothing to focus) they switch runs.
    def action_focus_next(self) -> None:
        if self.screen is self.screen_stack[0]:
            self.action_next_run()
        else:
            super().action_focus_next()

    def action_focus_previous(self) -> None:
        if self.screen is self.screen_stack[0]:
            self.action_prev_run()
        else:
            super().action_focus_previous()

    def action_next_run(self) -> None:
        self._switch((self.active + 1) % len(self.runs))

    def action_prev_run(self) -> None:
        self._switch((self.active - 1) % len(self.runs))

    def on_run_tabs_selected(self, msg: RunTabs.Selected) -> None:
        self._switch(msg.index)

    def _switch(self, i: int) -> None:
        self.active = i
        self.query_one(RunTabs).select(i)
        self._redraw(force=True)

    def action_reread(self) -> None:
        m = self.model
        m.restart()
        if getattr(m.source, "connected", True) is False:
            # what was read stays on screen: the source forgets it only once its host answers again
            why = getattr(m.source, "last_error", "") or "not connected"
            self.notify(
                f"cannot re-read: {self.host} unreachable ({why}); {m.name} is read again from scratch "
                "when the link is back",
                severity="warning",
            )
            return
        self.notify(f"re-reading {m.name} from scratch")

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """An SVG of the screen, saved in the current directory and named: Textual's default, ~/Downloads, is
        missing on a headless GPU box, and the palette's "Screenshot" said "Failed to save" and no more."""
        where = path or os.getcwd()
        try:
            saved = self.save_screenshot(filename, where)
        except OSError as e:
            self.notify(f"cannot save a screenshot in {where}: {e.strerror or e}", severity="error")
            return
        self.notify(f"screenshot saved: {saved}")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_events(self) -> None:
        if isinstance(self.screen, EventsScreen):
            return  # a click on the pane under it
        m = self.model
        with m.lock:
            events = self._all_events(m)
        self.push_screen(EventsScreen(m.name, events))

    @staticmethod
    def _all_events(m: RunModel) -> list:
        """Every event read of the run, each once (another rank's copy of rank 0's left out), oldest first."""
        events = m.events
        return pane_events(events, len(events))

    def _target(self) -> actions.Target:
        return actions.Target(self.model.run_dir, self.host, self.remote_runs[self.active], self.remote_dir)

    def action_halt(self) -> None:
        m, target = self.model, self._target()
        if self.verdicts[self.active].state in ENDED_STATES:
            # nothing to stop: no question first, `nsa halt`'s own answer at once (it checks the run, not this view)
            self._background("halt", lambda: actions.halt(target, self._say))
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._background("halt", lambda: actions.halt(target, self._say))

        where = f" on {self.host}" if self.host else ""
        self.push_screen(ConfirmScreen(f"Halt run {m.name!r}{where}? It stops after the current step."), answered)

    def action_dump(self) -> None:
        target = self._target()
        self.notify(f"asking every rank of {self.model.name} for a stack dump…")
        self._background("dump", lambda: actions.dump(target, self._say))

    def _say(self, text: str) -> None:
        self.call_from_thread(self.notify, text)

    def _background(self, what: str, fn: Callable[[], str]) -> None:
        def work() -> None:
            ok, msg = actions.safely(fn)
            self.last_message = msg
            self.call_from_thread(self.notify, msg, title=what, severity="information" if ok else "error")

        threading.Thread(target=work, name=f"nsa-watch-{what}", daemon=True).start()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's "Keys" (the focused widget's help) sat beside ours under the same name: ours lists every key. Its
        # "Screenshot" saves to ~/Downloads (deliver_screenshot, not action_screenshot): "Failed to save screenshot"
        # on a headless box, where ours saves here and names the file
        yield from (c for c in super().get_system_commands(screen) if c.title not in ("Keys", "Screenshot"))
        yield SystemCommand("Screenshot", "Save an SVG of the screen in the current directory", self.action_screenshot)
        yield SystemCommand("Halt run", "Ask the run to stop cleanly (same as nsa halt)", self.action_halt)
        yield SystemCommand("Stack dump", "Dump the Python stacks of every rank (same as nsa dump)", self.action_dump)
        yield SystemCommand("Toggle smoothing", "Cycle the loss moving average", self.action_smoothing)
        yield SystemCommand("Toggle log scale", "Log-scale y axes", self.action_log_y)
        yield SystemCommand("Cycle x axis", "x axis: step / time / tokens", self.action_x_axis)
        yield SystemCommand("Compare runs", "Overlay the loss curves of all open runs", self.action_compare)
        yield SystemCommand("Next run", "Switch to the next run", self.action_next_run)
        yield SystemCommand("Previous run", "Switch to the previous run", self.action_prev_run)
        yield SystemCommand("Re-read from scratch", "Read every file again", self.action_reread)
        yield SystemCommand("Events", "Every event of the run, wrapped and scrollable", self.action_events)
        yield SystemCommand("Keys", "Show every key", self.action_help)


def _ended(state: str) -> str:
    """The state of a run whose processes are gone (finished, halted, crashed: killed too) or cannot be seen
    (unknown: its directory or host out of reach), else ''."""
    return state if state in (*ENDED_STATES, "unknown") else ""


ETA_DUE_FACTOR = 2.0  # how many usual progress intervals the ETA counts down without a new record


def _counted(elapsed: float, due: float | None) -> float:
    """The part of ``elapsed`` the ETA counts down: all of it while a record is not overdue, none while no
    interval is known (one progress record): a trainer hung after its first logged step counted down for the 10
    minutes until heartbeat_stale fired, where `nsa status` holds it."""
    if due is None:
        return 0.0
    return min(max(0.0, elapsed), ETA_DUE_FACTOR * due)


def _step_reached_ts(h: RunHistory) -> float | None:
    """When the run reached its latest step: its progress record's time, or the first liveness record's
    (of any rank) when liveness is ahead of progress."""
    step = h.latest_step
    if step is None:
        return None
    if h.steps and h.steps[-1] == step and h.last_progress_ts is not None:
        return h.last_progress_ts
    return min((r.last_ts for r in h.ranks.values() if r.last_step == step and r.last_ts is not None), default=None)


def _last_with_step(steps: list[int], col: list[float | None]) -> tuple[float | None, int | None]:
    """A column's newest value and the step of its record (liveness records move the run's step, not this)."""
    for i in range(len(col) - 1, -1, -1):
        if col[i] is not None:
            return col[i], steps[i]
    return None, None


def _whole(seconds: float | None) -> float | None:
    """Whole seconds: the header repaints once a second for ages, not on every redraw."""
    return None if seconds is None else float(int(seconds))


def _start_phase(h: RunHistory, now: float) -> str | None:
    """A starting run's phase and whole seconds in it, for the header (`nsa status` says the same on its
    `starting:` line); None before its first phase record."""
    entered = phase_entered(h)
    if entered is None:
        return None
    phase, since = entered
    return f"{phase} {fmt.duration(_whole(max(0.0, now - since)))}"
