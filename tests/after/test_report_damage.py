"""`nsa report` of a run with a damaged part: a monitor section the rules cannot use, unreadable context files,
corrupt lines. The report is still drawn, and says what it could not read or apply."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from fixtures.cli import invoke
from fixtures.runs import append_lines, make_v1_run

from nsa_train.telemetry import schema

CHARTS = ("loss", "lr", "throughput", "memory", "gates")


def with_monitor_typo(path: Path) -> Path:
    """A finished run whose run.json's config copy has a rule that does not exist (the reviewer's typo)."""
    make_v1_run(path, steps=200, state="finished")
    info = json.loads((path / schema.RUN_JSON).read_text())
    info["config"]["monitor"]["rules"] = {"nope": {}}
    (path / schema.RUN_JSON).write_text(json.dumps(info))
    return path


def test_a_monitor_typo_still_draws_the_report_judged_with_the_defaults(tmp_path):
    """It blocked the report entirely: exit 4, no report.md, no charts."""
    path = with_monitor_typo(tmp_path / "bad")
    out = tmp_path / "out"
    res = invoke("report", str(path), "--out", str(out))
    assert res.exit_code == 4, res.output  # as `nsa status` gives it: the run's own rules cannot be used
    for name in CHARTS:
        assert (out / f"{name}.png").is_file()
    [line] = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: config monitor.rules.nope: unknown rule 'nope'")
    assert line.endswith("(in its run.json); the report judges it with the default rules")
    md = (out / "report.md").read_text()
    assert "| bad | nsa-v1 | finished | 200/200 |" in md
    warnings = md.split("## Warnings", 1)[1].split("##", 1)[0]
    assert "its own health rules could not be applied" in warnings and "unknown rule 'nope'" in warnings
    assert "judged with the default rules" in warnings
    alerts = md.split("## Alerts", 1)[1].split("##", 1)[0]
    assert "**bad** is judged with the default rules" in alerts
    # the run beside it keeps its own report line and no warning
    make_v1_run(tmp_path / "good", steps=200, state="finished")
    res = invoke("report", str(tmp_path / "good"), str(path), "--out", str(tmp_path / "two"))
    assert res.exit_code == 4 and res.stderr.count("\n") == 1
    md = (tmp_path / "two" / "report.md").read_text()
    assert "**good**" not in md.split("## Warnings", 1)[1].split("##", 1)[0]


def test_an_intact_run_has_no_warnings_section(tmp_path):
    path = make_v1_run(tmp_path / "ok", steps=200, state="finished").path
    res = invoke("report", str(path), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0 and res.stderr == ""
    assert "## Warnings" not in (tmp_path / "out" / "report.md").read_text()


def test_unreadable_context_files_and_corrupt_lines_are_in_the_report(tmp_path):
    """report.md said `No config recorded for this run.` though config.yaml was there (unreadable)."""
    path = make_v1_run(tmp_path / "r", steps=200, state="finished").path
    info = json.loads((path / schema.RUN_JSON).read_text())
    (path / schema.CONFIG_YAML).write_text(yaml.safe_dump(info["config"]))
    (path / schema.SUMMARY_JSON).write_text("[1,2\n")
    (path / schema.RUN_JSON).write_text('{"a": }\n')
    (path / schema.CONFIG_YAML).write_text(":::: bad yaml [\n")
    append_lines(path / schema.heartbeat_name(0), ['{"v":1,"ts":"garbage","kind":"progress","rank":0,"step":"x"}'])
    res = invoke("report", str(path), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output  # nothing to act on but the files: warnings, not an error
    said = res.stderr.strip().splitlines()
    assert [line.split(": ", 2)[2].split(" ", 1)[0] for line in said] == ["run.json", "config.yaml", "summary.json"]
    assert all(line.startswith(f"warning: {path}: ") and " unreadable: " in line for line in said)
    md = (tmp_path / "out" / "report.md").read_text()
    warnings = md.split("## Warnings", 1)[1].split("##", 1)[0]
    for name in ("run.json", "config.yaml", "summary.json"):
        assert f"{name} unreadable: " in warnings
    assert "1 corrupt line skipped (heartbeat\\_rank0.jsonl 1)" in warnings
    config = md.split("## Config", 1)[1].split("##", 1)[0]
    assert "No config recorded" not in config and "config.yaml unreadable: not a config" in config
    assert "run.json unreadable: not valid JSON" in config


def test_a_run_with_an_unreadable_config_among_several(tmp_path):
    make_v1_run(tmp_path / "a", steps=100, state="finished")
    b = make_v1_run(tmp_path / "b", steps=100, state="finished").path
    (b / schema.RUN_JSON).write_text("{")
    res = invoke("report", str(tmp_path / "a"), str(b), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    config = (tmp_path / "out" / "report.md").read_text().split("## Config differences", 1)[1].split("##", 1)[0]
    assert "- **b**: run.json unreadable: not valid JSON" in config
    assert "| train.steps | 100 | (unreadable) |" in config
