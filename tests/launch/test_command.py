"""Pure logic of a launch: torchrun argv, rendezvous, environment, GPU count, estimates."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from nsa_tui.errors import UserError
from nsa_tui.launch.command import Rendezvous, TrainerCommand, passthrough_env, shell_string, trainer_env
from nsa_tui.launch.gpus import default_nproc, visible_gpu_count
from nsa_tui.launch.launcher import default_run_name, validate_run_name
from nsa_tui.launch.tmux import session_name


def test_single_node_argv_uses_this_python_and_standalone():
    cmd = TrainerCommand(Path("/c/x.yaml"), Path("/r/run a"), 2, ["train.lr=1e-3"])
    argv = cmd.argv()
    assert argv[:4] == [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    assert argv[argv.index("--nproc-per-node") + 1] == "2"
    assert argv[argv.index("-m", 3) + 1] == "nsa_train.train"
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
    assert env["PYTHONUNBUFFERED"] == "1"
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
    assert session_name("a.b:c d") == "nsa-a_b_c d"
    # no --config: the default config's run, named alike here, on another host and from an installed wheel
    assert default_run_name(None, now=0).startswith("tiny-cpu-")


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "x\ny"])
def test_run_name_must_be_one_directory_name(bad):
    with pytest.raises(UserError, match="invalid run name"):
        validate_run_name(bad)


def test_hostile_run_names_are_allowed_as_literals():
    for name in ["a b", "it's", "x; touch p", "$(id)", "`id`"]:
        assert validate_run_name(name) == name
