"""`nsa status` says where a run's initial weights came from (run.json's init_from), and --json carries it; a
run.json without the field (an earlier version's) or with a malformed one says nothing of it."""

from __future__ import annotations

import json

from fixtures.cli import invoke
from fixtures.runs import make_v1_run

from nsa_train.telemetry import schema

RECORD = {"path": "/runs/a/checkpoints/step_00000600.pt", "run_id": "9e28ab", "run_name": "a", "step": 600}


def test_status_has_one_line_for_the_initial_weights(runs_dir) -> None:
    make_v1_run(runs_dir / "b", steps=100, run_info={schema.RUN_INIT_FROM: RECORD})
    res = invoke("status", "b")
    assert "  initialized from /runs/a/checkpoints/step_00000600.pt (run a, id 9e28ab, step 600)" in (
        res.stdout.splitlines()
    ), res.stdout
    assert json.loads(invoke("status", "--json", "b").stdout)["init_from"] == RECORD


def test_a_run_json_without_it_or_with_an_odd_one_says_nothing_of_it(runs_dir) -> None:
    make_v1_run(runs_dir / "old", steps=100)
    assert schema.RUN_INIT_FROM not in json.loads((runs_dir / "old" / schema.RUN_JSON).read_text())
    make_v1_run(runs_dir / "odd", steps=100, run_info={schema.RUN_INIT_FROM: "runs/a"})
    unrecorded = {"path": "/x.pt", "run_id": None, "run_name": None, "step": 3}
    make_v1_run(runs_dir / "pre-ids", steps=100, run_info={schema.RUN_INIT_FROM: unrecorded})
    for name in ("old", "odd"):
        res = invoke("status", name)
        assert res.exit_code == 0 and "initialized from" not in res.stdout, res.stdout
        assert json.loads(invoke("status", "--json", name).stdout)["init_from"] is None
    assert "  initialized from /x.pt (no run recorded, step 3)" in invoke("status", "pre-ids").stdout.splitlines()


def test_the_report_says_where_a_runs_initial_weights_came_from(runs_dir, tmp_path) -> None:
    """`nsa report` of a run started from another's weights said nothing of them: its loss curve, starting low,
    read as this run's own training."""
    make_v1_run(runs_dir / "b", steps=100, run_info={schema.RUN_INIT_FROM: RECORD})
    make_v1_run(runs_dir / "fresh", steps=100)
    assert invoke("report", str(runs_dir / "b"), "--out", str(tmp_path / "b")).exit_code == 0
    md = (tmp_path / "b" / "report.md").read_text()
    said = "- **b**: initialized from /runs/a/checkpoints/step\\_00000600.pt (run a, id 9e28ab, step 600)"
    assert f"## Initial weights\n\n{said}\n" in md, md
    assert invoke("report", str(runs_dir / "fresh"), "--out", str(tmp_path / "f")).exit_code == 0
    assert "Initial weights" not in (tmp_path / "f" / "report.md").read_text()
