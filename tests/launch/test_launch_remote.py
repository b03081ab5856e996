"""`nsa launch --host` when the host cannot be used: a clear error in time, nothing started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from .helpers import REPO, nsa, tmux_sessions

CONNECT_TIMEOUT = 3


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in res.stderr
    return lines[0]


def _launch_timed(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    res = nsa("launch", "--host", "root@127.0.0.1", "--name", "never", *args, env=env, timeout=60)
    return res, time.monotonic() - t0


@pytest.fixture
def ssh_env(tmp_path):
    env = {**os.environ, "NSA_SSH_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT)}
    return env


def _nothing_started(runs_dir):
    assert list(runs_dir.iterdir()) == []
    assert tmux_sessions() == []


def test_refused_connection(runs_dir, tmux_socket, ssh_env, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the kernel refuses
        ssh_env["NSA_SSH_COMMAND"] = f"ssh -F /dev/null -p {port} -o UserKnownHostsFile={tmp_path}/kh"
        res, took = _launch_timed(ssh_env)
    assert res.returncode == 3
    assert "connection refused" in _one_error_line(res)
    assert took < CONNECT_TIMEOUT + 10
    _nothing_started(runs_dir)


def test_unresponsive_host_times_out(runs_dir, tmux_socket, ssh_env, tmp_path):
    # A listener that never speaks SSH: ssh gives up after ConnectTimeout (banner exchange).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        ssh_env["NSA_SSH_COMMAND"] = f"ssh -F /dev/null -p {port} -o UserKnownHostsFile={tmp_path}/kh"
        res, took = _launch_timed(ssh_env)
    assert res.returncode == 3
    assert "timed out" in _one_error_line(res)
    assert took < CONNECT_TIMEOUT + 10
    _nothing_started(runs_dir)


def test_failed_authentication(runs_dir, tmux_socket, sshd, ssh_env, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    ssh_env["NSA_SSH_COMMAND"] = sshd.ssh_command.replace(str(sshd.key), str(other))
    res, took = _launch_timed(ssh_env)
    assert res.returncode == 3
    assert "authentication failed" in _one_error_line(res)
    assert took < CONNECT_TIMEOUT + 10
    _nothing_started(runs_dir)


def test_host_option_injection_is_rejected(runs_dir, tmux_socket, tmp_path):
    marker = tmp_path / "pwned"
    res = nsa("launch", "--host", f"-oProxyCommand=touch {marker}", "--name", "x")
    assert res.returncode == 2
    assert "invalid host" in _one_error_line(res)
    assert not marker.exists()


def test_remote_without_nsa_says_so(runs_dir, tmux_socket, sshd_factory, monkeypatch):
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    res = nsa("launch", "--host", s.host, "--name", "x")
    assert res.returncode == 127
    assert "nsa is not installed" in res.stderr
    _nothing_started(runs_dir)


def test_remote_dry_run_passes_every_option(runs_dir, tmux_socket, sshd, tmp_path):
    # The remote nsa gets the same options; a hostile name stays one literal argument.
    name = 'it\'s "q"; $(touch pwned) `touch pwned2`'
    remote_dir = tmp_path / "check out"
    remote_dir.mkdir()
    res = nsa(
        "launch", "--host", sshd.host, "--remote-dir", str(remote_dir), "--name", name,
        "--set", "train.lr=1e-3", "--dry-run",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"run:     {name}" in res.stdout
    assert f"run dir: {runs_dir / name}" in res.stdout
    assert "--set train.lr=1e-3" in res.stdout
    assert not (remote_dir / "pwned").exists() and not (remote_dir / "pwned2").exists()
    _nothing_started(runs_dir)
    unnamed = nsa("launch", "--host", sshd.host, "--dry-run")  # the name is chosen here, as a local launch would
    assert unnamed.returncode == 0 and "run:     tiny-cpu-" in unnamed.stdout, unnamed.stderr


def test_resume_without_a_name_over_host_is_the_local_error(runs_dir, tmux_socket):
    """It made up a default name and asked the host to resume that (`--resume: runs/tiny-cpu-2026... has no
    checkpoint`); nothing goes to the host now (there is none here)."""
    res = nsa("launch", "--host", "nowhere.invalid", "--resume")
    assert res.returncode == 2  # a usage mistake, as an empty option value
    assert "--resume needs the run to continue: --name NAME or --run-dir DIR" in _one_error_line(res)
    res = nsa("launch", "--host", "nowhere.invalid", "--name", "x", "--remote-dir", "")
    assert res.returncode == 2 and "--remote-dir is empty" in _one_error_line(res)  # a usage mistake


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("NSA_SSH_COMMAND", 'ssh -o "x', "is not a valid command line (No closing quotation)"),
        ("NSA_SSH_CONNECT_TIMEOUT", "10s", "NSA_SSH_CONNECT_TIMEOUT='10s': expected a whole number of seconds"),
        ("NSA_SSH_COMMAND", "{file}", "cannot run the ssh command '{file}': Permission denied"),
        ("NSA_SSH_COMMAND", "{file}-missing", "ssh command not found: '{file}-missing'"),
    ],
)
def test_bad_ssh_settings_are_one_line_in_every_host_command(runs_dir, tmux_socket, tmp_path, variable, value, says):
    """A ValueError (quoting; the timeout, at import: every --host command) or PermissionError traceback before."""
    not_executable = tmp_path / "afile"
    not_executable.write_text("")
    env = {**os.environ, variable: value.format(file=not_executable)}
    says = says.format(file=not_executable)
    for args in (
        ["launch", "--name", "x"],
        ["halt", "x"],
        ["dump", "x"],
        ["status", "x"],
        ["sample", "x"],
        ["attach", "x"],  # from a script (stdin here is /dev/null) too: the settings come before the terminal
    ):
        res = nsa(*args, "--host", "root@127.0.0.1", env=env, timeout=60)
        assert res.returncode == 3 and says in _one_error_line(res), (args, res.stderr)
    _nothing_started(runs_dir)


def test_a_run_name_starting_with_a_dash_reaches_the_host(runs_dir, tmux_socket, sshd):
    """The remote argv put RUN before the options: `-x` was read as an option by the host's nsa."""
    run = runs_dir / "-x"
    run.mkdir()
    (run / "run.json").write_text("{}")  # a run's file: `nsa halt` refuses a directory that holds none
    res = nsa("dump", "--host", sshd.host, "--", "-x")
    assert res.returncode == 1 and "run '-x' has no heartbeat files yet" in _one_error_line(res), res.stderr
    res = nsa("halt", "--host", sshd.host, "--wait", "0", "--", "-x")
    assert res.returncode == 0 and (run / ".HALT").exists(), res.stdout + res.stderr
    res = nsa("sample", "--host", sshd.host, "--", "-x")
    assert res.returncode == 3 and "No such option" not in res.stderr and "-x" in _one_error_line(res), res.stderr
    res = nsa("launch", "--host", sshd.host, "--name", "-y", "--dry-run")
    assert res.returncode == 0, res.stderr


def test_a_link_lost_while_the_hosts_nsa_ran_is_not_cannot_reach(runs_dir, sshd, tmp_path):
    """`nsa halt --host` whose connection dropped while it waited said "cannot reach HOST" and exited 3 ("nothing ran
    there"), though it had created .HALT there and the run would stop. The command it suggests is one to paste: the
    --remote-dir went outside its backticks, unquoted."""
    import json
    import signal
    import sys

    run = runs_dir / "r"
    run.mkdir()
    (run / "heartbeat_rank0.jsonl").write_text(json.dumps({"v": 1, "kind": "progress", "step": 3, "ts": 1.0}) + "\n")
    checkout = tmp_path / "check out"
    checkout.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsa_tui", "halt", "--host", sshd.host, "--remote-dir", str(checkout),
         "--wait", "60", "r"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("created .HALT; waiting up to 60s"), first
        pending = [sshd.proc.pid]
        while pending:  # the connection's sshd processes and everything under them (the host's nsa)
            children = subprocess.run(["pgrep", "-P", str(pending.pop())], capture_output=True, text=True).stdout
            for pid in map(int, children.split()):
                pending.append(pid)
                os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: lost the connection to {sshd.host} while nsa halt "), err
    # what the host's halt had done, and a command to paste (the --remote-dir inside its backticks, quoted)
    assert f": .HALT stays on {sshd.host}: the run still stops after its current step; " in lines[0], err
    assert lines[0].endswith(f"check with `nsa status --host {sshd.host} --remote-dir '{checkout}' r`"), err
    assert (run / ".HALT").exists()


OLD_NSA = """#!{python}
# an nsa from before --reshard: a real Typer app whose launch knows fewer options
import typer

app = typer.Typer()


@app.command()
def launch(name: str = typer.Option(None, "--name"), resume: bool = typer.Option(False, "--resume")) -> None:
    pass


@app.command()
def status() -> None:
    pass


app()
"""


def test_a_usage_error_of_an_older_host_nsa_is_said_on_host(runs_dir, tmux_socket, sshd_factory, monkeypatch, tmp_path):
    """`nsa launch --host H --reshard` against a host whose nsa predates --reshard printed click's raw
    `No such option: --reshard` box, as if this nsa lacked the option; docs/launch.md promises `error: on HOST:`."""
    bin_dir = tmp_path / "old-bin"
    bin_dir.mkdir()
    (bin_dir / "nsa").write_text(OLD_NSA.format(python=sys.executable))
    (bin_dir / "nsa").chmod(0o755)
    s = sshd_factory(with_nsa=False, path_prefix=bin_dir)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    res = nsa("launch", "--host", s.host, "--name", "x", "--resume", "--reshard")
    assert res.returncode == 2, res.stderr
    line = _one_error_line(res)
    assert line.startswith(f"error: on {s.host}: No such option: --reshard"), line
    assert "the nsa there may be older than this one: update it there" in line
    assert "Usage:" not in res.stderr and "╭" not in res.stderr
    _nothing_started(runs_dir)


@pytest.mark.parametrize("resume", [False, True])
def test_a_config_variable_set_here_is_refused_over_host_before_ssh(runs_dir, tmux_socket, resume):
    """`CONFIG=configs/m7c-125m.yaml nsa launch --host gpu-box` ran the host's default config (or, resumed, the run's
    own), named after tiny-cpu, without a word: CONFIG is this machine's and is not sent. Refused, naming the
    --config to pass; nothing goes to the host (there is none here)."""
    env = {**os.environ, "CONFIG": "configs/m7c-125m.yaml"}
    res = nsa("launch", "--host", "nowhere.invalid", "--name", "x", *(["--resume"] if resume else []), env=env)
    assert res.returncode == 1 and res.stdout == ""
    instead = "the run's own config.yaml" if resume else "the host's default config"
    assert _one_error_line(res) == (
        "error: CONFIG=configs/m7c-125m.yaml is set here, and `nsa launch --host` does not send it (a config path is "
        "the host's): pass `--config configs/m7c-125m.yaml` to use it on nowhere.invalid, or unset CONFIG for "
        f"{instead}"
    )
    _nothing_started(runs_dir)


def test_a_config_variable_set_here_is_refused_by_check_over_host_before_ssh(tmp_path):
    """`CONFIG=configs/m7c-125m.yaml nsa check --host gpu-box` checked the host's default config and said "ready to
    train" of a config nobody meant: the same refusal as `nsa launch --host`, before ssh is tried (a command that
    would start ssh says so: none runs here). A --config given, or an empty CONFIG, goes on to ssh."""
    ssh = tmp_path / "no-ssh-here"
    env = {**os.environ, "CONFIG": "configs/m7c-125m.yaml", "NSA_SSH_COMMAND": str(ssh)}
    res = nsa("check", "--host", "nowhere.invalid", env=env)
    assert res.returncode == 1 and res.stdout == ""
    assert _one_error_line(res) == (
        "error: CONFIG=configs/m7c-125m.yaml is set here, and `nsa check --host` does not send it (a config path is "
        "the host's): pass `--config configs/m7c-125m.yaml` to use it on nowhere.invalid, or unset CONFIG for "
        "the host's default config"
    )
    for more, config in ((["--config", "configs/m7c-125m.yaml"], "configs/m7c-125m.yaml"), ([], "")):
        res = nsa("check", "--host", "nowhere.invalid", *more, env={**env, "CONFIG": config})
        assert res.returncode == 3 and "ssh command not found" in _one_error_line(res), res.stderr


def test_host_launch_takes_the_gpus_and_says_unread_switches_of_this_shell(runs_dir, tmux_socket, sshd, tmp_path):
    """`CUDA_VISIBLE_DEVICES=1 NSA_PREFILL_BATCHED=1 nsa launch --host ...` dropped both without a word (sshd drops a
    client's variables): the GPUs go to the host's nsa launch as NSA_RUNS_DIR does, and are said; the switch no nsa
    reads is warned of as by a local launch. A --config given, or an empty CONFIG, is not refused."""
    shipped = REPO / "configs" / "tiny-cpu.yaml"
    env = {**sshd.env(), "CUDA_VISIBLE_DEVICES": "1", "NSA_PREFILL_BATCHED": "1", "CONFIG": str(shipped)}
    res = nsa("launch", "--host", sshd.host, "--name", "g", "--config", str(shipped), "--dry-run", env=env)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "  CUDA_VISIBLE_DEVICES=1" in lines, res.stdout  # the host's plan: its trainer gets it
    assert (
        f"note: CUDA_VISIBLE_DEVICES=1 is set here: the host's `nsa launch` gets it (GPUs as {sshd.host} numbers them)"
    ) in lines
    assert any(line.startswith("warning: NSA_PREFILL_BATCHED=1 is an earlier trainer's switch") for line in lines)
    env = {**env, "CUDA_VISIBLE_DEVICES": "", "CONFIG": ""}  # an empty one hides every GPU: it travels too
    res = nsa("launch", "--host", sshd.host, "--name", "g", "--dry-run", env=env)
    assert res.returncode == 0, res.stderr
    assert "  CUDA_VISIBLE_DEVICES=" in res.stdout.splitlines(), res.stdout
    _nothing_started(runs_dir)
