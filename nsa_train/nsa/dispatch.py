"""Public NSA ops: one name per op, dispatched to 'reference', 'fast' or 'triton'.

'auto' is triton on CUDA for the ops in AUTO_TRITON_OPS and fast otherwise (always on CPU, where the fast path
is the designed path, not a fallback). 'triton' asks for the kernels of every op: selection, the compressed
branch and the sliding window. When triton is wanted (auto on CUDA for an AUTO_TRITON_OPS op, or asked for by name)
but cannot run (kernels missing, import error, launch error), the fast path runs and
``fallbacks.count('<branch>.triton->fast', reason)`` records it (branch: selection, compressed, window).
A caller's bad argument (CHECK_ARGS: shapes, integer block ids, sizes, the scale) raises one ValueError before any
path is tried, on every path alike, and is no fallback.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import torch
import torch.utils.checkpoint

from nsa_train.nsa import fallbacks, fast, reference
from nsa_train.nsa._common import check_block_indices, check_qkv, check_scale, check_sizes
from nsa_train.nsa.selection import check_n_sel, check_whole_strides

IMPLS = ("auto", "reference", "fast", "triton")
# the name each op's fallbacks are counted under (telemetry `fallbacks`: '<name>.triton->fast')
FALLBACK_NAMES = {
    "selection_attention": "selection",
    "compressed_attention": "compressed",
    "compressed_attention_and_selection": "compressed",
    "sliding_window_attention": "window",
}
# Ops whose Triton kernels 'auto' runs on CUDA: those measured faster than the fast path on a GPU (README, "On
# a GPU"). The compressed and window branches' kernels are correct in the Triton interpreter and compile for
# sm_80/sm_90, but have not been timed on a GPU yet, so they run only when asked for by name.
AUTO_TRITON_OPS = frozenset({"selection_attention"})
_default_impl = "auto"


def set_default_impl(impl: str) -> None:
    """Module-wide default used when a call passes impl=None."""
    global _default_impl
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    _default_impl = impl


def get_default_impl() -> str:
    return _default_impl


@functools.cache  # asked per branch and per layer in every forward; the answer cannot change in a process
def triton_kernel(op: str, device: torch.device) -> tuple[Callable[..., Any] | None, str]:
    """(``nsa_train.nsa.triton.<op>_triton`` if it can run for tensors on ``device``, else None; why not)."""
    try:
        mod = importlib.import_module("nsa_train.nsa.triton")
    except Exception as e:  # a broken or missing kernel package must not take the fast path down
        return None, f"import nsa_train.nsa.triton failed: {type(e).__name__}: {e}"
    fn = getattr(mod, f"{op}_triton", None)
    if fn is None:
        return None, f"nsa_train.nsa.triton has no {op}_triton"
    available = getattr(mod, "triton_available", None)
    if available is not None:
        ok, reason = available(device)
        if not ok:
            return None, reason
    elif device.type != "cuda":
        return None, "CUDA not available"
    return fn, ""


def resolve_impl(impl: str | None, device: torch.device, op: str = "selection_attention") -> str:
    """The path a call with this impl would take on this device, without running or counting anything.

    'auto' on CPU is the fast path by design; 'triton' on CPU runs the kernels only under the Triton
    interpreter (TRITON_INTERPRET=1, for tests).
    """
    impl = _default_impl if impl is None else impl
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl in ("reference", "fast") or (impl == "auto" and (device.type != "cuda" or op not in AUTO_TRITON_OPS)):
        return "fast" if impl == "auto" else impl
    return "triton" if triton_kernel(op, device)[0] is not None else "fast"


def autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The dtype autocast computes matmuls in on x's device, None outside autocast."""
    dev = x.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None


def _check_selection(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_indices: torch.Tensor, block_size: int, scale: Any = None
) -> None:
    B, T, _, H, _ = check_qkv(q, k, v)
    check_sizes(block_size=block_size)
    check_block_indices(block_indices, B, T, H)
    check_scale(scale)


def _check_window(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window_size: int, scale: Any = None) -> None:
    check_qkv(q, k, v)
    check_sizes(window_size=window_size)
    check_scale(scale)


def _check_compressed(
    q: torch.Tensor, k_cmp: torch.Tensor, v_cmp: torch.Tensor, block_length: int, stride: int, scale: Any = None
) -> None:
    check_qkv(q, k_cmp, v_cmp, same_length=False)
    check_sizes(block_length=block_length, stride=stride)
    check_scale(scale)


def _check_compressed_and_selection(
    q: torch.Tensor, k_cmp: torch.Tensor, v_cmp: torch.Tensor, l: int, d: int, l_sel: int, n_sel: int, scale: Any = None
) -> None:
    check_qkv(q, k_cmp, v_cmp, same_length=False)
    check_sizes(l=l, d=d, l_sel=l_sel)
    check_n_sel(n_sel)
    check_whole_strides(l, d, l_sel)
    check_scale(scale)


# Each op's argument checks, run before a path is chosen: a caller's mistake raised inside a Triton op was counted
# as a kernel fallback (its message recorded as the kernel's reason), then raised again by the fast path
CHECK_ARGS: dict[str, Callable[..., None]] = {
    "selection_attention": _check_selection,
    "sliding_window_attention": _check_window,
    "compressed_attention": _check_compressed,
    "compressed_attention_and_selection": _check_compressed_and_selection,
}


def _check_gate(gate: torch.Tensor, q: torch.Tensor) -> None:
    if gate.shape != q.shape[:3]:
        raise ValueError(f"gate must be [B, T, HQ] = {list(q.shape[:3])}, got {tuple(gate.shape)}")


def _run(op: str, impl: str | None, args: tuple[Any, ...], fast_fn: Callable[..., Any] | None = None) -> Any:
    """Run op on the path impl resolves to, once its arguments passed CHECK_ARGS. Under autocast (how a bf16 run
    trains: fp32 weights, bf16 matmuls) the floating inputs are cast to autocast's dtype and the op runs with
    autocast off, as torch.amp.custom_fwd does: the fast and Triton paths keep running state (maxima, sums) in q's
    dtype and would otherwise meet the bf16 products autocast makes of their fp32 inputs (a scatter across dtypes
    fails). The public ops pass the scale as check_scale's float: a 0-d tensor scale was cast with the inputs (0.1
    became bf16's 0.10009765625, outputs moved by 1.6e-2)."""
    CHECK_ARGS[op](*args)
    return _run_checked(op, impl, args, fast_fn)


def _run_checked(op: str, impl: str | None, args: tuple[Any, ...], fast_fn: Callable[..., Any] | None = None) -> Any:
    """_run for arguments that passed CHECK_ARGS already."""
    dtype = autocast_dtype(args[0])
    if dtype is None:
        return _dispatch(op, impl, args, fast_fn)
    args = tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
    with torch.autocast(args[0].device.type, enabled=False):
        return _dispatch(op, impl, args, fast_fn)


# Exceptions a Triton op passes on that are no failure of its kernels: non-reentrant activation checkpointing ends a
# recompute by raising this from the op that saves the last tensor it needs (taken for a kernel failure, it was
# counted and the recompute ran the fast path: "Unexpected state: target_frame.early_stop is set")
_NOT_FAILURES: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(torch.utils.checkpoint, "_StopRecomputationError", None),) if isinstance(t, type)
)


def _dispatch(op: str, impl: str | None, args: tuple[Any, ...], fast_fn: Callable[..., Any] | None) -> Any:
    q = args[0]
    path = resolve_impl(impl, q.device, op)
    if path == "reference":
        return getattr(reference, f"{op}_reference")(*args)
    fast_fn = fast_fn or getattr(fast, f"{op}_fast")
    requested = _default_impl if impl is None else impl
    # for the ops outside AUTO_TRITON_OPS 'auto' means fast, and only an explicit 'triton' that cannot run counts
    wanted = requested == "triton" or (requested == "auto" and q.device.type == "cuda" and op in AUTO_TRITON_OPS)
    name = f"{FALLBACK_NAMES[op]}.triton->fast"
    if path == "fast":
        if wanted:
            fallbacks.count(name, triton_kernel(op, q.device)[1])
        return fast_fn(*args)
    fn, _ = triton_kernel(op, q.device)
    assert fn is not None
    try:
        return fn(*args)
    except _NOT_FAILURES:
        raise
    except Exception as e:  # counted, never silent; the fast path computes the same thing
        fallbacks.count(name, f"{type(e).__name__}: {e}")
        return fast_fn(*args)


def selection_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_indices: torch.Tensor,
    block_size: int,
    scale: float | None = None,
    impl: str | None = None,
) -> torch.Tensor:
    """q [B, T, HQ, D], k [B, T, H, D], v [B, T, H, Dv], block_indices [B, T, H, S] (-1 unused) -> o [B, T, HQ, Dv]."""
    return _run("selection_attention", impl, (q, k, v, block_indices, block_size, check_scale(scale)))


def gated_selection_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_indices: torch.Tensor,
    block_size: int,
    gate: torch.Tensor,
    impl: str | None = None,
) -> torch.Tensor:
    """gate[..., None] * selection_attention(...), gate [B, T, HQ]: the NSA layer's selected branch. The fast
    path applies the gate inside its op (no extra saved tensor); the others multiply after, on the same
    dispatch and fallback counting as selection_attention."""

    def fast_gated(q, k, v, block_indices, block_size, scale):  # type: ignore[no-untyped-def]
        return fast.gated_selection_fast(q, k, v, block_indices, block_size, gate.to(q.dtype), scale)

    _check_gate(gate, q)
    if resolve_impl(impl, q.device) == "fast":
        return _run("selection_attention", impl, (q, k, v, block_indices, block_size, None), fast_fn=fast_gated)
    o = _run("selection_attention", impl, (q, k, v, block_indices, block_size, None))
    return o * gate.unsqueeze(-1).to(o.dtype)


def gated_compressed_attention_and_selection(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    n_sel: int,
    gate: torch.Tensor,
    impl: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The NSA layer's compressed branch: (gate[..., None] * o [B, T, HQ, Dv], block ids [B, T, H, n_sel]) from
    q [B, T, HQ, D], k_cmp/v_cmp [B, NC, H, D], gate [B, T, HQ]; the probabilities are never held. The fast path
    applies the gate inside its op (nothing more saved); the Triton path multiplies after."""

    def fast_gated() -> tuple[torch.Tensor, torch.Tensor]:
        return fast.compressed_attention_and_selection_fast(q, k_cmp, v_cmp, l, d, l_sel, n_sel, gate=gate)

    args = (q, k_cmp, v_cmp, l, d, l_sel, n_sel, None)
    return _gated_branch("compressed_attention_and_selection", impl, args, gate, fast_gated)


def gated_sliding_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window_size: int, gate: torch.Tensor, impl: str | None = None
) -> torch.Tensor:
    """The NSA layer's window branch: gate[..., None] * sliding_window_attention(q, k, v, window_size), gate
    [B, T, HQ]. The fast path applies the gate inside its op; the Triton path multiplies after."""

    def fast_gated() -> torch.Tensor:
        return fast.gated_sliding_window_fast(q, k, v, window_size, gate)

    return _gated_branch("sliding_window_attention", impl, (q, k, v, window_size, None), gate, fast_gated)


def _gated_branch(
    op: str, impl: str | None, args: tuple[Any, ...], gate: torch.Tensor, fast_gated: Callable[[], Any]
) -> Any:
    """gate * op(*args) (for an op returning a tuple, its first element) on the path impl resolves to. Fast: the
    fast op that takes the gate inside, with autocast off, counted if Triton was asked for. Triton: the kernels,
    or the ungated fast op if they fail (counted), then the gate. Reference: the op's reference twin
    (nsa_train.nsa.reference), then the gate."""
    q = args[0]
    CHECK_ARGS[op](*args)
    _check_gate(gate, q)
    if resolve_impl(impl, q.device, op) == "fast":
        if (_default_impl if impl is None else impl) == "triton":
            fallbacks.count(f"{FALLBACK_NAMES[op]}.triton->fast", triton_kernel(op, q.device)[1])
        # The fast ops compute in fp32 (compute_dtype) and their backward runs outside autocast: left on, autocast
        # made the forward's score GEMMs bf16 while the backward recomputed them in fp32 from the bf16 forward's
        # log-sum-exp, other probabilities than the forward's (review revBQ: dq off by 1e-1 against 4e-3)
        with torch.autocast(q.device.type, enabled=False):
            return fast_gated()
    out = _run_checked(op, impl, args)  # checked above, before the fast path's early return
    o = out[0] if isinstance(out, tuple) else out
    gated = o * gate.unsqueeze(-1).to(o.dtype)
    return (gated, *out[1:]) if isinstance(out, tuple) else gated


def sliding_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window_size: int,
    scale: float | None = None,
    impl: str | None = None,
) -> torch.Tensor:
    """Query t attends to keys t-window_size+1 .. t. Shapes as selection_attention."""
    return _run("sliding_window_attention", impl, (q, k, v, window_size, check_scale(scale)))


def compressed_attention(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    block_length: int,
    stride: int,
    scale: float | None = None,
    impl: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [B, T, HQ, D], k_cmp/v_cmp [B, NC, H, D] -> (o [B, T, HQ, Dv], p [B, T, HQ, NC])."""
    return _run("compressed_attention", impl, (q, k_cmp, v_cmp, block_length, stride, check_scale(scale)))
