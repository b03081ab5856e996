"""A reader that stops reading (`nsa status RUN | head -1`, `| true`) changes no exit code and prints nothing:
each command runs as a real process whose stdout is a real pipe, its read end closed before the command starts
(so the first write meets it, every time), and exits as it would into a terminal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.runs import make_v1_run


def start_into_closed_pipe(*args: str, stderr_too: bool = False, buffered: bool = True) -> subprocess.Popen[str]:
    """Start `nsa ARGS` with stdout a pipe nobody reads any more (with ``stderr_too``, stderr the same pipe, as
    `2>&1 | head` gives; else a pipe of its own, read by communicate()). ``buffered``: stdout block-buffered, as for a
    user, so that a print() meets the closed pipe when flushed (at the end); else PYTHONUNBUFFERED, at the print."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "PYTHONUNBUFFERED")}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "nsa_tui", *args],
            stdout=write_end,
            stderr=write_end if stderr_too else subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
    finally:
        os.close(write_end)


def nsa_into_closed_pipe(*args: str, stderr_too: bool = False, buffered: bool = True) -> tuple[int, str]:
    """Run `nsa ARGS` as start_into_closed_pipe starts it: its exit status and its stderr."""
    proc = start_into_closed_pipe(*args, stderr_too=stderr_too, buffered=buffered)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, err or ""


def no_noise(stderr: str) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "BrokenPipe" not in stderr, stderr


BUFFERED = pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])


@pytest.fixture
def crashed(runs_dir: Path) -> Path:
    return make_v1_run(runs_dir / "crash", steps=30, state="crashed").path


@BUFFERED
def test_status_keeps_its_health_code(crashed: Path, buffered: bool) -> None:
    # into a terminal: exit 2 (critical); Typer's own handling of the closed pipe said 1, a warning
    assert (
        subprocess.run([sys.executable, "-m", "nsa_tui", "status", str(crashed)], capture_output=True).returncode == 2
    )
    for args in (["status", str(crashed)], ["status", "--json", str(crashed)]):
        code, err = nsa_into_closed_pipe(*args, buffered=buffered)
        assert code == 2, (args, err)
        no_noise(err)


def test_status_with_stderr_into_the_same_closed_pipe(crashed: Path, runs_dir: Path) -> None:
    assert nsa_into_closed_pipe("status", str(crashed), stderr_too=True)[0] == 2
    # an error line on stderr as well (the missing run): its exit code, 3
    assert nsa_into_closed_pipe("status", str(crashed), str(runs_dir / "gone"), stderr_too=True)[0] == 2
    assert nsa_into_closed_pipe("status", "--json", str(runs_dir / "gone"), stderr_too=True)[0] == 3


@BUFFERED
def test_status_error_object_keeps_its_code(runs_dir: Path, buffered: bool) -> None:
    code, err = nsa_into_closed_pipe("status", "--json", str(runs_dir / "gone"), buffered=buffered)
    assert code == 3
    no_noise(err)
    assert err.startswith("error: no run directory"), err


@BUFFERED
def test_runs_exits_0(crashed: Path, runs_dir: Path, buffered: bool) -> None:
    code, err = nsa_into_closed_pipe("runs", str(runs_dir), buffered=buffered)
    assert code == 0, err
    no_noise(err)


@BUFFERED
def test_runs_line_left_in_the_buffer(tmp_path: Path, buffered: bool) -> None:
    # `no runs under DIR` is a print() that stays in the buffer: it met the closed pipe at interpreter shutdown,
    # "Exception ignored ... BrokenPipeError" and exit 120
    (tmp_path / "empty").mkdir()
    code, err = nsa_into_closed_pipe("runs", str(tmp_path / "empty"), buffered=buffered)
    assert code == 0, err
    no_noise(err)


@BUFFERED
def test_halt_without_wait_exits_0(runs_dir: Path, buffered: bool) -> None:
    run = make_v1_run(runs_dir / "live", steps=30, state="running").path
    code, err = nsa_into_closed_pipe("halt", "--wait", "0", str(run), buffered=buffered)
    assert code == 0, err
    no_noise(err)
    assert (run / ".HALT").exists()


@BUFFERED
def test_report_keeps_its_code(crashed: Path, tmp_path: Path, buffered: bool) -> None:
    code, err = nsa_into_closed_pipe("report", str(crashed), "--out", str(tmp_path / "rep"), buffered=buffered)
    assert code == 0, err
    no_noise(err)
    assert (tmp_path / "rep" / "report.md").is_file()


@BUFFERED
def test_check_json_of_a_config_that_does_not_load(tmp_path: Path, buffered: bool) -> None:
    # its JSON row on stdout, its error line on stderr, exit 2: the line is said even when the JSON meets no reader
    code, err = nsa_into_closed_pipe(
        "check", "--json", "--set", "train.stepz=1", "--run-dir", str(tmp_path / "r"), buffered=buffered
    )
    assert code == 2, err
    no_noise(err)
    assert err.startswith("error: ") and "unknown key 'train.stepz'" in err, err


COMMANDS = ("launch", "watch", "status", "runs", "halt", "dump", "attach", "check", "sample", "report")


@pytest.mark.parametrize("args", [["--help"], *(["--help", c] for c in COMMANDS), []], ids=lambda a: " ".join(a))
def test_help_keeps_its_exit_code(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`nsa --help | head -1`: help is printed by Typer outside the command (rich's console, click's echo without
    rich), where the closed pipe ended with exit 1. Its exit code as into a terminal: 0, and 2 for `nsa` alone (help
    in place of a usage)."""
    args = args[::-1]  # `status --help`
    want = subprocess.run([sys.executable, "-m", "nsa_tui", *args], capture_output=True).returncode
    assert want == (0 if args else 2)
    for rich in ("1", "0"):
        monkeypatch.setenv("TYPER_USE_RICH", rich)
        for stderr_too in (False, True):
            code, err = nsa_into_closed_pipe(*args, stderr_too=stderr_too)
            assert code == want, (rich, stderr_too, err)
            no_noise(err)


def test_status_says_every_runs_error_to_a_stderr_still_read(crashed: Path, runs_dir: Path) -> None:
    """`nsa status 2>err.log | head -1`: stdout's reader gone at the first run ended the command there, and the
    later runs' error lines never reached stderr, whose reader was still there."""
    for args in (["status"], ["status", "--json"]):
        code, err = nsa_into_closed_pipe(*args, str(crashed), str(runs_dir / "gone1"), str(runs_dir / "gone2"))
        assert code == 2, err  # the crashed run's critical, as into a terminal
        assert err.splitlines() == [f"error: no run directory '{runs_dir / g}'" for g in ("gone1", "gone2")], err


def _stand_in_trainer(run: Path, code: str) -> subprocess.Popen[bytes]:
    """A process whose command line names nsa_train and the run dir, as `nsa halt` and `nsa dump` check."""
    return subprocess.Popen([sys.executable, "-c", code, "nsa_train", "--run-dir", str(run)])


@BUFFERED
def test_halt_keeps_waiting_and_exits_with_the_halts_outcome(runs_dir: Path, buffered: bool) -> None:
    """`nsa halt RUN | head -1`: its first line ("created .HALT; waiting ...") met the closed pipe and the halt
    exited 141 at once, not waiting for the run to stop; a script learnt nothing of how it ended."""
    run = runs_dir / "byhand"
    run.mkdir()
    trainer = _stand_in_trainer(run, "import time; time.sleep(60)")
    try:
        boot = {"v": 1, "rank": 0, "pid": trainer.pid, "kind": "boot", "step": 0, "ts": time.time()}
        (run / "heartbeat_rank0.jsonl").write_text(json.dumps(boot) + "\n")
        (run / "run.json").write_text(json.dumps({"host": socket.gethostname()}))
        proc = start_into_closed_pipe("halt", "byhand", "--wait", "30", buffered=buffered)
        deadline = time.monotonic() + 20
        while not (run / ".HALT").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # past its first line, which met the closed pipe
        assert proc.poll() is None, proc.communicate()
        end = {"v": 1, "rank": 0, "pid": trainer.pid, "kind": "end", "step": 7, "reason": "halt", "ts": time.time()}
        with open(run / "heartbeat_rank0.jsonl", "a") as fh:
            fh.write(json.dumps({**end, "exit_status": None}) + "\n")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        no_noise(err)
    finally:
        trainer.kill()
        trainer.wait()


@BUFFERED
def test_dump_signals_every_rank_and_exits_with_its_outcome(runs_dir: Path, buffered: bool) -> None:
    """Rank 1 gone: its `skipped` line came before any rank was signalled, met the closed pipe, and the dump exited
    141 with rank 0 never asked for its stacks."""
    run = runs_dir / "half"
    run.mkdir()
    answers = (
        "import signal, time, pathlib\n"
        "def dump(*a):\n"
        f"    pathlib.Path({str(run)!r}, 'stackdump_rank0_1.txt').write_text('stacks')\n"
        "signal.signal(signal.SIGUSR1, dump); time.sleep(60)"
    )
    rank0 = _stand_in_trainer(run, answers)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        for rank, pid in ((0, rank0.pid), (1, gone.pid)):
            rec = {"v": 1, "rank": rank, "pid": pid, "kind": "boot", "world_size": 2, "ts": time.time()}
            (run / f"heartbeat_rank{rank}.jsonl").write_text(json.dumps(rec) + "\n")
        time.sleep(0.5)  # its signal handler set
        code, err = nsa_into_closed_pipe("dump", str(run), buffered=buffered)
        assert (run / "stackdump_rank0_1.txt").is_file(), err
        assert code == 1 and err.strip() == "error: stack dumps from rank(s) [0] of [0, 1]; the others are said above"
    finally:
        rank0.kill()
        rank0.wait()


@pytest.mark.parametrize("stderr_too", [False, True], ids=["stdout", "stdout-and-stderr"])
def test_a_launch_finishes_and_exits_with_its_outcome(runs_dir: Path, tmux_socket: str, stderr_too: bool) -> None:
    """`nsa launch ... | head -1`: its first line (the plan) met the closed pipe and the launch exited 141 before
    anything started; a reader leaving later would leave it half done (a session started, the index not written).
    Now it starts the run, records it, and exits 0."""
    from launch.helpers import TINY, later_sets_win, tmux_sessions

    from nsa_tui import launched

    args = later_sets_win(["launch", "--name", "rg", *TINY, "--set", "train.steps=1"])
    code, err = nsa_into_closed_pipe(*args, stderr_too=stderr_too)
    assert code == 0, err
    no_noise(err)
    assert "nsa-rg" in tmux_sessions()
    assert [m.run_dir for m in launched.named("rg")] == [str(runs_dir / "rg")]
    assert json.loads((runs_dir / "rg" / "launch.json").read_text())["tmux_socket_path"]


@pytest.mark.slow
def test_a_launch_over_host_finishes_there(runs_dir: Path, tmux_socket: str, sshd, monkeypatch) -> None:
    """`nsa launch --host H ... | head -1`: the first line relayed from the host met the closed pipe here, this nsa
    exited 141 and closed the connection, which interrupts the host's nsa (remote/caller.py) mid-launch. Now the
    relay goes on to the host launch's end and its exit code."""
    from launch.helpers import TINY, later_sets_win, tmux_sessions

    from nsa_tui import launched

    args = later_sets_win(["launch", "--host", sshd.host, "--name", "rgh", *TINY, "--set", "train.steps=1"])
    code, err = nsa_into_closed_pipe(*args)
    assert code == 0, err
    no_noise(err)
    assert "nsa-rgh" in tmux_sessions()
    monkeypatch.setenv("XDG_STATE_HOME", str(Path(sshd.key).parent / "xdg-state"))  # the host's index
    assert [m.run_dir for m in launched.named("rgh")] == [str(runs_dir / "rgh")]
