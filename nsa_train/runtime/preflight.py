"""Preflight: configuration traps that only show with the machine (world size, device)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Mapping, MutableMapping

from nsa_train.config.schema import Config, ConfigError, NSAConfig

LONG_RUN_STEPS = 2000


def micro_batch_size(cfg: Config, world_size: int) -> int:
    """Sequences per rank per micro-step; an error when the global batch does not split evenly."""
    t = cfg.train
    per = world_size * t.grad_accum
    if t.batch_size % per != 0:
        raise ConfigError(
            f"train.batch_size: {t.batch_size} is not divisible by world_size x grad_accum = "
            f"{world_size} x {t.grad_accum} = {per}; the global batch must split evenly across ranks"
        )
    return t.batch_size // per


# Every NSA_* variable nsa and its trainer read (a test holds this to the code's string literals). Another one in
# the environment changes nothing, and is said: the seed reports' runs exported the previous trainer's switches and
# believed them in effect for days.
NSA_ENV_READ = frozenset(
    {
        "NSA_CHECK_DISK_FREE_BYTES",
        "NSA_END_WITH_STDIN",
        "NSA_HALT_HOST_GRACE",
        "NSA_LAUNCH_TIME",
        "NSA_ON_HOST",
        "NSA_ON_REMOTE_DIR",
        "NSA_RUNS_DIR",
        "NSA_SSH_ALIVE_INTERVAL",
        "NSA_SSH_COMMAND",
        "NSA_SSH_CONNECT_TIMEOUT",
        "NSA_TEST_SLOW_STEP",
        "NSA_TMUX_SOCKET",
    }
)


def _setting(key: str) -> str:
    return f"its setting is the config's {key} (--set {key}=...)"


# the previous trainer's switches, and what holds each setting here: a config key, or what nsa does instead (seed
# 002 called NSA_PREFILL_BATCHED critical; a question mark left its users unsure whether their runs had it)
LEGACY_NSA_ENV = {
    "NSA_DDP_COMPRESS": _setting("runtime.ddp_compress"),
    "NSA_DDP_BUCKET_MB": _setting("runtime.ddp_bucket_mb"),
    "NSA_DDP_DISABLE_GC": "gradient checkpointing is the config's train.grad_checkpointing, false (off) by default "
    "(--set train.grad_checkpointing=...)",
    "NSA_PREFILL_BATCHED": "nsa has no such switch, its NSA attention always runs batched over the batch, heads and "
    "tokens, in query tiles (nsa.impl auto, the default, fast and triton; only reference, the slow oracle, does not)",
    "NSA_SEL_RANGES_V2": _setting("nsa.impl"),
}


# Names that look like credentials: nsa launch never copies them into launch.json (meant to be shared), and no
# message shows their values (the trainer's start warnings are kept in its heartbeat)
CREDENTIAL_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_KEY$|^KEY", re.IGNORECASE)


def unread_nsa_env(environ: Mapping[str, str], source: str = "") -> list[str]:
    """A warning for each NSA_* variable set here that neither nsa nor the trainer reads; ``source`` goes before
    each name (`runtime.env.`: the config's, which nsa launch passes on whatever its name)."""
    out = []
    for name in sorted(k for k in environ if k.startswith("NSA_") and k not in NSA_ENV_READ):
        if CREDENTIAL_NAME.search(name):
            passed = "" if source else ", and nsa launch does not pass it on"
            out.append(f"{source}{name} (its value not shown: the name looks like a credential) is not read by nsa "
                       f"or its trainer{passed}")  # fmt: skip
            continue
        said = f"{source}{name}={environ[name]}"
        if (instead := LEGACY_NSA_ENV.get(name)) is not None:
            out.append(f"{said} is an earlier trainer's switch, not read by this one: {instead}")
        else:
            out.append(f"{said} is not read by nsa or its trainer (a typo, or an earlier trainer's switch?)")
    return out


# read by the dynamic loader or the interpreter when a process starts: setting them inside it changes nothing
_READ_AT_PROCESS_START = ("LD_", "PYTHON")


def apply_runtime_env(runtime_env: dict[str, str], environ: MutableMapping[str, str]) -> tuple[list[str], list[str]]:
    """Put the config's runtime.env into this process's environment, before torch is imported (CUDA's allocator,
    NCCL and OpenMP read theirs later), as `nsa launch` does for the processes it starts: the config wins over
    the caller's environment. A trainer started some other way (torchrun by hand) would otherwise run without
    them and say nothing. Returns (the names this call set, warnings: overridden values, and variables that
    only take effect when a process starts)."""
    applied, warnings = [], []
    for key, value in runtime_env.items():
        before = environ.get(key)
        if before == value:
            continue
        if key.startswith(_READ_AT_PROCESS_START):
            warnings.append(
                f"runtime.env {key}={value} is read when a process starts, and this one started "
                f"{'without it' if before is None else f'with {key}={before}'}: start the run with `nsa launch` "
                "(which sets it) or export it"
            )
            continue
        if before is not None:
            warnings.append(f"runtime.env {key}={value} replaces {key}={before} from the environment")
        environ[key] = value
        applied.append(key)
    return applied, warnings


def check_compile_toolchain(cfg: Config, device_type: str) -> None:
    """train.compile on CPU has TorchInductor build C++ at the first step: without a compiler the run would die
    there with Inductor's traceback, after the data and model are loaded. (On CUDA it generates Triton, which
    the NSA kernels need anyway.)"""
    if not cfg.train.compile or device_type != "cpu":
        return
    cxx = os.environ.get("CXX", "g++")  # the compiler TorchInductor looks for
    if shutil.which(cxx) is None:
        raise ConfigError(
            f"train.compile: on CPU, torch.compile builds C++ with {cxx!r}, which is not on PATH: install it "
            "(apt-get install g++), point CXX at a C++ compiler, or set train.compile=false"
        )


def preflight_warnings(cfg: Config, device_type: str, precision: str, data_files: bool = True) -> list[str]:
    """What the trainer warns about at its start; ``data_files=False`` leaves out the data directory's skipped
    files (`nsa check` says that in its data path row)."""
    t = cfg.train
    warnings = []
    if t.steps >= LONG_RUN_STEPS and (t.save_every == 0 or t.save_every >= t.steps):
        # an evaluation that improves the val loss saves one (best, and latest moves to it): not nothing, not a cadence
        lost = (
            f"only an evaluation that improves the val loss saves one (train.eval_every={t.eval_every})"
            if t.eval_every and t.eval_every < t.steps
            else "a crash loses everything"
        )
        warnings.append(f"a {t.steps}-step run with no periodic checkpoints (train.save_every={t.save_every}): {lost}")
    if device_type == "cuda" and precision == "fp32":
        warnings.append("fp32 on a GPU: several times slower than bf16 (runtime.precision: auto or bf16)")
    if device_type == "cpu" and precision == "bf16":
        warnings.append("bf16 on CPU is about 3x slower than fp32 here (runtime.precision: auto or fp32)")
    if t.eval_every and t.eval_every > t.steps:
        warnings.append(f"train.eval_every={t.eval_every} exceeds train.steps: only the final evaluation runs")
    if t.steps >= LONG_RUN_STEPS and t.log_every > t.steps // 10:
        warnings.append(f"train.log_every={t.log_every}: very few progress records for a {t.steps}-step run")
    if cfg.model.attention == "dense" and (unused := _nsa_settings(cfg)):
        # not an error: the dense twin of an NSA config (`--set model.attention=dense`) is how one compares them
        warnings.append(f"model.attention=dense: the nsa section is not used ({unused})")
    if data_files and cfg.data.source == "local" and cfg.data.path:
        from nsa_train.data.sources import skipped_files_warning

        if skipped := skipped_files_warning(cfg.data.path):
            warnings.append(skipped)
    return warnings


def _nsa_settings(cfg: Config) -> str:
    """The nsa settings that differ from the defaults, `w=32, impl=triton`; "" when none do."""
    default = NSAConfig()
    changed = [f.name for f in dataclasses.fields(NSAConfig) if getattr(cfg.nsa, f.name) != getattr(default, f.name)]
    return ", ".join(f"{name}={getattr(cfg.nsa, name)}" for name in changed)


def check_ddp_settings(cfg: Config, backend: str, world_size: int, device_type: str = "cpu") -> None:
    """DDP settings that cannot work on this backend are errors, not silent no-ops."""
    if world_size > 1 and backend == "nccl" and device_type != "cuda":
        raise ConfigError(
            f"runtime.backend: nccl runs only on CUDA GPUs; this run is on {device_type}: set runtime.backend: "
            "gloo (or auto)"
        )
    if world_size > 1 and cfg.runtime.ddp_compress == "bf16" and backend != "nccl":
        raise ConfigError(
            f"runtime.ddp_compress: bf16 gradient compression needs the nccl backend (GPU); this run uses "
            f"{backend}: set runtime.ddp_compress: none"
        )
