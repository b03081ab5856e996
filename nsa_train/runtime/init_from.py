"""A fresh start from another run's weights (train.init_from): the checkpoint file it names, whether this run may
take it (not one of its own run directory's) and whether its model and tokenizer can take those weights, what this
run does otherwise than or again as the source run (its start warnings), and what run.json records of them.

Weights only: the optimizer, the step, the lr schedule and the data position are the new run's. The trainer loads
the file (runtime/checkpoint.py's load and strict fit); `nsa launch` and `nsa check` resolve it with ``resolve``
and judge it by the same rules before a session starts, so a mistyped path or a model that does not fit fails in
seconds. Torch-free at import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nsa_train.runtime import checkpoint as ck
from nsa_train.telemetry import schema
from nsa_train.telemetry.pointers import POINTERS

KEY = "train.init_from"


def keyed(message: str) -> str:
    """A checkpoint error as train.init_from's refusal: the key first, once."""
    return message if message.startswith(KEY) else f"{KEY}: {message}"


def resolve(value: str) -> Path:
    """The checkpoint file ``value`` names: the file itself, a pointer file's checkpoint (RUN/checkpoints/best or
    latest, as `nsa sample` takes them), or a run directory's `latest` (RUN/checkpoints/latest; the checkpoints
    directory itself is taken too). CheckpointError, one line naming the key, when there is none, or it is no
    checkpoint by its first bytes and zip index (its checksums are read by the load)."""
    given = Path(value).expanduser()
    if not given.exists():
        raise ck.CheckpointError(
            f"{KEY}: {value} does not exist (give a checkpoint file, or a run directory: its checkpoints/"
            f"{schema.LATEST_POINTER}){_run_named(given)}"
        )
    path = _latest_of(given) if given.is_dir() else _pointed_to(given)
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


def _pointed_to(given: Path) -> Path:
    """The checkpoint a pointer file (`latest`, `best`) names; any other file as it is."""
    if given.name not in POINTERS:
        return given
    try:
        target = ck.read_pointer(given.parent, given.name)
    except ck.CheckpointError as e:
        raise ck.CheckpointError(f"{KEY}: {e}") from None
    if target is None:  # an empty pointer: its run has saved no checkpoint there yet
        raise ck.CheckpointError(f"{KEY}: {given} is empty: it names no checkpoint to start from")
    return target


def own_checkpoint_refusal(value: str | None, run_dir: Path) -> str | None:
    """Why a fresh start in ``run_dir`` cannot take its weights from ``value``: a checkpoint in this run's own
    checkpoint directory (a --force start over the run it came from), which this run's saves overwrite (the same
    step's name) or train.keep_last prunes while run.json still names it. None otherwise, and when ``value``
    resolves to nothing (the trainer says why)."""
    if value is None:
        return None
    try:
        path = resolve(value)
    except ck.CheckpointError:
        return None
    return own_checkpoint_problem(path, run_dir)


def own_checkpoint_problem(path: Path, run_dir: Path) -> str | None:
    """own_checkpoint_refusal of a checkpoint file already resolved."""
    own = ck.checkpoint_dir(run_dir).resolve()
    if not path.resolve().is_relative_to(own):
        return None
    return (
        f"{KEY}: {path} is in this run's own checkpoint directory {own}: this run's saves would overwrite it or "
        f"train.keep_last prune it. Copy it elsewhere first (cp {path} DIR/) and give that, or start the new run "
        "in another --run-dir"
    )


def _run_named(given: Path) -> str:
    """Where a bare run name given as the path (made absolute against the working directory, as `nsa status NAME`
    would not) is a run under the runs root: said, not guessed (a path means a path)."""
    from nsa_train.runtime.rundir import runs_root

    named = runs_root() / given.name
    if given.parent != Path.cwd() or not named.is_dir() or named.resolve() == given.resolve():
        return ""
    return f"; the runs root holds a run named {given.name}: give its path, {KEY}={named}"


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
    from nsa_train.config import pinned_values, resume_conflicts
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
    if (before := _source_config(saved, path)) is None:
        return None
    pins = pinned_values(before)
    changed = [(k, c) for k, c in resume_conflicts(before, cfg) if pins[k][0] == WEIGHTS]
    if not changed:
        return None
    return (
        f"{KEY}: {path} does not fit this model: {', '.join(f'{k} {c}' for k, c in changed)} (its run's -> this "
        "run's). Start with the checkpoint's model settings (its run's config.yaml), or without train.init_from"
    )


def _source_config(saved: Any, path: Path) -> Any:
    """The Config the checkpoint at ``path`` records (its run's resolved config); None when it records none that
    loads (an older or newer nsa's: the strict load of the weights then decides)."""
    from nsa_train.config import ConfigError, config_from_dict

    if not isinstance(saved, dict):
        return None
    try:
        return config_from_dict(saved, where=str(path))
    except ConfigError:
        return None


# model/nsa keys that change no computation of loaded weights: the kernels that compute it, the initialisation the
# loaded weights replace
_NOT_COMPUTED = ("nsa.impl", "model.init_std")


def source_notes(state: dict[str, Any], cfg: Any, path: Path) -> list[str]:
    """Start warnings for what this run (``cfg``) does otherwise than, or again as, the run that trained the
    checkpoint ``state`` at ``path`` (by the config it records; none when it records none that loads): model and
    nsa keys that keep every shape but change what the weights compute, both values named; and the same data
    source and data.seed, whose order deals the documents the source trained on first, in the same order, again."""
    from nsa_train.config import config_to_dict, pinned_values
    from nsa_train.config.loader import flatten

    if (before := _source_config(state.get("config"), path)) is None:
        return []
    notes = []
    old, new = flatten(config_to_dict(before)), flatten(config_to_dict(cfg))
    pins_old, pins_new = pinned_values(before), pinned_values(cfg)
    differ = [
        f"{key} {old[key]!r} -> {value!r}"
        for key, value in new.items()
        if key.split(".")[0] in ("model", "nsa")
        and key not in _NOT_COMPUTED
        and key in old
        and old[key] != value
        # a value that resolves alike (a null head_dim and dim // n_heads) is the same model
        and not (key in pins_old and key in pins_new and pins_old[key][1] == pins_new[key][1])
    ]
    if differ:
        notes.append(
            f"{KEY}: this run computes otherwise than the run that trained {path.name}: {', '.join(differ)} (its "
            "run's -> this run's); its weights were trained for its run's values"
        )
    if pins_old["data.source"][1] == pins_new["data.source"][1] and before.data.seed == cfg.data.seed:
        tokens = state.get("tokens_seen")
        first = f"its first {tokens:,} tokens" if isinstance(tokens, int) else "the first tokens"
        notes.append(
            f"{KEY}: the same data ({cfg.data.source_description}) and data.seed {cfg.data.seed} as the run that "
            f"trained {path.name}: this run reads {first} again, the documents its weights were trained on, in the "
            "same order. --set data.seed=N draws another order, and another holdout, which may then hold documents "
            "those weights were trained on"
        )
    return notes


def source_run_config(path: Path) -> dict[str, Any] | None:
    """The resolved config of the run a checkpoint file belongs to, by its run's config.yaml next to the
    checkpoints/ that holds it (RUN/checkpoints/FILE), read without torch; None when there is none that loads (a
    file copied elsewhere: the trainer reads the checkpoint's own)."""
    from nsa_train.config import config_to_dict
    from nsa_train.config.resume import load_saved_config

    if path.parent.name != schema.CHECKPOINT_DIR:
        return None
    saved = load_saved_config(path.parent.parent / schema.CONFIG_YAML)
    return None if saved is None else config_to_dict(saved)


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
