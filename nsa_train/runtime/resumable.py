"""Whether a --resume can continue a run, and what it says: the checks made before the boot record (no usable
checkpoint, another number of ranks, a config or data that changed, nothing left to do) and the messages of the
checks made once the checkpoint is loaded (the Trainer's ``_resume``). What the config may change on a resume is
nsa_train/config/resume.py's, called from here. Torch-free at import: the refusal must not wait for torch, and a
refused start writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nsa_train.config import ConfigError, check_resume_config, data_change, load_config, missing_config_message
from nsa_train.runtime import checkpoint as ck
from nsa_train.runtime.preflight import micro_batch_size
from nsa_train.telemetry import schema
from nsa_train.telemetry.readback import checkpoint_world_size


def resume_refusal(
    run_dir: Path,
    config_path: Path | None,
    overrides: list[str],
    config_given: bool = False,
    world_size: int = 1,
    reshard: bool = False,
) -> str | None:
    """Why a --resume cannot start, when that is cheap to tell before anything is written: no usable latest
    checkpoint (no pointer, a pointer to no file, a truncated or foreign file), another number of ranks than wrote
    it (by rank 0's heartbeat), a config that changes what the checkpoint depends on (seq_len, model shape, ...: the
    run's config.yaml against this one), or a checkpoint at train.steps already. A refused attempt's boot and error
    records would make the tools judge the run it meant to continue by it (a finished run read `crashed`). What needs
    the model or the data (shapes, the data files' fingerprint) is checked later, with telemetry; so are a config
    that does not load (its phase record says so), a world size the heartbeat does not tell, and damaged bytes inside
    the archive (the CRC pass reads the whole file: seconds for a large checkpoint, which the boot record must not
    wait for). With ``reshard`` another number of ranks is allowed when it splits the same global batch."""
    ckpt_dir = ck.checkpoint_dir(run_dir)
    path = None
    try:
        path = ck.read_pointer(ckpt_dir, schema.LATEST_POINTER)
        if path is None:
            return no_latest_pointer(ckpt_dir)
        ck.verify_archive(path, checksums=False)  # its index only: the boot must not wait; the load checks the CRCs
    except ck.CheckpointError as e:
        return f"--resume: {e}{ck.other_checkpoints_hint(ckpt_dir, but=path, run_id=run_id_of(run_dir))}"
    if (foreign := foreign_latest(run_dir, path)) is not None:
        return foreign
    step = schema.checkpoint_step(path.name)
    saved = checkpoint_world_size(run_dir, path.name)
    if saved is not None and saved != world_size and not reshard:
        return world_size_mismatch(path, saved, world_size)
    if not config_given and not (run_dir / schema.CONFIG_YAML).is_file():
        return missing_config_message(run_dir / schema.CONFIG_YAML)
    try:
        cfg = load_config(config_path, overrides)
    except ConfigError:
        return None
    try:
        check_resume_config(run_dir / schema.CONFIG_YAML, cfg, str(run_dir))
    except ConfigError as e:
        return str(e)
    if reshard and (unsplit := reshard_batch_refusal(cfg, world_size)) is not None:
        return unsplit
    if (changed := data_change(run_dir, cfg)) is not None:
        return f"--resume: {changed}"
    steps = cfg.train.steps
    if step is not None and step >= steps:
        return nothing_to_do(path, step, steps)
    return None


# Said here and by the Trainer's _resume (a pointer removed, or train.steps met, after this check): one wording
def no_latest_pointer(ckpt_dir: Path) -> str:
    """Why a --resume cannot start in ``ckpt_dir`` without a `latest` pointer, and the checkpoints it still holds
    (those of another run than the directory's run.json said apart: a --resume refuses them)."""
    return f"--resume: no checkpoint in {ckpt_dir} (no '{schema.LATEST_POINTER}' pointer)" + (
        ck.other_checkpoints_hint(ckpt_dir, run_id=run_id_of(ckpt_dir.parent))
    )


def nothing_to_do(path: Path, step: int, steps: int) -> str:
    """Why a --resume from ``path``, at ``step``, has nothing left to train to train.steps = ``steps``: the trainer's
    words, and `nsa launch --resume`'s before it starts one (both take --set)."""
    return (
        f"--resume: {path} is at step {step}, train.steps is {steps}: nothing to do (raise train.steps to go on: "
        "--set train.steps=N)"
    )


def world_size_mismatch(path: Path, saved: Any, world_size: int) -> str:
    """Why a resume by ``world_size`` ranks cannot continue a checkpoint that ``saved`` ranks wrote (None: it does
    not say): each rank's data position and RNG state are in it."""
    wrote = f"{saved} rank{'' if saved == 1 else 's'}" if isinstance(saved, int) else "an unknown number of ranks"
    how = (
        f": start it with {saved} (torchrun --nproc-per-node {saved}, or `nsa launch --resume`, which does)"
        if isinstance(saved, int)
        else ""
    )
    return (
        f"--resume: {path} was written by {wrote}, this run has {world_size}; the data position cannot continue "
        f"exactly{how}; or add --reshard to continue on {world_size} (documents some ranks had read are read again, "
        "counted at the start: docs/data.md)"
    )


def reshard_batch_refusal(cfg: Any, world_size: int) -> str | None:
    """Why `--reshard` onto ``world_size`` ranks cannot keep the run's global batch: train.batch_size must split into
    world size x grad_accum micro-batches (a resume may change grad_accum, not the batch: the lr schedule and the
    tokens per step are the run's)."""
    try:
        micro_batch_size(cfg, world_size)
    except ConfigError as e:
        return (
            f"--reshard: {e}. The global batch stays train.batch_size={cfg.train.batch_size} on a reshard: choose a "
            "number of ranks that splits it, or a train.grad_accum with it (--set train.grad_accum=N)"
        )
    return None


def newer_checkpoint_note(newer: Path, ckpt_dir: Path, step: int) -> str:
    """What to say of a checkpoint written after the one a resume to ``step`` loaded: how to continue from it,
    unless its bytes are damaged (then it is likely the one a refused resume named, and the pointer was moved off it
    on purpose)."""
    written = f"{newer} was written after the checkpoint `{schema.LATEST_POINTER}` names"
    try:
        ck.verify_archive(newer)  # reads it once: a rare path (a save cut, or a damaged file stepped over)
    except ck.CheckpointError as e:
        return f"{written}, but it is damaged ({e}): this run continues from step {step}"
    return (
        f"{written} (a save cut between its file and its pointer?): this run continues from step {step}; "
        f"to continue from that one, stop it and `echo {newer.name} > {ckpt_dir / schema.LATEST_POINTER}`"
    )


def run_id_of(run_dir: Path) -> str | None:
    """The run's id (run.json's run_id, made at its first start); None for a run.json without one (an earlier
    version's) or none at all. Read from the directory, not its path: a renamed or moved run is the same run."""
    try:
        run_id = json.loads((run_dir / schema.RUN_JSON).read_text(encoding="utf-8")).get(schema.RUN_ID)
    except (OSError, ValueError, AttributeError):
        return None
    return run_id if isinstance(run_id, str) and run_id else None


def other_run(own: str | None, saved_id: Any) -> bool:
    """A checkpoint recording ``saved_id`` is another run's than the one of run.json's id ``own``: False for the
    run's own, and where either records no id (written before ids)."""
    return bool(own) and isinstance(saved_id, str) and bool(saved_id) and saved_id != own


def checkpoint_owner(saved_id: str, saved_name: Any, run_dir: Path) -> tuple[bool, str]:
    """(whether the checkpoint is of an earlier run of this directory's name: one a --force start here replaced,
    'run NAME, id ID' as the messages name it)."""
    earlier = isinstance(saved_name, str) and saved_name == run_dir.resolve().name
    return earlier, (f"run {saved_name!r}, " if isinstance(saved_name, str) else "") + f"id {saved_id}"


def foreign_checkpoint(path: Path, saved_id: str, saved_name: Any, run_dir: Path, run_id: str) -> str:
    """Why a --resume does not continue a checkpoint another run wrote (copied in, `latest` pointed at it): the
    weights may fit, but its optimizer, schedule and data position are that run's, and it was continued silently.
    One of a run of this directory's name is an earlier run here, which a --force start replaced (its files stay):
    "resume that run from its own directory" was no way out there, as this directory is the new run's now."""
    earlier, owner = checkpoint_owner(saved_id, saved_name, run_dir)
    if earlier:
        return (
            f"--resume: {path} was written by an earlier run in this directory ({owner}), "
            f"which a --force start replaced: {run_dir} is run id {run_id} now, and a run continues its own "
            "checkpoints only. Start a new run (nsa launch --force, or another --run-dir; from that checkpoint's "
            f"weights, another --run-dir with --set train.init_from={path}: a start here would overwrite or prune "
            "it); or, to go on with the "
            "earlier run, move its checkpoints to a directory of their own (DIR/checkpoints/, with a `latest` file "
            "naming one) and resume that with the config the earlier run was started with (--config FILE and its "
            f"--set: {run_dir / schema.CONFIG_YAML} is the new run's)"
        )
    return (
        f"--resume: {path} belongs to another run ({owner}) than {run_dir} (id {run_id}): a run continues "
        "its own checkpoints only. Resume that run from its own directory (moved or renamed, it is still that run), or "
        f"start a new run from its weights in another --run-dir (--set train.init_from={path})"
    )


def foreign_latest(run_dir: Path, path: Path) -> str | None:
    """foreign_checkpoint's refusal when ``path`` (what `latest` names) records another run's id than run.json's,
    told without torch (ck.checkpoint_run): before the boot record, whose attempt would mark the run it meant to
    continue as crashed. None when it is the run's own, or either has no id (the Trainer's _resume decides)."""
    own = run_id_of(run_dir)
    saved_id, saved_name = ck.checkpoint_run(path) if own else (None, None)
    if other_run(own, saved_id):
        assert own is not None and saved_id is not None
        return foreign_checkpoint(path, saved_id, saved_name, run_dir, own)
    return None


def unrecorded_run_note(path: Path) -> str:
    """The start warning of a resume from a checkpoint written before checkpoints recorded their run's id."""
    return (
        f"{path.name} records no run id (written before nsa recorded one): resumed without checking that it is this "
        "run's; the checkpoints this run writes from now on record it"
    )


def undigested_order_note(path: Path) -> str:
    """The start warning of a resume whose data position was saved before positions recorded the digest of their
    holdout and epoch order (stream.py's order check): nothing checks that this Python and NumPy draw them alike."""
    return (
        f"{path.name}'s data position records no digest of its holdout and epoch order (saved before nsa recorded "
        "one): resumed without checking that this Python and NumPy draw the same ones from data.seed; the positions "
        "this run saves from now on record it"
    )
