"""Config inputs the OS cannot take, or that are not config files: one line from the config, not a traceback from
os.environ or "not found" of a path that is there."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.cli import invoke, one_error

from nsa_train.config import ConfigError, load_config, resolve_config_path

REPO = Path(__file__).resolve().parents[2]

BAD_ENV = [
    ('runtime.env={"A=B": "x"}', "runtime.env.A=B: a variable name cannot contain '=' (the environment's separator)"),
    ('runtime.env={"": "x"}', "runtime.env: a variable needs a name (an empty key was given)"),
    ('runtime.env={"A\\u0000B": "x"}', "runtime.env.'A\\x00B': a variable name cannot contain a NUL byte"),
    ('runtime.env={"A": "x\\u0000y"}', "runtime.env.A: the value cannot contain a NUL byte"),
]


@pytest.mark.parametrize(("setting", "says"), BAD_ENV, ids=["equals", "empty", "nul-key", "nul-value"])
def test_runtime_env_that_cannot_be_set_is_refused_with_the_config(setting: str, says: str) -> None:
    """'A=B' was a ValueError traceback from os.environ (in launch, after its run dir was made); '' was recorded in
    launch.json and set nothing, without a word."""
    with pytest.raises(ConfigError) as e:
        load_config(None, [setting])
    assert str(e.value) == f"<embedded default> (with --set {setting}): {says}"
    res = invoke("check", "--set", setting)
    assert res.exit_code == 2 and one_error(res).endswith(f" (with --set {setting}): {says}")


def test_launch_refuses_runtime_env_before_it_makes_a_run_dir(runs_dir: Path, tmux_socket: str) -> None:
    res = invoke("launch", "--name", "env", "--set", BAD_ENV[0][0])
    assert res.exit_code == 1 and one_error(res).endswith(f"): {BAD_ENV[0][1]}")
    assert list(runs_dir.iterdir()) == []


def test_the_trainer_refuses_runtime_env_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIG", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    cmd = [sys.executable, "-m", "nsa_train.train", "--run-dir", str(tmp_path / "r"), "--set", BAD_ENV[0][0]]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].endswith(f"): {BAD_ENV[0][1]}"), proc.stderr


def test_a_config_path_that_is_not_a_regular_file_says_what_it_is(tmp_path: Path) -> None:
    """/dev/null, a named pipe or a socket was "config file not found" of a path that is there."""
    fifo, sock_path = tmp_path / "c.fifo", tmp_path / "c.sock"
    os.mkfifo(fifo)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for path, kind in (("/dev/null", "character device"), (str(fifo), "named pipe"), (str(sock_path), "socket")):
            says = f"{path} is a {kind}, not a config file"
            with pytest.raises(ConfigError) as e:
                resolve_config_path(path, env={})
            assert str(e.value) == says
            with pytest.raises(ConfigError) as e:
                resolve_config_path(None, env={"CONFIG": path})
            assert str(e.value) == f"{says} (from $CONFIG)"
            res = invoke("check", "--config", path)
            assert res.exit_code == 2 and one_error(res) == f"error: {says}"
    finally:
        sock.close()
    with pytest.raises(ConfigError, match="^config file not found: "):  # a missing file still says so
        resolve_config_path(str(tmp_path / "missing.yaml"), env={})
