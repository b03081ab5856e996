"""`nsa halt` and the trainer's side of .HALT, on fabricated run dirs and real tmux sessions (no trainer):
which attempt an `end` belongs to, whether the run is alive at all, which .HALT is stale."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from fixtures.cli import invoke

from nsa_train.runtime.control import LAUNCH_TIME_ENV, StopRequests, attempt_start, process_start_time
from nsa_tui.commands.attach import attach_argv_for
from nsa_tui.launch import halt, tmux

from .helpers import REPO, nsa, tmux_sessions

T0 = 1_700_000_000.0


def _run(runs_dir: Path, name: str, records: list[dict], socket_name: str | None, launched: float | None) -> Path:
    """A run dir as `nsa launch` leaves it (launch.json of this host) with rank 0's heartbeat ``records``."""
    run = runs_dir / name
    run.mkdir()
    if launched is not None:
        launch = {"name": name, "tmux_session": tmux.session_name(name), "tmux_socket": socket_name}
        launch |= {"ts": launched, "host": socket.gethostname()}
        (run / "launch.json").write_text(json.dumps(launch))
    with open(run / "heartbeat_rank0.jsonl", "w") as fh:
        for r in records:
            fh.write(json.dumps({"v": 1, "rank": 0, "pid": 1, **r}) + "\n")
    return run


def _earlier_attempt(ts: float, path: object = "/r/checkpoints/step_00000150.pt") -> list[dict]:
    return [
        {"kind": "boot", "step": 0, "ts": ts},
        {"kind": "checkpoint", "step": 150, "path": path, "ts": ts + 1},
        {"kind": "end", "step": 150, "reason": "halt", "exit_status": 0, "ts": ts + 2},
    ]


def _session(tmux_socket: str, name: str) -> None:
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", tmux.session_name(name), "sleep", "300"],
                   check=True)  # fmt: skip


def test_a_halt_right_after_resume_is_sent_not_called_ended(runs_dir, tmux_socket):
    """rank 0's last record is still the halted attempt's `end` until the resumed trainer boots: that said
    'run had already ended (reason halt, step 150); nothing to halt', rc 0, while the new attempt trained."""
    now = time.time()
    run = _run(runs_dir, "again", _earlier_attempt(now - 100), tmux_socket, launched=now - 1)
    _session(tmux_socket, "again")
    res = nsa("halt", "again", "--wait", "0")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "already ended" not in res.stdout and "created" in res.stdout
    assert (run / ".HALT").exists()


def test_an_end_of_the_current_attempt_is_still_reported(runs_dir, tmux_socket):
    now = time.time()
    run = _run(runs_dir, "over", _earlier_attempt(now - 10, path=5), tmux_socket, launched=now - 100)
    res = nsa("halt", "over", "--wait", "0")
    # a checkpoint record whose path is not a string (a hand-edited or foreign heartbeat) was a TypeError
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "had already ended (reason halt, step 150); nothing to halt" in res.stdout
    assert not (run / ".HALT").exists()


def test_a_run_stopped_by_a_signal_has_ended_cleanly(runs_dir, tmux_socket):
    """Its tmux session killed (SIGHUP): the trainer saved a checkpoint and ended with reason 'signal'. `nsa status`
    says halted, health OK; `nsa halt` said "error: the run ended with reason 'signal', not a clean halt", exit 1."""
    now = time.time()
    records = _earlier_attempt(now - 10)
    records[-1] |= {"reason": "signal"}
    _run(runs_dir, "sig", records, tmux_socket, launched=now - 100)
    res = nsa("halt", "sig", "--wait", "0")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "had already ended (reason signal, step 150); nothing to halt" in res.stdout and not res.stderr
    assert invoke("status", str(runs_dir / "sig")).exit_code == 0  # halted, OK: the two commands agree


def test_halting_a_dead_run_says_so_at_once(runs_dir, tmux_socket):
    """No session and no exit status (killed, rebooted): it waited the whole 600 s and left .HALT behind."""
    now = time.time()
    run = _run(runs_dir, "dead", [{"kind": "progress", "step": 3, "ts": now - 50}], tmux_socket, launched=now - 60)
    t0 = time.monotonic()
    res = nsa("halt", "dead")
    assert time.monotonic() - t0 < 30
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "run 'dead' is not running: its tmux session nsa-dead is gone" in res.stderr, res.stderr
    assert not (run / ".HALT").exists()


def test_a_run_whose_session_goes_away_during_the_wait(runs_dir, tmux_socket):
    now = time.time()
    run = _run(runs_dir, "dies", [{"kind": "progress", "step": 3, "ts": now}], tmux_socket, launched=now - 60)
    _session(tmux_socket, "dies")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsa_tui", "halt", "dies", "--wait", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    time.sleep(2)
    assert (run / ".HALT").exists() and proc.poll() is None
    subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", "=nsa-dies"], check=True)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "is not running" in err, out + err
    assert not (run / ".HALT").exists()  # no stop for a later --resume to trip over


def test_null_tmux_socket_is_the_default_server(runs_dir, tmux_socket, tmp_path, monkeypatch):
    """A run launched without NSA_TMUX_SOCKET records null: it lives on the default server, also when the
    caller has NSA_TMUX_SOCKET set (that was looked up instead: attach found nothing, or another run's session).
    TMUX_TMPDIR gives this test its own default server."""
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    now = time.time()
    _run(runs_dir, "dflt", [{"kind": "progress", "step": 3, "ts": now}], None, launched=now - 5)
    _session(tmux_socket, "dflt")  # the same name on $NSA_TMUX_SOCKET's server: not the run's
    res = nsa("attach", "dflt")
    assert res.returncode == 1 and "no tmux session nsa-dflt" in res.stderr, res.stderr
    assert nsa("halt", "dflt", "--wait", "0").returncode == 1
    try:
        subprocess.run(["tmux", "new-session", "-d", "-s", "nsa-dflt", "sleep", "300"], check=True)
        argv, _ = attach_argv_for("dflt")
        assert "-L" not in argv and argv[-1] == "=nsa-dflt"
        res = nsa("halt", "dflt", "--wait", "0")
        assert res.returncode == 0 and "created" in res.stdout, res.stderr
    finally:
        subprocess.run(["tmux", "kill-server"], capture_output=True)


def test_a_corrupt_exit_status_is_no_traceback(runs_dir, tmux_socket):
    run = _run(runs_dir, "odd", [{"kind": "progress", "step": 3, "ts": time.time()}], tmux_socket, None)
    for text in ("--1\n", "²\n", "-\n"):
        (run / "exit_status").write_text(text)
        res = nsa("status", "odd")
        assert "Traceback" not in res.stderr and res.returncode in (0, 1, 2, 3), res.stderr


def test_halt_refuses_a_directory_that_holds_no_run(runs_dir):
    """A directory with none of a run's files got a .HALT, and the whole --wait for an end record no trainer
    would write (exit 1, .HALT left behind); the runs root given as a run the same."""
    (runs_dir / "plain").mkdir()
    _run(runs_dir, "real", [], None, launched=None)
    for run, where in (("plain", runs_dir / "plain"), (str(runs_dir), runs_dir)):
        t0 = time.monotonic()
        res = nsa("halt", run, "--wait", "5")
        assert time.monotonic() - t0 < 5
        assert res.returncode == 3 and res.stdout == "", res.stdout + res.stderr
        assert res.stderr.startswith(f"error: no run in {where} (none of run.json, launch.json, "), res.stderr
        assert len(res.stderr.splitlines()) == 1 and not (where / ".HALT").exists()
    assert res.stderr.rstrip().endswith("nothing to halt; it holds run directories: name one of them")


def test_a_run_given_as_dot_is_named(runs_dir, monkeypatch):
    """`nsa halt .` in the run said `run '' had already ended`; with no session recorded, the session looked for
    was `nsa-`."""
    now = time.time()
    run = _run(runs_dir, "fin", _earlier_attempt(now - 10), None, launched=now - 100)
    res = nsa("halt", ".", cwd=run)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "run 'fin' had already ended (reason halt, step 150); nothing to halt" in res.stdout
    monkeypatch.chdir(run)
    assert halt._session(Path("."), {}) == "nsa-fin" and halt._session(Path("../fin/."), {}) == "nsa-fin"


def test_a_negative_wait_is_a_usage_error(runs_dir):
    """--wait -5 was taken as --wait 0: .HALT created, exit 0."""
    run = _run(runs_dir, "neg", [{"kind": "progress", "step": 3, "ts": time.time()}], None, launched=None)
    for bad in ("-5", "nan"):
        res = invoke("halt", "neg", "--wait", bad)
        assert res.exit_code == 2 and "--wait" in res.stderr, res.stdout + res.stderr
        assert not (run / ".HALT").exists()
    res = invoke("halt", "neg", "--wait", "0")
    assert res.exit_code == 0 and (run / ".HALT").exists(), res.stdout + res.stderr


# ---- the trainer's side: which .HALT is stale


def test_only_a_halt_older_than_the_attempt_is_stale(tmp_path):
    halt_file = tmp_path / ".HALT"
    halt_file.touch()
    os.utime(halt_file, (T0 - 5, T0 - 5))
    assert StopRequests(tmp_path, True, started_at=T0).remove_stale_halt() and not halt_file.exists()
    halt_file.touch()
    os.utime(halt_file, (T0 + 5, T0 + 5))  # `nsa halt` while the trainer booted: a request
    stop = StopRequests(tmp_path, True, started_at=T0)
    assert not stop.remove_stale_halt() and stop.halt_requested()
    assert not StopRequests(tmp_path, False, started_at=0).remove_stale_halt() and halt_file.exists()


def test_the_attempt_starts_at_the_launch_time_else_the_process_start():
    assert attempt_start({LAUNCH_TIME_ENV: f"{T0:.6f}"}) == T0
    started = process_start_time()
    assert started is not None and 0 <= time.time() - started < 3600
    for bad in ("", "soon", "nan", "inf", "-1"):  # not a time nsa wrote: this process's start
        assert abs(attempt_start({LAUNCH_TIME_ENV: bad}) - started) < 1


def test_halt_asks_again_only_when_the_trainer_says_it_removed_a_stale_one(tmp_path):
    """A .HALT gone after a train phase that began after the request: cleared as stale only when that phase
    says so; otherwise the trainer took it as the request (and is stopping), and a new one would outlive it."""
    now = time.time()
    phase = {"kind": "phase", "phase": "train", "ts": now + 1}
    assert not halt._removed_as_stale(tmp_path, [{**phase, "warnings": []}], now)
    stale = [{**phase, "warnings": ["removed a stale .HALT left in the run directory (it would have stopped...)"]}]
    assert halt._removed_as_stale(tmp_path, stale, now)
    assert not halt._removed_as_stale(tmp_path, stale, now + 2)
    # today's trainer says it in a field: its warning's wording may change without breaking the halt
    said = [{**phase, "warnings": ["any words"], "stale_halt_removed": True}]
    assert halt._removed_as_stale(tmp_path, said, now)
    assert not halt._removed_as_stale(tmp_path, [{**stale[0], "stale_halt_removed": False}], now)


def _halt_waiting(runs_dir: Path, name: str) -> subprocess.Popen:
    """`nsa halt NAME --wait 20` started, once it has created .HALT: it waits for the run's end record."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsa_tui", "halt", name, "--wait", "20"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NSA_RUNS_DIR": str(runs_dir)},
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while not (runs_dir / name / ".HALT").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc


def test_a_hand_started_run_has_no_exit_status_to_wait_for(runs_dir):
    """Only `nsa launch`'s runner writes exit_status: for a run started by hand with torchrun the halt said
    'not yet written (torchrun is still shutting down)', as if one would come."""
    run = runs_dir / "byhand"
    stand_in = [sys.executable, "-c", "import time; time.sleep(60)", "nsa_train", "--run-dir", str(run)]
    trainer = subprocess.Popen(stand_in)
    time.sleep(0.2)  # a process that started before the boot record it "wrote": the trainer's stand-in
    _run(runs_dir, "byhand", [{"kind": "boot", "step": 0, "ts": time.time(), "pid": trainer.pid}], None, launched=None)
    (run / "run.json").write_text(json.dumps({"host": socket.gethostname()}))
    proc = _halt_waiting(runs_dir, "byhand")
    with open(run / "heartbeat_rank0.jsonl", "a") as fh:  # the trainer stops at its next step
        fh.write(json.dumps({"v": 1, "rank": 0, "pid": 1, "kind": "end", "step": 7, "reason": "halt",
                             "exit_status": None, "ts": time.time()}) + "\n")  # fmt: skip
    t_end = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t_end < 5  # no wait for a status that never comes (it waited up to 20 s)
    assert proc.returncode == 0, out + err
    assert "stopped at step 7 (reason halt)" in out
    assert "exit status: none (only a run started by `nsa launch` has an exit_status file)" in out
    assert "not yet written" not in out
    trainer.kill()
    trainer.wait()


def test_a_signal_that_stops_the_run_during_the_wait_is_named_not_taken_for_the_halt(runs_dir, tmux_socket):
    """A killed tmux server's SIGHUP stopped the run while `nsa halt` waited for it: the halt said `stopped at step 7
    (reason signal)`, as if its .HALT had stopped it, without naming the signal. Rank 1 received it (exit 129)."""
    now = time.time()
    run = _run(runs_dir, "hup", [{"kind": "boot", "step": 0, "ts": now}], tmux_socket, launched=now - 1)
    _session(tmux_socket, "hup")
    proc = _halt_waiting(runs_dir, "hup")
    ts = time.time()
    for rank, status in ((1, 129), (0, 0)):  # every rank's end record, as the trainer writes them at a signal
        with open(run / f"heartbeat_rank{rank}.jsonl", "a") as fh:
            fh.write(json.dumps({"v": 1, "rank": rank, "pid": 1, "kind": "end", "step": 7, "reason": "signal",
                                 "exit_status": status, "ts": ts}) + "\n")  # fmt: skip
    (run / "exit_status").write_text("0\n")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err  # stopped with a checkpoint: clean, as a halt
    lines = out.splitlines()
    at = lines.index("stopped at step 7 (reason signal)")
    assert lines[at + 1] == "stopped by SIGHUP, not by this halt (its terminal or tmux server went away)", out


def a_dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid  # reaped: no process has it now (pids are not reused within a test's seconds)


def test_halting_a_dead_hand_started_run_says_so_at_once(runs_dir):
    """No launch.json (started with python -m nsa_train.train), killed: the halt waited its whole --wait (600 s by
    default) and left .HALT behind. No process of it alive here says it at once."""
    run = _run(runs_dir, "gone", [{"kind": "boot", "step": 0, "ts": time.time() - 60, "pid": a_dead_pid()}], None, None)
    (run / "run.json").write_text(json.dumps({"host": socket.gethostname()}))
    t0 = time.monotonic()
    res = nsa("halt", "gone", "--wait", "60")
    assert time.monotonic() - t0 < 20 and res.returncode == 1, res.stderr
    assert "run 'gone' is not running: no process of its trainer is alive on this machine" in res.stderr
    assert f"`nsa launch --run-dir {run} --resume`" in res.stderr and not (run / ".HALT").exists()


def test_a_copied_runs_checkpoint_is_its_own(tmp_path):
    """The end record of a run copied elsewhere names the original's checkpoint: `nsa halt` on the copy printed
    that path. The file of that name in the copy is the one; the record's path when no such file is here."""
    from nsa_tui.launch.halt import latest_checkpoint

    original = tmp_path / "a" / "checkpoints" / "step_00000010.pt"
    copy = tmp_path / "b"
    (copy / "checkpoints").mkdir(parents=True)
    records = [{"kind": "checkpoint", "step": 10, "path": str(original)}]
    assert latest_checkpoint(copy, records) == original  # nothing here: what the record says
    original.parent.mkdir(parents=True)
    original.write_bytes(b"x")
    (copy / "checkpoints" / original.name).write_bytes(b"x")  # copied along, the original still there
    assert latest_checkpoint(copy, records) == copy / "checkpoints" / original.name


def test_a_trainer_alive_outside_its_session_can_be_halted(runs_dir, tmux_socket):
    """The session launch.json names is not found (its server under another $TMUX_TMPDIR, or the trainer outlived
    it) but the rank's pid is this run's trainer: status calls it running, and halt refused it as not running."""
    now = time.time()
    run = _run(runs_dir, "ghost", [], tmux_socket, launched=now - 60)
    trainer = subprocess.Popen(  # stands in for the rank: its command line names nsa_train and the run dir
        [sys.executable, "-c", "import time; time.sleep(60)", "nsa_train.train", "--run-dir", str(run)]
    )
    try:
        rec = {"v": 1, "rank": 0, "pid": trainer.pid, "kind": "progress", "step": 3, "ts": now}
        (run / "heartbeat_rank0.jsonl").write_text(json.dumps(rec) + "\n")
        res = nsa("halt", "ghost", "--wait", "0")
        assert res.returncode == 0 and (run / ".HALT").exists(), res.stderr
    finally:
        trainer.kill()
        trainer.wait()
    (run / ".HALT").unlink()
    res = nsa("halt", "ghost", "--wait", "0")  # the pid gone too: not running
    assert res.returncode == 1 and "is not running" in res.stderr and not (run / ".HALT").exists()


def test_force_does_not_start_a_second_trainer_beside_one_outside_its_session(runs_dir, tmux_socket):
    """With the session not found, `nsa launch --force` warned and started a second trainer writing the same
    directory (training.csv: 250, then 10)."""
    now = time.time()
    run = _run(runs_dir, "twice", [], tmux_socket, launched=now - 60)
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "nsa_train.train", "--run-dir",
                                str(run)])  # fmt: skip
    try:
        rec = {"v": 1, "rank": 0, "pid": trainer.pid, "kind": "progress", "step": 3, "ts": now}
        (run / "heartbeat_rank0.jsonl").write_text(json.dumps(rec) + "\n")
        res = nsa("launch", "--name", "twice", "--force")
        assert res.returncode == 1 and tmux_sessions() == [], res.stdout + res.stderr
        assert f"this run's trainer is alive outside tmux session nsa-twice (rank 0 pid {trainer.pid})" in res.stderr
        # without --force: the same advice, not "pass --force to reuse it" (which this refusal then met)
        res = nsa("launch", "--name", "twice")
        assert res.returncode == 1 and "holds a live run: this run's trainer is alive outside" in res.stderr
        assert "--force" not in res.stderr and "`nsa halt twice`" in res.stderr, res.stderr
    finally:
        trainer.kill()
        trainer.wait()


def test_no_run_names_what_it_looked_for_and_a_header_is_not_a_row(runs_dir):
    """`nsa halt` on a directory holding only a training.csv header said "none of ..., training.csv, ..." with
    training.csv there: the list was an older marker list, not holds_run's rule."""
    d = runs_dir / "hdr"
    d.mkdir()
    (d / "training.csv").write_text("step,loss\n")
    res = nsa("halt", "hdr", "--wait", "1")
    assert res.returncode == 3, res.stderr
    assert "a row in training.csv or val.csv" in res.stderr and ", training.csv," not in res.stderr, res.stderr
