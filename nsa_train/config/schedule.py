"""The learning-rate schedule: linear warmup, then cosine down to an explicit floor.

Plain Python so the tools can recompute it (the `lr_mismatch` health rule) without
torch. Steps are 1-based: ``lr_at(1)`` is the rate of the first optimizer update.
During warmup the first steps have a tiny lr on purpose (lr/warmup_steps at step 1):
that is warmup, not a bug, and ``min_lr`` is a deliberate floor, not a bug either.
"""

from __future__ import annotations

import math


def lr_at(step: int, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    if step < 1:
        step = 1
    if warmup_steps > 0 and step <= warmup_steps:
        return lr * step / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0:
        return lr
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def phase_at(step: int, *, warmup_steps: int, total_steps: int) -> str:
    """'warmup', 'cosine' or 'done' (for display)."""
    if step <= warmup_steps:
        return "warmup"
    return "cosine" if step < total_steps else "done"
