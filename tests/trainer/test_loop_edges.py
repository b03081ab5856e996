"""The training loop at its edges: an eval off a log step, a halt on the last step, a resume with nothing
left to do, an unwritable run directory, a backend the device cannot run."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from trainer_helpers import REPO, clean_env, records, run_train, train_cmd, training, wait_for

from nsa_train.runtime import checkpoint as ck
from nsa_train.telemetry import schema


def progress(run_dir: Path) -> dict[int, dict]:
    return {r["step"]: r for r in records(run_dir) if r["kind"] == "progress"}


def stop_while(run: Path, after: int, stop: Callable[[subprocess.Popen], object], *overrides: str, **env: str):
    """Train; once step ``after`` is logged, ``stop`` (a .HALT, a signal) while the next step, slowed by
    NSA_TEST_SLOW_STEP, or its evaluation runs. -> (the output, the last record) of a trainer that exited 0."""
    with training(run, *overrides, **env) as proc:
        wait_for(lambda: after in progress(run), 120, f"step {after}")
        stop(proc)
        out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    return out, records(run)[-1]


def halt(run: Path) -> Callable[[subprocess.Popen], object]:
    return lambda _proc: (run / schema.HALT_FILE).touch()


def sigterm(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)


def test_an_eval_off_a_log_step_leaves_the_window_its_steps_time(tmp_path: Path) -> None:
    """Steps 11-20 are one window; step 14 takes a second, the eval falls on step 15. The window's time is
    its steps' (the eval's excluded), so step 20's record says ~0.1 s a step, not the time of 16-20 divided
    over all ten steps (which made tokens/s twice too high)."""
    run = tmp_path / "r"
    proc = run_train(run, "train.steps=20", "train.log_every=10", "train.eval_every=15", NSA_TEST_SLOW_STEP="14:1.0")
    assert proc.returncode == 0, proc.stderr
    rec = progress(run)[20]
    assert 0.1 <= rec["dt_step_s"] < 0.5, rec
    assert rec["toks_per_s"] * rec["dt_step_s"] == pytest.approx(4 * 32)  # batch 4 x seq 32: one step's tokens
    assert any(r["kind"] == "eval" and r["step"] == 15 for r in records(run))


def test_a_halt_on_the_last_step_finishes_the_run(tmp_path: Path) -> None:
    """Nothing is left to resume after the last step: the run ends completed, with its final eval and best
    pointer, and the .HALT is gone (it would stop the next run in this directory)."""
    run = tmp_path / "r"
    _, end = stop_while(run, 5, halt(run), "train.steps=6", NSA_TEST_SLOW_STEP="6:2")  # during step 6's 2 s
    assert (end["kind"], end["reason"], end["step"]) == ("end", "completed", 6), end
    summary = json.loads((run / schema.SUMMARY_JSON).read_text())
    assert summary["final_val_loss"] is not None and summary["best_val_loss"] is not None
    assert ck.read_pointer(run / "checkpoints", schema.BEST_POINTER) is not None
    assert not (run / schema.HALT_FILE).exists()


def test_a_signal_on_the_last_step_finishes_the_run(tmp_path: Path) -> None:
    """SIGTERM during the last step saved it and stopped before the final evaluation: no final val loss, no best
    pointer, and a resume at train.steps had nothing to do, so none could make them up."""
    run = tmp_path / "r"
    _, end = stop_while(run, 5, sigterm, "train.steps=6", "train.eval_every=0", NSA_TEST_SLOW_STEP="6:2")
    assert (end["kind"], end["reason"], end["step"]) == ("end", "completed", 6), end
    assert [r["step"] for r in records(run) if r["kind"] == "eval"] == [6]
    assert ck.read_pointer(run / "checkpoints", schema.BEST_POINTER).name == ck.checkpoint_file_name(6)


def test_a_halt_on_an_eval_step_evaluates_it_first(tmp_path: Path) -> None:
    """A halt during step 10 with eval_every 5 stopped before the step's evaluation: val.csv kept a hole no resume
    fills, and the best checkpoint was chosen without it."""
    run = tmp_path / "r"
    _, end = stop_while(run, 9, halt(run), "train.steps=40", "train.eval_every=5", NSA_TEST_SLOW_STEP="10:2")
    assert (end["kind"], end["reason"], end["step"]) == ("end", "halt", 10), end
    assert [r["step"] for r in records(run) if r["kind"] == "eval"] == [5, 10]
    assert [line.split(",")[0] for line in (run / schema.VAL_CSV).read_text().splitlines()[1:]] == ["5", "10"]


def test_a_halt_during_the_final_evaluation_is_removed_when_the_run_completes(tmp_path: Path) -> None:
    """`nsa halt` during the last step's evaluation: the run completed and the .HALT stayed, to stop the next run
    started here by hand at once."""
    run = tmp_path / "r"
    out, end = stop_while(run, 6, halt(run), "train.steps=6", "train.eval_batches=400")  # in the final evaluation
    assert (end["kind"], end["reason"]) == ("end", "completed"), end
    assert not (run / schema.HALT_FILE).exists()
    assert ".HALT came after the last step: the run completed; removed it" in out


def test_a_resume_with_nothing_to_do_leaves_the_summary_and_one_with_work_keeps_the_val_loss(tmp_path: Path) -> None:
    """A resume refused for want of steps writes no summary of its own (it replaced the finished run's with an
    "error" one); a resumed attempt that stops before its first eval still reports the run's last val loss."""
    run = tmp_path / "r"
    assert run_train(run, "train.steps=4").returncode == 0
    before = (run / schema.SUMMARY_JSON).read_text()
    assert json.loads(before)["end_reason"] == "completed"
    val = json.loads(before)["final_val_loss"]
    assert val is not None
    proc = run_train(run, "train.steps=4", resume=True)
    assert proc.returncode == 2 and "nothing to do" in proc.stderr and "Traceback" not in proc.stderr
    assert (run / schema.SUMMARY_JSON).read_text() == before
    with training(run, "train.steps=40", resume=True, NSA_TEST_SLOW_STEP="6:2") as proc:
        wait_for(lambda: 5 in progress(run) and records(run)[-1]["kind"] != "end", 120, "step 5 of the resume")
        (run / schema.HALT_FILE).touch()
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    summary = json.loads((run / schema.SUMMARY_JSON).read_text())
    assert summary["end_reason"] == "halt" and summary["final_val_loss"] == val


def test_nccl_on_cpu_is_one_error(tmp_path: Path) -> None:
    torchrun = train_cmd(tmp_path / "r", "train.steps=2", "runtime.backend=nccl", torchrun=2)
    proc = subprocess.run(torchrun, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors and all("runtime.backend: nccl runs only on CUDA GPUs" in e for e in errors), proc.stderr
    # the ranks stop at the config check (torchrun's own failure report follows, as for any failed rank)
    assert "NCCL built in" not in proc.stderr and proc.stderr.count("Traceback") <= 1, proc.stderr


def test_an_error_every_rank_meets_is_left_to_rank_0_which_torchrun_lets_speak(tmp_path: Path) -> None:
    """torchrun stops every rank once one exits with an error. Rank 1 used to exit at once, silent, and under load
    took rank 0 down before it printed: a failed run with no message (CI, 2026-12-06). Rank 1 now outlives a grace
    (torchrun ends it when rank 0 has spoken) and says the error itself only if it is still alive after it."""
    from nsa_train.train import RANK0_GRACE_S

    def alone(rank: int, run_dir: Path) -> subprocess.Popen:
        cmd = train_cmd(run_dir, "train.stepz=2")
        env = clean_env(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    rank0 = alone(0, tmp_path / "r0")
    _, err0 = rank0.communicate(timeout=60)
    assert rank0.returncode == 2 and err0.startswith("error: ") and "train.stepz" in err0, err0

    rank1 = alone(1, tmp_path / "r1")
    ended = lambda: [r["kind"] for r in records(tmp_path / "r1", rank=1)][-1:] == ["end"]  # noqa: E731
    wait_for(ended, 60, "rank 1's end record")
    time.sleep(1.0)
    assert rank1.poll() is None, rank1.communicate()  # its records written, it waits for torchrun to end it
    rank1.terminate()  # what torchrun does once rank 0 exits
    _, err1 = rank1.communicate(timeout=30)
    assert rank1.returncode == -signal.SIGTERM and "error" not in err1, err1  # said once: by rank 0

    rank1 = alone(1, tmp_path / "r2")  # nobody ends it: rank 0 never got there
    t0 = time.monotonic()
    _, err1 = rank1.communicate(timeout=60 + RANK0_GRACE_S)
    assert time.monotonic() - t0 >= RANK0_GRACE_S
    assert rank1.returncode == 2 and err1.startswith("error (rank 1): ") and "train.stepz" in err1, err1
    # its heartbeat has the end record before the wait (torchrun's SIGTERM must not cost the run's records)
    kinds = [r["kind"] for r in records(tmp_path / "r2", rank=1)]
    assert "error" in kinds and kinds[-1] == "end", kinds


def test_the_wait_for_a_replaying_stream_is_reported_while_it_moves(tmp_path: Path, capsys) -> None:
    """What the trainer does with the stream's reports (every 30 s without a first batch): a phase record and
    a watchdog touch only when the replay moved (the tools then see a moving start), a console line always."""
    from types import SimpleNamespace

    from nsa_train.telemetry.writer import HeartbeatWriter
    from nsa_train.train import Trainer

    touched: list[int] = []
    hb = HeartbeatWriter(tmp_path, 0)
    fake = SimpleNamespace(
        step=600,
        replay_reported=0,
        hb=hb,
        watchdog=SimpleNamespace(touch=lambda: touched.append(1)),
        info=SimpleNamespace(is_main=True),
    )
    for waited, replayed in ((30, 0), (60, 12_000), (90, 12_000), (120, 30_000)):
        Trainer._first_batch_wait(fake, waited, replayed, 2_000_000)  # type: ignore[arg-type]
    hb.close()
    phases = [r for r in records(tmp_path) if r["kind"] == "phase"]
    assert [(r["phase"], r["replayed"], r["replay_of"], r["step"]) for r in phases] == [
        ("data", 12_000, 2_000_000, 600),
        ("data", 30_000, 2_000_000, 600),
    ]
    assert all(set(r) == {*schema.COMMON_FIELDS, "phase", *schema.DATA_REPLAY_FIELDS} for r in phases), phases
    assert len(touched) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[data] 30s waiting for the first batch"
    replaying = "replaying the stream to the saved position, document 30,000 of 2,000,000"
    assert out[-1] == f"[data] 120s waiting for the first batch: {replaying}"


def test_a_loop_that_raises_still_reports_its_training_time(tmp_path: Path) -> None:
    """A rank whose loop raised (a peer's gloo error, a data error) wrote train_time_s 0.0 and mean_toks_per_s
    null: the time was measured only when the loop returned."""
    import time
    from types import SimpleNamespace

    from nsa_train.config import load_config
    from nsa_train.train import Trainer

    t = SimpleNamespace(
        run_dir=tmp_path, cfg=load_config(None), step=11, tokens_seen=11 * 2048, tokens_this_process=11 * 2048,
        last_val=None, best_val=None, best_step=None, t_boot=time.time() - 5.0, train_wall_s=0.0,
        t_train=time.perf_counter() - 2.0,
    )  # fmt: skip
    t.loop_seconds = lambda: Trainer.loop_seconds(t)  # type: ignore[arg-type]
    Trainer._write_summary(t, schema.END_ERROR)  # type: ignore[arg-type]
    s = json.loads((tmp_path / schema.SUMMARY_JSON).read_text())
    assert s["train_time_s"] >= 2.0 and s["mean_toks_per_s"] == pytest.approx(11 * 2048 / s["train_time_s"])
    t.t_train = None  # failed before the loop: no training time
    t.train_wall_s = 0.0
    Trainer._write_summary(t, schema.END_ERROR)  # type: ignore[arg-type]
    assert json.loads((tmp_path / schema.SUMMARY_JSON).read_text())["mean_toks_per_s"] is None


def test_torchrun_without_a_run_dir_is_one_error(tmp_path: Path) -> None:
    """Every rank printed a traceback ending in ConfigError, then torchrun its own."""
    cmd = train_cmd(tmp_path / "r", "train.steps=2", torchrun=2)
    i = cmd.index("--run-dir")
    del cmd[i : i + 2]
    proc = subprocess.run(cmd, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert errors == ["error: --run-dir is required under torchrun (every rank must write to the same directory)"]
    assert "ConfigError" not in proc.stderr, proc.stderr


def test_a_second_trainer_for_a_live_run_directory_is_refused(tmp_path: Path) -> None:
    """A --force or --resume started by hand while the run still trained: the two pruned each other's checkpoints
    and both died with a traceback. The second is refused before it writes anything; once the first is gone
    (kill -9: the kernel drops its lock) the resume goes through."""
    run = tmp_path / "r"
    with training(run, "train.steps=400", "train.save_every=2", NSA_TEST_SLOW_STEP="3:0.2") as first:
        wait_for(lambda: 4 in progress(run), 120, "step 4 of the first trainer")
        heartbeat = (run / "heartbeat_rank0.jsonl").read_bytes()
        for extra in ({"resume": True}, {}):
            args = ["train.steps=400"] if extra else ["train.steps=400", "--force"]
            proc = run_train(run, *args, **extra) if extra else subprocess.run(
                [*train_cmd(run, "train.steps=400"), "--force"], cwd=REPO, env=clean_env(), capture_output=True,
                text=True, timeout=120,
            )  # fmt: skip
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.strip() == (
                f"error: {run} is in use: a live trainer (pid {first.pid}, rank 0) writes to it; stop it first "
                f"(`nsa halt {run}`), or choose another --run-dir"
            )
            # nothing of the refused attempt in the live run's records
            assert (run / "heartbeat_rank0.jsonl").read_bytes()[: len(heartbeat)] == heartbeat
            assert all(r["kind"] != "boot" for r in records(run)[1:])
        assert first.poll() is None
        first.kill()
        first.wait()
    latest = ck.read_pointer(run / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
    assert latest is not None
    proc = run_train(run, f"train.steps={schema.checkpoint_step(latest.name) + 2}", resume=True)
    assert proc.returncode == 0, proc.stderr


def test_a_data_error_met_by_every_rank_is_said_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A corpus with fewer training documents than ranks fails on every rank alike (DataError(every_rank=True)):
    rank 0 says it, the others record it and keep quiet (main's end: say_once_for_all_ranks); a rank's own data
    error is still said by that rank."""
    from nsa_train.data import DataError
    from nsa_train.telemetry.writer import HeartbeatWriter
    from nsa_train.train import _Ending

    hb = HeartbeatWriter(tmp_path, 1)
    shared, own = _Ending(), _Ending()
    shared.failed(DataError("x has 1 training document for 2 ranks", every_rank=True), hb, 1)
    assert capsys.readouterr().err == "" and shared.shared_error() == "x has 1 training document for 2 ranks"
    own.failed(DataError("this rank's shard is unreadable"), hb, 1)
    assert capsys.readouterr().err == "error (rank 1): this rank's shard is unreadable\n"
    assert own.shared_error() is None
    hb.close()
