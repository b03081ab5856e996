"""An attempt that ended without an end record (a full disk that cut its heartbeat, a hang whose tmux session was
killed, a rank SIGKILLed) was missing from `nsa report`'s Events: the table went from its last error or stall to the
next `resume`, and a heartbeat record cut by the full disk was counted as a corrupt line by the report and `nsa
status` for the rest of the run. Each attempt now has a row saying how it ended, from what the run directory knows."""

from __future__ import annotations

from pathlib import Path

from fixtures.cli import invoke
from fixtures.runs import boot, make_v1_run, start_training, write_console

from nsa_train.telemetry import schema
from nsa_tui.report import build_report
from nsa_tui.runs import load_run

STARTING = "[nsa 2026-12-07 10:00:00] starting: torchrun -m nsa_train.train --run-dir r"
DISK_FULL = "error: cannot write heartbeat_rank0.jsonl in r: no space left on device (0 B free)"


def _events(md: str, run: str) -> list[list[str]]:
    """The Events table's rows of ``run``: [time, step, rank, event, detail]."""
    table = md.split("## Events\n", 1)[1].split("\n## ", 1)[0]
    cells = [ln.removeprefix("| ").removesuffix(" |").split(" | ") for ln in table.splitlines() if ln.startswith("|")]
    return [c[1:] for c in cells if c[0] == run]


def _cut(w, step: int, rank: int = 0) -> None:
    """A record the full disk cut: its first bytes, without a newline, as the trainer's last write left them."""
    rec = schema.encode(schema.make_record(schema.KIND_PROGRESS, rank, step, w.pid, w.ts + 1.0, loss=2.5))
    with open(w.path / schema.heartbeat_name(rank), "a", encoding="utf-8") as fh:
        fh.write(rec[:80])


def _disk_full_run(tmp_path: Path, *, resumed: bool) -> Path:
    """Repro (a): a 1-rank run whose disk filled at step 441 (its record of it cut), resumed from its step-400
    checkpoint when ``resumed``."""
    run = tmp_path / "hb"
    w = make_v1_run(run, steps=440, log_every=10, launch=True)
    _cut(w, 441)
    (run / schema.CONSOLE_LOG).write_text("")
    # what the wrapper could write of its lines on the full disk: its last one without a newline
    write_console(run, [STARTING, "step 440 | loss 2.5", DISK_FULL])
    with open(run / schema.CONSOLE_LOG, "a", encoding="utf-8") as fh:
        fh.write("[nsa 2026-12-07 10:05:00] torchrun exited with status 1")
    if resumed:
        with open(run / schema.heartbeat_name(0), "a", encoding="utf-8") as fh:
            fh.write("\n")  # the next writer ends the cut line first (HeartbeatWriter)
        write_console(run, [STARTING])  # glued to the cut line, as the wrapper of nsa before this fix wrote it
        boot(w, resume=True)
        start_training(w, 480, 400)
        w.progress(8)
        w.end(schema.END_COMPLETED, 0)
        write_console(run, ["[nsa 2026-12-07 10:09:00] torchrun exited with status 0"])
    return run


def test_an_attempt_a_full_disk_ended_has_its_row_and_its_cut_record_is_no_corruption(tmp_path: Path) -> None:
    run = _disk_full_run(tmp_path, resumed=True)
    md = build_report([run], tmp_path / "out")["report"].read_text()
    rows = _events(md, "hb")
    said = [r[3] for r in rows]
    assert said == ["ended without an end record", "resume", "completed"], rows
    _, step, rank, _, detail = rows[0]
    assert (step, rank) == ("441", "0"), rows[0]
    assert detail.startswith(
        "exit status 1 without an end record; its last record cut at step 441 (full disk or killed mid-write); "
        "steps 401-441 lost: the next attempt resumed from step 400"
    ), detail
    assert DISK_FULL in detail, detail  # the trainer's own line says why
    assert "corrupt" not in md, md
    h = load_run(run)
    assert h.corrupt == 0 and [(c.rank, c.step) for c in h.cut_short] == [(0, 441)]
    assert "corrupt" not in invoke("status", str(run)).stdout


def test_a_crashed_newest_attempt_has_its_row_too_but_a_running_one_has_none(tmp_path: Path) -> None:
    crashed = _disk_full_run(tmp_path, resumed=False)  # no resume: the run ends there, its session gone
    md = build_report([crashed], tmp_path / "out")["report"].read_text()
    rows = _events(md, "hb")
    assert [r[3] for r in rows] == ["ended without an end record"], rows
    assert "its last record cut at step 441 (full disk or killed mid-write)" in rows[0][4], rows
    running = make_v1_run(tmp_path / "live", steps=100)  # no end record yet: it runs
    md = build_report([running.path], tmp_path / "out2")["report"].read_text()
    assert "## Events" not in md, md


def test_a_corrupt_line_in_the_middle_is_still_corruption(tmp_path: Path) -> None:
    """Only an attempt's last line can be cut by its end: one followed by more records of the same attempt is
    damage, and so is a line that is no record's beginning, and one after the rank's end record."""
    w = make_v1_run(tmp_path / "r", steps=100)
    _cut(w, 101)
    with open(w.path / schema.heartbeat_name(0), "a", encoding="utf-8") as fh:
        fh.write("\n")
    w.progress(2)
    h = load_run(w.path)
    assert h.corrupt == 1 and h.cut_short == [], h.cut_short
    w.end(schema.END_COMPLETED, 0)
    _cut(w, 130)
    with open(w.path / schema.heartbeat_name(0), "a", encoding="utf-8") as fh:
        fh.write("\n")
    assert load_run(w.path).corrupt == 2


def test_a_hung_attempt_killed_with_its_session_and_a_sigkilled_rank_are_said(tmp_path: Path) -> None:
    """Repro (b), 2 ranks: rank 1 SIGKILLed (rank 0 errs that it lost its peer, and ends); resumed, it hangs and
    its tmux server is killed (no end record, no exit status, steps 241-244 lost); resumed again."""
    run = tmp_path / "ddp"
    w = make_v1_run(run, steps=220, log_every=10, n_ranks=2, launch=True)
    (run / schema.CONSOLE_LOG).write_text("")
    lost = "RuntimeError: [../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:1234"
    w.error(lost)
    w.ts += 1.0
    w._hb(0, schema.KIND_END, w.step, reason=schema.END_ERROR, exit_status=1)
    report = [
        "Traceback (most recent call last):",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
        "============================================================",
        "nsa_train.train FAILED",
        "------------------------------------------------------------",
        "Failures:",
        "[1]:",
        "  time      : 2026-12-07_10:03:00",
        "  rank      : 0 (local_rank: 0)",
        "  exitcode  : 1 (pid: 4242)",
        "------------------------------------------------------------",
        "Root Cause (first observed failure):",
        "[0]:",
        "  time      : 2026-12-07_10:03:00",
        "  rank      : 1 (local_rank: 1)",
        "  exitcode  : -9 (pid: 4243)",
        "  error_file: <N/A>",
        "  traceback : Signal 9 (SIGKILL) received by PID 4243",
        "============================================================",
    ]
    write_console(run, [STARTING, f"error: {lost}", *report, "[nsa 2026-12-07 10:03:01] torchrun exited with status 1"])
    write_console(run, [STARTING])
    boot(w, resume=True)
    start_training(w, 1000, 200)
    w.progress(4)  # to step 240
    w.checkpoint()
    w.step = 244
    w.liveness(0, advance_s=2.0)
    w.liveness(1)
    w.stall(120)  # hung, then its tmux server killed: its wrapper too, so no exit status is said
    write_console(run, [STARTING])
    boot(w, resume=True)
    start_training(w, 1000, 240)
    w.progress(2)
    w.end(schema.END_COMPLETED, 0)
    md = build_report([run], tmp_path / "out")["report"].read_text()
    rows = _events(md, "ddp")
    assert [(r[2], r[3]) for r in rows] == [
        ("0", "error"),
        ("1", "rank lost"),
        ("0", "ended by an error"),
        ("0", "resume"),
        ("0", "stall"),
        ("0", "ended without an end record"),
        ("0", "resume"),
        ("0", "completed"),
    ], rows
    assert rows[1][4].startswith("rank 1 stopped with no end record (its last record: step 220, "), rows[1]
    assert "torchrun: exitcode -9 (killed by SIGKILL" in rows[1][4], rows[1]
    step, detail = rows[5][1], rows[5][4]
    assert step == "244", rows[5]
    assert detail == (
        "the tmux session is gone without an end record; its last step 244; steps 241-244 lost: the next attempt "
        "resumed from step 240"
    ), detail


def test_a_lost_rank_of_an_attempt_that_ended_names_its_cut_record(tmp_path: Path) -> None:
    """2 ranks: rank 1's disk filled at step 221 (its record of it cut, no end record), rank 0 lost its peer and
    ended. Rank 0's cut record is named in its row ("rank 0's last record cut at step ..."); rank 1's "rank lost"
    row said only its last whole record (step 220), and the cut one nowhere."""
    w = make_v1_run(tmp_path / "ddp", steps=220, log_every=10, n_ranks=2)
    _cut(w, 221, rank=1)
    w.ts += 2.0
    w.error("RuntimeError: Connection closed by peer [127.0.0.1]:1234")
    w._hb(0, schema.KIND_END, w.step, reason=schema.END_ERROR, exit_status=1)
    md = build_report([w.path], tmp_path / "out")["report"].read_text()
    rows = _events(md, "ddp")
    assert [(r[2], r[3]) for r in rows] == [("1", "rank lost"), ("0", "error"), ("0", "ended by an error")], rows
    _, step, _, _, detail = rows[0]
    assert step == "221", rows[0]
    assert detail.startswith("rank 1 stopped with no end record (its last record: step 220, "), detail
    assert detail.endswith("; rank 1's last record cut at step 221 (full disk or killed mid-write)"), detail
    assert "corrupt" not in md, md
    # rank 1's `[end]` line says why its end record is missing: quoted, not guessed
    why = "cannot write heartbeat_rank1.jsonl in r: no space left on device (0 B free)"
    write_console(
        w.path, [f"[end] rank 1: error at step 221 (exit status 2); its end record could not be written: {why}"]
    )
    rows = _events(build_report([w.path], tmp_path / "out2")["report"].read_text(), "ddp")
    assert f": its end record could not be written: {why}; rank 1's last record cut at step 221" in rows[0][4], rows
