"""Fast NSA attention ops in PyTorch: chunked over query tiles, memory bounded, no loop over tokens/batch/heads.

- Sliding window: query tiles of WINDOW_TILE against their tile + w - 1 keys, all tiles of a group in one
  SDPA call; a custom autograd function saves only q/k/v and recomputes each group in backward.
- Compressed: query tiles against only the compressed blocks they can see (causal skipping); the layer's
  variant turns each tile's probabilities into selected block ids at once and never holds p.
- Selection: see fast_selection.py (block-major GEMMs, flash-style recompute).
Loops run over query tiles only; everything inside a tile is batched over batch, heads and tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nsa_train.nsa._common import check_qkv, compute_dtype, default_scale, masked_softmax
from nsa_train.nsa.fast_selection import SelectionAttentionFn
from nsa_train.nsa.selection import select_blocks

WINDOW_TILE = 64  # queries per SDPA call in the window branch
WINDOW_GROUP = 2048  # queries per forward/recompute group in the window branch
CMP_TILE = 256  # queries per tile in the compressed branch


def sliding_window_attention_fast(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window_size: int, scale: float | None = None
) -> torch.Tensor:
    _, T, _, _, G = check_qkv(q, k, v)
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    qh = q.to(cdt).transpose(1, 2)  # [B, HQ, T, D]
    kh = k.to(cdt).transpose(1, 2)  # [B, H, T, D]
    vh = v.to(cdt).transpose(1, 2)  # [B, H, T, Dv]
    if window_size >= T:
        o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale, enable_gqa=G > 1)
        return o.transpose(1, 2).to(q.dtype)
    o = _WindowFn.apply(qh.contiguous(), kh.contiguous(), vh.contiguous(), window_size, scale)  # [B, HQ, T, Dv]
    return o.transpose(1, 2).to(q.dtype)


def _window_core(
    qs: torch.Tensor, ks: torch.Tensor, vs: torch.Tensor, a: int, ka: int, w: int, scale: float
) -> torch.Tensor:
    """Window attention of queries a.. (qs [B, HQ, Lq, D]) over keys ka.. (ks/vs [B, H, Lk, D]), ka = max(0, a-w+1).

    All query tiles go into one SDPA call: tile i holds queries [a+iC, a+iC+C) and keys [a+iC-w+1, a+iC+C),
    an overlapping unfold of the left-padded keys.
    """
    B, HQ, Lq, _ = qs.shape
    H = ks.shape[1]
    C = min(WINDOW_TILE, Lq)
    n_tiles = (Lq + C - 1) // C
    span = C + w - 1
    t_pad = n_tiles * C - Lq
    left = w - 1 - (a - ka)  # keys before position 0 are padding
    qt = F.pad(qs, (0, 0, 0, t_pad)).view(B, HQ, n_tiles, C, -1).transpose(1, 2)  # [B, NT, HQ, C, D]
    kt = F.pad(ks, (0, 0, left, t_pad)).unfold(2, span, C).permute(0, 2, 1, 4, 3)  # [B, NT, H, span, D]
    vt = F.pad(vs, (0, 0, left, t_pad)).unfold(2, span, C).permute(0, 2, 1, 4, 3)
    dev = qs.device
    q_pos = a + torch.arange(n_tiles * C, device=dev).view(n_tiles, C, 1)
    k_pos = (a + torch.arange(n_tiles, device=dev) * C - w + 1).view(n_tiles, 1, 1) + torch.arange(span, device=dev)
    band = (k_pos >= 0) & (q_pos - k_pos >= 0) & (q_pos - k_pos < w)  # [NT, C, span]
    o = F.scaled_dot_product_attention(
        qt.reshape(B * n_tiles, HQ, C, -1),
        kt.reshape(B * n_tiles, H, span, -1),
        vt.reshape(B * n_tiles, H, span, -1),
        attn_mask=band.repeat(B, 1, 1).unsqueeze(1),
        scale=scale,
        enable_gqa=HQ != H,
    )  # [B*NT, HQ, C, Dv]
    return o.view(B, n_tiles, HQ, C, -1).transpose(1, 2).reshape(B, HQ, n_tiles * C, -1)[:, :, :Lq]


class _WindowFn(torch.autograd.Function):
    """Window attention over groups of WINDOW_GROUP queries; saves only q, k, v and recomputes each group in
    backward, so the unfolded key tiles (C + w - 1 keys per C queries) never outlive one group."""

    @staticmethod
    def forward(ctx, qh, kh, vh, w, scale):  # type: ignore[override]
        # qh [B, HQ, T, D], kh [B, H, T, D], vh [B, H, T, Dv]
        T = qh.shape[2]
        o = qh.new_empty(*qh.shape[:3], vh.shape[-1])
        for a in range(0, T, WINDOW_GROUP):
            b, ka = min(T, a + WINDOW_GROUP), max(0, a - w + 1)
            o[:, :, a:b] = _window_core(qh[:, :, a:b], kh[:, :, ka:b], vh[:, :, ka:b], a, ka, w, scale)
        ctx.save_for_backward(qh, kh, vh)
        ctx.w, ctx.scale = w, scale
        return o

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        qh, kh, vh = ctx.saved_tensors
        w, scale, T = ctx.w, ctx.scale, qh.shape[2]
        dq, dk, dv = torch.empty_like(qh), torch.zeros_like(kh), torch.zeros_like(vh)
        for a in range(0, T, WINDOW_GROUP):
            b, ka = min(T, a + WINDOW_GROUP), max(0, a - w + 1)
            with torch.enable_grad():
                xs = [x.detach().requires_grad_(True) for x in (qh[:, :, a:b], kh[:, :, ka:b], vh[:, :, ka:b])]
                o = _window_core(*xs, a, ka, w, scale)
                gq, gk, gv = torch.autograd.grad(o, xs, do[:, :, a:b])
            dq[:, :, a:b] = gq
            dk[:, :, ka:b] += gk
            dv[:, :, ka:b] += gv
        return dq, dk, dv, None, None


def _visible_blocks(t_end: int, n_cmp: int, block_length: int, stride: int) -> int:
    """How many compressed blocks a query at position t_end - 1 can see."""
    return max(0, min(n_cmp, (t_end - block_length) // stride + 1))


def _cmp_mask(c0: int, c1: int, n_vis: int, block_length: int, stride: int, device: torch.device) -> torch.Tensor:
    last = torch.arange(n_vis, device=device) * stride + block_length - 1
    return last[None, :] <= torch.arange(c0, c1, device=device)[:, None]  # [C, n_vis]


def compressed_attention_fast(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    block_length: int,
    stride: int,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    B, T, HQ, H, G = check_qkv(q, k_cmp, v_cmp, same_length=False)
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    NC, Dv = k_cmp.shape[1], v_cmp.shape[-1]
    qg = q.to(cdt).view(B, T, H, G, -1)
    kc, vc = k_cmp.to(cdt), v_cmp.to(cdt)
    os, ps = [], []
    for c0 in range(0, T, CMP_TILE):
        c1 = min(T, c0 + CMP_TILE)
        n = _visible_blocks(c1, NC, block_length, stride)
        if n == 0:
            os.append(q.new_zeros(B, c1 - c0, HQ, Dv, dtype=cdt))
            ps.append(q.new_zeros(B, c1 - c0, HQ, NC, dtype=cdt))
            continue
        scores = torch.einsum("bchgd,bnhd->bchgn", qg[:, c0:c1], kc[:, :n]) * scale  # [B, C, H, G, n]
        mask = _cmp_mask(c0, c1, n, block_length, stride, q.device)[None, :, None, None, :]
        p = masked_softmax(scores, mask.expand_as(scores))
        os.append(torch.einsum("bchgn,bnhd->bchgd", p, vc[:, :n]).reshape(B, c1 - c0, HQ, Dv))
        ps.append(F.pad(p.reshape(B, c1 - c0, HQ, n), (0, NC - n)))
    return torch.cat(os, 1).to(q.dtype), torch.cat(ps, 1).to(q.dtype)


def compressed_attention_and_selection_fast(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    n_sel: int,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's compressed branch: (o [B, T, HQ, Dv], block_indices [B, T, H, n_sel]) without ever holding p.

    Per query tile: p over the visible compressed blocks is turned into block ids at once (Eq. 8-11), and the
    output comes from SDPA. Only q, k_cmp, v_cmp are saved; backward recomputes each tile's SDPA.
    """
    check_qkv(q, k_cmp, v_cmp, same_length=False)
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    qh = q.to(cdt).transpose(1, 2).contiguous()  # [B, HQ, T, D]
    kh = k_cmp.to(cdt).transpose(1, 2).contiguous()  # [B, H, NC, D]
    vh = v_cmp.to(cdt).transpose(1, 2).contiguous()  # [B, H, NC, Dv]
    o, ids = _CmpSelectFn.apply(qh, kh, vh, l, d, l_sel, n_sel, scale)
    return o.transpose(1, 2).to(q.dtype), ids


def _cmp_tile(
    qh: torch.Tensor, kh: torch.Tensor, vh: torch.Tensor, c0: int, c1: int, l: int, d: int, scale: float
) -> torch.Tensor:
    """Compressed attention output of queries c0..c1-1 (qh [B, HQ, C, D]) -> [B, HQ, C, Dv]; queries that see no
    block get 0 (SDPA would give NaN on an empty row). kh/vh hold exactly the blocks visible to query c1 - 1."""
    B, HQ, _, _ = qh.shape
    n = kh.shape[2]
    first = min(max(c0, l - 1), c1)
    parts = [qh.new_zeros(B, HQ, first - c0, vh.shape[-1])] if first > c0 else []
    if first < c1:
        mask = _cmp_mask(first, c1, n, l, d, qh.device)
        parts.append(
            F.scaled_dot_product_attention(
                qh[:, :, first - c0 :], kh, vh, attn_mask=mask, scale=scale, enable_gqa=kh.shape[1] != HQ
            )
        )
    return torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]


class _CmpSelectFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qh, kh, vh, l, d, l_sel, n_sel, scale):  # type: ignore[override]
        # qh [B, HQ, T, D], kh [B, H, NC, D], vh [B, H, NC, Dv]
        B, HQ, T, _ = qh.shape
        H, NC = kh.shape[1], kh.shape[2]
        G = HQ // H
        o = qh.new_empty(B, HQ, T, vh.shape[-1])
        ids = []
        for c0 in range(0, T, CMP_TILE):
            c1 = min(T, c0 + CMP_TILE)
            n = _visible_blocks(c1, NC, l, d)
            if n == 0:
                p = qh.new_zeros(B, c1 - c0, HQ, 0)
            else:
                qg = qh[:, :, c0:c1].reshape(B, H, G, c1 - c0, -1)
                scores = torch.einsum("bhgcd,bhnd->bchgn", qg, kh[:, :, :n]).mul_(scale)  # [B, C, H, G, n]
                hidden = ~_cmp_mask(c0, c1, n, l, d, qh.device)[None, :, None, None, :]
                p = torch.softmax(scores.masked_fill_(hidden, float("-inf")), dim=-1)
                if c0 < l - 1:  # rows that see no block: softmax of all -inf is NaN, p is 0 by definition
                    p[:, : l - 1 - c0] = 0
                p = p.view(B, c1 - c0, HQ, n)
            ids.append(select_blocks(p, c0, H, l, d, l_sel, n_sel, T))
            o[:, :, c0:c1] = _cmp_tile(qh[:, :, c0:c1], kh[:, :, :n], vh[:, :, :n], c0, c1, l, d, scale)
        ctx.save_for_backward(qh, kh, vh)
        ctx.args = (l, d, scale)
        block_ids = torch.cat(ids, dim=1)
        ctx.mark_non_differentiable(block_ids)
        return o, block_ids

    @staticmethod
    def backward(ctx, do, _):  # type: ignore[override]
        qh, kh, vh = ctx.saved_tensors
        l, d, scale = ctx.args
        T, NC = qh.shape[2], kh.shape[2]
        dq, dk, dv = torch.zeros_like(qh), torch.zeros_like(kh), torch.zeros_like(vh)
        for c0 in range(0, T, CMP_TILE):
            c1 = min(T, c0 + CMP_TILE)
            n = _visible_blocks(c1, NC, l, d)
            if n == 0 or c1 <= l - 1:
                continue
            with torch.enable_grad():
                xs = [x.detach().requires_grad_(True) for x in (qh[:, :, c0:c1], kh[:, :, :n], vh[:, :, :n])]
                o = _cmp_tile(*xs, c0, c1, l, d, scale)
                gq, gk, gv = torch.autograd.grad(o, xs, do[:, :, c0:c1])
            dq[:, :, c0:c1] = gq
            dk[:, :, :n] += gk
            dv[:, :, :n] += gv
        return dq, dk, dv, None, None, None, None, None


def _dedupe_future(block_indices: torch.Tensor, block_size: int, n_blocks: int) -> torch.Tensor:
    """Block ids with duplicates, out-of-range ids and blocks after the query's own block set to -1: [B, T, H, S]."""
    idx = block_indices.long().sort(dim=-1).values
    T = idx.shape[1]
    cur = (torch.arange(T, device=idx.device) // block_size)[None, :, None, None]
    dup = torch.zeros_like(idx, dtype=torch.bool)
    dup[..., 1:] = idx[..., 1:] == idx[..., :-1]
    bad = dup | (idx < 0) | (idx >= n_blocks) | (idx > cur)
    return torch.where(bad, -1, idx)


def selection_attention_fast(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_indices: torch.Tensor,
    block_size: int,
    scale: float | None = None,
) -> torch.Tensor:
    B, T, _, H, _ = check_qkv(q, k, v)
    if block_indices.shape[:3] != (B, T, H):
        raise ValueError(f"block_indices must be [B, T, H, S] = [{B}, {T}, {H}, S], got {tuple(block_indices.shape)}")
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    n_blocks = (T + block_size - 1) // block_size
    idx = _dedupe_future(block_indices, block_size, n_blocks)
    o = SelectionAttentionFn.apply(
        q.to(cdt).contiguous(), k.to(cdt).contiguous(), v.to(cdt).contiguous(), idx, block_size, scale
    )
    return o.to(q.dtype)
