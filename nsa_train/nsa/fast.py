"""Fast NSA attention ops in PyTorch: chunked over query tiles, memory bounded, no loop over tokens/batch/heads.

- Sliding window: query tiles of WINDOW_TILE against their tile + w - 1 keys, all tiles of a group in one
  SDPA call; on CPU a custom autograd function keeps the flash op's output and log-sum-exp for its backward,
  elsewhere it saves only q/k/v and recomputes each group in backward.
- Compressed: query tiles against only the compressed blocks they can see (causal skipping); the layer's
  variant turns each tile's probabilities into selected block ids at once and never holds p; on CPU its
  backward is the flash op's backward per tile, on the saved output and log-sum-exp.
- Selection: see fast_selection.py (block-major GEMMs, flash-style recompute).
Loops run over query tiles only; everything inside a tile is batched over batch, heads and tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nsa_train.nsa import fast_selection_masked
from nsa_train.nsa._common import (
    LOG2E,
    check_block_indices,
    check_qkv,
    check_sizes,
    compute_dtype,
    default_scale,
    masked_softmax,
    vjp,
)
from nsa_train.nsa.fast_selection import SelectionAttentionFn
from nsa_train.nsa.selection import check_n_sel, select_blocks_grouped

WINDOW_TILE = 64  # queries per SDPA call in the window branch
WINDOW_GROUP = 2048  # queries per forward/recompute group in the window branch (CPU; the least on CUDA)
CMP_TILE = 256  # queries per tile in the compressed branch (CPU; the least on CUDA)
# On CUDA these loops are launch-bound: each tile costs ~20 small kernels and their Python, whatever its size
# (an H200 ran the layer's forward+backward at 64k tokens in 984 ms with the CPU's tiles, 140 ms with these;
# bench/layer_profile.py --sweep-*). So tiles there are as large as a bounded temporary allows.
CUDA_CMP_TILE_BYTES = 1 << 30  # the fp32 scores of one compressed tile [B, H, G*C, NC] at most
CUDA_WINDOW_GROUP = 16384


def cmp_tile(device: torch.device, B: int, HQ: int, NC: int, T: int) -> int:
    """Queries per compressed-branch tile: CMP_TILE on CPU (cache-sized); on CUDA the most whose scores stay
    under CUDA_CMP_TILE_BYTES, a multiple of CMP_TILE (e.g. 8192 at 64k tokens, 8 query heads; all of 8k)."""
    if device.type != "cuda":
        return CMP_TILE
    fit = CUDA_CMP_TILE_BYTES // (4 * B * HQ * max(NC, 1))
    return max(CMP_TILE, min(T, fit // CMP_TILE * CMP_TILE))


def window_group(device: torch.device) -> int:
    """Queries per window-branch group: WINDOW_GROUP on CPU, at least CUDA_WINDOW_GROUP on CUDA."""
    return max(WINDOW_GROUP, CUDA_WINDOW_GROUP) if device.type == "cuda" else WINDOW_GROUP


def sliding_window_attention_fast(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window_size: int, scale: float | None = None
) -> torch.Tensor:
    return gated_sliding_window_fast(q, k, v, window_size, None, scale)


def gated_sliding_window_fast(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window_size: int,
    gate: torch.Tensor | None,
    scale: float | None = None,
) -> torch.Tensor:
    """gate[..., None] * sliding_window_attention(q, k, v): the layer's window branch, gate [B, T, HQ] or None.

    Taking the gate inside lets backward get the gate's gradient from the output it recomputes anyway, so
    the branch output is never saved for the gating product.
    """
    _, T, _, _, G = check_qkv(q, k, v)
    check_sizes(window_size=window_size)
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    g = None if gate is None else gate.to(cdt)
    if window_size >= T:
        qh, kh, vh = (x.to(cdt).transpose(1, 2) for x in (q, k, v))
        o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale, enable_gqa=G > 1).transpose(1, 2)
        return (o if g is None else o * g.unsqueeze(-1)).to(q.dtype)
    # contiguous: a saved view of a strided slice (the layer's fused k/v projection) would keep all of it alive
    k, v = k.to(cdt).contiguous(), v.to(cdt).contiguous()
    o = _WindowFn.apply(q.to(cdt), k, v, g, window_size, scale)  # [B, T, HQ, Dv]
    return o.to(q.dtype)


def _window_geometry(Lq: int, a: int, ka: int, w: int) -> tuple[int, int, int, int, int]:
    """(C, n_tiles, span, t_pad, left) of the window tiles of Lq queries from a over keys from ka: C queries per
    tile, span keys per tile, t_pad padding queries after the last, left padding keys before position 0."""
    C = min(WINDOW_TILE, Lq)
    n_tiles = (Lq + C - 1) // C
    return C, n_tiles, C + w - 1, n_tiles * C - Lq, w - 1 - (a - ka)


def _window_tile_grads(
    gq_t: torch.Tensor, gk_t: torch.Tensor, gv_t: torch.Tensor, B: int, Lq: int, Lk: int, a: int, ka: int, w: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The adjoint of _window_tiles: gradients in the tiles' layout -> [B, heads, L, D] (overlapping key tiles
    summed). Written out rather than left to autograd.grad, whose shape check of grad_outputs imports sympy
    (~34 MB resident for the rest of the process, torch 2.13)."""
    C, n_tiles, span, t_pad, left = _window_geometry(Lq, a, ka, w)
    HQ, H = gq_t.shape[1], gk_t.shape[1]
    gq = gq_t.view(B, n_tiles, HQ, C, -1).transpose(1, 2).reshape(B, HQ, n_tiles * C, -1)[:, :, :Lq]

    def fold(g_t: torch.Tensor) -> torch.Tensor:  # [B*NT, H, span, D] -> [B, H, Lk, D]
        g = g_t.view(B, n_tiles, H, span, -1).permute(0, 2, 1, 4, 3)  # the unfold's layout [B, H, NT, D, span]
        padded = [B, H, left + Lk + t_pad, g.shape[3]]
        return torch.ops.aten.unfold_backward(g, padded, 2, span, C)[:, :, left : left + Lk]

    return gq, fold(gk_t), fold(gv_t)


def _window_tiles(
    qs: torch.Tensor, ks: torch.Tensor, vs: torch.Tensor, a: int, ka: int, w: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The window tiles of queries a.. (qs [B, HQ, Lq, D]) over keys ka.. (ks/vs [B, H, Lk, D]), ka = max(0, a-w+1):
    (qt [B*NT, HQ, C, D], kt [B*NT, H, span, D], vt [B*NT, H, span, Dv], band [1 or B*NT, 1, C, span] bool).

    Tile i holds queries [a+iC, a+iC+C) and keys [a+iC-w+1, a+iC+C), an overlapping unfold of the
    left-padded keys; band says which of them each query sees. Query c of a tile sees its keys c..c+w-1 in
    every tile, so band is one [C, span] pattern broadcast over the tiles (building it per tile cost more than
    a tenth of the branch), except where a tile's keys start before position 0 (padding, never seen).
    """
    B, HQ, Lq, _ = qs.shape
    H = ks.shape[1]
    C, n_tiles, span, t_pad, left = _window_geometry(Lq, a, ka, w)
    qt = F.pad(qs, (0, 0, 0, t_pad)).view(B, HQ, n_tiles, C, -1).transpose(1, 2)  # [B, NT, HQ, C, D]
    kt = F.pad(ks, (0, 0, left, t_pad)).unfold(2, span, C).permute(0, 2, 1, 4, 3)  # [B, NT, H, span, D]
    vt = F.pad(vs, (0, 0, left, t_pad)).unfold(2, span, C).permute(0, 2, 1, 4, 3)
    dev = qs.device
    rel = torch.arange(span, device=dev) - torch.arange(C, device=dev)[:, None]  # key j - query c: [C, span]
    band = ((rel >= 0) & (rel < w))[None]  # [1, C, span]
    if a - w + 1 < 0:  # the first tiles' keys start before position 0
        k_pos = (a + torch.arange(n_tiles, device=dev) * C - w + 1).view(n_tiles, 1, 1) + torch.arange(span, device=dev)
        band = (band & (k_pos >= 0)).repeat(B, 1, 1)  # [B*NT, C, span]
    return (
        qt.reshape(B * n_tiles, HQ, C, -1),
        kt.reshape(B * n_tiles, H, span, -1),
        vt.reshape(B * n_tiles, H, span, -1),
        band.unsqueeze(1),
    )


def _untile(o_t: torch.Tensor, B: int, Lq: int) -> torch.Tensor:
    """[B*NT, HQ, C, Dv] -> [B, Lq, HQ, Dv] (the last tile's padding rows dropped)."""
    _, HQ, C, Dv = o_t.shape
    return o_t.view(B, -1, HQ, C, Dv).permute(0, 1, 3, 2, 4).reshape(B, -1, HQ, Dv)[:, :Lq]


def _window_core(
    qs: torch.Tensor, ks: torch.Tensor, vs: torch.Tensor, a: int, ka: int, w: int, scale: float
) -> torch.Tensor:
    """Window attention of one group as [B, Lq, HQ, Dv], all its query tiles in one SDPA call (any device)."""
    qt, kt, vt, band = _window_tiles(qs, ks, vs, a, ka, w)
    o = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=band, scale=scale, enable_gqa=qt.shape[1] != kt.shape[1])
    return _untile(o, qs.shape[0], qs.shape[2])


def _cpu_flash_route(q: torch.Tensor, v: torch.Tensor) -> bool:
    """PyTorch's CPU flash-attention forward and backward, callable with a saved output and log-sum-exp: on CPU,
    where the op exists, and for values as wide as the queries (the op refuses another width)."""
    return (
        q.device.type == "cpu"
        and q.shape[-1] == v.shape[-1]
        and hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward")
    )


def _additive(band: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean visibility -> the additive mask the CPU flash op takes (0 where seen, -inf elsewhere)."""
    return torch.zeros(band.shape, dtype=dtype, device=band.device).masked_fill_(~band, float("-inf"))


class _WindowFn(torch.autograd.Function):
    """Window attention over groups of WINDOW_GROUP queries; the unfolded key tiles (C + w - 1 keys per C
    queries) never outlive one group. On CPU the flash op's output and log-sum-exp are saved, and backward
    calls the op's backward on them (no second forward); elsewhere only q, k, v are saved and each group is
    recomputed. Works on [B, T, heads, D] directly: each group is transposed on the fly, so q is shared with
    the other branches instead of being saved again in another layout."""

    @staticmethod
    def forward(ctx, q, k, v, g, w, scale):  # type: ignore[override]
        # q [B, T, HQ, D], k [B, T, H, D], v [B, T, H, Dv], g [B, T, HQ] or None
        B, T = q.shape[:2]
        flash = _cpu_flash_route(q, v)
        o = q.new_empty(*q.shape[:3], v.shape[-1])
        saved: list[torch.Tensor] = []  # per group on CPU: its tiles' output and log-sum-exp
        group = window_group(q.device)
        for a in range(0, T, group):
            b, ka = min(T, a + group), max(0, a - w + 1)
            qs, ks, vs = _heads_first(q[:, a:b], k[:, ka:b], v[:, ka:b])
            if flash:
                qt, kt, vt, band = _window_tiles(qs, ks, vs, a, ka, w)
                o_t, lse_t = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                    qt, kt, vt, attn_mask=_additive(band, qt.dtype), scale=scale
                )  # [B*NT, HQ, C, Dv], [B*NT, HQ, C]
                saved += [o_t, lse_t]
                o_g = _untile(o_t, B, b - a)
            else:
                o_g = _window_core(qs, ks, vs, a, ka, w, scale)
            o[:, a:b] = o_g if g is None else o_g * g[:, a:b, :, None]
        ctx.save_for_backward(q, k, v, g, *saved)
        ctx.w, ctx.scale, ctx.flash, ctx.group = w, scale, flash, group
        return o

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, g, *saved = ctx.saved_tensors
        w, scale, (B, T) = ctx.w, ctx.scale, q.shape[:2]
        dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        dg = None if g is None else torch.empty_like(g)
        for i, a in enumerate(range(0, T, ctx.group)):  # the forward's groups: the CPU's saved tiles are per group
            b, ka = min(T, a + ctx.group), max(0, a - w + 1)
            do_g = do[:, a:b]
            xs = _heads_first(q[:, a:b], k[:, ka:b], v[:, ka:b])
            if ctx.flash:
                o_t, lse_t = saved[2 * i], saved[2 * i + 1]
                o = _untile(o_t, B, b - a)  # [B, L, HQ, Dv]
                if g is not None:
                    dg[:, a:b] = (do_g * o).sum(-1)
                    do_g = do_g * g[:, a:b, :, None]
                qt, kt, vt, band = _window_tiles(*xs, a, ka, w)
                # the gradient in the tiles' layout: pad the group to whole tiles like q
                C = qt.shape[2]
                do_t = F.pad(do_g.transpose(1, 2), (0, 0, 0, o_t.shape[0] // B * C - (b - a)))
                do_t = do_t.reshape(B, -1, o_t.shape[0] // B, C, do_t.shape[-1]).transpose(1, 2)
                gt = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
                    do_t.reshape(o_t.shape), qt, kt, vt, o_t, lse_t, 0.0, False,
                    attn_mask=_additive(band, qt.dtype), scale=scale,
                )  # fmt: skip
                gq, gk, gv = _window_tile_grads(*gt, B, b - a, b - ka, a, ka, w)
            else:
                xs = [x.detach().requires_grad_(True) for x in xs]
                with torch.enable_grad():
                    o = _window_core(*xs, a, ka, w, scale)  # [B, L, HQ, Dv]
                if g is not None:
                    dg[:, a:b] = (do_g * o.detach()).sum(-1)
                    do_g = do_g * g[:, a:b, :, None]
                gq, gk, gv = vjp([o], xs, [do_g])
            dq[:, a:b] = gq.transpose(1, 2)
            dk[:, ka:b] += gk.transpose(1, 2)
            dv[:, ka:b] += gv.transpose(1, 2)
        return dq, dk, dv, dg, None, None


def _heads_first(*xs: torch.Tensor) -> list[torch.Tensor]:
    """[B, L, heads, D] views -> [B, heads, L, D] views."""
    return [x.transpose(1, 2) for x in xs]


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
    check_sizes(block_length=block_length, stride=stride)
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    NC, Dv = k_cmp.shape[1], v_cmp.shape[-1]
    qg = q.to(cdt).view(B, T, H, G, -1)
    kc, vc = k_cmp.to(cdt), v_cmp.to(cdt)
    os, ps = [], []
    tile = cmp_tile(q.device, B, HQ, NC, T)
    for c0 in range(0, T, tile):
        c1 = min(T, c0 + tile)
        n = _visible_blocks(c1, NC, block_length, stride)
        if n == 0:  # no block visible yet: o = 0 as an empty sum, a function of the inputs (zero gradients)
            none = torch.einsum("bchgd,bnhd->bchgn", qg[:, c0:c1], kc[:, :0])  # [B, C, H, G, 0]
            os.append(torch.einsum("bchgn,bnhd->bchgd", none, vc[:, :0]).reshape(B, c1 - c0, HQ, Dv))
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
    gate: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's compressed branch: (gate * o [B, T, HQ, Dv], block_indices [B, T, H, n_sel]), p never held.

    Per query tile the probabilities over the visible compressed blocks are computed once and serve twice:
    as the branch's attention weights and as block importance for selection (Eq. 8-11). Saved: q, k_cmp, v_cmp,
    the gate, the per-row log-sum-exp and, on CPU, the ungated output, on which PyTorch's CPU flash-attention
    backward runs tile by tile (the gate's gradient is do·o). Elsewhere backward recomputes each tile's
    probabilities (flash style) and takes do·o from them.
    """
    check_qkv(q, k_cmp, v_cmp, same_length=False)
    check_sizes(l=l, d=d, l_sel=l_sel)
    check_n_sel(n_sel)
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    g = None if gate is None else gate.to(cdt)
    kh = k_cmp.to(cdt).transpose(1, 2).contiguous()  # [B, H, NC, D]
    vh = v_cmp.to(cdt).transpose(1, 2).contiguous()  # [B, H, NC, Dv]
    o, ids = _CmpSelectFn.apply(q.to(cdt), kh, vh, g, l, d, l_sel, n_sel, scale)
    return o.to(q.dtype), ids


def _group_rows(x: torch.Tensor, c0: int, c1: int, H: int) -> torch.Tensor:
    """x [B, T, HQ, X] -> rows c0..c1-1 as [B, H, G*C, X] (query heads of a KV head as GEMM rows, (g, c) order)."""
    B, _, HQ, X = x.shape
    G, C = HQ // H, c1 - c0
    return x[:, c0:c1].view(B, C, H, G, X).permute(0, 2, 3, 1, 4).reshape(B, H, G * C, X)


def _ungroup_rows(x: torch.Tensor, C: int) -> torch.Tensor:
    """Inverse of _group_rows: [B, H, G*C, X] -> [B, C, HQ, X]."""
    B, H, GC, X = x.shape
    return x.view(B, H, GC // C, C, X).permute(0, 3, 1, 2, 4).reshape(B, C, -1, X)


def _cmp_scores(qs: torch.Tensor, kh: torch.Tensor, c0: int, c1: int, l: int, d: int) -> torch.Tensor:
    """Masked scores of queries c0..c1-1 against the n blocks in kh: [B, H, G*C, n], -inf where not visible.

    qs [B, H, G*C, D] (from _group_rows, already multiplied by the softmax scale times LOG2E: a pass over G*C*D
    floats instead of one over the G*C*n scores, and scores in base-2 units for exp2, as in fast_selection),
    kh [B, H, n, D]; one GEMM per (batch, KV head).
    """
    B, H, GC, _ = qs.shape
    n, C = kh.shape[2], c1 - c0
    s = torch.matmul(qs, kh.transpose(2, 3))
    n0 = _visible_blocks(c0 + 1, n, l, d)  # blocks before n0 are visible to every query of the tile
    hidden = ~_cmp_mask(c0, c1, n, l, d, qs.device)[:, n0:]  # [C, n - n0]
    s.view(B, H, GC // C, C, n)[..., n0:].masked_fill_(hidden, float("-inf"))
    return s


class _CmpSelectFn(torch.autograd.Function):
    """Forward: per query tile, one softmax over the visible compressed blocks gives the output and the block
    choice. Backward on CPU: the flash op's backward per tile on the saved ungated output and log-sum-exp
    (~1.5x faster than the recompute below, for one [B, T, HQ, Dv] output kept); elsewhere: recompute."""

    @staticmethod
    def forward(ctx, q, kh, vh, g, l, d, l_sel, n_sel, scale):  # type: ignore[override]
        # q [B, T, HQ, D], kh [B, H, NC, D], vh [B, H, NC, Dv], g [B, T, HQ] or None
        B, T, HQ, _ = q.shape
        H, NC, Dv = kh.shape[1], kh.shape[2], vh.shape[-1]
        G = HQ // H
        # the ungated output is kept for the flash backward, and only when a backward can follow
        keep = _cpu_flash_route(q, vh) and any(ctx.needs_input_grad[:4])
        o = q.new_empty(B, T, HQ, Dv)  # the gated output
        o_raw = q.new_empty(B, T, HQ, Dv) if keep else None
        lse = q.new_full((B, H, G, T), float("inf"))  # base-2 log-sum-exp; +inf: the row sees no block
        ids = []
        tile = cmp_tile(q.device, B, HQ, NC, T)
        for c0 in range(0, T, tile):
            c1 = min(T, c0 + tile)
            C, n = c1 - c0, _visible_blocks(c1, NC, l, d)
            if n == 0:  # no query of the tile sees a block: the branch gives 0
                o[:, c0:c1] = 0
                if o_raw is not None:
                    o_raw[:, c0:c1] = 0
                ids.append(select_blocks_grouped(q.new_zeros(B, C, H, 0), c0, l, d, l_sel, n_sel, T))
                continue
            s = _cmp_scores(_group_rows(q, c0, c1, H) * (scale * LOG2E), kh[:, :, :n], c0, c1, l, d)  # [B, H, G*C, n]
            m = s.amax(-1, keepdim=True).clamp_min_(torch.finfo(s.dtype).min)  # finite for rows that see nothing
            p = s.sub_(m).exp2_()
            den = p.sum(-1, keepdim=True)
            p.div_(den.clamp_min(torch.finfo(s.dtype).tiny))  # rows that see nothing stay all 0
            lse[..., c0:c1] = torch.where(den > 0, m + den.log2(), float("inf")).view(B, H, G, C)
            o_t = _ungroup_rows(torch.matmul(p, vh[:, :, :n]), C)  # [B, C, HQ, Dv]
            if o_raw is not None:
                o_raw[:, c0:c1] = o_t
            o[:, c0:c1] = o_t if g is None else o_t * g[:, c0:c1, :, None]
            # Eq. 10's sum over the group's query heads straight from the (g, c) rows, as a GEMM with a row of
            # ones: a reduction over the strided g dim (sum(2)) is ~4x slower here. [B, C, H, n]
            p_group = torch.matmul(p.new_ones(1, G), p.view(B * H, G, C * n)).view(B, H, C, n).transpose(1, 2)
            ids.append(select_blocks_grouped(p_group, c0, l, d, l_sel, n_sel, T))
        ctx.save_for_backward(q, kh, vh, g, lse, o_raw)
        ctx.args = (l, d, scale)
        block_ids = torch.cat(ids, dim=1)
        ctx.mark_non_differentiable(block_ids)
        return o, block_ids

    @staticmethod
    def backward(ctx, do, _):  # type: ignore[override]
        q, kh, vh, g, lse, o_raw = ctx.saved_tensors
        if o_raw is not None:  # CPU: the flash op's backward on the saved output
            return _cmp_backward_flash(do, q, kh, vh, g, lse, o_raw, *ctx.args) + (None,) * 5
        l, d, scale = ctx.args
        B, T = q.shape[:2]
        H, NC = kh.shape[1], kh.shape[2]
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(kh), torch.zeros_like(vh)
        dg = None if g is None else torch.zeros_like(g)
        tile = cmp_tile(q.device, B, q.shape[2], NC, T)  # rows are independent given lse: any tiling works
        for c0 in range(0, T, tile):
            c1 = min(T, c0 + tile)
            C, n = c1 - c0, _visible_blocks(c1, NC, l, d)
            if n == 0:
                continue
            qr = _group_rows(q, c0, c1, H)  # [B, H, G*C, D]
            lse_r = lse[..., c0:c1].reshape(B, H, -1, 1)  # rows in (g, c) order like qr
            p = _cmp_scores(qr * (scale * LOG2E), kh[:, :, :n], c0, c1, l, d).sub_(lse_r).exp2_()
            do_r = _group_rows(do, c0, c1, H)  # [B, H, G*C, Dv], gradient of the gated output
            dp = torch.matmul(do_r, vh[:, :, :n].transpose(2, 3))  # [B, H, G*C, n]
            # o = p @ v, so do·o = sum_n p * dp: the softmax's row term (einsum: no [G*C, n] temporary). With
            # out = g * o it is also the gate's gradient (dg = do·o), and o's gradient is g * do
            delta = torch.einsum("bhrn,bhrn->bhr", p, dp).unsqueeze(-1)  # [B, H, G*C, 1]
            ds = dp.sub_(delta).mul_(p)  # dL/ds before the gate and the scale
            # gate and scale are per row: they scale the small GEMM operands/results, not the [G*C, n] ds
            w: torch.Tensor | float = scale
            if g is not None:
                dg[:, c0:c1] = _ungroup_rows(delta, C).squeeze(-1)
                g_r = _group_rows(g[..., None], c0, c1, H)  # [B, H, G*C, 1]
                w = g_r * scale
                do_r = do_r * g_r
            dq[:, c0:c1] = _ungroup_rows(torch.matmul(ds, kh[:, :, :n]).mul_(w), C)
            dk[:, :, :n] += torch.matmul(ds.transpose(2, 3), qr * w)
            dv[:, :, :n] += torch.matmul(p.transpose(2, 3), do_r)
        return dq, dk, dv, dg, None, None, None, None, None


def _cmp_backward_flash(
    do: torch.Tensor,
    q: torch.Tensor,
    kh: torch.Tensor,
    vh: torch.Tensor,
    g: torch.Tensor | None,
    lse: torch.Tensor,
    o_raw: torch.Tensor,
    l: int,
    d: int,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The compressed branch's backward through PyTorch's CPU flash-attention backward, one call per query tile
    with the tile's visibility as an additive mask. do [B, T, HQ, Dv] is the gated output's gradient; o_raw the
    ungated output; lse [B, H, G, T] base 2 (+inf where a row sees nothing: its probabilities come out 0)."""
    B, T, HQ = q.shape[:3]
    NC = kh.shape[2]
    dg = None
    if g is not None:
        dg = torch.einsum("bthd,bthd->bth", do, o_raw)  # out = g * o: dL/dg = do·o
        do = do * g[..., None]
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(kh), torch.zeros_like(vh)
    qh, doh, oh = _heads_first(q, do, o_raw)  # [B, HQ, T, D] views
    lse_nat = lse.view(B, HQ, T) / LOG2E  # the op's log-sum-exp is natural; head h*G + g is kv head h's g-th
    for c0 in range(0, T, CMP_TILE):
        c1 = min(T, c0 + CMP_TILE)
        n = _visible_blocks(c1, NC, l, d)
        if n == 0:
            continue
        mask = _additive(_cmp_mask(c0, c1, n, l, d, q.device), q.dtype)
        gq, gk, gv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            doh[:, :, c0:c1], qh[:, :, c0:c1], kh[:, :, :n], vh[:, :, :n], oh[:, :, c0:c1],
            lse_nat[..., c0:c1].contiguous(), 0.0, False, attn_mask=mask, scale=scale,
        )  # fmt: skip
        dq[:, c0:c1] = gq.transpose(1, 2)
        dk[:, :, :n] += gk
        dv[:, :, :n] += gv
    return dq, dk, dv, dg


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
    return gated_selection_fast(q, k, v, block_indices, block_size, None, scale)


def gated_selection_fast(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_indices: torch.Tensor,
    block_size: int,
    gate: torch.Tensor | None,
    scale: float | None = None,
) -> torch.Tensor:
    """gate[..., None] * selection_attention(q, k, v, block_indices, block_size): the layer's selected branch,
    gate [B, T, HQ] or None. The op keeps its output for backward anyway, so the gate's gradient comes from it
    and the gating product saves nothing more."""
    B, T, _, H, _ = check_qkv(q, k, v)
    check_sizes(block_size=block_size)
    check_block_indices(block_indices, B, T, H)
    scale = default_scale(scale, q.shape[-1])
    cdt = compute_dtype(q.dtype)
    g = None if gate is None else gate.to(cdt)
    if fast_selection_masked.use_masked_selection(B, T, q.shape[2], block_indices.shape[-1], block_size):
        o = fast_selection_masked.masked_selection(q.to(cdt), k.to(cdt), v.to(cdt), block_indices, block_size, scale, g)
        return o.to(q.dtype)
    n_blocks = (T + block_size - 1) // block_size
    idx = _dedupe_future(block_indices, block_size, n_blocks)
    o = SelectionAttentionFn.apply(
        q.to(cdt).contiguous(), k.to(cdt).contiguous(), v.to(cdt).contiguous(), idx, block_size, scale, g
    )
    return o.to(q.dtype)
