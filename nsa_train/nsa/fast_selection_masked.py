"""Selection attention for short sequences: one SDPA call over all keys with the selection as a boolean mask.

The block-major path (fast_selection.py) runs a few dozen small ops per chunk whatever the size, which at the
tiny default (batch 8, 256 tokens, 4 blocks of 16 per query) costs more than attending to all 256 keys at
once. Here the work grows with T^2 instead of T * n_sel * block_size, so the fast path takes this route only
while the mask is small and a query's selected blocks cover a good part of the sequence
(``use_masked_selection``): bounds measured with bench/selection_short.py (its table is in the README).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

MAX_SCORES = 1 << 22  # B * HQ * T * T at most (the mask's elements: 4 MB as bool)
MAX_KEYS_PER_SELECTED = 4  # T / (n_sel * block_size) at most: beyond, most of the dense work is masked away


_forced: bool | None = None  # set by ``route``


@contextmanager
def route(masked: bool) -> Iterator[None]:
    """Inside the block the fast selection op takes the masked route (True) or the block-major one (False)
    whatever the shape: `nsa check` tests both on its small layer, as a run may take either."""
    global _forced
    previous, _forced = _forced, masked
    try:
        yield
    finally:
        _forced = previous


def use_masked_selection(B: int, T: int, HQ: int, n_slots: int, block_size: int) -> bool:
    """Whether one masked SDPA over all T keys beats the block-major path for this shape."""
    if _forced is not None:
        return _forced
    keys_per_selected = T / max(1, n_slots * block_size)
    return B * HQ * T * T <= MAX_SCORES and keys_per_selected <= MAX_KEYS_PER_SELECTED


def masked_selection(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_indices: torch.Tensor,
    block_size: int,
    scale: float,
    gate: torch.Tensor | None,
) -> torch.Tensor:
    """gate[..., None] * selection attention, differentiable by autograd: q [B, T, HQ, D], k [B, T, H, D],
    v [B, T, H, Dv], block_indices [B, T, H, S] (any ids: -1, duplicates, out of range and future blocks select
    no visible key), gate [B, T, HQ] or None -> [B, T, HQ, Dv]. A query that sees no key gets 0."""
    # the same mask as reference.selection_attention_reference's, built here on its own: the oracle shares no
    # code with what it checks
    B, T, HQ, _ = q.shape
    H = k.shape[2]
    G = HQ // H
    n_blocks = (T + block_size - 1) // block_size
    ids = block_indices.long()
    ids = torch.where((ids < 0) | (ids >= n_blocks), n_blocks, ids)  # one spare column takes the unused slots
    chosen = torch.zeros(B, T, H, n_blocks + 1, dtype=torch.bool, device=q.device)
    chosen.scatter_(-1, ids, True)
    mask = chosen[..., :n_blocks].repeat_interleave(block_size, -1)[..., :T]  # [B, T, H, T]
    mask &= torch.ones(T, T, dtype=torch.bool, device=q.device).tril()[None, :, None, :]  # keys <= t
    seen = mask.any(-1)  # [B, T, H]
    # a fully masked row is NaN in some SDPA backends and versions: it attends to key 0 and is multiplied by 0
    mask[..., 0] |= ~seen
    mask = mask.permute(0, 2, 1, 3).repeat_interleave(G, 1)  # [B, HQ, T, T]
    o = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask, scale=scale, enable_gqa=G > 1
    ).transpose(1, 2)  # [B, T, HQ, Dv]
    weight = seen.repeat_interleave(G, -1).to(o.dtype)  # [B, T, HQ]
    if gate is not None:
        weight = weight * gate
    return o * weight.unsqueeze(-1)
