"""Every health rule fires on a run crafted to trip it and stays silent on a healthy one."""

from __future__ import annotations

import json

import pytest
from fixtures.runs import (
    ARMED_MONITOR,
    ARMED_USER,
    KNOWN_ALERTS,
    V1_STATES,
    make_v1_run,
    make_vibe_run,
    stamp_heartbeats,
    start_training,
)

from nsa_tui.health import RULE_NAMES, RulesError, build_rules, evaluate, load_rules_file
from nsa_tui.runs import load_run

NOW = 1_800_000_000.0

# alert injected by the fixture -> (rule expected, severity, run kwargs)
CASES = {
    "nan_loss": ("nan_loss", "critical", {}),
    "loss_increase": ("loss_increase", "warning", {}),
    "loss_plateau": ("loss_plateau", "warning", {"steps": 4000}),
    "throughput_low": ("throughput_low", "warning", {"monitor": {"min_toks_per_s": 2000}}),
    "throughput_drop": ("throughput_drop", "warning", {}),
    "memory_high": ("memory_high", "warning", {"monitor": {"max_gpu_mem_gb": 70}}),
    "gate_collapse": ("gate_collapse", "warning", {}),
    "gate_collapse_severe": ("gate_collapse", "critical", {}),
    "fallbacks_rising": ("fallbacks_rising", "warning", {}),
    "data_stall": ("data_stall", "warning", {}),
    "lr_mismatch": ("lr_mismatch", "warning", {}),
    "grad_spike": ("grad_spike", "warning", {}),
    "val_rising": ("val_rising", "warning", {}),
    "val_suspicious": ("val_suspicious", "warning", {}),
    "disk_low": ("disk_low", "warning", {}),
    "disk_low_severe": ("disk_low", "critical", {}),
}


def judge(path, now=NOW, rules=None):
    h = load_run(path)
    return evaluate(h, now, rules if rules is not None else build_rules(h.config))


def test_cases_cover_every_injectable_alert():
    assert set(CASES) == set(KNOWN_ALERTS)


@pytest.mark.parametrize("alert", sorted(CASES))
def test_rule_fires_alone(tmp_path, alert):
    rule, severity, kw = CASES[alert]
    kw = {"steps": 1000, "step_time_s": 2.0, **kw}
    make_v1_run(tmp_path / alert, alerts=[alert], now=NOW, **kw)
    v = judge(tmp_path / alert)
    assert [(a.rule, a.severity) for a in v.alerts] == [(rule, severity)], [a.message for a in v.alerts]
    assert v.health == severity and v.state == "running"
    assert v.alerts[0].since_step is not None and v.alerts[0].message


@pytest.mark.parametrize("steps", [300, 1000, 4000])
def test_healthy_run_is_silent(tmp_path, steps):
    make_v1_run(tmp_path / "ok", steps=steps, step_time_s=2.0, now=NOW, monitor={"min_toks_per_s": 1000.0})
    v = judge(tmp_path / "ok")
    assert (v.state, v.health, v.alerts) == ("running", "ok", [])
    assert v.eta_s is not None and v.eta_s > 0 and v.step == steps


def test_eta_after_a_resume_uses_this_attempts_speed(tmp_path):
    """Halted at step 100 for an hour, resumed: the ETA comes from the steps since the new boot (10 steps per
    4 s), not from a window that spans the pause."""
    w = make_v1_run(tmp_path / "r", steps=100, total_steps=1000, log_every=10, step_time_s=0.4, now=NOW - 3700)
    w.ts += 3600
    w.boot()
    w.progress(5)
    v = evaluate(load_run(w.path), w.ts + 1, build_rules(w.config))
    assert v.state == "running" and v.step == 150
    # the pace of the trainer's own step times (dt_step_s: 0.4 s a step, within the fixture's 2% jitter); a window
    # spanning the pause would say ten times as long
    assert v.eta_s == pytest.approx((1000 - 150) * 0.4, rel=0.03)


def test_a_resume_with_another_schedule_is_starting_then_running_never_stalled(tmp_path):
    """Finished at 600 of 600 steps, resumed an hour later with train.steps=660: until its first step the
    new attempt is starting (the hour since the last progress record is not a stall), and the lr of the
    steps logged under the old schedule is not judged against the new one. Seen from a fresh clone:
    `nsa status` said stalled, CRITICAL, and lr_mismatch, seconds after `nsa launch --resume`."""
    w = make_v1_run(tmp_path / "r", steps=600, state="finished", now=NOW - 3600)
    (w.path / "exit_status").unlink()  # the launcher clears it when it starts the new attempt
    w.ts += 3600
    w.total_steps = 660
    w.config["train"]["steps"] = 660
    w.boot()
    w.phase("config")
    w.phase("config", done=True, total_steps=660)  # this attempt's total, before run.json is rewritten
    for now in (w.ts + 5, w.ts + 60):
        v = judge(w.path, now=now)
        assert (v.state, v.health, v.alerts) == ("starting", "ok", []), [a.message for a in v.alerts]
        assert v.eta_s is None  # not the old attempt's "0s": no speed of its own yet
        assert (v.step, v.total_steps) == (600, 660)  # not "600/600, 100%"
    # a resumed attempt that never steps is still caught, by the start timeout
    late = judge(w.path, now=w.ts + 3 * 3600)
    assert [a.rule for a in late.alerts] == ["stuck_at_start"] and late.state == "stalled"
    w.phase("data")
    run_json = json.loads((w.path / "run.json").read_text())
    run_json.update(config=w.config, total_steps=660)  # the resumed trainer rewrites run.json once its model is built
    (w.path / "run.json").write_text(json.dumps(run_json))
    w.phase("model")
    w.phase("train")
    w.progress(3)
    v = judge(w.path, now=w.ts + 1)
    assert (v.state, v.health, v.alerts, v.step) == ("running", "ok", [], 630), [a.message for a in v.alerts]
    # the old steps still count for lr_mismatch within an attempt that logs a wrong lr
    w.progress(5, lr=1.0)
    v = judge(w.path, now=w.ts + 1)
    assert [a.rule for a in v.alerts] == ["lr_mismatch"] and v.alerts[0].since_step == 640


def test_persistence_short_condition_does_not_fire(tmp_path):
    """gate_collapse needs 100 steps: 4 bad points 10 steps apart (30 steps) do not fire, 12 do."""
    w = make_v1_run(tmp_path / "r", steps=500, now=NOW)
    w.progress(4, gate_entropy_mean=0.3)
    v = evaluate(load_run(tmp_path / "r"), w.ts + 1)
    assert v.alerts == []
    w.progress(8, gate_entropy_mean=0.3)
    v = evaluate(load_run(tmp_path / "r"), w.ts + 1)
    assert [a.rule for a in v.alerts] == ["gate_collapse"] and v.alerts[0].since_step == 510


def test_one_collapsed_layer_fires_gate_collapse_while_the_mean_stays_healthy(tmp_path):
    """gate_entropy_min, the least per-layer mean, was logged "so a single collapsing layer shows" and read by no
    rule: a layer at 0.02 nats beside a mean of 0.9 was `ok`."""
    w = make_v1_run(tmp_path / "r", steps=500, now=NOW)
    w.progress(12, gate_entropy_mean=0.9, gate_collapse_frac=0.0, gate_entropy_min=0.2)  # low, above 0.15: fine
    assert evaluate(load_run(tmp_path / "r"), w.ts + 1).alerts == []
    w.progress(12, gate_entropy_mean=0.9, gate_collapse_frac=0.0, gate_entropy_min=0.02)
    v = evaluate(load_run(tmp_path / "r"), w.ts + 1)
    assert [(a.rule, a.severity) for a in v.alerts] == [("gate_collapse", "warning")]
    assert "one layer's entropy 0.020 (min 0.15) while the mean stays up" in v.alerts[0].message


def test_persistence_in_seconds(tmp_path):
    """throughput_low holds `for: 300s`: 200 s of slow steps do not fire, 400 s do."""
    w = make_v1_run(tmp_path / "r", steps=200, now=NOW, monitor={"min_toks_per_s": 3000})
    w.step_time_s = 2.0
    w.progress(10, toks_per_s=100.0)  # 10 records, 20 s each
    assert evaluate(load_run(tmp_path / "r"), w.ts + 1).alerts == []
    w.progress(10, toks_per_s=100.0)
    # below the floor for 400 s; and a fall to 2% of the rate before it, which throughput_drop says as well
    assert {a.rule for a in evaluate(load_run(tmp_path / "r"), w.ts + 1).alerts} == {
        "throughput_low",
        "throughput_drop",
    }


def test_stuck_at_start_names_last_phase(tmp_path):
    make_v1_run(tmp_path / "s", state="stuck", now=NOW)
    v = judge(tmp_path / "s")
    assert v.state == "stalled" and v.health == "critical"
    assert [a.rule for a in v.alerts] == ["stuck_at_start"]
    assert "last phase reached: data" in v.alerts[0].message
    # the same run 30 s after boot is merely starting
    make_v1_run(tmp_path / "young", state="starting", now=NOW)
    v = judge(tmp_path / "young")
    assert (v.state, v.health, v.last_phase) == ("starting", "ok", "data")


def test_stale_heartbeat_and_adaptive_limit(tmp_path):
    make_v1_run(tmp_path / "s", state="stalled", now=NOW)
    v = judge(tmp_path / "s")
    assert (v.state, v.health, [a.rule for a in v.alerts]) == ("stalled", "critical", ["heartbeat_stale"])
    # progress every 4 s: 3 minutes of silence is stale (10x interval, floor 120 s) even though stale_s is 600
    make_v1_run(tmp_path / "r", steps=300, now=NOW)
    assert judge(tmp_path / "r", now=NOW + 100).alerts == []
    assert [a.rule for a in judge(tmp_path / "r", now=NOW + 180).alerts] == ["heartbeat_stale"]
    assert "(usual interval 4s, limit 2m00s)" in judge(tmp_path / "r", now=NOW + 180).alerts[0].message
    # progress every 0.7 s: "usual interval 0s" read as nonsense
    make_v1_run(tmp_path / "fast", steps=300, step_time_s=0.07, now=NOW)
    assert "(usual interval 0.7s, limit 2m00s)" in judge(tmp_path / "fast", now=NOW + 180).alerts[0].message
    # one progress record: no interval to tell ("usual interval ?" read as the tool's fault)
    make_v1_run(tmp_path / "one", steps=10, now=NOW)
    (alert,) = judge(tmp_path / "one", now=NOW + 700).alerts
    assert alert.rule == "heartbeat_stale" and alert.message.startswith("no progress for 11m4"), alert.message
    assert "(limit 10m00s)" in alert.message and "?" not in alert.message


def test_a_step_between_far_apart_progress_records_is_not_stale(tmp_path):
    """Progress every 50 steps of 20 s is 1000 s apart, past the rule's 600 s cap: a run that trained read `stalled,
    no progress for 10m` between every two records. Its ranks' liveness records (after a step, every 30 s) count."""
    w = make_v1_run(tmp_path / "r", state="starting", log_every=50, step_time_s=20.0, total_steps=1000, now=NOW)
    start_training(w, 1000, 0)
    w.progress(3)
    for _ in range(23):  # 690 s of steps after the last progress record
        w.step += 1
        w.liveness(advance_s=30.0)
    v = judge(w.path, now=w.ts + 10)
    assert (v.state, v.alerts) == ("running", [])
    # steps that stop are still caught: the limit runs from the last one
    (alert,) = judge(w.path, now=w.ts + 610).alerts
    assert alert.rule == "heartbeat_stale" and alert.message.startswith("no progress for 10m10s"), alert.message


def test_crashed_run_carries_console_tail(tmp_path):
    make_v1_run(tmp_path / "c", state="crashed", now=NOW)
    v = judge(tmp_path / "c")
    assert (v.state, v.health) == ("crashed", "critical")
    assert [a.rule for a in v.alerts] == ["process_exited"]
    msg = v.alerts[0].message
    assert "exit status 1" in msg and "torch.OutOfMemoryError: CUDA out of memory" in msg
    assert v.exit_status == 1


def test_a_run_stopped_by_a_full_disk_says_so_though_its_end_record_is_cut(tmp_path, tmux_socket):
    """A full disk cut the end record mid-line and kept the launcher from writing exit_status: status said "the tmux
    session is gone without an end record" (by hand: a SIGKILL, look in dmesg), though the error record and the
    summary.json written before the end record said the disk was full."""
    w = make_v1_run(tmp_path / "full", state="exited", now=NOW, name="full")
    w.error("cannot write step_00000010.pt in /runs/full/checkpoints: no space left on device")
    summary = {"v": 1, "end_reason": "error", "steps_completed": w.step, "ended_at": w.ts}
    (w.path / "summary.json").write_text(json.dumps(summary))
    with (w.path / "heartbeat_rank0.jsonl").open("a") as f:
        f.write('{"v":1,"ts":179655')  # the end record, cut
    v = judge(w.path)
    assert (v.state, [a.rule for a in v.alerts]) == ("crashed", ["process_exited"])
    msg = v.alerts[0].message
    assert msg.startswith(
        "the trainer ended with reason 'error' (said by its summary.json; its end record is cut or missing) (error: "
        "cannot write step_00000010.pt in /runs/full/checkpoints: no space left on device)"
    ), msg
    assert "tmux session is gone" not in msg and "SIGKILL" not in msg


def test_vanished_process_is_crashed(tmp_path, tmux_socket):
    import subprocess

    make_v1_run(tmp_path / "gone", state="exited", now=NOW, name="gone")
    v = judge(tmp_path / "gone")
    assert (v.state, [a.rule for a in v.alerts]) == ("crashed", ["process_exited"])
    assert "tmux session is gone" in v.alerts[0].message
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-gone", "sleep 30"], check=True)
    v = judge(tmp_path / "gone")
    assert (v.state, v.alerts) == ("running", [])


@pytest.mark.parametrize("state", ["finished", "halted"])
def test_finished_and_halted_are_not_stale(tmp_path, state):
    make_v1_run(tmp_path / state, steps=400, state=state, now=NOW)
    v = judge(tmp_path / state, now=NOW + 86400)  # a day later
    assert (v.state, v.health, v.alerts) == (state, "ok", [])
    assert v.end_reason == ("completed" if state == "finished" else "halt")
    assert v.eta_s == (0.0 if state == "finished" else None)


def test_nan_run_stops_crashed(tmp_path):
    make_v1_run(tmp_path / "n", state="nan", now=NOW)
    v = judge(tmp_path / "n")
    assert v.state == "crashed" and {a.rule for a in v.alerts} == {"nan_loss", "process_exited"}
    assert v.to_dict()["loss"] is None  # JSON has no NaN


def test_vibe_halted_and_stalled(tmp_path):
    make_vibe_run(tmp_path / "h", state="halted", now=NOW)
    v = judge(tmp_path / "h")
    assert (v.state, v.alerts) == ("halted", [])
    make_vibe_run(tmp_path / "s", state="stalled", now=NOW)
    v = judge(tmp_path / "s")
    assert v.state == "stalled" and [a.rule for a in v.alerts] == ["heartbeat_stale"]
    assert "watchdog reported a stall" in v.alerts[0].message


def test_vibe_rules_fire(tmp_path):
    make_vibe_run(tmp_path / "g", steps=2000, alerts=["gate_collapse_severe", "fallbacks_rising"], now=NOW)
    v = judge(tmp_path / "g")
    assert {(a.rule, a.severity) for a in v.alerts} == {("gate_collapse", "critical"), ("fallbacks_rising", "warning")}


# ---------------------------------------------------------------- overrides
def test_monitor_section_and_rules_file_override(tmp_path):
    make_v1_run(tmp_path / "r", steps=1000, alerts=["gate_collapse"], now=NOW, monitor={"gate_entropy_min": 0.3})
    assert judge(tmp_path / "r").alerts == []  # 0.42 is fine under the run's own threshold
    f = tmp_path / "rules.yaml"
    f.write_text("gate_collapse: {entropy_min: 0.45, severity: critical, for: 50}\n")
    h = load_run(tmp_path / "r")
    v = evaluate(h, NOW, build_rules(h.config, load_rules_file(f)))
    assert [(a.rule, a.severity) for a in v.alerts] == [("gate_collapse", "critical")]
    f.write_text("rules:\n  gate_collapse: {enabled: false}\n  val_high: {metric: val_loss, above: 1.0, for: 0}\n")
    v = evaluate(h, NOW, build_rules(h.config, load_rules_file(f)))
    assert [a.rule for a in v.alerts] == ["val_high"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nan_loss: [1, 2", "not valid YAML"),
        ("- just a list\n", "expected a mapping at the top"),
        ("no_such_rule: {for: 3}\n", "unknown rule 'no_such_rule'"),
        ("gate_collapse: {entropy_minn: 0.4}\n", "unknown setting 'entropy_minn'"),
        ("gate_collapse: {severity: fatal}\n", "must be one of warning, critical"),
        ("gate_collapse: {for: soon}\n", "`for` must be steps"),
        ("throughput_low: {min_mfu: 5}\n", "must be a fraction (0.005 = 0.5%), or null; got 5"),
        ("gate_collapse: {for: 1.5}\n", "`for` in steps must be a whole number, got 1.5 (or give seconds: '1.5s')"),
        ("gate_collapse: {for: 2.5 steps}\n", "`for` in steps must be a whole number, got 2.5"),
        ("gate_collapse: {for: .nan}\n", "`for` must be a finite number of steps >= 0"),
        ("gate_collapse: {entropy_min: high}\n", "expected a number"),
        ("mine: {metric: loss}\n", "exactly one of `above`/`below`"),
    ],
)
def test_bad_rules_file(tmp_path, text, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(RulesError, match="rules file") as e:
        load_rules_file(f)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_every_rule_has_a_check_and_docs():
    from pathlib import Path

    from nsa_tui.health.checks import CHECKS

    assert set(CHECKS) == set(RULE_NAMES)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "health.md").read_text()
    for name in RULE_NAMES:
        assert f"`{name}`" in doc


def test_evaluate_defaults_to_now(tmp_path):
    make_v1_run(tmp_path / "r", steps=100)
    v = evaluate(load_run(tmp_path / "r"))
    assert v.health == "ok" and 2 <= v.last_heartbeat_age_s < 60  # the fixture's last record is 2 s old


def test_generic_log_goes_stale_unless_finished(tmp_path):
    from fixtures.runs import make_generic_run

    make_generic_run(tmp_path / "live", now=NOW)
    assert (judge(tmp_path / "live").state, judge(tmp_path / "live").alerts) == ("running", [])
    v = judge(tmp_path / "live", now=NOW + 3600)
    assert v.state == "stalled" and [a.rule for a in v.alerts] == ["heartbeat_stale"]
    make_generic_run(tmp_path / "done", now=NOW, finished=True)
    v = judge(tmp_path / "done", now=NOW + 3600)
    assert (v.state, v.health, v.eta_s) == ("finished", "ok", 0.0)


def test_dead_pid_of_a_run_on_this_host_is_crashed(tmp_path):
    """Started without `nsa launch` (no tmux record): the ranks' pids tell whether it lives."""
    import json
    import os
    import socket
    import subprocess
    import sys

    make_v1_run(tmp_path / "r", steps=100, now=NOW, run_info={"host": socket.gethostname()})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for pid, state in ((dead.pid, "crashed"), (os.getpid(), "running")):
        hb = tmp_path / "r" / "heartbeat_rank0.jsonl"
        lines = hb.read_text().splitlines()
        rec = json.loads(lines[-1])
        rec["pid"] = pid
        hb.write_text("\n".join([*lines, json.dumps(rec)]) + "\n")
        stamp_heartbeats(tmp_path / "r")
        v = judge(tmp_path / "r")
        assert v.state == state, v.alerts


def test_launched_run_that_died_before_any_record(tmp_path, tmux_socket):
    """`nsa launch` wrote launch.json, the trainer died on import: exit status + console tail, not 'no telemetry'."""
    import json

    d = tmp_path / "early"
    d.mkdir()
    (d / "launch.json").write_text(json.dumps({"name": "early", "tmux_session": "nsa-early", "ts": NOW - 60}))
    (d / "console.log").write_text("Traceback (most recent call last):\nModuleNotFoundError: No module named 'foo'\n")
    (d / "exit_status").write_text("1\n")
    v = judge(d)
    assert (v.format, v.state, [a.rule for a in v.alerts]) == ("nsa-v1", "crashed", ["process_exited"])
    assert "exit status 1" in v.alerts[0].message and "No module named 'foo'" in v.alerts[0].message
    # still starting (session alive, nothing written yet), then stuck after start_timeout_s
    (d / "exit_status").unlink()
    (d / "console.log").write_text("")
    import subprocess

    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-early", "sleep 30"], check=True)
    assert (judge(d).state, judge(d).alerts) == ("starting", [])
    v = judge(d, now=NOW + 3600)
    assert v.state == "stalled" and [a.rule for a in v.alerts] == ["stuck_at_start"]


def test_val_rising_needs_two_evals_above_the_best(tmp_path):
    w = make_v1_run(tmp_path / "r", steps=1000, now=NOW)
    best = min(v for v in load_run(tmp_path / "r").val_loss if v is not None)
    w.progress(10)
    w.eval(best * 1.10)  # one noisy eval: not yet
    first = w.step
    assert [a.rule for a in judge(tmp_path / "r", now=w.ts).alerts] == []
    w.progress(10)
    w.eval(best * 1.08)
    [alert] = judge(tmp_path / "r", now=w.ts).alerts
    assert alert.rule == "val_rising" and alert.since_step == first and "8% above its best" in alert.message


def test_a_best_val_loss_of_zero_does_not_break_the_verdict(tmp_path):
    """A generic trainer's metric may reach 0: the rule's message divided by it and the verdict raised."""
    w = make_v1_run(tmp_path / "r", steps=1000, now=NOW)
    for v in (0.0, 0.5, 0.6):
        w.progress(10)
        w.eval(v)
    alerts = [a for a in judge(tmp_path / "r", now=w.ts).alerts if a.rule == "val_rising"]
    assert len(alerts) == 1 and "is 0.6 above its best 0.0000" in alerts[0].message, alerts


def test_val_suspicious_on_a_near_zero_val_loss(tmp_path):
    """The reported 'val perplexity 1.036' of a run whose generations were ':):):)': a warning, not a success."""
    w = make_v1_run(tmp_path / "r", steps=1000, now=NOW)
    w.progress(10)
    w.eval(0.0354)
    [alert] = judge(tmp_path / "r", now=w.ts).alerts
    assert alert.rule == "val_suspicious" and "perplexity 1.036" in alert.message


def test_val_suspicious_is_silent_on_a_loss_that_fell_before_the_first_eval(tmp_path):
    """Seen on a 150-step run: val 0.3771 at step 25 with a training loss of 0.3653 there was called '24% of
    the training loss 1.5924', the median of steps 5-25 of a curve still falling fast."""
    w = make_v1_run(tmp_path / "r", steps=0, total_steps=150, log_every=5, now=NOW)
    for loss in (5.1, 3.9, 1.5924, 0.81, 0.3653):
        w.progress(1, loss=loss)
    w.eval(0.3771)
    assert [a.rule for a in judge(tmp_path / "r", now=w.ts).alerts if a.rule == "val_suspicious"] == []


def test_val_suspicious_fires_on_val_far_below_a_steady_training_loss(tmp_path):
    """The leak the rule exists for: held-out text far easier than training text, the training loss flat."""
    w = make_v1_run(tmp_path / "r", steps=0, total_steps=1000, log_every=10, now=NOW)
    for i in range(20):
        w.progress(1, loss=2.0 + 0.05 * (-1) ** i)
        if i % 5 == 4:
            w.eval(0.6)
    [alert] = [a for a in judge(tmp_path / "r", now=w.ts).alerts if a.rule == "val_suspicious"]
    assert alert.since_step == 50, alert
    assert "val loss 0.6000 at step 200 is 31% of the training loss around step 200 (1.95, steps 160-200)" in (
        alert.message
    ), alert.message


@pytest.mark.parametrize("steps", [0, 60])
@pytest.mark.parametrize("state", V1_STATES)
def test_every_rule_armed_judges_every_state(tmp_path, tmux_socket, state, steps):
    """Found on a 125M launch whose data could not be reached: monitor.min_toks_per_s set and no progress
    record yet made throughput_low raise (IndexError) and `nsa status` print a traceback."""
    make_v1_run(tmp_path / "r", steps=steps, state=state, now=NOW, monitor=ARMED_MONITOR)
    h = load_run(tmp_path / "r")
    v = evaluate(h, NOW, build_rules(h.config, ARMED_USER))
    json.dumps(v.to_dict(), allow_nan=False)
    if h.steps:  # with progress, every point crosses the armed thresholds (these two need no persistence)
        assert {"memory_high", "rss_high"} <= {a.rule for a in v.alerts}, v.alerts


def test_every_rule_armed_before_the_first_step(tmp_path):
    """The record sequence of that launch: boot, phases up to data, an error, the end."""
    d = tmp_path / "r"
    make_v1_run(d, steps=0, state="starting", now=NOW, monitor=ARMED_MONITOR)
    with open(d / "heartbeat_rank0.jsonl", "a", encoding="utf-8") as fh:
        for rec in (
            {"kind": "error", "message": "cannot open hf dataset x: ConnectionError"},
            {"kind": "end", "reason": "error", "exit_status": 2},
        ):
            fh.write(json.dumps({"v": 1, "ts": NOW - 1, "rank": 0, "step": 0, "pid": 1, **rec}) + "\n")
    (d / "exit_status").write_text("1\n")
    h = load_run(d)
    v = evaluate(h, NOW, build_rules(h.config, ARMED_USER))
    assert v.state == "crashed" and v.health == "critical", v.to_dict()
    assert "cannot open hf dataset" in json.dumps(v.to_dict())


# what torchrun prints when a worker is killed with signal 9 (`kill -9` of the trainer here, 2026-12-03)
TORCHRUN_SIGKILL = [
    "Root Cause (first observed failure):",
    "[0]:",
    "  exitcode  : -9 (pid: 26265)",
    "  error_file: <N/A>",
    "  traceback : Signal 9 (SIGKILL) received by PID 26265",
    "[nsa 2026-12-03 17:29:45] torchrun exited with status 1",
]


@pytest.mark.parametrize("how", ["torchrun", "shell"])
def test_a_sigkilled_trainer_points_at_the_oom_killer(tmp_path, how):
    """A SIGKILL leaves no end record and no Python traceback: the verdict says what usually sends it."""
    w = make_v1_run(tmp_path / "k", state="running", steps=40, now=NOW)
    (w.path / "console.log").write_text("\n".join(TORCHRUN_SIGKILL if how == "torchrun" else ["step 40"]) + "\n")
    (w.path / "exit_status").write_text("1\n" if how == "torchrun" else "137\n")
    v = judge(tmp_path / "k")
    assert (v.state, [a.rule for a in v.alerts]) == ("crashed", ["process_exited"])
    assert "killed by SIGKILL" in v.alerts[0].message and "out-of-memory killer" in v.alerts[0].message


def test_an_ordinary_crash_does_not_mention_sigkill(tmp_path):
    make_v1_run(tmp_path / "c", state="crashed", now=NOW)
    assert "SIGKILL" not in judge(tmp_path / "c").alerts[0].message


@pytest.mark.parametrize("state", ["running", "finished"])
def test_a_run_directory_gone_is_unknown_and_critical(tmp_path, state):
    """What a live reader sets when the directory it follows went away: neither alive nor stale can be told
    (a moved run may still be writing), so the state is unknown and only run_dir_gone fires."""
    make_v1_run(tmp_path / "r", steps=1000, state=state, now=NOW)
    h = load_run(tmp_path / "r")
    h.dir_missing = True
    v = evaluate(h, NOW + 3600, build_rules(h.config))  # an hour later: heartbeat_stale would fire otherwise
    assert (v.state, v.health, [a.rule for a in v.alerts]) == ("unknown", "critical", ["run_dir_gone"])
    assert v.step == 1000 and "not there any more" in v.alerts[0].message


def test_a_finished_runs_durations_end_with_it(tmp_path):
    """`for: 300s` counts the time a condition held while the run was alive: a finished run whose last 40 s
    were slow does not grow a 5-minute throughput drop while it sits on disk; one slow for its last third
    still has it, and the same short stretch in a live run fires once it has lasted."""
    w = make_v1_run(tmp_path / "short", steps=1000, step_time_s=2.0, now=NOW)
    w.progress(2, toks_per_s=100.0)  # 20 s apart: slow from the first of them
    live = judge(tmp_path / "short", now=w.ts + 400)
    assert "throughput_drop" in {a.rule for a in live.alerts}
    w.end()
    done = judge(tmp_path / "short", now=w.ts + 3600)
    assert (done.state, done.health, done.alerts) == ("finished", "ok", [])

    make_v1_run(tmp_path / "long", steps=1000, step_time_s=2.0, now=NOW, state="finished", alerts=["throughput_drop"])
    v = judge(tmp_path / "long", now=NOW + 3600)
    assert v.state == "finished" and [a.rule for a in v.alerts] == ["throughput_drop"]

    # its directory deleted while watched (state unknown): no time passes for the data not seen, so the short
    # slow stretch did not become a drop there either
    h = load_run(tmp_path / "short")
    h.dir_missing = True
    gone = evaluate(h, w.ts + 3600, build_rules(h.config))
    assert (gone.state, [a.rule for a in gone.alerts]) == ("unknown", ["run_dir_gone"])


def test_a_pid_reused_by_a_later_process_is_not_the_run(tmp_path):
    """Started without `nsa launch`, killed; its pid then held by another process (pids are reused, soon after a
    reboot): status said `running OK` where `nsa dump` saw another process. A process started after the record
    that named its pid is not the run's."""
    import json
    import socket
    import subprocess
    import time

    def judged_with(pid: int, records_ts: float) -> str:
        make_v1_run(tmp_path / str(pid), steps=100, now=records_ts, age_s=0.0, run_info={"host": socket.gethostname()})
        hb = tmp_path / str(pid) / "heartbeat_rank0.jsonl"
        lines = hb.read_text().splitlines()
        hb.write_text("\n".join(json.dumps(dict(json.loads(line), pid=pid)) for line in lines) + "\n")
        return judge(tmp_path / str(pid), now=records_ts + 1).state

    written = time.time() - 60  # the run's records, then a process that got its pid
    later = subprocess.Popen(["sleep", "60"])
    try:
        assert judged_with(later.pid, written) == "crashed"
        time.sleep(0.1)
        assert judged_with(later.pid, time.time() + 3) == "running"  # records it could have written: alive
    finally:
        later.kill()
        later.wait()


def test_dump_tells_a_later_process_with_the_trainers_command_line_from_the_trainer(tmp_path):
    """The command line names nsa_train and the run directory, as the trainer's did: a process that started after
    the record naming its pid is still not the one that wrote it. A trainer started without --run-dir (its
    default directory) is told by its start time alone."""
    import subprocess
    import sys
    import time

    from nsa_tui.launch.dump import check_process

    run = tmp_path / "r"
    run.mkdir()
    written = time.time() - 60
    look_alike = [sys.executable, "-c", "import time; time.sleep(60)", "nsa_train.train", "--run-dir", str(run)]
    default_dir = [sys.executable, "-c", "import time; time.sleep(60)", "nsa_train.train"]
    procs = [subprocess.Popen(look_alike), subprocess.Popen(default_dir)]
    try:
        time.sleep(0.2)
        for p in procs:
            assert "pid reused" in (check_process(0, p.pid, run, written).problem or "")
            assert check_process(0, p.pid, run, time.time() + 3).problem is None
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_launch_record_without_its_session_name_is_looked_up_as_nsa_launch_names_it():
    """An older launch.json without `tmux_session`: status looked for `nsa-a.b`, the session nsa launch had named
    `nsa-a%2Eb` (halt and attach looked for that one), and called the live run crashed."""
    from nsa_tui.launch.tmux import session_name
    from nsa_tui.runs.load import tmux_session_name

    assert tmux_session_name({"name": "a.b"}, "a.b") == session_name("a.b") == "nsa-a%2Eb"
    assert tmux_session_name({"tmux_session": "nsa-x"}, "a.b") == "nsa-x"


def test_an_nsa_run_that_logs_no_gate_statistics_is_said(tmp_path):
    """The seed reports' gate-collapse check "never fired": their trainer logged no gate statistics, and a run
    whose config says NSA but whose records hold none read "health OK"."""
    import csv

    w = make_v1_run(tmp_path / "r", steps=1000, now=NOW)
    gate_keys = {"gate_entropy_mean", "gate_entropy_min", "gate_max_mean", "gate_collapse_frac", "gate_branch_shares"}
    hb = tmp_path / "r" / "heartbeat_rank0.jsonl"
    recs = [json.loads(line) for line in hb.read_text().splitlines()]
    hb.write_text("".join(json.dumps({k: v for k, v in r.items() if k not in gate_keys}) + "\n" for r in recs))
    table = tmp_path / "r" / "training.csv"
    rows = list(csv.DictReader(table.open()))
    with table.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows({k: ("" if k.startswith("gate_") else v) for k, v in r.items()} for r in rows)
    v = judge(tmp_path / "r", now=w.ts)
    [alert] = [a for a in v.alerts if a.rule == "gate_collapse"]
    assert alert.severity == "warning" and "no gate statistics" in alert.message, alert
    assert load_run(tmp_path / "r").config["model"]["attention"] == "nsa"


def test_a_resume_whose_session_is_not_up_yet_is_starting_not_crashed(tmp_path, tmux_socket):
    """`nsa launch --resume` writes launch.json just before its tmux session starts: the dashboard, re-asking tmux
    a second later, read the halted run as `crashed, critical` (process_exited) for a moment."""
    import json

    w = make_v1_run(tmp_path / "r", steps=100, state="halted", now=NOW - 60)
    (w.path / "exit_status").unlink()  # as the launcher does
    launch = {"name": "r", "tmux_session": "nsa-r", "run_dir": str(w.path), "ts": NOW - 2}
    (w.path / "launch.json").write_text(json.dumps(launch))
    h = load_run(w.path)
    assert h.process_alive is False and h.unbooted_launch
    assert evaluate(h, NOW, build_rules(h.config)).state == "starting"
    later = evaluate(h, NOW + 60, build_rules(h.config))  # no session long after its launch: it did not start
    assert later.state == "crashed" and [a.rule for a in later.alerts] == ["process_exited"]
