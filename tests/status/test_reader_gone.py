"""A reader that stops reading (`nsa status RUN | head -1`, `| true`) changes no exit code and prints nothing:
each command runs as a real process whose stdout is a real pipe, its read end closed before the command starts
(so the first write meets it, every time), and exits as it would into a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.runs import make_v1_run


def nsa_into_closed_pipe(*args: str, stderr_too: bool = False, buffered: bool = True) -> tuple[int, str]:
    """Run `nsa ARGS` with stdout a pipe nobody reads any more (with ``stderr_too``, stderr the same pipe, as
    `2>&1 | head` gives): its exit status and its stderr. ``buffered``: stdout block-buffered, as for a user, so
    that a print() meets the closed pipe when flushed (at the end); else PYTHONUNBUFFERED, at the print itself."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "PYTHONUNBUFFERED")}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    try:
        res = subprocess.run(
            [sys.executable, "-m", "nsa_tui", *args],
            stdout=write_end,
            stderr=write_end if stderr_too else subprocess.PIPE,
            text=True,
            timeout=120,
            env=env,
        )
    finally:
        os.close(write_end)
    return res.returncode, res.stderr or ""


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
