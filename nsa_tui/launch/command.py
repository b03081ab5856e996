"""The torchrun command line and the environment of a launch.

torchrun runs as ``<this python> -m torch.distributed.run`` so the trainer gets
the same interpreter (and virtual environment) as the ``nsa`` that launched it.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nsa_tui.errors import UserError

TRAINER_MODULE = "nsa_train.train"

# Caller variables handed to the trainer explicitly: a tmux server started earlier
# has its own (older) environment, so `CUDA_VISIBLE_DEVICES=0 nsa launch` would
# otherwise be silently lost.
PASSTHROUGH_NAMES = ("CUDA_VISIBLE_DEVICES", "PATH", "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "OMP_NUM_THREADS")
PASSTHROUGH_PREFIXES = ("NSA_", "NCCL_", "TORCH_", "PYTORCH_", "HF_", "CUDA_", "TRITON_")
# Never copied into launch.json (which is meant to be shared): credentials.
SECRET_PATTERN = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_KEY$|^KEY", re.IGNORECASE)


@dataclass(frozen=True)
class Rendezvous:
    """Single node (``--standalone``) unless nnodes > 1 (static rendezvous: the
    node rank is the one given, so node 0 is always the rank-0 host)."""

    nnodes: int = 1
    node_rank: int = 0
    endpoint: str | None = None

    def validate(self) -> None:
        if self.nnodes < 1:
            raise UserError(f"--nnodes must be >= 1, got {self.nnodes}")
        if self.nnodes == 1:
            if self.node_rank != 0:
                raise UserError("--node-rank needs --nnodes > 1")
            if self.endpoint is not None:  # a single node uses --standalone: the endpoint would go nowhere
                raise UserError("--rdzv-endpoint needs --nnodes > 1 (one node rendezvous with itself)")
            return
        if self.endpoint is None:
            raise UserError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the address of node 0)")
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"--rdzv-endpoint {self.endpoint!r}: expected HOST:PORT, e.g. 10.0.0.1:29500")
        if not 0 <= self.node_rank < self.nnodes:
            raise UserError(f"--node-rank {self.node_rank} is outside 0..{self.nnodes - 1}")

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

    def argv(self) -> list[str]:
        argv = [self.python, "-m", "torch.distributed.run", *self.rendezvous.torchrun_args()]
        argv += ["--nproc-per-node", str(self.nproc), "-m", TRAINER_MODULE]
        if self.config_path is not None:
            argv += ["--config", str(self.config_path)]
        argv += ["--run-dir", str(self.run_dir)]
        for item in self.overrides:
            argv += ["--set", item]
        if self.resume:
            argv.append("--resume")
        return argv


def shell_string(argv: list[str], env: dict[str, str] | None = None) -> str:
    """A line a user can paste into a POSIX shell to do the same by hand."""
    prefix = [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()]
    return " ".join([*prefix, shlex.join(argv)])


def passthrough_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = dict(os.environ if environ is None else environ)
    out = {}
    for k, v in sorted(environ.items()):
        wanted = k in PASSTHROUGH_NAMES or k.startswith(PASSTHROUGH_PREFIXES)
        if wanted and not SECRET_PATTERN.search(k):
            out[k] = v
    return out


def trainer_env(runtime_env: dict[str, str], environ: dict[str, str] | None = None) -> tuple[dict[str, str], dict]:
    """The variables nsa sets for the trainer, and where each came from.

    Order of precedence: the config's runtime.env over the caller's environment,
    and PYTHONUNBUFFERED=1 always (so console.log is live, not block-buffered).
    """
    passed = passthrough_env(environ)
    env = {**passed, **runtime_env, "PYTHONUNBUFFERED": "1"}
    sources = {
        "caller": sorted(k for k in passed if k not in runtime_env),
        "runtime.env": sorted(runtime_env),
        "nsa": ["PYTHONUNBUFFERED"],
    }
    return env, sources
