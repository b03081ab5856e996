"""Pure logic of a launch: torchrun argv, rendezvous, environment, GPU count, estimates."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from nsa_tui.errors import UserError
from nsa_tui.launch import tmux
from nsa_tui.launch.command import Rendezvous, TrainerCommand, passthrough_env, shell_string, trainer_env
from nsa_tui.launch.gpus import default_nproc, visible_gpu_count
from nsa_tui.launch.launcher import (
    LaunchRequest,
    check_request,
    default_run_name,
    describe,
    launch_record,
    plan_launch,
    validate_run_name,
)
from nsa_tui.launch.tmux import session_name
from nsa_tui.remote.ssh import SSHError, connect_timeout_s, ssh_base_command


def test_single_node_argv_uses_this_python_and_standalone():
    cmd = TrainerCommand(Path("/c/x.yaml"), Path("/r/run a"), 2, ["train.lr=1e-3"])
    argv = cmd.argv()
    # -P: the current directory is not on sys.path (an nsa_train there must not be what runs)
    assert argv[:5] == [sys.executable, "-P", "-m", "torch.distributed.run", "--standalone"]
    assert argv[argv.index("--nproc-per-node") + 1] == "2"
    assert argv[argv.index("-m", 4) + 1] == "nsa_train.train"
    assert argv[-6:] == ["--config", "/c/x.yaml", "--run-dir", "/r/run a", "--set", "train.lr=1e-3"]


def test_no_config_file_omits_config_flag():
    assert "--config" not in TrainerCommand(None, Path("/r"), 1).argv()


def test_multi_node_static_rendezvous_pass_through():
    r = Rendezvous(2, 1, "10.0.0.1:29500")
    r.validate()
    assert r.torchrun_args() == [
        "--nnodes", "2", "--node-rank", "1", "--rdzv-backend", "static", "--rdzv-endpoint", "10.0.0.1:29500",
    ]  # fmt: skip
    assert "--standalone" not in TrainerCommand(None, Path("/r"), 8, rendezvous=r).argv()


@pytest.mark.parametrize(
    ("nnodes", "rank", "endpoint", "msg"),
    [
        (2, 0, None, "needs --rdzv-endpoint"),
        (2, 0, "nohostport", "expected HOST:PORT"),
        (2, 0, "h:99999", "expected HOST:PORT"),
        (2, 2, "h:29500", "outside 0..1"),
        (1, 1, None, "needs --nnodes > 1"),
        (1, 0, "h:29500", "--rdzv-endpoint needs --nnodes > 1"),
        (0, 0, None, ">= 1"),
    ],
)
def test_bad_rendezvous_is_one_clear_error(nnodes, rank, endpoint, msg):
    with pytest.raises(UserError, match=msg):
        Rendezvous(nnodes, rank, endpoint).validate()


def test_shell_string_round_trips_hostile_arguments():
    argv = ["python", "--run-dir", "/runs/a b; $(touch /tmp/x) 'q'"]
    line = shell_string(argv, {"K": "v w"})
    assert line.startswith("K='v w' ")
    assert shlex.split(line)[1:] == argv


def test_env_runtime_overrides_caller_and_unbuffered_always():
    caller = {"NCCL_ALGO": "Tree", "CUDA_VISIBLE_DEVICES": "0", "HOME": "/root", "HF_TOKEN": "secret", "FOO": "1"}
    env, sources = trainer_env({"NCCL_ALGO": "Ring", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}, caller)
    assert env["NCCL_ALGO"] == "Ring"
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["PYTHONUNBUFFERED"] == "1" and env["PYTHONSAFEPATH"] == "1"
    assert "HF_TOKEN" not in env and "HOME" not in env and "FOO" not in env
    assert sources["runtime.env"] == ["NCCL_ALGO", "PYTORCH_CUDA_ALLOC_CONF"]
    assert sources["caller"] == ["CUDA_VISIBLE_DEVICES"]


def test_passthrough_never_copies_credentials():
    got = passthrough_env({"NSA_API_KEY": "x", "HF_TOKEN": "y", "NSA_RUNS_DIR": "/r", "TORCH_SECRET": "z"})
    assert got == {"NSA_RUNS_DIR": "/r"}


@pytest.mark.parametrize(("cvd", "count"), [("0,1,2", 3), ("", 0), ("-1", 0), ("0,-1,1", 1), ("GPU-abc,GPU-def", 2)])
def test_visible_gpus_from_cuda_visible_devices(cvd, count):
    assert visible_gpu_count({"CUDA_VISIBLE_DEVICES": cvd}) == count


def test_default_nproc_is_one_on_cpu():
    assert default_nproc("cpu", {"CUDA_VISIBLE_DEVICES": "0,1"}) == 1
    assert default_nproc("auto", {"CUDA_VISIBLE_DEVICES": "0,1"}) == 2
    assert default_nproc("auto", {"CUDA_VISIBLE_DEVICES": ""}) == 1


def test_default_name_and_session_name():
    name = default_run_name("configs/m7c-125m.yaml", now=0)
    assert name.startswith("m7c-125m-19") or name.startswith("m7c-125m-20")
    assert session_name("a_b c-d") == "nsa-a_b c-d"  # what tmux keeps is kept
    # no --config: the default config's run, named alike here, on another host and from an installed wheel
    assert default_run_name(None, now=0).startswith("tiny-cpu-")


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "x\ny"])
def test_run_name_must_be_one_directory_name(bad):
    with pytest.raises(UserError, match="invalid run name"):
        validate_run_name(bad)


def test_hostile_run_names_are_allowed_as_literals():
    for name in ["a b", "it's", "x; touch p", "$(id)", "`id`"]:
        assert validate_run_name(name) == name


def test_launch_time_is_nsas_own_and_recorded(runs_dir):
    """The trainer dates its attempt from NSA_LAUNCH_TIME (a .HALT older is stale): set when the session starts,
    never a caller's or the config's value."""
    env, sources = trainer_env({"NSA_LAUNCH_TIME": "1"}, {"NSA_LAUNCH_TIME": "2", "NSA_RUNS_DIR": "/r"})
    assert "NSA_LAUNCH_TIME" not in env and sources["caller"] == ["NSA_RUNS_DIR"] and sources["runtime.env"] == []
    plan = plan_launch(LaunchRequest(name="t"), {"NSA_LAUNCH_TIME": "2"})
    assert "NSA_LAUNCH_TIME" not in plan.env and any("NSA_LAUNCH_TIME=<when the session" in x for x in describe(plan))
    plan.stamp(1700000000.25)
    assert plan.env["NSA_LAUNCH_TIME"] == "1700000000.250000" and "NSA_LAUNCH_TIME" in plan.env_sources["nsa"]
    assert launch_record(plan)["ts"] == 1700000000.25


def test_session_names_are_one_per_run_name():
    """tmux turns '.' and ':' into '_' and expands '#': `a.b` took `a_b`'s session, 'h#{pane_id}' became 'nsa-h'.
    What tmux would alter is %XX-encoded (and '%' itself), so distinct names give distinct sessions."""
    names = ["a_b", "a.b", "a:b", "a%2Eb", "a%5F", "h#{pane_id}", "h", "x\\y", "a$HOME", "é", "%C3%A9", "t\tx", "a;"]
    sessions = [session_name(n) for n in names]
    assert len(set(sessions)) == len(names)
    assert session_name("a.b") == "nsa-a%2Eb" and session_name("h#{pane_id}") == "nsa-h%23{pane_id}"
    for s in sessions:
        assert not set(s) & set("#.:$\\") and s.isascii() and s.isprintable()


def test_recorded_socket_null_means_the_default_server(monkeypatch):
    """launch.json's null is tmux's default server, not $NSA_TMUX_SOCKET's; only no record at all means the latter."""
    monkeypatch.setenv("NSA_TMUX_SOCKET", "mine")
    assert tmux.recorded_socket({"tmux_socket": None}) == tmux.DEFAULT_SERVER
    assert tmux.recorded_socket({"tmux_socket": "s1"}) == "s1"
    assert tmux.recorded_socket({}) is None and tmux.recorded_socket(None) is None
    assert "-L" not in tmux.tmux_argv("ls", socket=tmux.DEFAULT_SERVER)
    assert tmux.tmux_argv("ls", socket=None)[1:3] == ["-L", "mine"]
    # an argument ending in ';' would be a tmux command separator
    assert tmux.tmux_argv("has-session", "-t", "=nsa-a;", socket="s")[-1] == "=nsa-a\\;"


def test_a_recorded_socket_path_comes_first(monkeypatch):
    """The absolute socket path launch.json records addresses the server whatever $TMUX_TMPDIR says (-S); a value
    that is not an absolute path is ignored."""
    monkeypatch.setenv("NSA_TMUX_SOCKET", "mine")
    path = "/tmp/tmux-0/default"
    assert tmux.recorded_socket({"tmux_socket": None, "tmux_socket_path": path}) == path
    assert tmux.recorded_socket({"tmux_socket_path": path}) == path
    assert tmux.recorded_socket({"tmux_socket": "s1", "tmux_socket_path": "rel/x"}) == "s1"
    assert tmux.recorded_socket({"tmux_socket": None, "tmux_socket_path": 3}) == tmux.DEFAULT_SERVER
    assert tmux.tmux_argv("ls", socket=path)[1:4] == ["-S", path, "ls"]


@pytest.mark.parametrize("field", ["config", "name", "run_dir"])
def test_empty_option_values_are_refused(field):
    """`--run-dir ''` planned the current directory, `--config ''` the default config, `--name ''` a made-up name."""
    flag = "--" + field.replace("_", "-")
    with pytest.raises(UserError, match=f"{flag} is empty") as err:
        check_request(LaunchRequest(**{field: ""}))
    assert err.value.code == 2  # a usage mistake, as an empty RUN or `--remote-dir ''` (it was 1)


def test_resume_needs_a_run_here_and_over_host():
    with pytest.raises(UserError, match="--resume needs the run to continue") as err:
        check_request(LaunchRequest(resume=True))
    assert err.value.code == 2
    check_request(LaunchRequest(resume=True, name="r"))


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("NSA_SSH_COMMAND", 'ssh -o "x', "NSA_SSH_COMMAND='ssh -o \"x' is not a valid command line"),
        ("NSA_SSH_COMMAND", "   ", None),  # blank: plain ssh
        ("NSA_SSH_CONNECT_TIMEOUT", "10s", "NSA_SSH_CONNECT_TIMEOUT='10s': expected a whole number of seconds"),
        ("NSA_SSH_CONNECT_TIMEOUT", "0", "expected a whole number of seconds >= 1, e.g. 10"),
        ("NSA_SSH_CONNECT_TIMEOUT", "nan", "expected a whole number of seconds >= 1"),
        ("NSA_SSH_CONNECT_TIMEOUT", "2.5", "NSA_SSH_CONNECT_TIMEOUT='2.5': expected a whole number of seconds >= 1"),
        ("NSA_SSH_ALIVE_INTERVAL", "15s", "NSA_SSH_ALIVE_INTERVAL='15s': expected a whole number of seconds >= 1"),
        ("NSA_SSH_ALIVE_INTERVAL", "2.5", "or 0 for ssh's own setting"),
        ("NSA_SSH_ALIVE_INTERVAL", "0.5", "or 0 for ssh's own setting"),
        ("NSA_SSH_ALIVE_INTERVAL", "-1", "or 0 for ssh's own setting"),
    ],
)
def test_bad_ssh_settings_are_an_ssh_error_when_used(monkeypatch, variable, value, says):
    monkeypatch.setenv(variable, value)
    if says is None:
        assert ssh_base_command()[0] == "ssh"
        return
    with pytest.raises(SSHError, match=re.escape(says)):
        ssh_base_command()


def test_connect_timeout_whole_seconds(monkeypatch):
    monkeypatch.delenv("NSA_SSH_CONNECT_TIMEOUT", raising=False)
    assert connect_timeout_s() == 10
    monkeypatch.setenv("NSA_SSH_CONNECT_TIMEOUT", " 3 ")
    assert connect_timeout_s() == 3 and "ConnectTimeout=3" in ssh_base_command()
    monkeypatch.setenv("NSA_SSH_CONNECT_TIMEOUT", "4.0")  # a whole number, written as a float
    assert connect_timeout_s() == 4


def _options(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]


def test_keepalives_unless_the_users_ssh_command_sets_them(monkeypatch):
    """Without ServerAlive a frozen host or a dead link left `nsa halt --host` (and launch, dump, ...) waiting for
    hours; the user's own choice in NSA_SSH_COMMAND stands, in any of ssh's spellings, and 0 leaves it to ssh."""
    monkeypatch.delenv("NSA_SSH_COMMAND", raising=False)
    monkeypatch.delenv("NSA_SSH_ALIVE_INTERVAL", raising=False)
    assert {"ServerAliveInterval=15", "ServerAliveCountMax=4"} <= set(_options(ssh_base_command()))
    monkeypatch.setenv("NSA_SSH_ALIVE_INTERVAL", "2")
    assert "ServerAliveInterval=2" in _options(ssh_base_command())
    monkeypatch.setenv("NSA_SSH_COMMAND", "ssh -oserveraliveinterval=60")
    opts = _options(ssh_base_command())
    assert not any(o.lower().startswith("serveraliveinterval") for o in opts) and "ServerAliveCountMax=4" in opts
    monkeypatch.setenv("NSA_SSH_COMMAND", "ssh -o 'ServerAliveCountMax 9'")
    opts = _options(ssh_base_command())
    assert "ServerAliveCountMax=4" not in opts and "ServerAliveInterval=2" in opts
    monkeypatch.setenv("NSA_SSH_COMMAND", "ssh")
    monkeypatch.setenv("NSA_SSH_ALIVE_INTERVAL", "0")
    assert not any(o.startswith("ServerAlive") for o in _options(ssh_base_command()))


@pytest.mark.parametrize(
    ("command", "ours"),
    [
        ("ssh", True),
        ("ssh -p 22 -i /keys/quiet-v", True),  # a q or v in an option's argument sets no level
        ("ssh -lqv", True),  # -l's argument is the rest of the cluster: the user "qv"
        ("ssh -qp22", False),  # -q, then -p 22
        ("ssh -o LogLevel=ERROR", False),
        ("ssh -o 'loglevel quiet'", False),
        ("ssh -q", False),
        ("ssh -Tv", False),
        ("ssh -oLogLevel=ERROR", False),
        ("ssh -4o LogLevel=QUIET", False),  # -o's argument is the next word when the cluster ends at it
        ("ssh -F /home/u/loglevel-test.conf", True),  # only -o's key sets a level, not a path that holds the word
        ("ssh -J loglevel.example -o StrictHostKeyChecking=no", True),
    ],
)
def test_ssh_logs_at_info_unless_the_users_ssh_command_sets_a_level(monkeypatch, command, ours):
    """What ssh says of a lost link is logged at INFO: a config file's `LogLevel QUIET` kept it back, and a link lost
    mid-command read "cannot reach" (nothing ran there). The user's own level in NSA_SSH_COMMAND stands."""
    monkeypatch.setenv("NSA_SSH_COMMAND", command)
    assert ("LogLevel=INFO" in _options(ssh_base_command())) == ours


def test_launch_json_names_the_user_without_user_or_logname(runs_dir, monkeypatch):
    """Under `env -i` (cron, some containers) launch.json said "user": null though the uid has a name."""
    import pwd

    monkeypatch.delenv("USER", raising=False)
    monkeypatch.delenv("LOGNAME", raising=False)
    plan = plan_launch(LaunchRequest(name="t"), {})
    assert launch_record(plan)["user"] == pwd.getpwuid(os.getuid()).pw_name


def test_the_next_steps_name_the_run_as_the_other_commands_find_it(runs_dir, tmp_path, monkeypatch):
    """`nsa launch --name d` in a directory holding a data folder `d`: it printed `nsa watch d`, and `nsa status d`
    then judged the data folder (a RUN is first a path here)."""
    from nsa_tui.commands.launch import run_argument

    run = runs_dir / "d"
    run.mkdir()
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    assert run_argument("d", run) == "d"
    (here / "d").mkdir()
    assert run_argument("d", run) == str(run)


def test_reshard_goes_to_the_trainer_and_to_a_remote_launch() -> None:
    from pathlib import Path

    from nsa_tui.commands.launch import remote_launch_args
    from nsa_tui.launch.command import TrainerCommand
    from nsa_tui.launch.launcher import LaunchRequest

    argv = TrainerCommand(None, Path("/r"), 1, resume=True, reshard=True).argv()
    assert argv[-2:] == ["--resume", "--reshard"]
    assert remote_launch_args(LaunchRequest(name="x", resume=True, reshard=True), False)[-2:] == [
        "--resume",
        "--reshard",
    ]
