"""The one reader of a run's checkpoint pointers (``checkpoints/latest``, ``checkpoints/best``) and of its write order
file (``checkpoints/order``, schema.CHECKPOINT_ORDER).

Standard library only: the trainer (resume, prune, sample) and the tools (launch, halt, report) read them through
here, so a pointer every reader takes for the same checkpoint, or for the same mistake, is one rule and not five
copies that drifted (one took a two-line pointer for a file name, another raised a traceback on an unreadable one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nsa_train.telemetry import schema

POINTERS = (schema.LATEST_POINTER, schema.BEST_POINTER)


@dataclass(frozen=True)
class PointerRead:
    """What a pointer file says: ``name``, the checkpoint file name it holds (one plain file name; None when there is
    no pointer, it is empty, or it holds something else), and ``problem``, why it names no checkpoint that is there
    (None when it does, and when there is no pointer or an empty one: no checkpoint yet)."""

    file: Path
    present: bool  # a pointer file stands there
    name: str | None = None
    problem: str | None = None

    @property
    def target(self) -> Path | None:
        """The checkpoint file it names, when that is there."""
        return self.file.parent / self.name if self.name is not None and self.problem is None else None


def pointer_name(text: str) -> str | None:
    """The checkpoint file name a pointer's text holds: one line, a plain file name (no directory); None for an
    empty pointer or anything else."""
    name = text.strip()
    return name if name and "/" not in name and "\n" not in name and "\r" not in name else None


def read_pointer(ckpt_dir: Path, pointer: str) -> PointerRead:
    """``ckpt_dir/pointer`` read: its name, and why it is broken (unreadable, not a pointer, names no file here)."""
    p = ckpt_dir / pointer
    if not p.is_file():
        return PointerRead(p, present=False)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return PointerRead(p, True, problem=f"{p} is not a pointer file (it should hold one checkpoint file name)")
    except OSError as e:
        return PointerRead(p, True, problem=f"cannot read {p}: {e.strerror or e}")
    name = pointer_name(text)
    if name is None:
        if not text.strip():
            return PointerRead(p, True)  # empty: no checkpoint yet
        got = text.strip()[:80]
        why = f"{p} is not a pointer file (it should hold one checkpoint file name, got {got!r})"
        return PointerRead(p, True, problem=why)
    if not (ckpt_dir / name).is_file():
        return PointerRead(p, True, name, f"{p} points to {name}, which does not exist")
    return PointerRead(p, True, name)


def order_names(text: str) -> list[str]:
    """The names an order file's text lists, oldest first, each once where it was last listed."""
    names = [ln.strip() for ln in text.splitlines() if ln.strip() and "/" not in ln]
    last = {name: i for i, name in enumerate(names)}
    return [name for i, name in enumerate(names) if last[name] == i]


def read_order(ckpt_dir: Path) -> list[str] | None:
    """The names ``ckpt_dir``'s order file lists (order_names); None without a readable one (a run written before it
    existed: the trainer goes by mtimes, docs/telemetry.md, Checkpoints)."""
    try:
        return order_names((ckpt_dir / schema.CHECKPOINT_ORDER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
