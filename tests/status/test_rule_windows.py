"""Rules over long stretches: a drop that lasts, a stale limit a run sets, counters a resume restarts, and
thresholds a rules file or monitor section cannot give (refused, not a rule silently off)."""

from __future__ import annotations

import re

import pytest
from fixtures.runs import make_v1_run

from nsa_tui.health import RulesError, build_rules, evaluate
from nsa_tui.runs import load_run

NOW = 1_800_000_000.0


def verdict(path, now, user=None):
    h = load_run(path)
    return evaluate(h, now, build_rules(h.config, user))


def rules_of(v) -> list[str]:
    return [a.rule for a in v.alerts]


@pytest.mark.parametrize("slow_points", [40, 260, 400, 2000])
@pytest.mark.parametrize("step_time_s", [0.1, 1.0])
def test_throughput_drop_holds_while_the_run_stays_slow(tmp_path, slow_points, step_time_s):
    """600 points at the healthy rate, then `slow_points` at 40% of it: flagged for as long as it lasts
    (the median before the drop is the baseline), whether points come every second or every 10 s."""
    w = make_v1_run(tmp_path / "r", steps=6000, step_time_s=step_time_s, now=NOW)
    fast = w.progress(1)[0]["toks_per_s"]
    w.progress(slow_points, toks_per_s=0.4 * fast)
    v = verdict(tmp_path / "r", w.ts + 1)
    drop = [a for a in v.alerts if a.rule == "throughput_drop"]
    held_s = slow_points * 10 * step_time_s
    if held_s < 300:  # the rule's `for`
        assert drop == []
        return
    assert len(drop) == 1, rules_of(v)
    assert drop[0].since_step == 6000 + 10 + 10, drop[0].message  # the first slow point
    baseline = re.search(r"median (\d+) before step 6020", drop[0].message)
    assert baseline and abs(float(baseline.group(1)) - fast) < 0.1 * fast, drop[0].message  # the rate before


def test_throughput_drop_clears_when_the_rate_comes_back(tmp_path):
    w = make_v1_run(tmp_path / "r", steps=6000, step_time_s=1.0, now=NOW)
    fast = w.progress(1)[0]["toks_per_s"]
    w.progress(100, toks_per_s=0.4 * fast)
    assert "throughput_drop" in rules_of(verdict(tmp_path / "r", w.ts + 1))
    w.progress(3)
    assert "throughput_drop" not in rules_of(verdict(tmp_path / "r", w.ts + 1))


def test_a_mild_slowdown_is_not_a_drop(tmp_path):
    w = make_v1_run(tmp_path / "r", steps=6000, step_time_s=1.0, now=NOW)
    fast = w.progress(1)[0]["toks_per_s"]
    w.progress(500, toks_per_s=0.6 * fast)
    assert "throughput_drop" not in rules_of(verdict(tmp_path / "r", w.ts + 1))


def test_stale_limit_is_adaptive_unless_the_run_sets_one(tmp_path):
    # progress every 4 s: adaptive limit 120 s (10 intervals, floored)
    make_v1_run(tmp_path / "a", steps=300, now=NOW, monitor={"stale_s": None})
    assert rules_of(verdict(tmp_path / "a", NOW + 180)) == ["heartbeat_stale"]
    # a run with long evals sets a longer limit: an hour of silence is then no alert
    make_v1_run(tmp_path / "b", steps=300, now=NOW, monitor={"stale_s": 7200})
    assert verdict(tmp_path / "b", NOW + 3600).alerts == []
    assert rules_of(verdict(tmp_path / "b", NOW + 7300)) == ["heartbeat_stale"]
    # ... and a shorter one is taken as well
    make_v1_run(tmp_path / "c", steps=300, now=NOW, monitor={"stale_s": 30})
    assert rules_of(verdict(tmp_path / "c", NOW + 60)) == ["heartbeat_stale"]
    # a rules file overrides the run's own
    assert verdict(tmp_path / "c", NOW + 60, {"heartbeat_stale": {"stale_s": 600}}).alerts == []


def test_slow_run_is_stale_at_the_cap(tmp_path):
    # a step every 2 minutes (log every 10): 10 intervals would be 3.3 h; the cap is 600 s
    make_v1_run(tmp_path / "s", steps=40, step_time_s=120.0, now=NOW, monitor={"stale_s": None})
    assert verdict(tmp_path / "s", NOW + 500).alerts == []
    assert rules_of(verdict(tmp_path / "s", NOW + 700)) == ["heartbeat_stale"]


def test_fallbacks_counted_again_after_a_resume(tmp_path):
    """A resumed process that does not carry the counters over restarts them at 0: its growth still shows."""
    w = make_v1_run(tmp_path / "r", steps=1000, step_time_s=1.0, now=NOW)
    w.progress(60, fallbacks={"selection.triton->fast": 40})  # the growth to 40 is older than the window
    assert "fallbacks_rising" not in rules_of(verdict(tmp_path / "r", w.ts + 1))
    w.boot()  # a new process (resume), counters from 0
    w.progress(31, fallbacks={"selection.triton->fast": 0})
    assert "fallbacks_rising" not in rules_of(verdict(tmp_path / "r", w.ts + 1))  # a restart is no growth
    w.progress(1, fallbacks={"selection.triton->fast": 29})
    v = verdict(tmp_path / "r", w.ts + 1)
    found = [a for a in v.alerts if a.rule == "fallbacks_rising"]
    assert len(found) == 1 and "selection.triton->fast +29" in found[0].message, [a.message for a in v.alerts]
    assert found[0].since_step == w.step


def test_steady_counters_after_a_resume_are_quiet(tmp_path):
    w = make_v1_run(tmp_path / "r", steps=1000, step_time_s=1.0, now=NOW)
    w.progress(60, fallbacks={"window.triton->fast": 7})
    w.boot()
    w.progress(60, fallbacks={"window.triton->fast": 7})  # carried over by the checkpoint, and not growing
    assert "fallbacks_rising" not in rules_of(verdict(tmp_path / "r", w.ts + 1))


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"heartbeat_stale": {"min_stale_s": None}}, "needs a number"),
        ({"gate_collapse": {"entropy_min": None}}, "needs a number"),
        ({"loss_increase": {"smooth_points": 0}}, "whole number >= 1"),
        ({"grad_spike": {"window_points": 20.5}}, "whole number >= 1"),
        ({"throughput_drop": {"drop_frac": -0.5}}, ">= 0"),
        ({"monitor": {"gate_entropy_min": None}}, "needs a number"),
    ],
)
def test_unusable_thresholds_are_refused(entry, says):
    with pytest.raises(RulesError, match=says):
        build_rules(None, entry)


def test_null_is_taken_where_it_means_something():
    rules = build_rules(None, {"monitor": {"min_toks_per_s": None, "max_gpu_mem_gb": None, "stale_s": None}})
    assert rules["throughput_low"].params["min_toks_per_s"] is None
    assert rules["heartbeat_stale"].params["stale_s"] is None
    assert (
        build_rules(None, {"throughput_drop": {"skip_first_points": 0}})["throughput_drop"].params["skip_first_points"]
        == 0
    )


def test_a_run_whose_monitor_section_nulls_a_threshold_is_a_rules_error(tmp_path):
    make_v1_run(tmp_path / "r", steps=300, now=NOW, monitor={"gate_entropy_min": None})
    h = load_run(tmp_path / "r")
    with pytest.raises(RulesError, match="gate_entropy_min: needs a number"):
        build_rules(h.config)


def test_a_resume_replaying_its_stream_is_starting_not_stuck(tmp_path):
    """A resume of a hub-streamed run re-reads the stream up to its saved document, and says how far it got
    every 30 s: a start that moves. Only when those reports stop is it stuck, and the alert says where."""
    w = make_v1_run(tmp_path / "r", steps=200, step_time_s=1.0, now=NOW)
    w.ts += 60
    w.boot()  # the resumed attempt, a minute after the last step
    for phase in ("config", "data", "model", "compile", "train"):
        w.phase(phase)
    boot = w.ts
    for k in range(40):  # 20 minutes of replay reports
        w.ts += 30
        w.phase("data", replayed=(k + 1) * 10_000, replay_of=2_000_000)
    v = verdict(tmp_path / "r", w.ts + 60)
    assert w.ts + 60 - boot > 900 and (v.state, v.alerts) == ("starting", []), [a.message for a in v.alerts]
    v = verdict(tmp_path / "r", w.ts + 1000)  # no report for 1000 s: the replay stopped
    assert [a.rule for a in v.alerts] == ["stuck_at_start"]
    assert "replay of the data stream stopped: document 400000 of 2000000" in v.alerts[0].message


def test_a_nan_stop_names_the_step_that_went_non_finite(tmp_path):
    """The trainer's end record carries the last step that updated the weights; the error record the step
    whose loss or gradient was not finite: the alert names that one."""
    w = make_v1_run(tmp_path / "r", steps=300, now=NOW)
    w.step += 1
    w.error("non-finite loss or gradient norm at step 301; stopping without an update")
    w.step -= 1
    w.end("nan", 3)
    v = verdict(tmp_path / "r", w.ts + 1)
    nan = [a for a in v.alerts if a.rule == "nan_loss"]
    assert len(nan) == 1 and nan[0].since_step == 301, [a.message for a in v.alerts]
    assert "non-finite loss or gradient at step 301" in nan[0].message
