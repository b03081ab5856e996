"""Sliding-window attention on Triton: ``_attention.AttentionFn`` with the tokens as keys (l = d = 1) and the
window as the rule's lower bound, so a query at t attends to exactly keys t-w+1 .. t. Each query tile visits
only the key tiles its window overlaps, and each key tile's dk/dv program only the queries whose windows
contain it: O(T * w) work, no T x T mask."""

from __future__ import annotations

import torch

from nsa_train.nsa import fast
from nsa_train.nsa._common import check_qkv, check_sizes
from nsa_train.nsa.triton._attention import AttentionFn, Fallback, prepare


def sliding_window_attention_triton(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window_size: int, scale: float | None = None
) -> torch.Tensor:
    """q [B, T, HQ, D], k [B, T, H, D], v [B, T, H, Dv] -> o [B, T, HQ, Dv] in q's dtype: query t attends to
    keys t-window_size+1 .. t. Raises TritonUnavailableError when the kernels cannot run here."""
    check_qkv(q, k, v)
    check_sizes(window_size=window_size)
    dtype = q.dtype
    q_, k_, v_, scale = prepare("sliding-window attention", q, k, v, scale)
    w = min(window_size, q.shape[1])

    def fast_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return fast.sliding_window_attention_fast(q, k, v, w, scale)

    o, _ = AttentionFn.apply(q_, k_, v_, 1, 1, w, scale, Fallback("window", fast_op))
    return o.to(dtype)
