"""`nsa report` said "No health rule fired" of a run that stalled for 4 minutes before its halt, and never named the
stall record or its stack dump: the alerts judge the run as it is now. Its Events section lists what happened during
it from the run's records; its key settings name the warmup and the lr floor, and the lr chart marks warmup's end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fixtures.runs import boot, make_v1_run, start_training
from typer.testing import CliRunner

from nsa_train.telemetry import schema
from nsa_tui.cli import app
from nsa_tui.report import build_report

from .conftest import TINY_OVERRIDES


def _records(run: Path) -> list[dict]:
    path = run / schema.heartbeat_name(0)
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.is_file() else []


def _wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_run_that_stalled_then_halted_reports_the_stall_its_dump_the_halt_and_its_warmup(tmp_path: Path) -> None:
    """The reviewer's hang1, shortened: step 12 sleeps past monitor.stall_s (the trainer's watchdog writes a stall
    record and a stack dump), the run is halted (.HALT, as `nsa halt` asks), then reported."""
    run = tmp_path / "hang1"
    sets = [o for o in TINY_OVERRIDES if not o.startswith(("train.warmup_steps", "train.steps"))]
    sets += ["train.steps=30", "train.warmup_steps=2", "monitor.stall_s=2"]
    argv = [sys.executable, "-m", "nsa_train.train", "--run-dir", str(run)]
    for o in sets:
        argv += ["--set", o]
    env = {**os.environ, "NSA_TEST_SLOW_STEP": "12:6"}

    def step_12_stall() -> dict | None:  # (a loaded machine's slow first step may stall too: not this one)
        return next((r for r in _records(run) if r["kind"] == schema.KIND_STALL and r["step"] >= 11), None)

    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            stall = _wait_for(step_12_stall, 240, "the stall of step 12")
            (run / schema.HALT_FILE).touch()  # what `nsa halt` does
            out, _ = proc.communicate(timeout=120)
        finally:
            proc.kill()
    assert proc.returncode == 0, out[-2000:]
    dump = Path(stall["dump"]).name
    assert (run / dump).is_file()
    res = CliRunner().invoke(app, ["report", str(run), "--out", str(tmp_path / "rep3")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep3" / "report.md").read_text()
    assert "No health rule fired (judged by the same rules as `nsa status`, on the run as it is now: what happened " \
        "during it is under Events)." in md  # fmt: skip
    events = md.split("## Events\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in events.splitlines() if dump in ln]
    assert len(rows) == 1, events  # the stall's dump is named once, with its stall
    assert f"| {stall['step']} | 0 | stall | no progress for " in rows[0], rows
    assert f"(the trainer's watchdog); stacks in {dump} |" in rows[0], rows
    end = _records(run)[-1]
    assert end["kind"] == schema.KIND_END and end["reason"] == schema.END_HALT
    assert f"| {end['step']} | 0 | halted | exit status 0 |" in events, events
    assert "| train.warmup_steps | 2 |" in md and "| train.min_lr | " in md, md
    assert "The dashed line is the end of warmup (step 2, `train.warmup_steps`)." in md


def test_resumes_refusals_errors_dumps_and_the_anomaly_marker_are_events(tmp_path: Path) -> None:
    run = tmp_path / "bumpy"
    w = make_v1_run(run, steps=100)
    w.error("RuntimeError: CUDA error: an illegal memory access was encountered")
    w.end(schema.END_ERROR, 1)
    boot(w, resume=True)  # refused before its checkpoint loaded
    w.error("--resume: the checkpoint does not fit this model")
    w.end(schema.END_ERROR, 2, **{schema.RESUME_REFUSED: True})
    boot(w, resume=True)
    start_training(w, 1000, 100)
    w.progress(3)
    asked = schema.stackdump_name(0, w.ts)  # a dump asked for (SIGUSR1, `nsa dump`): no stall names it
    (run / asked).write_text("Thread 0x1 (most recent call first):\n")
    (run / ".anomaly_type").write_text("nan_in_grad\n")
    md = build_report([run], tmp_path / "out")["report"].read_text()
    events = md.split("## Events\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in events.splitlines() if ln.startswith("| bumpy |")]
    cells = [ln.removeprefix("| ").removesuffix(" |").split(" | ") for ln in rows]
    said = [c[4:6] for c in cells]  # event, detail
    assert said == [
        ["error", "RuntimeError: CUDA error: an illegal memory access was encountered"],
        ["ended by an error", "exit status 1"],
        ["resume", "before its loop started"],
        ["error", "--resume: the checkpoint does not fit this model"],
        ["resume refused", "before its checkpoint loaded: the run is as its last attempt left it"],
        ["resume", "from step 100"],
        ["stack dump", asked],
        ["anomaly", "the trainer marked the run: nan_in_grad"],
    ], rows
    assert cells[-1][1] == "-" and cells[-2][1] != "-"  # the marker file says no time; the dump's name does


def test_a_run_without_events_has_no_events_section(tmp_path: Path) -> None:
    make_v1_run(tmp_path / "calm", steps=100, state="running")
    md = build_report([tmp_path / "calm"], tmp_path / "out")["report"].read_text()
    assert "## Events" not in md
    assert "No health rule fired (judged by the same rules as `nsa status`)." in md
