"""A run directory renamed or deleted under a running trainer (nsa_train/runtime/run_dir_moves.py).

`mv runs/exp runs/exp-lr3e-4` mid-run crashed the trainer within seconds: TensorBoard's writer thread printed
`Exception in thread` tracebacks for the old path, then the run ended `error` with its steps since the last checkpoint
lost. A rename now goes on at the new path, said once; a deleted directory ends the run in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from trainer_helpers import REPO, clean_env, kill_with_ranks, records, train_cmd, training, wait_for

from nsa_train.runtime import checkpoint as ck
from nsa_train.runtime.run_dir_moves import FollowedRunDir, RunDirLost
from nsa_train.runtime.thread_errors import leave_kept_errors_to_owners
from nsa_train.telemetry import schema

# step 6 sleeps: the directory is renamed or deleted while the run is inside it, between two of its writes
AT_STEP_6 = {"NSA_TEST_SLOW_STEP": "6:3"}


def progress_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in records(run_dir) if r["kind"] == schema.KIND_PROGRESS]


def lines_said(out: str, *words: str) -> list[str]:
    return [line for line in out.splitlines() if any(w in line for w in words)]


@pytest.mark.slow
def test_a_renamed_run_directory_trains_on_there(tmp_path: Path) -> None:
    was, now = tmp_path / "exp", tmp_path / "exp-lr3e-4"
    sets = ("train.steps=12", "train.save_every=4", "train.eval_every=4", "runtime.tensorboard=true")
    with training(was, *sets, **AT_STEP_6) as proc:
        wait_for(lambda: 5 in progress_steps(was), 120, "step 5")
        was.rename(now)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert lines_said(out, "[moved]") == [f"[moved] run directory {was} is now {now}: training goes on there"], out
    assert not lines_said(out, "Traceback", "Exception in thread", "error", "warning: shutdown"), out
    assert not was.exists()  # nothing of the run written at the old path

    recs = records(now)
    moved = [r for r in recs if r["kind"] == schema.KIND_MOVED]
    assert [(r["step"], r[schema.MOVED_FROM], r[schema.MOVED_TO]) for r in moved] == [(5, str(was), str(now))]
    assert not schema.validate(moved[0])
    assert (recs[-1]["kind"], recs[-1]["reason"], recs[-1]["step"]) == (schema.KIND_END, "completed", 12)
    saved = [r["path"] for r in recs if r["kind"] == schema.KIND_CHECKPOINT and r["step"] > 5]
    assert saved == [str(now / "checkpoints" / f"step_{s:08d}.pt") for s in (8, 12)]
    latest = ck.read_pointer(now / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
    assert latest is not None and ck.load_checkpoint(latest)["step"] == 12

    # the records are whole: every step in training.csv, every evaluation in val.csv, TensorBoard's events
    rows = (now / schema.TRAINING_CSV).read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 13))
    assert [int(r.split(",")[0]) for r in (now / schema.VAL_CSV).read_text().splitlines()[1:]] == [4, 8, 12]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(now / schema.TB_DIR))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 13))
    summary = json.loads((now / schema.SUMMARY_JSON).read_text())
    assert (summary["run"], summary["end_reason"], summary["steps_completed"]) == (now.name, "completed", 12)
    assert not list(now.glob(".stackdump*"))  # the stack dumper's spare file, removed where it went

    # the tools: the report's events say the rename; `nsa status OLD-PATH` judges the run where it went
    from nsa_tui.report.events import run_events
    from nsa_tui.runs import load_run

    said = [(e.step, e.detail) for e in run_events(load_run(now)) if e.what == "run directory moved"]
    assert said == [(5, f"from {was} to {now}")]
    nsa = Path(sys.executable).with_name("nsa")
    status = subprocess.run([str(nsa), "status", str(was)], env=clean_env(), capture_output=True, text=True)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stderr == f"note: {was} is not there: the run that started there is {now} (renamed)\n"
    assert status.stdout.startswith(f"{now.name} {now} (nsa-v1)  finished  health OK")


@pytest.mark.slow
def test_a_deleted_run_directory_ends_the_run_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "exp"
    with training(run, "train.steps=12", "runtime.tensorboard=true", **AT_STEP_6) as proc:
        wait_for(lambda: 5 in progress_steps(run), 120, "step 5")
        with open(run / schema.heartbeat_name(0), encoding="utf-8") as heartbeat:  # readable once deleted
            subprocess.run(["rm", "-rf", str(run)], check=True)
            out, _ = proc.communicate(timeout=120)
            recs = [json.loads(line) for line in heartbeat.read().splitlines()]
    assert proc.returncode == 2, out
    said = (
        f"error: the run directory {run} was deleted while the trainer ran (a `mv` to another filesystem copies it, "
        "then deletes it): nothing more of the run can be written, so it stops here; resume a copy of the directory "
        "with --resume --run-dir COPY"
    )
    assert lines_said(out, "error", "warning", "Traceback", "Exception") == [
        said,
        "[end] error at step 5 (exit status 2)",
    ]
    assert not run.exists()  # nothing made again at its path
    error, end = [r for r in recs if r["kind"] == schema.KIND_ERROR][-1], recs[-1]
    assert error["message"] == said.removeprefix("error: ")
    assert (end["kind"], end["reason"], end["exit_status"], end["step"]) == (schema.KIND_END, "error", 2, 5)


@pytest.mark.slow
def test_both_torchrun_ranks_follow_a_renamed_run_directory_and_its_halt(tmp_path: Path) -> None:
    was, now = tmp_path / "exp", tmp_path / "exp-b"
    cmd = train_cmd(was, "train.steps=100000", torchrun=2)
    env = clean_env(**AT_STEP_6)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: 5 in progress_steps(was), 120, "step 5")
        was.rename(now)
        moved = lambda r: [x for x in records(now, r) if x["kind"] == schema.KIND_MOVED]  # noqa: E731
        wait_for(lambda: moved(0) and moved(1), 60, "both ranks' moved records")
        (now / schema.HALT_FILE).touch()  # looked for where the directory went
        out, _ = proc.communicate(timeout=90)
    finally:
        kill_with_ranks(proc)
    assert proc.returncode == 0, out
    assert len(lines_said(out, "[moved]")) == 1, out  # rank 0 says it
    ends = [records(now, r)[-1] for r in (0, 1)]
    assert all(e["kind"] == schema.KIND_END and e["reason"] == "halt" for e in ends), ends
    assert ends[0]["step"] == ends[1]["step"]
    latest = ck.read_pointer(now / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
    assert latest is not None and latest.name == ck.checkpoint_file_name(ends[0]["step"])
    assert not (now / schema.HALT_FILE).exists() and not was.exists()


def test_follow_reads_a_rename_once_and_a_deletion_as_lost(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    where = FollowedRunDir(a)
    assert where.follow() is None and where.path == a
    a.rename(b)
    a.mkdir()  # another directory at the old name is not the run's
    assert where.follow() == b and where.path == b
    assert where.follow() is None
    b.rmdir()
    with pytest.raises(RunDirLost, match=f"the run directory {b} was deleted while the trainer ran"):
        where.follow()
    assert where.lost is not None
    with pytest.raises(RunDirLost):  # said again on each look, never taken for a directory that came back
        where.follow()


def test_a_thread_that_keeps_its_error_for_its_owner_is_not_printed() -> None:
    class Keeper(threading.Thread):  # as TensorBoard's writer thread: keeps it for its owner, and re-raises
        exception: Exception | None = None

        def run(self) -> None:
            try:
                raise FileNotFoundError("events file gone")
            except Exception as e:
                self.exception = e
                raise

    printed: list[str] = []  # what the hook before it (Python's: `Exception in thread ...`) was given
    previous = threading.excepthook
    threading.excepthook = lambda args: printed.append(args.thread.name if args.thread else "")
    leave_kept_errors_to_owners()
    try:
        keeper = Keeper(name="keeper")
        keeper.start()
        keeper.join()
        other = threading.Thread(target=lambda: 1 / 0, name="other")
        other.start()
        other.join()
    finally:
        threading.excepthook = previous
    assert printed == ["other"]  # any other thread's failure is printed as before
    assert isinstance(keeper.exception, FileNotFoundError)


def test_tensorboards_failed_writer_is_the_runs_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from nsa_train.telemetry.writer import MetricsLog, TensorBoardFailed

    run, tb_parent = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    tb_parent.mkdir()
    previous = threading.excepthook
    leave_kept_errors_to_owners()
    try:
        log = MetricsLog(run, True, tb_parent=tb_parent)
        log.eval(1, 2.0, 7.4)
        subprocess.run(["rm", "-rf", str(tb_parent)], check=True)  # its events file, opened by path at each write
        with pytest.raises(TensorBoardFailed) as failed:
            wait_for(lambda: log.eval(2, 2.0, 7.4), 10, "the writer thread's failure, raised")
        log.close()  # its failure is said: not raised again
    finally:
        threading.excepthook = previous
    said = str(failed.value)
    assert said.startswith(f"TensorBoard's writer could not write its events in {run / 'tb'}: No such file"), said
    assert "\n" not in said and "Exception in thread" not in capfd.readouterr().err


def test_a_path_not_there_names_the_runs_that_first_booted_there(tmp_path: Path) -> None:
    from nsa_tui.errors import UserError
    from nsa_tui.rundir import resolve_run

    def booted_at(d: Path, run_dir: Path) -> None:
        d.mkdir()
        boot = schema.make_record(schema.KIND_BOOT, 0, 0, 1, 1.0, run_dir=str(run_dir), world_size=1)
        (d / schema.heartbeat_name(0)).write_text(schema.encode(boot))

    old = tmp_path / "exp"
    booted_at(tmp_path / "other", tmp_path / "other")
    booted_at(tmp_path / "exp-lr3e-4", old)
    assert resolve_run(str(old), tmp_path) == tmp_path / "exp-lr3e-4"
    booted_at(tmp_path / "exp-copy", old)  # two: never a silent choice
    with pytest.raises(UserError, match="runs that started there are .*exp-copy; .*exp-lr3e-4"):
        resolve_run(str(old), tmp_path)


def test_a_relative_path_not_there_is_looked_for_as_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nsa status runs/exp` after `mv runs/exp runs/exp2` said `no run directory` where the absolute path and the
    bare name found the run: the relative path was looked for under the runs root (runs/runs/exp) only."""
    from fixtures.cli import invoke
    from fixtures.runs import make_v1_run

    root = tmp_path / "runs"
    make_v1_run(root / "exp", steps=100, state="finished")
    (root / "exp").rename(root / "exp2")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    note = f"note: {root / 'exp'} is not there: the run that started there is {root / 'exp2'} (renamed)"
    for run in ("runs/exp", "./runs/exp", str(root / "exp"), "exp"):
        res = invoke("status", "--json", run)
        assert res.exit_code == 0 and json.loads(res.stdout)["run"] == "exp2", (run, res.stdout, res.stderr)
        assert res.stderr.strip() == note, run


def test_without_proc_a_rename_ends_the_run_in_its_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /proc/self/fd is not there (macOS), a renamed directory cannot be followed: its path no longer holding
    it is the run's one line, never a write to a path that leads elsewhere."""
    from nsa_train.runtime import run_dir_moves

    monkeypatch.setattr(run_dir_moves, "PROC_FD", str(tmp_path / "no-proc"))
    a = tmp_path / "a"
    a.mkdir()
    where = FollowedRunDir(a)
    assert where.stable == a and where.follow() is None
    a.rename(tmp_path / "b")
    a.mkdir()  # another directory at its path is not the run's
    with pytest.raises(RunDirLost, match=f"the run directory {a} is not at its path any more \\(moved or deleted"):
        where.follow()
