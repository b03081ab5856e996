"""The compressed branch on Triton: its two entry points and the importance kernel's launches.

Two entry points with the PyTorch paths' signatures:
- ``compressed_attention_triton``: fla-org's op, ``(o, p)``; o from the kernels, p (which the op must return,
  [B, T, HQ, NC]) from the reference, so this one is for cross-checks, not speed.
- ``compressed_attention_and_selection_triton``: what the NSA layer runs, ``(o, block_indices)``: o from the
  kernels, block ids from the importance kernel, which keeps each query's top n_sel blocks as it scores them
  (n_sel <= 16; beyond, its Eq. 9 scores per query tile of bounded size and the shared top-n rule of
  ``nsa_train.nsa.selection``); the probabilities are never held.
The attention itself is ``_attention.AttentionFn`` with the compressed blocks' position rule (no window).
"""

from __future__ import annotations

from types import ModuleType

import torch

from nsa_train.nsa import fast
from nsa_train.nsa.reference import compressed_attention_reference
from nsa_train.nsa.selection import check_n_sel, n_scored_blocks, select_top_blocks
from nsa_train.nsa.triton._attention import (
    IMPORTANCE_BQ,
    KERNELS,
    NO_WINDOW,
    TOPK_WIDTH,
    AttentionFn,
    Fallback,
    grid,
    launch_options,
    meta,
    on_device,
    prepare,
)
from nsa_train.nsa.triton.availability import TritonUnavailableError, load_kernels
from nsa_train.nsa.triton.limits import importance_problem

SCORES_BYTES = 256 << 20  # the fp32 Eq. 9 scores of one query tile of the importance kernel at most


def _check_blocks(block_length: int, stride: int) -> None:
    if block_length < 1 or stride < 1:
        raise ValueError(f"block_length and stride must be >= 1, got {block_length}, {stride}")


def compressed_attention_triton(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    block_length: int,
    stride: int,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [B, T, HQ, D], k_cmp/v_cmp [B, NC, H, D] -> (o [B, T, HQ, Dv] from the kernels, p [B, T, HQ, NC]).

    p is part of this op's contract, so it is computed in full, by the reference (with its gradients); the layer
    uses ``compressed_attention_and_selection_triton``, which never holds it.
    """
    dtype = q.dtype
    _check_blocks(block_length, stride)
    q_, k_, v_, scale = prepare("compressed-attention", q, k_cmp, v_cmp, scale)

    def fast_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return fast.compressed_attention_fast(q, k, v, block_length, stride, scale)[0]

    o, _ = AttentionFn.apply(q_, k_, v_, block_length, stride, NO_WINDOW, scale, Fallback("compressed", fast_op))
    _, p = compressed_attention_reference(q, k_cmp, v_cmp, block_length, stride, scale)  # [B, T, HQ, NC]
    return o.to(dtype), p.to(dtype)


def compressed_attention_and_selection_triton(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    n_sel: int,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's compressed branch on Triton: (o [B, T, HQ, Dv], block_indices [B, T, H, n_sel]).

    Same choice as the PyTorch paths (Eq. 8-11: group-summed probabilities, mapped to selection blocks, the
    initial and 2 local blocks forced, ties to the lower id), up to fp32 rounding of the scores.
    """
    if problem := importance_problem(l, d, l_sel):
        raise TritonUnavailableError(problem)
    dtype = q.dtype
    _check_blocks(l, d)
    check_n_sel(n_sel)
    q_, k_, v_, scale = prepare("compressed-attention", q, k_cmp, v_cmp, scale)

    def fast_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # the layer's fast op: memory-bounded (p never held); its block ids are not needed here
        return fast.compressed_attention_and_selection_fast(q, k, v, l, d, l_sel, n_sel, scale)[0]

    o, lse = AttentionFn.apply(q_, k_, v_, l, d, NO_WINDOW, scale, Fallback("compressed", fast_op))
    # picked inside the importance kernel when n_sel fits its running top-n, else from its scores
    pick = block_ids if n_sel <= TOPK_WIDTH else block_ids_from_scores
    ids = pick(load_kernels(KERNELS), q_.detach(), k_.detach(), lse, l, d, l_sel, n_sel, scale)
    return o.to(dtype), ids


@torch.no_grad()
def block_ids_from_scores(
    kernels: ModuleType,
    q: torch.Tensor,
    k: torch.Tensor,
    lse: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    n_sel: int,
    scale: float,
) -> torch.Tensor:
    """Block ids [B, T, H, n_sel] by ``select_top_blocks`` on the kernel's scores, query tile by query tile (any
    n_sel; bench/triton_vs_fast.py times it against ``block_ids``)."""
    B, T = q.shape[:2]
    per_query = 4 * B * k.shape[2] * max(1, -(-T // l_sel))  # bytes of one query's fp32 scores
    tile = max(IMPORTANCE_BQ, SCORES_BYTES // per_query // IMPORTANCE_BQ * IMPORTANCE_BQ)
    ids = []
    for t0 in range(0, T, tile):
        t1 = min(T, t0 + tile)
        scores = block_scores(kernels, q, k, lse, l, d, l_sel, scale, t0, t1)
        ids.append(select_top_blocks(scores, t0, l_sel, n_sel))
    return torch.cat(ids, 1)


def _importance(
    kernels: ModuleType,
    q: torch.Tensor,
    k: torch.Tensor,
    lse: torch.Tensor,
    out: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    n_sel: int,
    scale: float,
    t0: int,
    t1: int,
    topk: bool,
) -> torch.Tensor:
    """One launch of the importance kernel over queries t0 .. t1-1, writing ``out`` (scores, or ids with topk)."""
    B, T = q.shape[:2]
    NC, H = k.shape[1], k.shape[2]
    ns = n_scored_blocks(t0, t1 - t0, l_sel, T)
    args = (q, k, lse, out, out, scale, T, t0, t1, NC, ns, l, d, l // d - 1, n_sel)
    with on_device(q):
        kernels.compressed_importance_kernel[grid(t1 - t0, IMPORTANCE_BQ, B, H)](
            *args, R=l_sel // d, TOPK=topk, **meta(q, k), **launch_options(q.dtype, q.shape[3])
        )
    return out


@torch.no_grad()
def block_ids(
    kernels: ModuleType,
    q: torch.Tensor,
    k: torch.Tensor,
    lse: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    n_sel: int,
    scale: float,
) -> torch.Tensor:
    """Eq. 8-11 block ids [B, T, H, n_sel] (n_sel <= TOPK_WIDTH) of every query, chosen inside the importance
    kernel: each query keeps a running top-n of its group scores, so neither the scores nor a top-k pass over
    them exist. The same choice as ``select_top_blocks`` on ``block_scores`` (the tests compare them)."""
    B, T = q.shape[:2]
    ids = torch.empty(B, T, k.shape[2], n_sel, dtype=torch.int64, device=q.device)
    return _importance(kernels, q, k, lse, ids, l, d, l_sel, n_sel, scale, 0, T, topk=True)


@torch.no_grad()
def block_scores(
    kernels: ModuleType,
    q: torch.Tensor,
    k: torch.Tensor,
    lse: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    scale: float,
    t0: int,
    t1: int,
) -> torch.Tensor:
    """Eq. 9-10 scores [B, t1-t0, H, NS] of queries t0 .. t1-1 (NS: up to the last one's own block) from the
    importance kernel: q [B, T, HQ, D], k [B, NC, H, D] contiguous, lse [B, T, HQ] of the forward."""
    B, T = q.shape[:2]
    ns = n_scored_blocks(t0, t1 - t0, l_sel, T)
    scores = torch.zeros(B, t1 - t0, k.shape[2], ns, dtype=torch.float32, device=q.device)
    if k.shape[1]:
        _importance(kernels, q, k, lse, scores, l, d, l_sel, 0, scale, t0, t1, topk=False)
    return scores
