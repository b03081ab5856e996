"""Which config and run directory a start uses, and the refusals said before it writes anything.

A start refused here leaves an earlier run's records as they were: a boot and an error record appended to them
would make the tools judge that run by this attempt. Standard library, the config package and the torch-free
checkpoint readers only: it runs before torch is imported.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from nsa_train.config import ConfigError, resolve_config_path
from nsa_train.runtime.resumable import resume_refusal
from nsa_train.runtime.rundir import earlier_results, file_in_the_way, hold_run_dir, runs_root
from nsa_train.telemetry import schema
from nsa_train.telemetry.holds import has_checkpoint, resume_advice


class StartRefused(Exception):
    """A start that cannot go on, said in one line before any record is written (exit status 2).

    ``each_rank``: the failure may be this rank's own (a node's disk), so every rank says it at once; otherwise
    every rank met the same one and it is said once (train.say_once_for_all_ranks)."""

    def __init__(self, message: str, *, each_rank: bool = False) -> None:
        super().__init__(message)
        self.each_rank = each_rank


def default_run_dir(config_path: Path | None, world_size: int) -> Path:
    if world_size > 1:
        raise ConfigError("--run-dir is required under torchrun (every rank must write to the same directory)")
    stem = config_path.stem if config_path else "tiny-cpu"
    return runs_root() / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def choose_config_path(args: argparse.Namespace) -> Path | None:
    """--config (checked against CONFIG); on --resume without either, the run's own config.yaml (one that is
    missing is refused by resume_refusal)."""
    if args.resume and not args.config and not os.environ.get("CONFIG") and args.run_dir:
        saved = Path(args.run_dir) / schema.CONFIG_YAML
        if saved.is_file():
            return saved
    return resolve_config_path(args.config)


def own_weights_refusal(config_path: Path | None, overrides: list[str], run_dir: Path) -> str | None:
    """A fresh start whose train.init_from is a checkpoint of this run directory's own (init_from's
    own_checkpoint_refusal): said before the boot record, as a --force start's first save could overwrite it. A
    config that does not load is left to the trainer, which says why with its records."""
    from nsa_train.config import load_config
    from nsa_train.runtime.init_from import own_checkpoint_refusal

    try:
        value = load_config(config_path, overrides).train.init_from
    except ConfigError:
        return None
    return own_checkpoint_refusal(value, run_dir)


def claim_run_dir(args: argparse.Namespace, rank: int, world_size: int) -> tuple[Path | None, Path]:
    """(the config file, the run directory), the directory made and this rank's lock on it held; StartRefused when
    the start cannot go on there."""
    try:
        config_path = choose_config_path(args)
        run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(config_path, world_size)
    except ConfigError as e:  # the same on every rank: said once
        raise StartRefused(str(e)) from None
    if args.resume and not run_dir.is_dir():  # said before a directory is made for it (an empty one was left)
        what = f"{run_dir} is a file, not a run directory" if run_dir.exists() else f"no run directory {run_dir}"
        raise StartRefused(f"--resume: {what}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = file_in_the_way(run_dir) or e.strerror or e
        raise StartRefused(f"cannot create the run directory {run_dir}: {why}", each_rank=True) from None
    if (in_use := hold_run_dir(run_dir, rank)) is not None:
        raise StartRefused(in_use)
    earlier = [] if args.resume or args.force else earlier_results(run_dir)
    if earlier:  # every rank sees the same files and stops alike: one message
        resume = f"{resume_advice(run_dir)}, or " if has_checkpoint(run_dir) else "it left no checkpoint to resume: "
        raise StartRefused(
            f"{run_dir} holds an earlier run ({', '.join(earlier)}): {resume}choose another --run-dir (--force starts "
            "afresh there: its logs get this run's rows appended and train.keep_last prunes its checkpoints)"
        )
    if not args.resume and (refusal := own_weights_refusal(config_path, args.overrides, run_dir)) is not None:
        raise StartRefused(refusal)
    config_given = bool(args.config or os.environ.get("CONFIG"))
    if args.resume:
        refusal = resume_refusal(run_dir, config_path, args.overrides, config_given, world_size, args.reshard)
        if refusal is not None:
            raise StartRefused(refusal)
    return config_path, run_dir
