"""Whether a directory holds a run: the one definition the trainer's start guard, `nsa launch`, `nsa check` and the
tools' run listings share (docs/telemetry.md, "Holds a run"); over ssh, nsa_tui.remote.holds_sh says it in sh with
these constants.

Standard library only (the tools never import torch). Two questions, one list of files:

- ``earlier_run``: what of an earlier run a fresh start there would write over (its checkpoints and pointers, the
  rows of its logs, its run.json, an earlier launch's records). The trainer refuses a plain start over it (--resume
  or --force), and so do `nsa launch` and `nsa check`, before anything starts.
- ``holds_run``: that, or any rank's heartbeat: the records of an attempt that stopped before its model was built (a
  config typo, a data path that is not there) make a run the tools list and judge, but hold nothing a mended start
  would write over, so the same command starts there again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from nsa_train.telemetry import schema
from nsa_train.telemetry.pointers import POINTERS, read_pointer

# what `nsa launch` writes into a run directory before its trainer starts (docs/launch.md)
LAUNCHER_FILES = (schema.LAUNCH_JSON, schema.CONSOLE_LOG, schema.EXIT_STATUS)
# logs a fresh start appends its rows to
LOGS = (schema.TRAINING_CSV, schema.VAL_CSV)
# what holds_run looks for, in words (a directory without any of it is "no run": every command says it alike)
HOLDS_RUN_SAID = ", ".join(
    [
        schema.RUN_JSON,
        *LAUNCHER_FILES,
        schema.HEARTBEAT_GLOB,
        f"a row in {' or '.join(LOGS)}",
        f"a checkpoint ({schema.CHECKPOINT_DIR}/{schema.CHECKPOINT_GLOB} or a pointer)",
    ]
)
# how much of a log is read to tell a row after its header: a header is far shorter
ROWS_READ_BYTES = 1 << 16


def earlier_run(d: Path, own_launch: float | None = None) -> list[str]:
    """What of an earlier run ``d`` holds, as short phrases ([] for none). ``own_launch``: the trainer's launch time
    ($NSA_LAUNCH_TIME); the launcher's files of that launch (its launch.json's ``ts``) are its own, not an earlier
    run's: `nsa launch` asked this before it wrote them."""
    found = []
    ckpt_dir = d / schema.CHECKPOINT_DIR
    if ckpt_dir.is_dir():
        n = sum(1 for p in ckpt_dir.glob(schema.CHECKPOINT_GLOB) if not p.name.startswith("."))
        pointers = [name for name in POINTERS if (ckpt_dir / name).is_file()]
        if n:
            found.append(f"{n} checkpoint{'' if n == 1 else 's'}")
        elif pointers:
            found.append(f"checkpoint pointer {pointers[0]}")
    found += [name for name in LOGS if _has_rows(d / name)]
    # written once the model is built: after every rank has passed this check (the process group is up by then)
    if (d / schema.RUN_JSON).is_file():
        found.append(schema.RUN_JSON)
    if not _own_launch(d, own_launch):
        found += [name for name in LAUNCHER_FILES if (d / name).is_file()]
    return found


def has_checkpoint(d: Path) -> bool:
    """``d`` holds a checkpoint file a --resume could continue from (a failed start's files are no run to resume)."""
    return any((d / schema.CHECKPOINT_DIR).glob(schema.CHECKPOINT_GLOB))


def trained_to_its_end(d: Path) -> tuple[int, int] | None:
    """(step, train.steps) when the latest checkpoint of ``d``'s run is at its train.steps (run.json's total_steps)
    or past it: a --resume there has nothing to do unless train.steps is raised, so advice to pass --resume says so.
    None otherwise, and when either is not known."""
    name = read_pointer(d / schema.CHECKPOINT_DIR, schema.LATEST_POINTER).name
    step = schema.checkpoint_step(name) if name else None
    try:
        total = json.loads((d / schema.RUN_JSON).read_text(encoding="utf-8")).get("total_steps")
    except (OSError, ValueError, AttributeError):
        return None
    if step is None or not isinstance(total, int) or isinstance(total, bool) or step < total:
        return None
    return step, total


def resume_advice(d: Path) -> str:
    """How to continue ``d``'s run with --resume, as the refusal of a fresh start over it offers it."""
    end = trained_to_its_end(d)
    if end is None:
        return "continue it from its last checkpoint with --resume"
    step, total = end
    return f"train it on past step {step} (its train.steps {total}) with --resume --set train.steps=N, N > {step}"


def holds_run(d: Path) -> bool:
    """``d`` holds a run: an earlier run's files (earlier_run), or any rank's heartbeat. Not a .HALT alone, a
    config.yaml alone (a user's configs folder), nor hidden files (a trainer's lock, a save's temp file)."""
    return bool(earlier_run(d)) or any(d.glob(schema.HEARTBEAT_GLOB))


def _has_rows(path: Path) -> bool:
    """A CSV with at least one line after its header."""
    try:
        with open(path, "rb") as fh:
            return len(fh.read(ROWS_READ_BYTES).splitlines()) > 1
    except OSError:
        return False


def _own_launch(d: Path, launched: float | None) -> bool:
    """``d``'s launch.json is the launch at time ``launched`` (it records the NSA_LAUNCH_TIME it gave its trainer)."""
    if launched is None or not math.isfinite(launched):
        return False
    try:
        ts = json.loads((d / schema.LAUNCH_JSON).read_text(encoding="utf-8")).get("ts")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(ts, (int, float)) and not isinstance(ts, bool) and abs(ts - launched) < 1e-3
