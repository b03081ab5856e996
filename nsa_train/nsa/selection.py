"""Block selection of NSA (paper Eq. 8-11): compressed attention probabilities -> top-n block ids.

Shared by the reference and the fast layer paths (the fast path calls it on query chunks), so both
choose the same blocks. Runs without gradients: selection is a discrete choice.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

FORCED_BLOCKS = 3  # block 0 and the 2 local blocks (Eq. 11): always selected, counted in n_sel


def selection_block_scores(p_cmp: torch.Tensor, l: int, d: int, l_sel: int, n_sel_blocks: int) -> torch.Tensor:
    """Eq. 9: p_slc[j] = sum over m < l_sel/d and n < l/d of p_cmp[(l_sel/d) j - m - n] (the paper's indices are
    1-based; here 0-based: stride chunk u = j*r + m' of selection block j, compressed block u - n).

    p_cmp [B, Tc, HQ, NC] -> [B, Tc, HQ, NS]. Compressed block i covers [i*d, i*d + l), the m = l/d stride chunks
    i .. i+m-1; selection block j covers the r = l_sel/d chunks j*r .. j*r+r-1. Each chunk scores the compressed
    blocks that hold it, and a selection block sums its chunks, so a compressed block counts once per chunk it
    shares with the selection block: its overlap in units of d (with l=32, d=16, l_sel=64, the five blocks that
    reach into a selection block weigh 1, 2, 2, 2, 1).
    """
    check_whole_strides(l, d, l_sel)
    r, m = l_sel // d, l // d
    nc, ns = p_cmp.shape[-1], n_sel_blocks
    padded = F.pad(p_cmp, (m - 1, ns * r - nc))  # [B, Tc, HQ, NS*r + m - 1]: padded[u + m - 1] = p[u], cropped
    chunks = padded[..., m - 1 :].clone()  # [B, Tc, HQ, NS*r] chunk u's score: the blocks u - n, n < m, holding it
    for n in range(1, m):
        chunks += padded[..., m - 1 - n : m - 1 - n + ns * r]
    return chunks.unflatten(-1, (ns, r)).sum(-1)


def check_n_sel(n_sel: int) -> None:
    """n_sel: an integer >= 3, as NSAConfig requires. The forced blocks all score +inf and ties go to the lower id,
    so with fewer slots the query's own block was the one left out (n_sel 2: blocks 0 and cur-1)."""
    if isinstance(n_sel, bool) or not isinstance(n_sel, numbers.Integral) or n_sel < FORCED_BLOCKS:
        raise ValueError(
            f"n_sel must be an integer >= {FORCED_BLOCKS} (block 0 and the 2 local blocks are always selected), "
            f"got {n_sel!r}"
        )


def check_whole_strides(l: int, d: int, l_sel: int) -> None:
    """Eq. 9 maps whole strides: with other sizes its sums would be wrong, silently."""
    if l % d or l_sel % d:
        raise ValueError(f"l ({l}) and l_sel ({l_sel}) must be multiples of the stride d ({d}), as NSAConfig requires")


def _descending_key(scores: torch.Tensor) -> torch.Tensor:
    """int64 keys whose descending order is scores' descending order with ties to the lower index: top-k on
    them is exact and deterministic (torch.topk itself promises nothing about ties). scores [..., N] fp32.

    A float32's bits read as int32 order like the float for x >= 0; flipping the magnitude bits of negative
    ones (only -inf occurs here) makes the whole range monotone. The low bits hold N - 1 - index.
    """
    bits = scores.contiguous().view(torch.int32)
    mono = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).long()
    n = scores.shape[-1]
    return mono * n + (n - 1 - torch.arange(n, device=scores.device))


@torch.no_grad()
def select_blocks(
    p_cmp: torch.Tensor, t0: int, n_kv_heads: int, l: int, d: int, l_sel: int, n_sel: int, seq_len: int
) -> torch.Tensor:
    """Eq. 10-11: block ids [B, Tc, H, n_sel] (n_sel >= 3) for queries at positions t0 .. t0+Tc-1, sorted, -1 = unused.

    Scores are summed over the query heads of each KV group (one selection per group; summing before the
    Eq. 9 mapping is the same sum, on G times less data), the initial block and the 2 local blocks (current and
    previous) are always taken, blocks after the query's own block never are. Ties go to the lower block id,
    so the choice is deterministic.
    """
    check_n_sel(n_sel)
    B, Tc, HQ, NC = p_cmp.shape
    p_group = p_cmp.float().view(B, Tc, n_kv_heads, HQ // n_kv_heads, NC).sum(3)  # [B, Tc, H, NC]
    return select_blocks_grouped(p_group, t0, l, d, l_sel, n_sel, seq_len)


@torch.no_grad()
def select_blocks_grouped(
    p_group: torch.Tensor, t0: int, l: int, d: int, l_sel: int, n_sel: int, seq_len: int
) -> torch.Tensor:
    """select_blocks from probabilities already summed over each KV group's query heads: p_group [B, Tc, H, NC]
    -> block ids [B, Tc, H, n_sel]. The fast path sums its tiles itself (no copy to [B, Tc, HQ, NC])."""
    p_group = p_group.float()  # the tie-break keys read fp32 bits (float64 comes from gradcheck)
    ns = n_scored_blocks(t0, p_group.shape[1], l_sel, seq_len)
    return select_top_blocks(selection_block_scores(p_group, l, d, l_sel, ns), t0, l_sel, n_sel)


def n_scored_blocks(t0: int, Tc: int, l_sel: int, seq_len: int) -> int:
    """Selection blocks scored for queries t0 .. t0+Tc-1: up to the last query's own block (later ones can
    never be chosen)."""
    return min((seq_len + l_sel - 1) // l_sel, (t0 + Tc - 1) // l_sel + 1)


@torch.no_grad()
def select_top_blocks(scores: torch.Tensor, t0: int, l_sel: int, n_sel: int) -> torch.Tensor:
    """Eq. 11 on Eq. 9's group-summed scores [B, Tc, H, NS] (fp32) of queries t0 .. t0+Tc-1 -> block ids
    [B, Tc, H, n_sel]: forced blocks first, then the highest scores, ties to the lower id, sorted, -1 = unused."""
    Tc, ns = scores.shape[1], scores.shape[-1]
    blk = torch.arange(ns, device=scores.device)
    cur = (torch.arange(t0, t0 + Tc, device=scores.device) // l_sel)[:, None]  # [Tc, 1]
    forced = (blk == 0) | (blk == cur) | (blk == cur - 1)  # [Tc, NS]
    future = blk > cur
    scores = scores.masked_fill(forced[None, :, None, :], float("inf"))
    scores = scores.masked_fill(future[None, :, None, :], float("-inf"))
    k = min(n_sel, ns)
    order = torch.topk(_descending_key(scores), k, dim=-1, sorted=False).indices  # [B, Tc, H, k]
    taken = torch.gather(scores, -1, order) > float("-inf")
    ids = torch.where(taken, order, ns).sort(dim=-1).values  # unused slots sort last
    ids = torch.where(ids == ns, -1, ids)
    if k < n_sel:
        ids = F.pad(ids, (0, n_sel - k), value=-1)
    return ids
