"""A disk that fills up under a running trainer: one line and exit 2, wherever the write fails (the checkpoint
case is in test_checkpoint.py). A link to /dev/full fails every write with ENOSPC, as a full disk does."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from trainer_helpers import records, run_train

from nsa_train.telemetry import schema
from nsa_train.telemetry.disk import DiskFullError
from nsa_train.telemetry.writer import HeartbeatWriter, MetricsLog

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")


def test_the_heartbeat_writer_says_which_file_and_lets_the_end_through(tmp_path: Path) -> None:
    (tmp_path / schema.heartbeat_name(0)).symlink_to("/dev/full")
    hb = HeartbeatWriter(tmp_path, 0)
    with pytest.raises(DiskFullError) as info:
        hb.write(schema.KIND_PROGRESS, 7, loss=1.0)
    msg = str(info.value)
    assert msg.startswith(f"cannot write heartbeat_rank0.jsonl in {tmp_path}: no space left on device (")
    assert "the run stops at step 7: checkpoints written before are intact" in msg and "--resume" in msg
    hb.write(schema.KIND_END, 7, reason="error", exit_status=2, best_effort=True)  # the stopping run's last words
    hb.close()


def test_the_metrics_files_say_which_file(tmp_path: Path) -> None:
    (tmp_path / schema.TRAINING_CSV).symlink_to("/dev/full")
    with pytest.raises(DiskFullError, match=r"cannot write training.csv in .*: no space left on device"):
        MetricsLog(tmp_path, tensorboard=False)


def test_a_full_disk_at_boot_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / schema.heartbeat_name(0)).symlink_to("/dev/full")
    proc = run_train(run, "train.steps=2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot write heartbeat_rank0.jsonl in {run}: no space left on device "
        f"({proc.stderr.split('(', 1)[1].split(')', 1)[0]}); the run stops at step 0: checkpoints written before "
        "are intact. Free space and continue with --resume"
    ]


def test_a_full_disk_under_the_metrics_stops_the_run_with_its_records(tmp_path: Path) -> None:
    """The heartbeat still has room (another disk, or the last bytes): the error and end records say why."""
    run = tmp_path / "r"
    run.mkdir()
    (run / schema.TRAINING_CSV).symlink_to("/dev/full")
    proc = run_train(run, "train.steps=2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error: cannot write training.csv in {run}: no space left on device" in proc.stderr
    recs = records(run)
    assert recs[-1]["kind"] == "end" and recs[-1]["reason"] == "error" and recs[-1]["exit_status"] == 2
    assert any(r["kind"] == "error" and "training.csv" in r["message"] for r in recs)
    assert json.loads((run / schema.SUMMARY_JSON).read_text())["end_reason"] == "error"


def test_closing_after_a_full_disk_says_nothing_more(tmp_path: Path) -> None:
    """The row that could not be flushed is still buffered: closing flushes it again, which must not add a second
    message (it did: 'warning: shutdown: metrics files: OSError ...' after the one line)."""
    log = MetricsLog(tmp_path, tensorboard=False)
    full = open("/dev/full", "a", encoding="utf-8", newline="")  # noqa: SIM115 (closed by log.close)
    log._train._fh, log._train._w = full, csv.writer(full, lineterminator="\n")
    with pytest.raises(DiskFullError, match="the run stops at step 3"):
        log.progress(3, {"loss": 1.0, "lr": 1e-3, "toks_per_s": 1.0, "grad_norm": 1.0, "dt_step_s": 0.1}, 0.0)
    log.close()
    assert full.closed


def test_a_line_cut_by_the_previous_process_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    """A full disk cut the end record mid-line (`{"v":1,"ts":179655`); the resume appended its boot record to it and
    that record was lost for good (one corrupt line): the next record starts a new line. The same for the CSVs."""
    hb_path = tmp_path / schema.heartbeat_name(0)
    hb_path.write_text('{"v":1,"kind":"progress"}\n{"v":1,"ts":179655')
    hb = HeartbeatWriter(tmp_path, 0)
    hb.write(schema.KIND_BOOT, 0)
    hb.write(schema.KIND_LIVENESS, 0)
    hb.close()
    lines = hb_path.read_text().splitlines()
    assert lines[1] == '{"v":1,"ts":179655'
    assert [schema.decode(line)["kind"] for line in lines[2:]] == ["boot", "liveness"]
    csv_path = tmp_path / schema.TRAINING_CSV
    csv_path.write_text(",".join(schema.TRAINING_CSV_HEADER) + "\n1,2.5,0.1\n2,2.4")
    log = MetricsLog(tmp_path, tensorboard=False)
    log.close()
    assert csv_path.read_text().endswith("\n2,2.4\n")  # the cut row stays cut, on its own line


def test_a_table_an_older_trainer_began_keeps_its_columns(tmp_path: Path) -> None:
    """A resume after an upgrade that added a column wrote rows one value wider than the file's header: every
    value after the new column shifted under the wrong name."""
    old_header = [c for c in schema.TRAINING_CSV_HEADER if c != "gate_entropy_min"]
    (tmp_path / schema.TRAINING_CSV).write_text(",".join(old_header) + "\n")
    log = MetricsLog(tmp_path, tensorboard=False)
    m = {"loss": 2.0, "lr": 1e-3, "toks_per_s": 10.0, "grad_norm": 1.0, "dt_step_s": 0.1, "gate_entropy_min": 0.4}
    log.progress(3, {**m, "rss_gb": 1.5}, ts=1.0)
    log.close()
    rows = list(csv.DictReader((tmp_path / schema.TRAINING_CSV).open()))
    assert len(rows) == 1 and list(rows[0]) == old_header
    assert (rows[0]["step"], rows[0]["loss"], rows[0]["rss_gb"]) == ("3", "2.0", "1.5")


def test_the_watchdog_thread_outlives_a_failed_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A full disk while the watchdog published a dump (or opened its spare file) killed its thread: stall detection
    and SIGUSR1 dumps stopped for the rest of the run, said by a thread traceback only."""
    import threading

    from nsa_train.runtime.watchdog import StackDumper, Watchdog

    dumper = StackDumper(tmp_path, 0)
    real_poll, failures = dumper.poll, [OSError(28, "No space left on device")] * 3

    def poll() -> None:
        if failures:
            raise failures.pop()
        real_poll()

    dumper.poll = poll  # type: ignore[method-assign]
    stalled = threading.Event()
    dog = Watchdog(dumper, stall_s=0.3, on_stall=lambda *a: stalled.set(), poll_s=0.05)
    dog.start()
    try:
        assert stalled.wait(10), "the watchdog stopped checking after its first failure"
        assert dog.is_alive()
    finally:
        dog.stop()
        dumper.close()
    err = capsys.readouterr().err
    assert err.count("warning: the stall watchdog failed a check and goes on (OSError: [Errno 28]") == 1


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    from nsa_train.telemetry.atomic import write_text_atomic

    target = tmp_path / "run.json"
    write_text_atomic(target, "old\n")
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    blocked = tmp_path / "config.yaml"
    blocked.mkdir()  # the rename over it fails
    with pytest.raises(OSError):
        write_text_atomic(blocked, "x\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "run.json"]


def test_the_end_line_does_not_claim_an_end_record_the_full_disk_kept_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rank 0 printed `[end] error at step 91 (exit status 2)` though its heartbeat, full, held no end record:
    the console and `nsa status` (which finds none) disagreed. The line now says the record is missing and why;
    a rank other than 0, silent at its end otherwise, says it too (the tools find its end missing as well)."""
    from nsa_train.runtime.control import StopRequests
    from nsa_train.train import _Ending

    for rank in (0, 1):
        hb = HeartbeatWriter(tmp_path, rank)
        hb.write(schema.KIND_PROGRESS, 91, loss=2.5)
        hb._fh.close()  # type: ignore[union-attr]
        hb._fh = open("/dev/full", "a", encoding="utf-8")  # noqa: SIM115 (the disk fills; closed by hb.close)
        end = _Ending(reason=schema.END_ERROR, status=2, step=91)
        end.write(hb, StopRequests(tmp_path, rank == 0), resume=False, rank=rank)
        out = capsys.readouterr().out
        who = "" if rank == 0 else f"rank {rank}: "
        assert out.startswith(
            f"[end] {who}error at step 91 (exit status 2); its end record could not be written: cannot write "
            f"{schema.heartbeat_name(rank)} in {tmp_path}: no space left on device ("
        ), out
        assert [r["kind"] for r in records(tmp_path, rank=rank)] == ["progress"]
        # the tools read the why from that line (nsa status, nsa report: the rank's missing end record)
        from nsa_tui.health.console_tail import rank_end_unwritten

        why = rank_end_unwritten(out.splitlines(), rank)
        assert why is not None and why.startswith(f"cannot write {schema.heartbeat_name(rank)} in "), out
        assert rank_end_unwritten(out.splitlines(), 1 - rank) is None

    (tmp_path / "room").mkdir()  # a disk with room: the record and the plain line, as before
    hb = HeartbeatWriter(tmp_path / "room", 0)
    _Ending(reason=schema.END_ERROR, status=2, step=91).write(hb, StopRequests(tmp_path, True), False, 0)
    assert capsys.readouterr().out == "[end] error at step 91 (exit status 2)\n"
    assert [r["kind"] for r in records(tmp_path / "room")] == ["liveness", "end"]


def test_a_run_file_rewritten_in_the_loop_names_the_step_the_run_stops_at(tmp_path: Path) -> None:
    """run.json is rewritten after the first step (the attention paths it ran): a full disk there said "the run
    stops at step 0", the step of the start-up writes."""
    import os

    from nsa_train.train import _atomic_write_text

    (tmp_path / f".run.json.{os.getpid()}.tmp").symlink_to("/dev/full")  # write_text_atomic's temp file
    with pytest.raises(DiskFullError, match="the run stops at step 1: checkpoints written before are intact"):
        _atomic_write_text(tmp_path / schema.RUN_JSON, "{}\n", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # its temp file removed, no run.json half written
