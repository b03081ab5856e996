"""A fresh start from another run's weights (train.init_from): the checkpoint file it names, whether this run's
model and tokenizer can take those weights, and what run.json records of them.

Weights only: the optimizer, the step, the lr schedule and the data position are the new run's. The trainer loads
the file (runtime/checkpoint.py's load and strict fit); `nsa launch` and `nsa check` resolve it with ``resolve``
before a session starts, so a mistyped path fails in seconds. Torch-free at import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nsa_train.runtime import checkpoint as ck
from nsa_train.telemetry import schema

KEY = "train.init_from"


def resolve(value: str) -> Path:
    """The checkpoint file ``value`` names: the file itself, or a run directory's `latest` (RUN/checkpoints/latest;
    the checkpoints directory itself is taken too). CheckpointError, one line naming the key, when there is none,
    or it is no checkpoint by its first bytes and zip index (its checksums are read by the load)."""
    given = Path(value).expanduser()
    if not given.exists():
        raise ck.CheckpointError(
            f"{KEY}: {value} does not exist (give a checkpoint file, or a run directory: its checkpoints/"
            f"{schema.LATEST_POINTER})"
        )
    path = _latest_of(given) if given.is_dir() else given
    ck.verify_archive(path, checksums=False)  # a truncated file, in milliseconds; the load reads the CRCs
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(ck.TORCH_FILE_MAGIC[0]))
    except OSError as e:
        raise ck.CheckpointError(f"{KEY}: cannot read {path}: {e.strerror or e}") from None
    if not head.startswith(ck.TORCH_FILE_MAGIC):
        empty = " (an empty file)" if not head else ""
        raise ck.CheckpointError(f"{KEY}: {path}{empty} is not an nsa checkpoint (not a file torch.save wrote)")
    return Path(os.path.abspath(path))


def _latest_of(given: Path) -> Path:
    """The checkpoint a run directory's (or its checkpoints directory's) `latest` pointer names."""
    own = given / schema.LATEST_POINTER
    ckpt_dir = given if own.is_file() and not ck.checkpoint_dir(given).is_dir() else ck.checkpoint_dir(given)
    try:
        target = ck.read_pointer(ckpt_dir, schema.LATEST_POINTER)
    except ck.CheckpointError as e:
        raise ck.CheckpointError(f"{KEY}: {e}") from None
    if target is None:
        files = ck.write_order(ckpt_dir)
        held = f"; it holds {files[-1].name}: give a file as {KEY}=FILE" if files else ""
        raise ck.CheckpointError(
            f"{KEY}: {given} holds no checkpoint to start from (no {ckpt_dir / schema.LATEST_POINTER} pointer){held}"
        )
    return target


def source_problem(saved: Any, cfg: Any, path: Path) -> str | None:
    """Why this run (``cfg``) cannot take the weights of the checkpoint at ``path``, by the config it records
    (``saved``, its run's resolved config): another data.tokenizer (the same vocabulary size can still mean other
    tokens), or model keys its weights' shapes depend on, named with both values. None when they fit by the config,
    or it records none that loads (the strict load of the weights then names the tensors)."""
    from nsa_train.config import ConfigError, config_from_dict, pinned_values, resume_conflicts
    from nsa_train.config.resume import WEIGHTS

    if not isinstance(saved, dict):
        return None
    data = saved.get("data")
    tokenizer = data.get("tokenizer") if isinstance(data, dict) else None
    if isinstance(tokenizer, str) and tokenizer != cfg.data.tokenizer:
        return (
            f"{KEY}: {path} was trained with data.tokenizer {tokenizer}, this run has {cfg.data.tokenizer}: its "
            f"embeddings are of other tokens. Start with its tokenizer (--set data.tokenizer={tokenizer}), or "
            "without train.init_from"
        )
    try:
        before = config_from_dict(saved, where=str(path))
    except ConfigError:
        return None
    pins = pinned_values(before)
    changed = [(k, c) for k, c in resume_conflicts(before, cfg) if pins[k][0] == WEIGHTS]
    if not changed:
        return None
    return (
        f"{KEY}: {path} does not fit this model: {', '.join(f'{k} {c}' for k, c in changed)} (its run's -> this "
        "run's). Start with the checkpoint's model settings (its run's config.yaml), or without train.init_from"
    )


def init_record(path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """run.json's `init_from` (schema.INIT_FROM_FIELDS) for the checkpoint ``state`` loaded from ``path``."""

    def text(key: str) -> str | None:
        value = state.get(key)
        return value if isinstance(value, str) and value else None

    return {
        schema.INIT_FROM_PATH: str(path),
        schema.INIT_FROM_RUN_ID: text(schema.CKPT_RUN_ID),
        schema.INIT_FROM_RUN_NAME: text(schema.CKPT_RUN_NAME),
        schema.INIT_FROM_STEP: int(state["step"]),
    }
