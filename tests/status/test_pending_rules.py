"""A floor the user set was not shown as unmet for its first 5 minutes, or ever on a short run: `nsa status
--rules` with throughput_low.min_toks_per_s=100000 on a live run at ~1,000 tok/s read `running health OK`, and the
`tok/s not judged` line was gone, so nothing said the floor had not been applied yet. A rule whose condition holds
but not yet for its `for` window is now said as `pending` (text and --json), without changing health or exit code."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.cli import invoke
from fixtures.runs import make_v1_run


def _rules(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return str(path)


def _pending_lines(out: str) -> list[str]:
    return [ln.strip() for ln in out.splitlines() if ln.strip().startswith("pending ")]


def test_a_floor_not_yet_held_for_its_window_is_pending_on_a_live_run(tmp_path):
    run = tmp_path / "live"
    make_v1_run(run, steps=100)  # 10 points over 40 s: inside throughput_low's 300 s
    rules = _rules(tmp_path, "throughput_low: {min_toks_per_s: 100000}\n")
    res = invoke("status", "--rules", rules, str(run))
    assert res.exit_code == 0, res.stdout  # not yet an alert: health and exit code unchanged
    assert "health OK" in res.stdout, res.stdout
    [line] = _pending_lines(res.stdout)
    assert line.startswith("pending throughput_low (since step 10): "), line
    assert "below the floor min_toks_per_s=100000" in line and "of its for: 300 s: not yet warning)" in line, line
    v = json.loads(invoke("status", "--json", "--rules", rules, str(run)).stdout)
    assert v["health"] == "ok" and v["alerts"] == []
    [p] = v["pending"]
    assert (p["rule"], p["severity"], p["since_step"], p["for_s"], p["for_steps"]) == (
        "throughput_low",
        "warning",
        10,
        300.0,
        None,
    )
    assert 30 <= p["held_s"] < 300, p


def test_a_floor_an_ended_run_never_held_for_its_window_says_it_never_fired(tmp_path):
    run = tmp_path / "short"
    make_v1_run(run, steps=100, state="halted")
    rules = _rules(tmp_path, "throughput_low: {min_toks_per_s: 100000}\n")
    res = invoke("status", "--rules", rules, str(run))
    assert res.exit_code == 0, res.stdout
    [line] = _pending_lines(res.stdout)
    assert line.endswith("of its for: 300 s: the run ended first, so it never fired)"), line
    v = json.loads(invoke("status", "--json", "--rules", rules, str(run)).stdout)
    assert v["alerts"] == [] and [p["rule"] for p in v["pending"]] == ["throughput_low"]


def test_a_rule_past_its_window_is_an_alert_not_pending_and_steps_windows_are_said_too(tmp_path):
    run = tmp_path / "long"
    make_v1_run(run, steps=1000)  # 400 s under the floor: fired
    rules = _rules(tmp_path, "throughput_low: {min_toks_per_s: 100000}\n")
    v = json.loads(invoke("status", "--json", "--rules", rules, str(run)).stdout)
    assert [a["rule"] for a in v["alerts"]] == ["throughput_low"] and v["pending"] == [], v
    # a window in steps, on a rule of the user's own: held from step 10 to 1000, short of its 5000
    rules = _rules(tmp_path, "toks_low:\n  metric: toks_per_s\n  below: 100000\n  for: 5000 steps\n")
    res = invoke("status", "--rules", rules, str(run))
    [line] = _pending_lines(res.stdout)
    assert line.startswith("pending toks_low (since step 10): "), line
    assert line.endswith("(held 990 steps of its for: 5000 steps: not yet warning)"), line
    v = json.loads(invoke("status", "--json", "--rules", rules, str(run)).stdout)
    [p] = [p for p in v["pending"] if p["rule"] == "toks_low"]
    assert (p["held_steps"], p["for_steps"], p["held_s"], p["for_s"]) == (990, 5000, None, None)


def test_nsa_runs_names_pending_rules_in_the_alerts_cell(runs_dir, monkeypatch):
    """`nsa runs` showed `ok` and an empty alerts cell for a run under the floor of its config until the rule's 300 s
    had passed (for ever, for a run that ended first): its pending rules are named there now, after its alerts."""
    monkeypatch.setenv("COLUMNS", "200")
    floor = {"min_toks_per_s": 100_000}
    make_v1_run(runs_dir / "slow", steps=100, monitor=floor)
    make_v1_run(runs_dir / "short", steps=100, state="halted", monitor=floor)
    make_v1_run(runs_dir / "nan", steps=100, monitor=floor, alerts=["nan_loss"])
    make_v1_run(runs_dir / "plain", steps=100)
    res = invoke("runs")
    assert res.exit_code == 0, res.output
    header, *lines = res.stdout.splitlines()
    assert header.split() == ["run", "state", "step", "loss", "tok/s", "heartbeat", "health", "alerts"]
    health, alerts = header.index("health"), header.index("alerts")  # the columns, where the header puts them
    rows = {line.split()[0]: (line[health:alerts].strip(), line[alerts:].strip()) for line in lines}
    assert rows == {
        "slow": ("ok", "pending throughput_low"),
        "short": ("ok", "pending throughput_low (run ended first)"),
        "nan": ("critical", "nan_loss; pending throughput_low"),
        "plain": ("ok", ""),
    }, res.stdout
