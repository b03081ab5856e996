"""A rank whose process is stopped (SIGSTOP, or ctrl-z in a shell): the whole DDP run waits on it, and `nsa status`
said `stalled critical heartbeat_stale ... no progress for 2m` minutes later, leaving the user to guess why; only
`nsa dump` named the stopped rank. The rule rank_stopped names it, its pid and the `kill -CONT` that resumes it; a
rank a debugger holds (a tracing stop, which SIGCONT does not end), its tracer, which must let it go."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from fixtures.runs import make_v1_run
from fixtures.torchrun import end_stand_ins, launched_here, stop, stopped_said, torchrun_with_rank
from fixtures.tracer import traced
from typer.testing import CliRunner

from nsa_tui.cli import app
from nsa_tui.health import build_rules, evaluate
from nsa_tui.health.defaults import DEFAULT_RULES
from nsa_tui.runs import load_run
from nsa_tui.stopped_ranks import Stop, StoppedRank, resumed_over_ssh, stopped_ranks_text

NOW = 1_800_000_000.0
STOPPED = stopped_said(1, 4321)


def _two_ranks(tmp_path: Path):
    w = make_v1_run(tmp_path / "ddp", steps=300, n_ranks=2, now=NOW)
    w.n_ranks = 1  # rank 0 logs on: rank 1 writes a liveness record every 30 s only
    w.progress(3)
    w.n_ranks = 2
    h = load_run(w.path, check_processes=False)
    h.stopped_ranks = [StoppedRank(1, 4321)]  # what /proc said on the ranks' machine (runs/load.py note_local_ranks)
    return w, h


def test_a_stopped_rank_is_pending_then_critical_after_its_for_window(tmp_path):
    _, h = _two_ranks(tmp_path)
    seen = h.attempt_ranks[1].last_ts
    rules = build_rules(h.config)
    assert rules["rank_stopped"].for_s == 60.0 and DEFAULT_RULES["rank_stopped"]["severity"] == "critical"

    soon = evaluate(h, seen + 20, rules)  # a passing ctrl-z: said, but changes no health
    assert soon.health == "ok" and soon.state == "running" and soon.alerts == []
    [pending] = soon.pending
    assert (pending.rule, pending.message) == ("rank_stopped", STOPPED)
    assert pending.held_s == pytest.approx(20.0) and pending.for_s == 60.0

    held = evaluate(h, seen + 61, rules)
    assert [(a.rule, a.severity, a.message) for a in held.alerts] == [("rank_stopped", "critical", STOPPED)]
    # the run's step, not rank 1's older one: it writes a record every 30 s, rank 0 one every log_every steps
    assert held.alerts[0].since_step == h.latest_step == 330 and h.attempt_ranks[1].last_step == 300
    assert held.state == "stalled" and held.exit_code == 2 and held.pending == []

    h.stopped_ranks = []  # continued
    assert evaluate(h, seen + 61, rules).alerts == []


def test_the_stall_alerts_point_at_the_stopped_rank_and_come_after_it(tmp_path):
    w, h = _two_ranks(tmp_path)
    w.stall(seconds=300)  # rank 0's watchdog: its step waits on rank 1 in a collective
    h = load_run(w.path, check_processes=False)
    h.stopped_ranks = [StoppedRank(1, 4321)]
    v = evaluate(h, w.ts + 700, build_rules(h.config))
    assert [a.rule for a in v.alerts] == ["rank_stopped", "heartbeat_stale"]  # the cause first
    assert v.alerts[1].message.endswith(f" ago: {STOPPED}"), v.alerts[1].message  # after "last seen: rank 1 ..."
    assert "nsa dump" not in v.alerts[1].message  # a stopped rank answers no dump

    rules = build_rules(h.config)
    rules["heartbeat_stale"].enabled = False  # the watchdog's alone
    [stopped, stall] = evaluate(h, w.ts + 700, rules).alerts
    assert stopped.rule == "rank_stopped" and stall.rule == "watchdog_stall"
    assert stall.message.endswith(f"no step since; stack dumps: stackdump_rank0_1.txt: {STOPPED}"), stall.message


def test_an_ended_run_has_no_stopped_rank(tmp_path):
    w = make_v1_run(tmp_path / "done", steps=100, state="finished", now=NOW)
    h = load_run(w.path, check_processes=False)
    h.stopped_ranks = [StoppedRank(0, 4321)]
    assert [a.rule for a in evaluate(h, NOW + 600).alerts if a.rule == "rank_stopped"] == []


def _status(run_dir: Path, *extra: str) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["status", "--json", *extra, str(run_dir)])
    return res.exit_code, json.loads(res.stdout)


def test_status_names_a_stopped_local_rank_and_clears_when_it_continues(tmp_path):
    """Real processes: a stand-in torchrun and its rank (fixtures/torchrun.py), the rank stopped with SIGSTOP."""
    run_dir = tmp_path / "paused"
    torchrun, rank = torchrun_with_rank(run_dir)
    rules = tmp_path / "rules.yaml"
    rules.write_text("rank_stopped: {for: 1s}\n")  # the default 60 s, shortened for the test
    said = stopped_said(0, rank)
    try:
        launched_here(run_dir, rank)
        code, v = _status(run_dir)
        assert code == 0 and v["alerts"] == [] and v["pending"] == [], v

        os.kill(rank, signal.SIGSTOP)
        code, v = _status(run_dir)  # inside the default window: pending, health untouched
        assert code == 0 and [(p["rule"], p["message"]) for p in v["pending"]] == [("rank_stopped", said)], v
        time.sleep(1.2)
        code, v = _status(run_dir, "--rules", str(rules))
        assert code == 2 and v["state"] == "stalled" and v["health"] == "critical", v
        assert [(a["rule"], a["severity"], a["message"]) for a in v["alerts"]] == [("rank_stopped", "critical", said)]
        text = CliRunner().invoke(app, ["status", "--rules", str(rules), str(run_dir)])
        assert text.exit_code == 2 and f"critical rank_stopped (since step 100): {said}" in text.stdout, text.stdout

        os.kill(rank, signal.SIGCONT)
        code, v = _status(run_dir, "--rules", str(rules))
        assert code == 0 and v["state"] == "running" and v["alerts"] == [] and v["pending"] == [], v
    finally:
        end_stand_ins(torchrun, rank)


def test_report_judges_a_stopped_local_rank_as_status_does(tmp_path):
    """Local `nsa report` did not read the ranks' /proc states: of a run a stopped rank held it said `running` and
    "No health rule fired", or later heartbeat_stale pointing at `nsa dump`, where `nsa status` said `stalled`,
    rank_stopped and the pid to continue (over --host it did say it)."""
    from nsa_tui.commands.status import judge_local
    from nsa_tui.report.load import load_report_run
    from nsa_tui.report.markdown import alerts_section, runs_table

    run_dir = tmp_path / "paused"
    torchrun, rank = torchrun_with_rank(run_dir)
    try:
        launched_here(run_dir, rank, monitor={"rules": {"rank_stopped": {"for": "0s"}}})  # the default 60 s, shortened
        stop(rank)
        status, reported = judge_local(run_dir).verdict, load_report_run(run_dir)
        report = reported.verdict
        assert status is not None and (status["state"], status["health"]) == ("stalled", "critical"), status
        assert (report.state, report.health) == (status["state"], status["health"])
        assert [(a.rule, a.message) for a in report.alerts] == [(a["rule"], a["message"]) for a in status["alerts"]]
        [row], [alert] = runs_table([reported])[2:], alerts_section([reported])[2:]
        assert row.startswith("| paused | nsa-v1 | stalled |") and f"`kill -CONT {rank}` resumes" in alert, alert
    finally:
        end_stand_ins(torchrun, rank)


TRACED = (
    "rank 1 (pid 4321, traced by pid 999) is stopped by a debugger or tracer (gdb, strace, py-spy): `kill -CONT` "
    "does not resume it; the tracer must let it go (detach, or continue in the debugger)"
)


def test_a_traced_rank_is_not_sent_to_kill_cont():
    """`rank 1 (pid 4321) is stopped (SIGSTOP, ctrl-z); kill -CONT 4321 resumes` was said of a rank gdb held: a
    SIGCONT does not end a tracing stop."""
    assert stopped_ranks_text([StoppedRank(1, 4321, Stop(traced=True, tracer=999))]) == TRACED
    unknown = stopped_ranks_text([StoppedRank(1, 4321, Stop(traced=True)), StoppedRank(2, 4322, Stop(traced=True))])
    assert unknown.startswith("rank 1 (pid 4321), rank 2 (pid 4322) are stopped by a debugger or tracer ")
    assert unknown.endswith("does not resume them; the tracer must let them go (detach, or continue in the debugger)")
    both = stopped_ranks_text([StoppedRank(0, 4320), StoppedRank(1, 4321, Stop(traced=True, tracer=999))])
    assert both == f"{stopped_said(0, 4320)}; {TRACED}"


def test_status_names_a_rank_a_tracer_holds_and_its_tracer(tmp_path):
    """Real processes: the stand-in rank attached with ptrace (fixtures/tracer.py), as gdb attaches: its state is
    `t`, and /proc/PID/status names the tracer."""
    run_dir = tmp_path / "debugged"
    torchrun, rank = torchrun_with_rank(run_dir)
    rules = tmp_path / "rules.yaml"
    rules.write_text("rank_stopped: {for: 0}\n")
    try:
        launched_here(run_dir, rank)
        with traced(rank) as tracer:
            said = (
                f"rank 0 (pid {rank}, traced by pid {tracer}) is stopped by a debugger or tracer (gdb, strace, "
                "py-spy): `kill -CONT` does not resume it; the tracer must let it go (detach, or continue in the "
                "debugger)"
            )
            code, v = _status(run_dir, "--rules", str(rules))
            assert code == 2 and v["state"] == "stalled", v
            assert [(a["rule"], a["message"]) for a in v["alerts"]] == [("rank_stopped", said)], v["alerts"]
        code, v = _status(run_dir, "--rules", str(rules))  # let go: it runs on
        assert code == 0 and v["alerts"] == [], v
    finally:
        end_stand_ins(torchrun, rank)


def test_a_rank_on_another_host_is_resumed_through_ssh():
    """Over --host, ``kill -CONT 20446` resumes` named a pid of the host, which typed here signals one of this
    machine: the command carries `ssh HOST`, as the other --host hints do (`ssh HOST 'tmux kill-session ...'`)."""
    ranks = [StoppedRank(0, 20446, Stop(), "gpu1"), StoppedRank(1, 20447, Stop(), "gpu1")]
    said = stopped_ranks_text(ranks)
    assert said.endswith(
        "are stopped (SIGSTOP, or ctrl-z where a shell runs the trainer); `ssh gpu1 'kill -CONT 20446 20447'` resumes"
    )
    # a host's own words (its nsa judged, or its `nsa dump`): the same command; a traced rank's words have none
    assert resumed_over_ssh(stopped_ranks_text([r._replace(host=None) for r in ranks]), "gpu1") == said
    assert resumed_over_ssh(said, "gpu1") == said and resumed_over_ssh(TRACED, "gpu1") == TRACED
