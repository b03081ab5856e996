"""Where a starting run is: a user's slow start (a first compile) read `starting, health OK` with nothing else for up
to stuck_at_start's 15 minutes, and was taken for a hang. `nsa status`, `nsa runs` and the dashboard's header say
the phase and how long it has taken; the verdict's `start` carries it, on stuck_at_start's own clock."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from fixtures.cli import invoke
from fixtures.runs import V1RunWriter, boot, make_v1_run, make_vibe_run, start_training
from watch.helpers import async_test, make_app, wait_loaded

from nsa_tui.health import evaluate
from nsa_tui.runs import load_run
from nsa_tui.watch.widgets.run_header import RunHeader


def compiling(path: Path, now: float, in_phase_s: float = 20.0, **kw) -> V1RunWriter:
    """A run booted 32.5 s before ``now`` (make_v1_run's starting run: phases config and data), compiling for the
    last ``in_phase_s``."""
    w = make_v1_run(path, state="starting", now=now, **kw)
    w.phase("model")
    w.ts = now - in_phase_s - 0.5  # phase() adds 0.5
    w.phase("compile", enabled=True)
    return w


def test_the_verdict_says_the_phase_and_the_time_stuck_at_start_counts(tmp_path):
    now = time.time()
    compiling(tmp_path / "slow", now, monitor={"start_timeout_s": 300})
    v = evaluate(load_run(tmp_path / "slow"), now)
    assert v.state == "starting" and v.alerts == []
    start = v.start
    assert start is not None
    assert (start["phase"], start["clock"], start["timeout_s"]) == ("compile", "boot", 300)
    assert abs(start["phase_s"] - 20.0) < 0.01 and abs(start["waited_s"] - 32.5) < 0.01
    # the same clock as the rule's: past it, stuck_at_start fires and the run is no longer starting
    late = evaluate(load_run(tmp_path / "slow"), now - 32.5 + 301)
    assert late.state == "stalled" and [a.rule for a in late.alerts] == ["stuck_at_start"] and late.start is None


def test_status_prints_the_phase_of_a_starting_run(tmp_path):
    path = tmp_path / "slow"
    compiling(path, time.time())
    res = invoke("status", str(path))
    assert res.exit_code == 0
    line = next(ln for ln in res.stdout.splitlines() if "starting:" in ln)
    m = re.fullmatch(
        r"  starting: phase compile for (\d+)s, (\d+)s since boot \(stuck_at_start after 900s; "
        r"`nsa dump (\S+)` shows where it is\)",
        line,
    )
    assert m, line
    assert 20 <= int(m.group(1)) < 30 and 32 <= int(m.group(2)) < 42 and m.group(3) == str(path)
    obj = json.loads(invoke("status", "--json", str(path)).stdout)
    assert obj["start"]["phase"] == "compile" and obj["start"]["clock"] == "boot"
    # `nsa runs` says the phase beside the state
    assert re.search(r"slow\s+starting \(compile\)", invoke("runs", str(tmp_path)).stdout)


def test_a_running_run_has_no_start_line(tmp_path):
    make_v1_run(tmp_path / "r", steps=100)
    out = invoke("status", str(tmp_path / "r")).stdout
    assert (
        "starting:" not in out and json.loads(invoke("status", "--json", str(tmp_path / "r")).stdout)["start"] is None
    )


def test_a_start_without_phase_records_says_so_and_offers_no_dump(tmp_path):
    """The previous trainer writes a boot and no phases, and `nsa dump` signals our trainer only."""
    make_vibe_run(tmp_path / "old", state="starting", age_s=12.0)
    out = invoke("status", str(tmp_path / "old")).stdout
    assert re.search(r"  starting: no phase record yet, 1[2-9]s since boot \(stuck_at_start after 900s\)\n", out), out


@async_test
async def test_the_dashboard_header_shows_the_phase_while_starting(tmp_path):
    run = tmp_path / "slow"
    compiling(run, time.time(), in_phase_s=25.0)
    app = make_app(run, clock=time.time)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        shown = app.query_one(RunHeader).shown
        assert re.search(r" slow  starting  phase compile 2\ds ok  step 0/1200", shown), shown


def test_the_dump_hint_names_the_run_as_the_user_can_type_it(runs_dir):
    compiling(runs_dir / "-slow", time.time())
    assert "`nsa dump -- -slow` shows where it is" in invoke("status", "--", "-slow").stdout


def test_a_run_that_stepped_before_its_first_progress_record_is_running(tmp_path):
    """The first progress record comes at step train.log_every, which can be long after the first step (seen with
    log_every 1000: `stalled, health CRITICAL, stuck_at_start: no progress record` at step 12). The first step's
    liveness record says the attempt trains."""
    now = time.time()
    w = compiling(tmp_path / "new", now - 200, monitor={"start_timeout_s": 60})
    start_training(w, 300, 0)
    assert evaluate(load_run(w.path), now).state == "stalled"  # no step yet: past the timeout, stuck
    w.ts, w.step = now - 5, 1
    w.liveness()
    v = evaluate(load_run(w.path), now)
    assert (v.state, v.alerts, v.start) == ("running", [], None)

    # a resume: the last attempt's progress records are older than its boot; its own first step's liveness counts
    r = make_v1_run(tmp_path / "resumed", steps=250, total_steps=1000, log_every=50, state="running", now=now - 600)
    r.ts = now - 200
    boot(r, resume=True)
    start_training(r, 1000, 250)
    assert evaluate(load_run(r.path), now - 100).state == "starting"
    r.ts, r.step = now - 5, 251
    r.liveness()
    v = evaluate(load_run(r.path), now)
    assert v.state == "running" and "stuck_at_start" not in [a.rule for a in v.alerts], v.alerts
