"""Triton kernels for NSA selected-block attention (forward, dq, dk/dv).

Imported lazily by ``availability.load_kernels`` (never at package import), which defines
the kernels in triton's process-wide mode: compiled for CUDA, or for the Triton interpreter.

Layout (fla-org's): q ``[B, T, HQ, D]``, k ``[B, T, H, D]``, v ``[B, T, H, DV]``,
``block_indices`` ``[B, T, H, S]`` (int32, -1 = unused slot), ``G = HQ // H`` query heads
per KV head. All tensors are contiguous; a "row" below is one head vector, e.g. q row
``(b*T + t)*HQ + hq`` starts at element ``row * D``.

Tiling (the paper's group-centric loading): the G query heads of one KV head share one
selection, so forward and dq work on one (token t, batch b, KV head h) per program with
the G query heads stacked as the M dimension of a ``[BG, D]`` tile (BG = G padded to a
power of two >= 16, the smallest tile ``tl.dot`` accepts). Each selected block is loaded
once as a ``[BS, D]`` key tile and serves all G heads. dk/dv are computed per (KV block,
b, h) by walking a reverse index (the list of queries that selected this block), so they
need no atomics and are deterministic.

Softmax uses base 2 (``exp2``) internally; the saved log-sum-exp is in natural log.
"""

from __future__ import annotations

import triton
import triton.language as tl

from nsa_train.nsa.triton._kernel_utils import dot, load_rows, store_rows


@triton.jit
def selection_fwd_kernel(
    q_ptr,  # [B, T, HQ, D]
    k_ptr,  # [B, T, H, D]
    v_ptr,  # [B, T, H, DV]
    idx_ptr,  # [B, T, H, S] int32
    o_ptr,  # [B, T, HQ, DV]
    lse_ptr,  # [B, T, HQ] fp32, natural log; -inf where nothing is visible
    scale,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    S: tl.constexpr,
    D: tl.constexpr,
    DV: tl.constexpr,
    BS: tl.constexpr,  # block_size (power of two >= 16)
    BG: tl.constexpr,  # G padded
    BD: tl.constexpr,  # D padded
    BDV: tl.constexpr,  # DV padded
    IEEE: tl.constexpr,
):
    """One program = one token t of one (batch, KV head): online softmax over its S selected blocks."""
    t = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    HQ: tl.constexpr = H * G

    offs_g = tl.arange(0, BG)
    offs_d = tl.arange(0, BD)
    offs_dv = tl.arange(0, BDV)
    offs_s = tl.arange(0, BS)
    g_mask = offs_g < G

    q_rows = (b * T + t).to(tl.int64) * HQ + h * G + offs_g  # [BG]
    q = load_rows(q_ptr, q_rows, g_mask, offs_d, D)
    qk_scale = scale * 1.4426950408889634  # fold log2(e) so the softmax can use exp2

    kv_row0 = (b * T).to(tl.int64) * H + h  # row of (b, token 0, h); token n is kv_row0 + n*H
    idx_base = ((b * T + t).to(tl.int64) * H + h) * S

    m = tl.full([BG], float("-inf"), tl.float32)  # running max (base-2 units)
    l = tl.zeros([BG], tl.float32)  # running sum of exp2
    acc = tl.zeros([BG, BDV], tl.float32)
    for s in range(S):
        blk = tl.load(idx_ptr + idx_base + s)
        start = blk * BS
        # Unused slots (-1) and blocks that start after t contribute nothing.
        if (blk >= 0) & (start <= t):
            pos = start + offs_s  # [BS] token positions of this block
            visible = pos <= t  # causal inside the current block (also keeps pos < T)
            kv_rows = kv_row0 + pos.to(tl.int64) * H  # [BS]
            k = load_rows(k_ptr, kv_rows, visible, offs_d, D)
            v = load_rows(v_ptr, kv_rows, visible, offs_dv, DV)
            scores = dot(q, tl.trans(k), IEEE) * qk_scale  # [BG, BS]
            scores = tl.where(visible[None, :], scores, float("-inf"))
            m_new = tl.maximum(m, tl.max(scores, 1))  # finite: pos=start is always visible
            alpha = tl.exp2(m - m_new)
            p = tl.exp2(scores - m_new[:, None])  # [BG, BS]
            l = l * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + dot(p.to(v.dtype), v, IEEE)
            m = m_new

    has_any = l > 0  # False only when no selected token is visible: output 0 there
    o = acc / tl.where(has_any, l, 1.0)[:, None]
    # back to natural log: ln(x) = log2(x) * ln(2)
    lse = tl.where(has_any, (m + tl.log2(tl.where(has_any, l, 1.0))) * 0.6931471805599453, float("-inf"))
    store_rows(o_ptr, q_rows, g_mask, offs_dv, DV, o)
    tl.store(lse_ptr + q_rows, lse, mask=g_mask)


@triton.jit
def selection_bwd_dq_kernel(
    q_ptr,  # [B, T, HQ, D]
    k_ptr,  # [B, T, H, D]
    v_ptr,  # [B, T, H, DV]
    idx_ptr,  # [B, T, H, S] int32
    do_ptr,  # [B, T, HQ, DV]
    lse_ptr,  # [B, T, HQ] fp32
    delta_ptr,  # [B, T, HQ] fp32: rowsum(o * do)
    dq_ptr,  # [B, T, HQ, D]
    scale,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    S: tl.constexpr,
    D: tl.constexpr,
    DV: tl.constexpr,
    BS: tl.constexpr,
    BG: tl.constexpr,
    BD: tl.constexpr,
    BDV: tl.constexpr,
    IEEE: tl.constexpr,
):
    """Same tiling as the forward: dq[t] = scale * sum over selected blocks of dS @ K."""
    t = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    HQ: tl.constexpr = H * G

    offs_g = tl.arange(0, BG)
    offs_d = tl.arange(0, BD)
    offs_dv = tl.arange(0, BDV)
    offs_s = tl.arange(0, BS)
    g_mask = offs_g < G

    q_rows = (b * T + t).to(tl.int64) * HQ + h * G + offs_g  # [BG]
    q = load_rows(q_ptr, q_rows, g_mask, offs_d, D)
    do = load_rows(do_ptr, q_rows, g_mask, offs_dv, DV)
    # Padding rows get lse=+inf so their probabilities are exactly 0.
    lse2 = tl.load(lse_ptr + q_rows, mask=g_mask, other=float("inf")) * 1.4426950408889634  # [BG] base 2
    delta = tl.load(delta_ptr + q_rows, mask=g_mask, other=0.0)  # [BG]
    qk_scale = scale * 1.4426950408889634

    kv_row0 = (b * T).to(tl.int64) * H + h
    idx_base = ((b * T + t).to(tl.int64) * H + h) * S

    dq = tl.zeros([BG, BD], tl.float32)
    for s in range(S):
        blk = tl.load(idx_ptr + idx_base + s)
        start = blk * BS
        if (blk >= 0) & (start <= t):
            pos = start + offs_s
            visible = pos <= t
            kv_rows = kv_row0 + pos.to(tl.int64) * H
            k = load_rows(k_ptr, kv_rows, visible, offs_d, D)
            v = load_rows(v_ptr, kv_rows, visible, offs_dv, DV)
            scores = dot(q, tl.trans(k), IEEE) * qk_scale  # [BG, BS]
            p = tl.where(visible[None, :], tl.exp2(scores - lse2[:, None]), 0.0)  # softmax probabilities
            dp = dot(do, tl.trans(v), IEEE)  # [BG, BS]
            ds = p * (dp - delta[:, None])  # [BG, BS]
            dq += dot(ds.to(k.dtype), k, IEEE)  # [BG, BD]

    store_rows(dq_ptr, q_rows, g_mask, offs_d, D, dq * scale)


@triton.jit
def selection_bwd_dkdv_kernel(
    q_ptr,  # [B, T, HQ, D]
    k_ptr,  # [B, T, H, D]
    v_ptr,  # [B, T, H, DV]
    do_ptr,  # [B, T, HQ, DV]
    lse_ptr,  # [B, T, HQ] fp32
    delta_ptr,  # [B, T, HQ] fp32
    rev_offsets_ptr,  # [B*H*NB + 1] int32: CSR offsets into rev_tokens per (b, h, block)
    rev_tokens_ptr,  # [nnz] int32: query positions that selected the block, ascending
    dk_ptr,  # [B, T, H, D]
    dv_ptr,  # [B, T, H, DV]
    scale,
    T,
    NB,  # number of KV blocks, ceil(T / BS)
    H: tl.constexpr,
    G: tl.constexpr,
    D: tl.constexpr,
    DV: tl.constexpr,
    BS: tl.constexpr,
    GP: tl.constexpr,  # G padded to a power of two (no minimum: BM below is >= 16)
    BQ: tl.constexpr,  # queries per step; BM = BQ * GP rows per tile
    BD: tl.constexpr,
    BDV: tl.constexpr,
    IEEE: tl.constexpr,
):
    """One program = one KV block j of one (batch, KV head); it owns dk/dv of the block's BS tokens.

    The queries that selected block j are gathered BQ at a time, each with its G heads, into
    a ``[BM, D]`` tile (row r = query r // GP, head r % GP), so no two programs write the same
    dk/dv rows and no atomics are needed.
    """
    j = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    HQ: tl.constexpr = H * G
    BM: tl.constexpr = BQ * GP

    offs_s = tl.arange(0, BS)
    offs_d = tl.arange(0, BD)
    offs_dv = tl.arange(0, BDV)
    offs_m = tl.arange(0, BM)
    m_query = offs_m // GP  # [BM] which of the BQ queries
    m_head = offs_m % GP  # [BM] which head of the group

    pos = j * BS + offs_s  # [BS]
    in_seq = pos < T
    kv_rows = (b * T).to(tl.int64) * H + h + pos.to(tl.int64) * H  # [BS]
    k = load_rows(k_ptr, kv_rows, in_seq, offs_d, D)
    v = load_rows(v_ptr, kv_rows, in_seq, offs_dv, DV)
    qk_scale = scale * 1.4426950408889634

    list_id = bh.to(tl.int64) * NB + j
    first = tl.load(rev_offsets_ptr + list_id)
    last = tl.load(rev_offsets_ptr + list_id + 1)

    dk = tl.zeros([BS, BD], tl.float32)
    dv = tl.zeros([BS, BDV], tl.float32)
    for e0 in range(first, last, BQ):
        entry = e0 + m_query  # [BM]
        row_ok = (entry < last) & (m_head < G)
        tok = tl.load(rev_tokens_ptr + entry, mask=row_ok, other=0)  # [BM] query positions
        q_rows = (b * T + tok).to(tl.int64) * HQ + h * G + m_head  # [BM]
        q = load_rows(q_ptr, q_rows, row_ok, offs_d, D)
        do = load_rows(do_ptr, q_rows, row_ok, offs_dv, DV)
        lse2 = tl.load(lse_ptr + q_rows, mask=row_ok, other=float("inf")) * 1.4426950408889634  # [BM]
        delta = tl.load(delta_ptr + q_rows, mask=row_ok, other=0.0)  # [BM]

        scores = dot(q, tl.trans(k), IEEE) * qk_scale  # [BM, BS]
        visible = row_ok[:, None] & (pos[None, :] <= tok[:, None])  # causal inside the block
        p = tl.where(visible, tl.exp2(scores - lse2[:, None]), 0.0)  # [BM, BS]
        dv += dot(tl.trans(p).to(do.dtype), do, IEEE)  # [BS, BDV]
        dp = dot(do, tl.trans(v), IEEE)  # [BM, BS]
        ds = p * (dp - delta[:, None])  # [BM, BS]
        dk += dot(tl.trans(ds).to(q.dtype), q, IEEE)  # [BS, BD]

    store_rows(dk_ptr, kv_rows, in_seq, offs_d, D, dk * scale)
    store_rows(dv_ptr, kv_rows, in_seq, offs_dv, DV, dv)
