"""Reference NSA attention ops: plain, readable PyTorch. The specification and the test oracle.

Every op builds the full boolean visibility mask and runs ordinary masked softmax attention,
so it is O(T^2) in time and memory; use it on small shapes only. Layout (fla-org):
q [B, T, HQ, D], k [B, T, H, D], v [B, T, H, Dv]; query head hq reads KV head hq // (HQ // H).
"""

from __future__ import annotations

import torch

from nsa_train.nsa._common import (
    check_block_indices,
    check_qkv,
    check_sizes,
    compute_dtype,
    default_scale,
    masked_softmax,
)
from nsa_train.nsa.selection import check_n_sel, select_blocks


def _masked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [B, T, HQ, D], k [B, S, H, D], v [B, S, H, Dv], mask broadcastable to [B, HQ, T, S] -> (o, p)."""
    G = q.shape[2] // k.shape[2]
    kx = k.repeat_interleave(G, dim=2)  # [B, S, HQ, D]
    vx = v.repeat_interleave(G, dim=2)  # [B, S, HQ, Dv]
    scores = torch.einsum("bthd,bshd->bhts", q, kx) * scale  # [B, HQ, T, S]
    # no key at all (S = 0): o = 0 as an empty sum, still a function of q, k, v (zero gradients, not none)
    p = masked_softmax(scores, mask.expand_as(scores)) if scores.shape[-1] else scores
    o = torch.einsum("bhts,bshd->bthd", p, vx)  # [B, T, HQ, Dv]
    return o, p


def selection_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_indices: torch.Tensor,
    block_size: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Each query attends to the keys of its selected blocks that are at or before it.

    block_indices [B, T, H, S]: block ids (block j = keys [j*block_size, (j+1)*block_size)), -1 = unused slot.
    A block listed twice counts once. All query heads of a KV group use that group's blocks.
    """
    B, T, _, H, G = check_qkv(q, k, v)
    check_sizes(block_size=block_size)
    check_block_indices(block_indices, B, T, H)
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    n_blocks = (T + block_size - 1) // block_size
    idx = block_indices.long()
    valid = (idx >= 0) & (idx < n_blocks)
    # chosen[b, t, h, j]: block j is selected by the group h of query t.
    chosen = torch.zeros(B, T, H, n_blocks + 1, dtype=torch.bool, device=q.device)
    chosen.scatter_(3, torch.where(valid, idx, n_blocks), True)
    chosen = chosen[..., :n_blocks]
    key_block = torch.arange(T, device=q.device) // block_size  # [T]
    pos = torch.arange(T, device=q.device)
    causal = pos[None, :] <= pos[:, None]  # [T(query), T(key)]
    mask = chosen[:, :, :, key_block] & causal[None, :, None, :]  # [B, T, H, T]
    mask = mask.repeat_interleave(G, dim=2).permute(0, 2, 1, 3)  # [B, HQ, T, T]
    o, _ = _masked_attention(q.to(cdt), k.to(cdt), v.to(cdt), mask, scale)
    return o.to(q.dtype)


def sliding_window_attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window_size: int, scale: float | None = None
) -> torch.Tensor:
    """Query t attends to exactly keys max(0, t-w+1) .. t (the last w keys, itself included)."""
    check_qkv(q, k, v)
    check_sizes(window_size=window_size)
    T = q.shape[1]
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    pos = torch.arange(T, device=q.device)
    diff = pos[:, None] - pos[None, :]  # [T, T] query minus key
    mask = (diff >= 0) & (diff < window_size)
    o, _ = _masked_attention(q.to(cdt), k.to(cdt), v.to(cdt), mask, scale)
    return o.to(q.dtype)


def compressed_visibility(T: int, n_cmp: int, block_length: int, stride: int, device: torch.device) -> torch.Tensor:
    """[T, NC] bool: query t sees compressed block i iff its last token i*stride + block_length - 1 <= t."""
    last = torch.arange(n_cmp, device=device) * stride + block_length - 1
    return last[None, :] <= torch.arange(T, device=device)[:, None]


def compressed_attention_reference(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    block_length: int,
    stride: int,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention over compressed blocks; returns (o [B, T, HQ, Dv], p [B, T, HQ, NC]).

    Compressed block i summarises tokens [i*stride, i*stride + block_length). A query that sees no block
    (t < block_length - 1) gets o = 0 and p = 0.
    """
    o, p = _compressed_attention(q, k_cmp, v_cmp, block_length, stride, scale)
    return o.to(q.dtype), p.to(q.dtype)


def _compressed_attention(
    q: torch.Tensor, k_cmp: torch.Tensor, v_cmp: torch.Tensor, block_length: int, stride: int, scale: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """compressed_attention_reference in the compute dtype (fp32 for 16-bit inputs): selection picks from these
    probabilities, as the fast and Triton paths do (rounded to bf16 they tie more and pick other blocks)."""
    check_qkv(q, k_cmp, v_cmp, same_length=False)
    check_sizes(block_length=block_length, stride=stride)
    T = q.shape[1]
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    mask = compressed_visibility(T, k_cmp.shape[1], block_length, stride, q.device)  # [T, NC]
    o, p = _masked_attention(q.to(cdt), k_cmp.to(cdt), v_cmp.to(cdt), mask, scale)
    return o, p.permute(0, 2, 1, 3)


def compressed_attention_and_selection_reference(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    n_sel: int,
    scale: float | None = None,
    gate: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's compressed branch, the twin of fast.compressed_attention_and_selection_fast: (gate[..., None] *
    o [B, T, HQ, Dv], block ids [B, T, H, n_sel]), the ids chosen from this op's probabilities by Eq. 8-11
    (nsa_train.nsa.selection.select_blocks); gate [B, T, HQ] or None."""
    o, p = _compressed_attention(q, k_cmp, v_cmp, l, d, scale)
    check_sizes(l_sel=l_sel)
    check_n_sel(n_sel)
    ids = select_blocks(p, 0, k_cmp.shape[2], l, d, l_sel, n_sel, q.shape[1])
    return _gated(o.to(q.dtype), gate), ids


def gated_selection_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_indices: torch.Tensor,
    block_size: int,
    gate: torch.Tensor | None,
    scale: float | None = None,
) -> torch.Tensor:
    """gate[..., None] * selection_attention_reference(...): the twin of fast.gated_selection_fast."""
    return _gated(selection_attention_reference(q, k, v, block_indices, block_size, scale), gate)


def gated_sliding_window_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window_size: int,
    gate: torch.Tensor | None,
    scale: float | None = None,
) -> torch.Tensor:
    """gate[..., None] * sliding_window_attention_reference(...): the twin of fast.gated_sliding_window_fast."""
    return _gated(sliding_window_attention_reference(q, k, v, window_size, scale), gate)


def _gated(o: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
    return o if gate is None else gate.unsqueeze(-1).to(o.dtype) * o  # [B, T, HQ, 1] * [B, T, HQ, Dv]
