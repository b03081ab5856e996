"""Damaged files of a run are said, not passed over: a context file (run.json, config.yaml, summary.json, ...) that
is there but cannot be read is named with why, and a heartbeat record that cannot be placed is a corrupt line."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from fixtures.cli import invoke
from fixtures.runs import append_lines, make_v1_run

from nsa_train.telemetry import schema
from nsa_tui.runs import load_run

MEAN = 4321.0
YAML_END = "expected the node content, but found '<stream end>'"


def finished_with_summary(path: Path) -> Path:
    """A finished run as the trainer leaves it: run.json with its config copy, config.yaml, summary.json."""
    make_v1_run(path, steps=200, state="finished")
    info = json.loads((path / schema.RUN_JSON).read_text())
    (path / schema.CONFIG_YAML).write_text(yaml.safe_dump(info["config"]))
    summary = {"v": 1, "end_reason": "completed", "steps_completed": 200, "mean_toks_per_s": MEAN}
    (path / schema.SUMMARY_JSON).write_text(json.dumps(summary))
    return path


def damage(path: Path) -> None:
    """The reviewer's three damaged files."""
    (path / schema.SUMMARY_JSON).write_text("[1,2\n")
    (path / schema.RUN_JSON).write_text('{"a": }\n')
    (path / schema.CONFIG_YAML).write_text(":::: bad yaml [\n")


def test_an_intact_run_has_no_unreadable_files(tmp_path):
    path = finished_with_summary(tmp_path / "r")
    v = json.loads(invoke("status", "--json", str(path)).stdout)
    assert v["unreadable_files"] == [] and v["mean_toks_per_s"] == MEAN and v["attention_impl"] == "reference"
    # a run before its model is built has no run.json: its config.yaml is read, and is a config
    (path / schema.RUN_JSON).unlink()
    h = load_run(path)
    assert h.unreadable_files == {} and h.config["train"]["steps"] == 200


def test_unreadable_context_files_are_named_in_status(tmp_path):
    """run.json, summary.json and config.yaml damaged: status dropped the attention path and switched from the
    summary's mean tok/s to the last window's without a word."""
    path = finished_with_summary(tmp_path / "r")
    damage(path)
    res = invoke("status", str(path))
    assert res.exit_code == 0, res.output  # the health is the records': these files do not change it
    out = res.stdout
    assert "unreadable run.json: not valid JSON (Expecting value at line 1, column 7)" in out
    assert "unreadable summary.json: not valid JSON (Expecting ',' delimiter at line 2, column 1)" in out
    assert "unreadable config.yaml: not a config (it has no model, nsa, data, train, runtime or monitor section)" in out
    v = json.loads(invoke("status", "--json", str(path)).stdout)
    assert [u["file"] for u in v["unreadable_files"]] == ["run.json", "config.yaml", "summary.json"]
    assert all(u["problem"] for u in v["unreadable_files"])
    assert v["attention_impl"] is None and v["mean_toks_per_s"] is None  # unknown, and now said why


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        (schema.RUN_JSON, "[1, 2]", "not a JSON object (a list)"),
        (schema.SUMMARY_JSON, "", "empty"),
        (schema.LAUNCH_JSON, '{"tmux_session": ', "not valid JSON (Expecting value at line 1, column 18)"),
        (schema.CONFIG_YAML, "train: [1,\n", f"not valid YAML ({YAML_END} at line 2, column 1)"),
        (schema.CONFIG_YAML, "- 1\n", "not a mapping (a list)"),
        (schema.EXIT_STATUS, "oops\n", "not an exit status ('oops')"),
    ],
)
def test_each_kind_of_damage_says_why(tmp_path, name, content, problem):
    path = finished_with_summary(tmp_path / "r")
    if name == schema.CONFIG_YAML:  # read only when run.json has no config copy (a run before its model is built)
        (path / schema.RUN_JSON).unlink()
    (path / name).write_text(content)
    assert load_run(path).unreadable_files == {name: problem}


def test_a_run_json_cut_by_the_read_limit_says_so(tmp_path, monkeypatch):
    from nsa_tui.runs import bundle as bundle_mod

    path = finished_with_summary(tmp_path / "r")
    size = (path / schema.RUN_JSON).stat().st_size
    limits = tuple((p, 100 if p == schema.RUN_JSON else n) for p, n in bundle_mod.FILE_LIMITS)
    monkeypatch.setattr(bundle_mod, "FILE_LIMITS", limits)
    assert load_run(path).unreadable_files == {schema.RUN_JSON: f"{size:,} bytes, more than the 100 read"}


def test_a_record_with_an_unusable_time_or_step_is_a_corrupt_line(tmp_path):
    """`{"ts": "garbage", "step": "x"}` was neither counted nor used: one corrupt line of two was said."""
    path = make_v1_run(tmp_path / "r", steps=100, state="finished").path
    hb = path / schema.heartbeat_name(0)
    append_lines(hb, ['{"v":1,"ts":"garbage","kind":"progress","rank":0,"step":"x"}', "garbage line"])
    h = load_run(path)
    assert h.corrupt == 2 and h.steps[-1] == 100
    res = invoke("status", str(path))
    assert "2 corrupt lines skipped" in res.stdout
    assert json.loads(invoke("status", "--json", str(path)).stdout)["corrupt_lines"] == 2
    # each common field alone: a time that is not one, a step that is not one (negative, NaN, a bool)
    bad = [
        '{"v":1,"ts":"x","kind":"liveness","rank":0,"step":100}',
        '{"v":1,"ts":NaN,"kind":"liveness","rank":0,"step":100}',
        '{"v":1,"ts":1.0,"kind":"liveness","rank":0,"step":-1}',
        '{"v":1,"ts":1.0,"kind":"liveness","rank":0,"step":true}',
        '{"v":1,"ts":1.0,"kind":"liveness","rank":0,"step":null}',
    ]
    append_lines(hb, bad)
    assert load_run(path).corrupt == 2 + len(bad)


def test_one_corrupt_line_is_singular(tmp_path):
    from nsa_tui.runs.history import corrupt_lines_text

    path = make_v1_run(tmp_path / "r", steps=100, state="finished").path
    append_lines(path / schema.heartbeat_name(0), ["garbage line"])
    out = invoke("status", str(path)).stdout
    assert "1 corrupt line skipped" in out and "corrupt lines" not in out
    assert [corrupt_lines_text(n) for n in (1, 2)] == ["1 corrupt line skipped", "2 corrupt lines skipped"]


def test_runs_names_the_unreadable_files_of_a_run(runs_dir, monkeypatch):
    """Its tok/s is the last window's, not the summary's mean: the row says which files it could not read."""
    monkeypatch.setenv("COLUMNS", "200")
    damage(finished_with_summary(runs_dir / "r"))
    row = next(x for x in invoke("runs", str(runs_dir)).stdout.splitlines() if x.startswith("r "))
    assert re.search(r" ok +unreadable run\.json, config\.yaml, summary\.json$", row.rstrip()), row


def _judged(path: Path) -> dict:
    res = invoke("status", "--json", str(path))
    return dict(json.loads(res.stdout), exit_code=res.exit_code)


@pytest.mark.parametrize("damage_hb", ["cut-end", "no-heartbeat", "empty-heartbeat"])
@pytest.mark.parametrize("ended_at", [True, False], ids=["ended_at", "older-summary"])
def test_a_run_whose_end_record_is_lost_ended_as_its_summary_says(tmp_path, damage_hb, ended_at):
    """A run started by hand (no exit_status), copied without its heartbeat (the largest file) or with its last
    line cut: an hour later it read `stalled`, critical, though summary.json said it completed. Its mean tok/s and
    end reason are the summary's too (status gave the last window's tok/s and no reason, where report gave them)."""
    w = make_v1_run(tmp_path / "r", steps=200, state="finished", now=time.time() - 3600)
    (w.path / schema.EXIT_STATUS).unlink()
    summary = {"v": 1, "end_reason": "completed", "steps_completed": 200, "mean_toks_per_s": MEAN}
    if ended_at:
        summary["ended_at"] = w.ts - 0.5  # just before its end record
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps(summary))
    hb = w.path / schema.heartbeat_name(0)
    if damage_hb == "cut-end":
        hb.write_text("".join(hb.read_text().splitlines(keepends=True)[:-1]))
    elif damage_hb == "no-heartbeat":
        hb.unlink()
    else:
        hb.write_text("")
    v = _judged(w.path)
    assert (v["state"], v["health"], v["exit_code"]) == ("finished", "ok", 0), v
    assert (v["mean_toks_per_s"], v["end_reason"]) == (MEAN, "completed")
    summary["end_reason"] = "nan"
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps(summary))
    assert _judged(w.path)["state"] == "crashed"


def test_an_earlier_attempts_summary_does_not_end_a_resume(tmp_path):
    """The summary of the attempt before a resume: the resumed one is running (its steps past it), or has booted
    and not stepped yet; a summary with ended_at before the resume's boot is not its own either."""
    w = make_v1_run(tmp_path / "r", steps=100, now=time.time() - 60, age_s=1.0)
    old = {"v": 1, "end_reason": "halt", "steps_completed": 100}
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps(old))
    w.ts += 5
    w.boot()  # the resume, not yet stepped
    assert _judged(w.path)["state"] == "starting"
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps(dict(old, ended_at=w.ts - 5)))
    assert _judged(w.path)["state"] == "starting"
    w.progress(2)
    assert _judged(w.path)["state"] == "running"
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps(old))  # no ended_at: its step is behind the records'
    assert _judged(w.path)["state"] == "running"


def test_records_of_a_newer_telemetry_version_are_read_and_said(tmp_path, monkeypatch):
    """Every record at "v": 2 was read as v1 without a word; then it was said as an "unreadable" file, in status,
    runs and the dashboard, while every number and chart came from it: it is newer telemetry, read as v1."""
    path = finished_with_summary(tmp_path / "r")
    hb = path / schema.heartbeat_name(0)
    hb.write_text("".join(json.dumps(dict(json.loads(line), v=2)) + "\n" for line in hb.read_text().splitlines()))
    v = _judged(path)
    assert v["state"] == "finished"  # still read
    [said] = [u for u in v["unreadable_files"] if u["file"] == schema.heartbeat_name(0)]
    assert said == {
        "file": schema.heartbeat_name(0),
        "problem": "newer telemetry (v2): read as v1",
        "kind": "newer",
        "v": 2,
    }
    out = invoke("status", str(path)).stdout
    assert "heartbeat_rank0.jsonl: newer telemetry (v2): read as v1; update nsa here" in out, out
    assert "unreadable" not in out
    monkeypatch.setenv("COLUMNS", "300")
    table = invoke("runs", str(tmp_path)).stdout
    assert "newer telemetry heartbeat_rank0.jsonl" in table and "unreadable" not in table, table


@pytest.mark.parametrize(
    ("name", "change"),
    [
        (schema.RUN_JSON, {"v": 2, "format": "nsa-v2"}),
        (schema.RUN_JSON, {"format": "nsa-v3"}),  # the format name alone says it too
        (schema.SUMMARY_JSON, {"v": 2}),
    ],
)
def test_context_files_of_a_newer_telemetry_version_are_said_too(tmp_path, name, change):
    """Only the heartbeat's `v` was checked: a run.json of v 2, format nsa-v2, printed `(nsa-v1)` and nothing else."""
    path = finished_with_summary(tmp_path / "r")
    obj = json.loads((path / name).read_text())
    (path / name).write_text(json.dumps({**obj, **change}))
    newest = max(int(str(change.get("format", "nsa-v0"))[5:]), change.get("v", 0))
    v = _judged(path)
    assert v["state"] == "finished" and v["mean_toks_per_s"] == MEAN  # still read, as v1
    assert v["unreadable_files"] == [
        {"file": name, "problem": f"newer telemetry (v{newest}): read as v1", "kind": "newer", "v": newest}
    ]
    out = invoke("status", str(path)).stdout
    assert f"{name}: newer telemetry (v{newest}): read as v1; update nsa here" in out, out
    # the header said `(nsa-v1)` above that line
    assert f"(nsa-v{newest} read as nsa-v1)" in out.splitlines()[0], out
    # this version, or one before it, is no news
    (path / name).write_text(json.dumps({**obj, "v": 1}))
    assert _judged(path)["unreadable_files"] == []
    assert "(nsa-v1)" in invoke("status", str(path)).stdout.splitlines()[0]


def test_tokens_seen_is_the_count_the_trainer_wrote(tmp_path):
    """`"tokens_seen": 24576.0` in status --json where the heartbeat and summary have 24576."""
    path = finished_with_summary(tmp_path / "r")
    v = _judged(path)
    assert isinstance(v["tokens_seen"], int) and v["tokens_seen"] > 0, v["tokens_seen"]


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("heartbeat_rank0.jsonl", b"", "is empty"),
        ("heartbeat_rank0.jsonl", b"garbage\nmore\n", "holds no readable record"),
        ("training.csv", b"a,b,c\n1,2,3\n", "has a header this nsa does not read ('a,b,c')"),
    ],
)
def test_a_telemetry_file_without_a_record_is_no_telemetry(runs_dir, name, content, said):
    """An empty or all-garbage heartbeat, alone, was the previous trainer's format, `unknown`, health OK, exit 0 (and
    its mtime a heartbeat "0s ago"): a gate passed a run that had written nothing usable. `nsa report` said "no
    heartbeat_rank*.jsonl, training.csv or *_log.jsonl" of each, and both said that of a training.csv that was
    there with another header: the report gives status's line."""
    d = runs_dir / "hb"
    d.mkdir()
    (d / name).write_bytes(content)
    res = invoke("status", "--json", "hb")
    assert res.exit_code == 3, res.output
    said = f"no telemetry in {d} ({name} {said})"
    assert json.loads(res.stdout)["error"] == said
    res = invoke("report", "hb")
    assert res.exit_code == 3 and " ".join(res.output.split()) == f"error: {said}", res.output
    if name != "heartbeat_rank0.jsonl":
        return
    # launched by nsa: a run starting (its first record not written yet), judged by its session
    (d / schema.LAUNCH_JSON).write_text("{}")
    assert load_run(d).format == "nsa-v1"


def test_a_run_file_that_is_a_directory_is_said(tmp_path):
    """A run.json that is a directory (a mistaken mkdir) read as no run.json: nothing said."""
    path = finished_with_summary(tmp_path / "r")
    (path / schema.RUN_JSON).unlink()
    (path / schema.RUN_JSON).mkdir()
    v = json.loads(invoke("status", "--json", str(path)).stdout)
    assert v["unreadable_files"] == [{"file": "run.json", "problem": "is a directory", "kind": "unreadable"}]
