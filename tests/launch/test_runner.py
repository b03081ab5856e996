"""The wrapper tmux runs: console.log gets everything, exit_status gets torchrun's code however it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nsa_tui.launch import tmux
from nsa_tui.launch.runner import EXIT_NOT_STARTED

from .helpers import exit_status, tmux_sessions, wait_for


def _spec(run_dir: Path, argv: list[str], env: dict[str, str] | None = None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "launch.json").write_text(json.dumps({"argv": argv, "env": env or {}, "command": " ".join(argv)}))
    return run_dir


def wait_for_line(log: Path, line: str, what: str) -> None:
    """Wait for the child's own output line: the wrapper's `starting:` note quotes the child's code, so a substring
    test passed before the child ran (a hang-up sent then found no handler set yet: status 129 under load)."""
    wait_for(lambda: log.exists() and line in log.read_text().splitlines(), 30, what)


def _run_wrapper(run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nsa_tui.launch.runner", str(run_dir)], capture_output=True, text=True, timeout=60
    )


def test_exit_code_output_and_env_are_kept(tmp_path):
    code = "import os, sys; print('to stdout'); print('to stderr', os.environ['NSA_X'], file=sys.stderr); sys.exit(7)"
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", code], {"NSA_X": "from-launch-json"})
    res = _run_wrapper(run_dir)
    assert res.returncode == 7
    assert exit_status(run_dir) == 7
    log = (run_dir / "console.log").read_text()
    assert "to stdout" in log and "to stderr from-launch-json" in log
    assert log.rstrip().endswith("exited with status 7")
    assert "to stdout" in res.stdout  # mirrored to the pane too


def test_a_console_log_that_cannot_be_written_keeps_the_real_exit_status(tmp_path):
    """A full disk (here console.log on /dev/full) raised out of the copy loop: exit_status said 127 ("not started")
    for a run that ran, and nothing read torchrun's output any more (a full pipe blocks it)."""
    code = "import sys; [print('x' * 1000) for _ in range(300)]; sys.exit(3)"  # 300 KB: more than a pipe holds
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", code])
    (run_dir / "console.log").symlink_to("/dev/full")
    res = _run_wrapper(run_dir)
    assert res.returncode == 3 and exit_status(run_dir) == 3
    assert "[nsa] cannot write console.log any more (No space left on device): this pane only" in res.stdout
    assert res.stdout.count("x" * 1000) == 300  # drained to the end, in the pane


def test_missing_program_still_leaves_a_status(tmp_path):
    run_dir = _spec(tmp_path / "r", [str(tmp_path / "no-such-torchrun")])
    assert _run_wrapper(run_dir).returncode == EXIT_NOT_STARTED
    assert exit_status(run_dir) == EXIT_NOT_STARTED
    assert "could not start" in (run_dir / "console.log").read_text()


def test_killed_session_still_records_the_exit(tmp_path, tmux_socket):
    # tmux kill-session hangs up the pane: the wrapper must survive long enough to record it.
    code = "import time; print('running', flush=True); time.sleep(120)"
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", code])
    tmux.new_session("nsa-killme", [sys.executable, "-m", "nsa_tui.launch.runner", str(run_dir)], tmp_path)
    log = run_dir / "console.log"
    wait_for_line(log, "running", "the child to start")
    assert tmux.kill_session("nsa-killme")
    status = wait_for(lambda: exit_status(run_dir), 30, "exit_status after kill-session")
    assert status == 128 + 1  # SIGHUP, forwarded to the child
    assert "nsa-killme" not in tmux_sessions()


def test_the_tmux_servers_variables_do_not_reach_a_later_run(tmp_path, tmux_socket, monkeypatch):
    """The first launch starts the tmux server with its caller's environment (CUDA_VISIBLE_DEVICES=0); a later
    launch from a shell without it got it anyway, unrecorded. A variable nsa would have recorded is the
    recorded one or nothing; the rest of the server's environment (HOME, secrets) is still there."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("NSA_PROBE", "from-the-server")
    monkeypatch.setenv("HF_TOKEN", "not-recorded-but-kept")
    monkeypatch.setenv("CONFIG", "other.yaml")  # a later trainer's --config would disagree with it: an error
    tmux.new_session("nsa-first", ["sleep", "60"], tmp_path)  # starts the server with these
    for name in ("CUDA_VISIBLE_DEVICES", "NSA_PROBE", "HF_TOKEN", "CONFIG"):
        monkeypatch.delenv(name)
    code = (
        "import os; print('SEEN', [os.environ.get(k) for k in ('CUDA_VISIBLE_DEVICES', 'NSA_PROBE', 'HF_TOKEN',"
        " 'NSA_X', 'CONFIG', 'HOME')])"
    )
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", code], {"NSA_X": "recorded"})
    tmux.new_session("nsa-second", [sys.executable, "-P", "-m", "nsa_tui.launch.runner", str(run_dir)], tmp_path)
    wait_for(lambda: exit_status(run_dir) is not None, 30, "the second run to end")
    assert exit_status(run_dir) == 0, (run_dir / "console.log").read_text()
    seen = [ln for ln in (run_dir / "console.log").read_text().splitlines() if ln.startswith("SEEN")]
    home = subprocess.run(["sh", "-c", "echo $HOME"], capture_output=True, text=True).stdout.strip()
    assert seen == [f"SEEN [None, None, 'not-recorded-but-kept', 'recorded', None, {home!r}]"]


# a fake 2-rank torchrun's start: both ranks' boot records at step STEP, as the trainer writes them
TWO_RANKS_BOOTED = """
import json, sys, time
def rec(rank, kind, **f):
    r = {"v": 1, "ts": time.time(), "kind": kind, "rank": rank, "step": STEP, "pid": 1, **f}
    with open(f"heartbeat_rank{rank}.jsonl", "a") as fh:
        fh.write(json.dumps(r) + "\\n")
for r in (0, 1):
    rec(r, "boot", world_size=2, argv=["nsa_train.train"])
time.sleep(0.05)
"""
# a 2-rank torchrun whose rank 1 was SIGKILLed (the OOM killer): rank 0 fails on the lost connection, rank 1 writes
# nothing more, and torchrun's report names rank 1 and its exit code -9 (the record sequence of a real run, 2026-12-05)
FAKE_TORCHRUN = (
    TWO_RANKS_BOOTED.replace("STEP", "93")
    + """
rec(0, "error", message="RuntimeError: Connection reset by peer")
rec(0, "end", reason="error", exit_status=1)
print("Root Cause (first observed failure):")
print("[0]:")
print("  rank      : 1 (local_rank: 1)")
print("  exitcode  : -9 (pid: 15347)  (SIGKILL)")
print("=" * 60)
sys.exit(1)
"""
)


def test_a_rank_killed_without_an_end_record_is_restated_with_torchruns_exit_code(tmp_path):
    """The wrapper restated error records only: rank 0's "connection reset by peer" was the last line, the rank that
    was killed went unsaid below torchrun's report."""
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", FAKE_TORCHRUN])
    subprocess.run(
        [sys.executable, "-m", "nsa_tui.launch.runner", str(run_dir)], cwd=run_dir, capture_output=True, timeout=60
    )
    notes = [ln.split("] ", 1)[1] for ln in (run_dir / "console.log").read_text().splitlines() if ln.startswith("[nsa")]
    assert notes[1:] == [
        "rank 0 error at step 93: RuntimeError: Connection reset by peer",
        "rank 1 wrote no end record (its last record at step 93): torchrun: rank 1, exitcode -9 (SIGKILL)",
        "torchrun exited with status 1",
    ]


# torchrun after a graceful stop: rank 0 took SIGTERM (exit 143), rank 1 stopped with it; both saved and wrote their end
# records of reason signal, and torchrun, to which 143 is a failure, exits 1 (a real run's records, 2026-12-08)
STOPPED_TORCHRUN = (
    TWO_RANKS_BOOTED.replace("STEP", "21")
    + """
for r in RANKS_ENDED:
    rec(r, "end", reason=REASON, exit_status=143 if r == 0 else 0)
print("torch.distributed.elastic.multiprocessing.errors.ChildFailedError:")
sys.exit(1)
"""
)


@pytest.mark.parametrize(
    ("reason", "ranks_ended", "status", "said"),
    [
        (
            "signal",
            (0, 1),
            0,
            "torchrun exited with status 1; exit_status 0, as for a halt: every rank stopped on SIGTERM",
        ),
        (
            "halt",
            (0, 1),
            0,
            "torchrun exited with status 1; exit_status 0, as for a halt: every rank stopped on a halt",
        ),
        ("signal", (0,), 1, "torchrun exited with status 1"),  # rank 1 ended without its end record: not a clean stop
        ("error", (0, 1), 1, "torchrun exited with status 1"),
    ],
)
def test_a_graceful_stop_by_a_signal_is_recorded_as_a_halts_0(tmp_path, reason, ranks_ended, status, said):
    """A SIGTERM to a trainer (or a killed tmux session's SIGHUP) stops every rank with its checkpoint, and `nsa
    status` calls the run halted, health OK; but torchrun exits 1 after it, which the wrapper recorded: `nsa halt`
    printed `exit status: 1` under `halted by SIGTERM`, and a script read a failure."""
    code = STOPPED_TORCHRUN.replace("RANKS_ENDED", repr(ranks_ended)).replace("REASON", repr(reason))
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", code])
    res = subprocess.run(
        [sys.executable, "-m", "nsa_tui.launch.runner", str(run_dir)], cwd=run_dir, capture_output=True, timeout=60
    )
    assert (res.returncode, exit_status(run_dir)) == (status, status)
    last = (run_dir / "console.log").read_text().splitlines()[-1]
    assert last.split("] ", 1)[1] == said, last


def test_a_wrapper_superseded_by_a_newer_launch_leaves_its_exit_status_and_console_to_it(tmp_path):
    """`nsa launch --force` started a new attempt while the killed one was still stopping: the old wrapper then wrote
    its exit status 1 and its closing lines over the new attempt's, and the training run read `crashed`."""
    code = "import time, sys; print('old attempt', flush=True); time.sleep(3); sys.exit(1)"
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", code])
    spec = json.loads((run_dir / "launch.json").read_text())
    (run_dir / "launch.json").write_text(json.dumps({**spec, "ts": 1.0}))
    wrapper = subprocess.Popen([sys.executable, "-m", "nsa_tui.launch.runner", str(run_dir)], stdout=subprocess.PIPE)
    log = run_dir / "console.log"
    wait_for_line(log, "old attempt", "the old attempt to start")
    (run_dir / "launch.json").write_text(json.dumps({**spec, "ts": 2.0}))  # the newer launch's record
    assert wrapper.wait(timeout=60) == 1
    assert exit_status(run_dir) is None
    assert "exited with status" not in log.read_text()


def test_force_waits_for_the_killed_sessions_wrapper_and_refuses_past_its_limit(tmp_path, tmux_socket):
    """--force gave a killed session 30 s, as long as torchrun gives its ranks to save: the old run then stopped
    beside the new one. It waits for the session's processes themselves, and starts nothing when they outlive it."""
    from nsa_tui.errors import UserError
    from nsa_tui.launch.launcher import _wait_for_exit

    def session(name: str, stop_s: float) -> tuple[Path, list[int]]:
        # a step and its save that take stop_s after the hang-up
        code = (
            f"import signal, sys, time; signal.signal(signal.SIGHUP, lambda *a: (time.sleep({stop_s}), sys.exit(0))); "
            "print('running', flush=True); time.sleep(120)"
        )
        run_dir = _spec(tmp_path / name, [sys.executable, "-c", code])
        tmux.new_session(name, [sys.executable, "-m", "nsa_tui.launch.runner", str(run_dir)], tmp_path)
        log = run_dir / "console.log"
        wait_for_line(log, "running", "the child to start (its SIGHUP handler set)")
        pids = tmux.session_pids(name)
        assert len(pids) == 1
        assert tmux.kill_session(name)
        return run_dir, pids

    run_dir, pids = session("nsa-slow-save", 2.0)
    _wait_for_exit(pids, "nsa-slow-save", 30.0)
    assert exit_status(run_dir) == 0  # written before a new attempt could start
    run_dir, pids = session("nsa-stuck", 20.0)
    with pytest.raises(UserError, match=r"nsa-stuck's process \(pid \d+\) is still running after 1s; nothing was"):
        _wait_for_exit(pids, "nsa-stuck", 1.0)
    assert exit_status(run_dir) is None


# torchrun's stand-in: it waits for `go` (its pid in `pid`), while a seed's `kill -USR1 <torchrun pid>` reaches it
WAITS_FOR_GO = """
import os, pathlib, sys, time
pathlib.Path("pid").write_text(str(os.getpid()))
while not pathlib.Path("go").exists():
    time.sleep(0.05)
sys.exit(0)
"""


def test_sigusr1_to_the_wrapper_or_torchrun_kills_neither(tmp_path):
    """`kill -USR1 <torchrun pid>` (a seed's habit) and the docs' `pkill -USR1 -f nsa_train.train` reach torchrun,
    whose default action for SIGUSR1 is to die: the ranks trained on unsupervised and the halt after read status 138.
    The wrapper starts torchrun with SIGUSR1 ignored, and ignores it itself."""
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", WAITS_FOR_GO])
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "nsa_tui.launch.runner", str(run_dir)], cwd=run_dir, stdout=subprocess.DEVNULL
    )
    try:
        child = int(wait_for(lambda: (run_dir / "pid").exists() and (run_dir / "pid").read_text(), 30, "the child"))
        time.sleep(0.3)  # the wrapper is past its own start (its handlers set) once its child runs
        os.kill(child, signal.SIGUSR1)
        os.kill(wrapper.pid, signal.SIGUSR1)
        time.sleep(0.5)
        assert wrapper.poll() is None and exit_status(run_dir) is None
        (run_dir / "go").touch()
        assert wrapper.wait(timeout=30) == 0
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert exit_status(run_dir) == 0
    assert (run_dir / "console.log").read_text().rstrip().endswith("torchrun exited with status 0")


def test_a_status_that_a_signal_gave_is_said_in_words(tmp_path):
    """'torchrun exited with status 138' left the reader to work out 128 + 10 = SIGUSR1."""
    code = "import os, signal; os.kill(os.getpid(), signal.SIGUSR2)"
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", code])
    assert _run_wrapper(run_dir).returncode == 128 + signal.SIGUSR2
    assert exit_status(run_dir) == 128 + signal.SIGUSR2  # the file stays one integer
    said = (run_dir / "console.log").read_text().rstrip().splitlines()[-1]
    assert said.endswith(f"torchrun exited with status {128 + signal.SIGUSR2} (killed by signal SIGUSR2)")


def test_a_launch_after_a_console_line_cut_by_a_full_disk_starts_its_own_line(tmp_path):
    """The wrapper of a launch the full disk stopped could write only part of its last line ("torchrun exited with
    status 1", no newline); the next launch's `starting:` line was glued to it, and the readers, which look for it at
    a line's start, paired the launches with the wrong attempts."""
    run_dir = _spec(tmp_path / "r", [sys.executable, "-c", "print('resumed')"])
    (run_dir / "console.log").write_text("[nsa 2026-12-07 16:32:53] torchrun exited with status 1")
    assert _run_wrapper(run_dir).returncode == 0
    lines = (run_dir / "console.log").read_text().splitlines()
    assert lines[0] == "[nsa 2026-12-07 16:32:53] torchrun exited with status 1", lines
    assert " starting: " in lines[1] and lines[1].startswith("[nsa "), lines


def test_a_run_directory_renamed_while_it_ran_gets_its_exit_status_where_it_went(tmp_path):
    """The trainer trains on at a renamed run directory (nsa_train/runtime/run_dir_moves.py); the wrapper wrote its
    exit_status at the old path, which is gone ("could not write exit_status"), so the tools never read it."""
    was, now = tmp_path / "exp", tmp_path / "exp-lr3e-4"
    code = f"import os, sys; os.rename({str(was)!r}, {str(now)!r}); print('renamed'); sys.exit(5)"
    _spec(was, [sys.executable, "-c", code])
    res = _run_wrapper(was)
    assert res.returncode == 5 and exit_status(now) == 5 and not was.exists()
    log = (now / "console.log").read_text()
    assert "renamed" in log and log.rstrip().endswith("exited with status 5") and "could not write" not in log
