"""The torchrun command line and the environment of a launch.

torchrun runs as ``<this python> -P -m torch.distributed.run`` so the trainer gets
the same interpreter (and virtual environment) as the ``nsa`` that launched it. ``-P`` and
PYTHONSAFEPATH=1 (which torchrun's workers inherit) keep the current directory off sys.path:
the trainer is the installed code launch.json records, not an ``nsa_train`` that happens to
sit in the directory the launch ran from.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nsa_train.runtime.control import LAUNCH_TIME_ENV
from nsa_train.runtime.preflight import CREDENTIAL_NAME
from nsa_tui.errors import USAGE_EXIT, UserError

TRAINER_MODULE = "nsa_train.train"

# Caller variables handed to the trainer explicitly: a tmux server started earlier
# has its own (older) environment, so `CUDA_VISIBLE_DEVICES=0 nsa launch` would
# otherwise be silently lost.
PASSTHROUGH_NAMES = ("CUDA_VISIBLE_DEVICES", "PATH", "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "OMP_NUM_THREADS")
PASSTHROUGH_PREFIXES = ("NSA_", "NCCL_", "TORCH_", "PYTORCH_", "HF_", "CUDA_", "TRITON_")
# Never copied into launch.json (which is meant to be shared): credentials.
SECRET_PATTERN = CREDENTIAL_NAME


@dataclass(frozen=True)
class Rendezvous:
    """Single node (``--standalone``) unless nnodes > 1 (static rendezvous: the
    node rank is the one given, so node 0 is always the rank-0 host)."""

    nnodes: int = 1
    node_rank: int = 0
    endpoint: str | None = None

    def validate(self) -> None:
        """Usage mistakes (exit 2), as Typer's own range checks are: told before a config is read or a
        launch goes to --host."""
        if self.nnodes < 1:
            raise UserError(f"--nnodes must be >= 1, got {self.nnodes}", USAGE_EXIT)
        if self.node_rank < 0 or (self.nnodes > 1 and self.node_rank >= self.nnodes):
            raise UserError(f"--node-rank {self.node_rank} is outside 0..{self.nnodes - 1}", USAGE_EXIT)
        if self.nnodes == 1:
            if self.node_rank != 0:
                raise UserError("--node-rank needs --nnodes > 1", USAGE_EXIT)
            if self.endpoint is not None:  # a single node uses --standalone: the endpoint would go nowhere
                raise UserError("--rdzv-endpoint needs --nnodes > 1 (one node rendezvous with itself)", USAGE_EXIT)
            return
        if self.endpoint is None:
            raise UserError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the address of node 0)", USAGE_EXIT)
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"--rdzv-endpoint {self.endpoint!r}: expected HOST:PORT, e.g. 10.0.0.1:29500", USAGE_EXIT)

    def torchrun_args(self) -> list[str]:
        if self.nnodes == 1:
            return ["--standalone"]
        assert self.endpoint is not None
        return [
            "--nnodes",
            str(self.nnodes),
            "--node-rank",
            str(self.node_rank),
            "--rdzv-backend",
            "static",
            "--rdzv-endpoint",
            self.endpoint,
        ]


@dataclass(frozen=True)
class TrainerCommand:
    config_path: Path | None
    run_dir: Path
    nproc: int
    overrides: list[str] = field(default_factory=list)
    rendezvous: Rendezvous = field(default_factory=Rendezvous)
    python: str = field(default_factory=lambda: sys.executable)
    resume: bool = False
    force: bool = False  # `nsa launch --force`: the trainer may start afresh over an earlier run's results
    reshard: bool = False  # `nsa launch --resume --reshard`: continue on another number of ranks

    def argv(self) -> list[str]:
        argv = [self.python, "-P", "-m", "torch.distributed.run", *self.rendezvous.torchrun_args()]
        argv += ["--nproc-per-node", str(self.nproc), "-m", TRAINER_MODULE]
        if self.config_path is not None:
            argv += ["--config", str(self.config_path)]
        argv += ["--run-dir", str(self.run_dir)]
        for item in self.overrides:
            argv += ["--set", item]
        if self.resume:
            argv.append("--resume")
            if self.reshard:
                argv.append("--reshard")
        elif self.force:
            argv.append("--force")
        return argv


def shell_string(argv: list[str], env: dict[str, str] | None = None) -> str:
    """A line a user can paste into a POSIX shell to do the same by hand."""
    prefix = [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()]
    return " ".join([*prefix, shlex.join(argv)])


def is_passthrough(name: str) -> bool:
    """A variable nsa hands from the caller to the trainer (and records): never one that looks like a secret."""
    wanted = name in PASSTHROUGH_NAMES or name.startswith(PASSTHROUGH_PREFIXES)
    return wanted and not SECRET_PATTERN.search(name)


def passthrough_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = dict(os.environ if environ is None else environ)
    return {k: v for k, v in sorted(environ.items()) if is_passthrough(k)}


def trainer_env(runtime_env: dict[str, str], environ: dict[str, str] | None = None) -> tuple[dict[str, str], dict]:
    """The variables nsa sets for the trainer, and where each came from.

    Order of precedence: the config's runtime.env over the caller's environment, then
    nsa's own: PYTHONUNBUFFERED=1 (so console.log is live, not block-buffered) and
    PYTHONSAFEPATH=1 (the module docstring). NSA_LAUNCH_TIME is nsa's too, set when the
    session starts (LaunchPlan.stamp): a caller's or runtime.env's value is dropped.
    """
    passed = {k: v for k, v in passthrough_env(environ).items() if k != LAUNCH_TIME_ENV}
    runtime_env = {k: v for k, v in runtime_env.items() if k != LAUNCH_TIME_ENV}
    ours = {"PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1"}
    env = {**passed, **runtime_env, **ours}
    sources = {
        "caller": sorted(k for k in passed if k not in runtime_env and k not in ours),
        "runtime.env": sorted(k for k in runtime_env if k not in ours),
        "nsa": sorted(ours),
    }
    return env, sources
