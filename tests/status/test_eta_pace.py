"""The ETA's pace (health/pace.py) leaves a pause out and shows a real slowdown within a bounded number of intervals;
`nsa status` says the ETA it gives. The reviewer's run: paused 2.5 min at step 30 of 3000 (0.6 s a step), `ETA
4h22m` 8 s after `kill -CONT`, where about 30 min was right."""

from __future__ import annotations

import json
import time

import pytest
from fixtures.cli import invoke
from fixtures.runs import make_v1_run

from nsa_tui.health import evaluate
from nsa_tui.health.pace import OUTLIER_FACTOR, PERSIST_INTERVALS, RECENT_INTERVALS, Interval, pace_step_s
from nsa_tui.runs import load_run


def run_of(*step_times: float, steps: int = 10) -> list[Interval]:
    return [Interval(steps, s) for s in step_times]


STEADY = [0.6] * 40
PAUSE = 150.0 / 10 + 0.6  # a 150 s pause inside a record of 10 steps
CASES = {
    # name: (intervals, the pace it gives, in seconds a step)
    "steady": (run_of(*STEADY), 0.6),
    "one interval": (run_of(0.6), 0.6),
    "a pause, the record right after it": (run_of(*STEADY, PAUSE), 0.6),
    "a pause, then back to pace": (run_of(*STEADY, PAUSE, 0.6, 0.6), 0.6),
    "a pause early in a young run": (run_of(0.6, 0.6, PAUSE, 0.6), 0.6),
    # evaluation or checkpoint spikes (timestamps, not dt_step_s): every tenth interval 20 s longer
    "eval spikes": (run_of(*[0.6 + (2.0 if k % 10 == 9 else 0.0) for k in range(40)]), 0.6),
    # a real 2x slowdown: below the outlier factor, in the pace from its first interval, in full after RECENT
    "2x slower, 1 interval": (run_of(*STEADY, 1.2), (0.6 * (RECENT_INTERVALS - 1) + 1.2) / RECENT_INTERVALS),
    "2x slower, RECENT intervals": (run_of(*STEADY, *[1.2] * RECENT_INTERVALS), 1.2),
    # 5x slower: taken for a pause until it held PERSIST_INTERVALS records, then the pace
    "5x slower, PERSIST-1 intervals": (run_of(*STEADY, *[3.0] * (PERSIST_INTERVALS - 1)), 0.6),
    "5x slower, PERSIST intervals": (run_of(*STEADY, *[3.0] * PERSIST_INTERVALS), 3.0),
    "5x slower for long": (run_of(*STEADY, *[3.0] * 30), 3.0),
    # faster (a compile's slow first records behind it): the new pace after RECENT intervals
    "faster": (run_of(*[2.0] * 5, *[0.6] * RECENT_INTERVALS), 0.6),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pace(name):
    intervals, want = CASES[name]
    assert pace_step_s(intervals) == pytest.approx(want), name


def test_no_interval_no_pace():
    assert pace_step_s([]) is None


def test_the_factor_leaves_a_slowdown_it_names_in():
    """Just below OUTLIER_FACTOR times the usual step is a slowdown; just above it a pause."""
    below, above = 0.6 * OUTLIER_FACTOR * 0.99, 0.6 * OUTLIER_FACTOR * 1.01
    assert pace_step_s(run_of(*STEADY, below)) > 0.6
    assert pace_step_s(run_of(*STEADY, above)) == pytest.approx(0.6)


def test_an_interval_without_steps_or_time_is_refused():
    for steps, step_s in ((0, 0.6), (10, 0.0), (10, float("nan"))):
        with pytest.raises(ValueError):
            Interval(steps, step_s)


FIXTURE_STEP_S = 0.4  # the fixture's dt_step_s (2% noise)


def _paused_run(path, now):
    """3000 steps at 0.4 s, logged every 10; paused 150 s inside the record at step 40."""
    w = make_v1_run(path, steps=30, total_steps=3000, now=now - 200)
    w.ts += 150.0
    w.progress(1, dt_step_s=150.0 / 10 + FIXTURE_STEP_S, toks_per_s=138.0)
    return w


@pytest.mark.parametrize("after", [0, 5])
def test_a_paused_run_s_eta_is_its_pace_s(tmp_path, after):
    now = time.time()
    w = _paused_run(tmp_path / "a", now)
    w.progress(after)
    v = evaluate(load_run(w.path), w.ts + 1)
    left = 3000 - v.step
    # the pause's 15.4 s a step in a plain mean of the 4 records gave 10 times as long
    assert v.state == "running" and v.eta_s == pytest.approx(left * FIXTURE_STEP_S, rel=0.03), v.eta_s


def test_a_real_slowdown_shows_in_the_eta(tmp_path):
    now = time.time()
    w = make_v1_run(tmp_path / "s", steps=300, total_steps=3000, now=now - 100)
    w.step_time_s = 2.0  # 5 times slower
    for _ in range(PERSIST_INTERVALS):
        w.progress(1, dt_step_s=2.0)
    v = evaluate(load_run(w.path), w.ts + 1)
    assert v.eta_s == pytest.approx((3000 - v.step) * 2.0, rel=0.01), v.eta_s


def test_nsa_status_says_the_paced_eta(tmp_path):
    now = time.time()
    w = _paused_run(tmp_path / "a", now)
    res = invoke("status", str(w.path), "--json")
    assert res.exit_code == 0, res.output
    v = json.loads(res.stdout)
    assert v["eta_s"] == pytest.approx((3000 - 40) * FIXTURE_STEP_S, rel=0.03), v["eta_s"]
    res = invoke("status", str(w.path))
    assert res.exit_code == 0 and ("ETA 19m" in res.stdout or "ETA 20m" in res.stdout), res.stdout
