"""`nsa runs` and a run whose monitor section the rules cannot use: the row shows what the default rules read of the
run (state, step, loss), and the mistake on one line."""

from __future__ import annotations

import json

from fixtures.cli import invoke
from fixtures.runs import make_v1_run

from nsa_train.telemetry import schema


def test_a_bad_rules_row_shows_the_run_and_one_line_naming_the_mistake(runs_dir, monkeypatch):
    """The row said `-` for the state, step and loss of a plainly finished run, its alerts cell wrapping over 7
    lines."""
    monkeypatch.setenv("COLUMNS", "80")
    make_v1_run(runs_dir / "bad", steps=200, state="finished")
    info = json.loads((runs_dir / "bad" / schema.RUN_JSON).read_text())
    info["config"]["monitor"]["rules"] = {"nope": {}}
    (runs_dir / "bad" / schema.RUN_JSON).write_text(json.dumps(info))
    make_v1_run(runs_dir / "good", steps=100, alerts=["data_stall", "grad_spike"])
    res = invoke("runs", str(runs_dir))
    assert res.exit_code == 0, res.output  # `nsa runs` exits 0 whatever the runs (docs/health.md)
    lines = res.stdout.splitlines()
    [row] = [i for i, line in enumerate(lines) if line.startswith("bad ")]
    cells = lines[row].split()
    assert cells[1:5] == ["finished", "200/200", "2.2252", "5,016"] and "bad rules" in lines[row]
    assert "bad rules  unknown rule '" in lines[row] and len(lines[row]) <= 80  # cut with an ellipsis
    assert row + 1 == len(lines) or lines[row + 1].startswith("good ")  # no wrapped continuation
    res = invoke("runs", str(runs_dir), "--json")  # the documented error object, as `nsa status --json` gives
    bad = next(json.loads(x) for x in res.stdout.splitlines() if json.loads(x)["run"] == "bad")
    assert bad["exit_code"] == 4 and "unknown rule 'nope'" in bad["error"] and "state" not in bad


def test_a_wide_terminal_shows_where_the_mistake_is_and_the_command(runs_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    make_v1_run(runs_dir / "bad", steps=100, monitor={"rules": {"grad_spike": {"factor": "big"}}})
    line = next(x for x in invoke("runs", str(runs_dir)).stdout.splitlines() if x.startswith("bad "))
    assert line.rstrip().endswith(
        "expected a number, got 'big' (config monitor.rules.grad_spike.factor, in its run.json): "
        "`nsa status bad` says why"
    ), line
    make_v1_run(runs_dir / "typo", steps=100, monitor={"rules": {"grad_spike": {"facter": 2}}})
    line = next(x for x in invoke("runs", str(runs_dir)).stdout.splitlines() if x.startswith("typo "))
    said = "unknown setting 'facter' (config monitor.rules.grad_spike.facter, in its run.json): `nsa status typo`"
    assert said in line, line
