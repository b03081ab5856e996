"""A Triton backward that cannot run falls back to the fast path's gradients, counted, and is not tried again.

The backward kernels compile lazily, at the first ``loss.backward()``, and can fail where the forward's ran (a
card with less shared memory than a backward kernel needs raises ``out of resource: shared memory`` at launch).
The dispatch's fallback covers only the forward call, so the autograd Functions run their kernels through
``gradients``: if they raise, the gradients come from the op's fast twin instead (its forward rerun on the
saved inputs, then its vector-Jacobian product), counted as ``<branch>_bwd.triton->fast`` at each backward.
The failure is remembered per kernel sizes (device, dtype, compile-time arguments), so later backwards at those
sizes go straight to the fast twin: no failed launch (or compile) each step. The forward keeps its kernels: a
forward that took another path in a recompute than it did first (activation checkpointing recomputes a block's
forward during backward, after a failure may have been remembered) would save other tensors and fail the
checkpoint's check, and the Triton forward costs less than the fast one it would be swapped for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import torch

from nsa_train.nsa import fallbacks
from nsa_train.nsa._common import vjp

_lock = threading.Lock()
_failed: dict[Hashable, str] = {}  # kernel sizes -> the first backward error seen at them

Grads = tuple[torch.Tensor | None, ...]


def kernel_key(kernels: str, q: torch.Tensor, consts: Mapping[str, Any]) -> tuple[Hashable, ...]:
    """What a compiled kernel depends on: its module, q's device and dtype, its compile-time arguments."""
    return (kernels, str(q.device), q.dtype, tuple(sorted(consts.items())))


def gradients(
    branch: str,
    key: Hashable,
    kernels: Callable[[], Grads],
    fast_op: Callable[..., torch.Tensor],
    inputs: tuple[torch.Tensor, ...],
    do: torch.Tensor,
) -> Grads:
    """``kernels()`` (the Triton backward), or, if it raises or raised before at ``key``, the gradients of
    ``fast_op(*inputs)`` (the op's fast twin, returning its output) for ``do``, counted as
    '<branch>_bwd.triton->fast'. Any exception falls back, as in the dispatch's forward: the fast path computes
    the same thing, and an error of its own propagates."""
    with _lock:
        reason = _failed.get(key)
    if reason is None:
        try:
            return kernels()
        except Exception as e:
            reason = f"{type(e).__name__}: {e}"
            with _lock:
                _failed.setdefault(key, reason)
    fallbacks.count(f"{branch}_bwd.triton->fast", reason)
    xs = [x.detach().requires_grad_(True) for x in inputs]
    # the forward ran with autocast off (dispatch), so does its recompute, whatever the backward's context
    with torch.enable_grad(), torch.autocast(xs[0].device.type, enabled=False):
        o = fast_op(*xs)
    return vjp([o], xs, [do.to(o.dtype)])


def failed() -> dict[Hashable, str]:
    """The kernel sizes whose backward failed in this process, with the first error."""
    with _lock:
        return dict(_failed)


def reset() -> None:
    """Forget every failure (tests: a worker process serves many)."""
    with _lock:
        _failed.clear()
