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
from nsa_tui.fmt import duration
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
    # how long it hung: to rank 0's next record of a later step (the slow step done), else to the run's end record
    later = [r for r in _records(run) if r["ts"] >= stall["ts"] and r is not stall]
    stepped = [
        r for r in later if r["kind"] in (schema.KIND_PROGRESS, schema.KIND_LIVENESS) and r["step"] > stall["step"]
    ]
    ended = next(r for r in later if r["kind"] == schema.KIND_END)
    to = stepped[0] if stepped and stepped[0]["ts"] < ended["ts"] else ended
    day = "%H:%M:%S" if time.gmtime(to["ts"])[:3] == time.gmtime(stall["ts"])[:3] else "%Y-%m-%d %H:%M:%S"
    how = f"progress again at {time.strftime(day, time.gmtime(to['ts']))}" if to is not ended else "until the run ended"
    lasted = round(to["ts"] - stall["ts"] + stall["seconds_since_progress"])
    said = f"stalled for ~{duration(lasted)} ({how}); the trainer's watchdog saw no progress for 2 s; stacks in {dump}"
    assert f"| {stall['step']} | 0 | stall | {said} |" in rows[0], rows
    assert lasted >= 4  # step 12 slept 6 s: longer than the watchdog's 2 s
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
        # no end record after its 3 steps, and the exit_status file says 2: the run reads crashed, and says how
        [
            "ended without an end record",
            "exit status 2 without an end record; its last step 130; console.log: step 100 \\| loss 4.5462",
        ],
        ["anomaly", "the trainer marked the run: nan_in_grad"],
    ], rows
    assert cells[-1][1] == "-" and cells[-2][1] != "-"  # the marker file says no time; the dump's name does


def test_a_run_without_events_has_no_events_section(tmp_path: Path) -> None:
    make_v1_run(tmp_path / "calm", steps=100, state="running")
    md = build_report([tmp_path / "calm"], tmp_path / "out")["report"].read_text()
    assert "## Events" not in md
    assert "No health rule fired (judged by the same rules as `nsa status`)." in md


def _stall_details(md: str, run: str) -> list[str]:
    events = md.split("## Events\n", 1)[1].split("\n## ", 1)[0]
    cells = [ln.removeprefix("| ").removesuffix(" |").split(" | ") for ln in events.splitlines()]
    return [c[5] for c in cells if c[0] == run and c[4] == "stall"]


def test_a_stall_says_how_long_the_hang_lasted_where_later_records_say(tmp_path: Path) -> None:
    """The stall record says only the watchdog's threshold; the rank's next record of a later step (or the end
    record) says when the hang ended; with neither (still hung, or a new start first) the threshold is all it says.
    Times are fixed at mid-day UTC: the clock is said without its date."""
    run = tmp_path / "hangs"
    w = make_v1_run(run, steps=100, now=1_800_000_000.0)  # 2027-01-15 08:00 UTC
    w.stall(120)  # at step 100, 2 min after its last progress
    w.liveness(advance_s=60)  # the same step: still hung
    w.ts += 236
    w.progress(1)  # step 110, 4 s later: 120 + 60 + 236 + 4 = 420 s without progress
    again = time.strftime("%H:%M:%S", time.gmtime(w.ts))
    w.stall(30)
    w.end(schema.END_HALT, 0)  # 1 s later, still at step 110
    hung, restarted = tmp_path / "hung", tmp_path / "restarted"
    make_v1_run(hung, steps=100).stall(90)  # hanging still, as far as its records say
    r = make_v1_run(restarted, steps=100)
    r.stall(90)
    boot(r, resume=True)  # killed unrecorded and resumed: when the hang ended is unknown
    start_training(r, 1000, 100)
    r.progress(2)
    md = build_report([run, hung, restarted], tmp_path / "out")["report"].read_text()
    assert _stall_details(md, "hangs") == [
        f"stalled for ~7m00s (progress again at {again}); the trainer's watchdog saw no progress for 120 s; "
        "stacks in stackdump_rank0_1.txt",
        "stalled for ~31s (until the run ended); the trainer's watchdog saw no progress for 30 s; "
        "stacks in stackdump_rank0_1.txt",
    ], md
    said = "no progress for 90 s (the trainer's watchdog); stacks in stackdump_rank0_1.txt"  # the threshold alone
    assert _stall_details(md, "hung") == [said] and _stall_details(md, "restarted") == [said], md
