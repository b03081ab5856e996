"""Triton kernels for attention over keys with a position rule, and the block importance of NSA's selection.

The attention kernels (forward, dq, dk/dv) serve two branches. Key i sits at position i*STRIDE + L - 1, and a
query at t sees it iff t - W < i*STRIDE + L - 1 <= t:
- compressed branch: the keys are compressed blocks (block i covers tokens [i*STRIDE, i*STRIDE + L), seen once
  its last token is), W = ``_attention.NO_WINDOW`` (no lower bound);
- sliding window: the keys are the tokens (L = STRIDE = 1), W = the window: exactly the last W keys, the query
  itself included.
Imported lazily by ``availability.load_kernels`` (never at package import), like ``_selection_kernels``.

Layout (fla-org's): q ``[B, T, HQ, D]``, k/v ``[B, NK, H, D|DV]``, ``G = HQ // H``. All tensors are
contiguous. A program works on BQ consecutive queries of one (batch, KV head) with their G query heads stacked
as rows: row r is query r // GP, head r % GP (GP = G padded to a power of two), BM = BQ * GP rows, so every
key tile is loaded once for the whole group. Loops visit only the key tiles (forward, dq) or query tiles
(dk/dv) that the rule can make visible.

The importance kernel recomputes the compressed branch's probabilities from the forward's log-sum-exp, sums
them over the group's heads (Eq. 10) and maps compressed blocks to selection blocks (Eq. 9) with one small
matmul per key tile: the [T, HQ, NC] probabilities of the PyTorch path never exist. With TOPK (n_sel <= 16)
it also picks the blocks (Eq. 11), a running top-n per query merged with each tile's scores, so the
[T, H, NS] scores (NS = T / l_sel) never exist either; otherwise it writes them.

Softmax in base 2 (``exp2``) inside; the saved log-sum-exp is natural log, -inf where a row sees nothing.
"""

from __future__ import annotations

import triton
import triton.language as tl

from nsa_train.nsa.triton import _attention
from nsa_train.nsa.triton._kernel_utils import dot, load_rows, store_rows

LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)
NO_WINDOW = tl.constexpr(_attention.NO_WINDOW)  # the importance kernel's rule: the compressed branch's


@triton.jit
def _n_visible(t, NC, L, STRIDE):
    """How many keys come at or before t: i*STRIDE + L - 1 <= t for i < NC (0 for t < L - 1)."""
    n = tl.where(t + 1 >= L, (t + 1 - L) // STRIDE + 1, 0)  # the division only ever sees t + 1 - L >= 0
    return tl.minimum(n, NC)


@triton.jit
def _first_visible(t, W, L, STRIDE):
    """The first key a query at t can see: the least i with i*STRIDE + L - 1 > t - W (0 if every key is)."""
    num = t - W - L + 1
    return tl.where(num < 0, 0, tl.maximum(num, 0) // STRIDE + 1)


@triton.jit
def _visible(cols, tok, L, STRIDE, W):
    """[rows, keys] mask of the rule: t - W < i*STRIDE + L - 1 <= t, for key ids cols [BN], tokens tok [BM]."""
    pos = cols[None, :] * STRIDE + L - 1
    return (pos <= tok[:, None]) & (pos > tok[:, None] - W)


@triton.jit
def _probs(q, k, cols, key_ok, tok, row_ok, lse2, qk_scale, L, STRIDE, W, IEEE: tl.constexpr):
    """The forward's probabilities [BM, BN] of rows q [BM, BD] over keys k [BN, BD], recomputed from its base-2
    log-sum-exp lse2 [BM]; 0 where the rule, key_ok [BN] or row_ok [BM] hide a key."""
    s = dot(q, tl.trans(k), IEEE) * qk_scale
    visible = _visible(cols, tok, L, STRIDE, W) & key_ok[None, :] & row_ok[:, None]
    return tl.where(visible, tl.exp2(s - lse2[:, None]), 0.0)


@triton.jit
def _query_rows(b, t0, t_end, T, h, H: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, BQ: tl.constexpr):
    """(q row ids [BM], token of each row [BM], row is a real (query, head)) for queries t0 .. t0+BQ-1 that
    are < t_end, of a sequence of T tokens."""
    offs_m = tl.arange(0, BQ * GP)
    tok = t0 + offs_m // GP
    head = offs_m % GP
    row_ok = (tok < t_end) & (head < G)
    rows = (b * T + tok).to(tl.int64) * (H * G) + h * G + head
    return rows, tok, row_ok


@triton.jit
def attention_fwd_kernel(
    q_ptr,  # [B, T, HQ, D]
    k_ptr,  # [B, NK, H, D]
    v_ptr,  # [B, NK, H, DV]
    o_ptr,  # [B, T, HQ, DV]
    lse_ptr,  # [B, T, HQ] fp32, natural log; -inf where nothing is visible
    scale,
    T,
    NK,
    L,
    STRIDE,
    W,
    H: tl.constexpr,
    G: tl.constexpr,
    D: tl.constexpr,
    DV: tl.constexpr,
    GP: tl.constexpr,
    BQ: tl.constexpr,
    BN: tl.constexpr,  # keys per key tile
    BD: tl.constexpr,
    BDV: tl.constexpr,
    IEEE: tl.constexpr,
):
    """One program = BQ queries x G heads of one (batch, KV head): online softmax over the visible keys."""
    t0 = tl.program_id(0) * BQ
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows, tok, row_ok = _query_rows(b, t0, T, T, h, H, G, GP, BQ)
    offs_d = tl.arange(0, BD)
    offs_dv = tl.arange(0, BDV)
    q = load_rows(q_ptr, rows, row_ok, offs_d, D)  # [BM, BD]
    qk_scale = scale * LOG2E

    n_vis = _n_visible(tl.minimum(t0 + BQ - 1, T - 1), NK, L, STRIDE)  # the tile's last query sees the most
    kv_row0 = (b * NK).to(tl.int64) * H + h
    m = tl.full([BQ * GP], float("-inf"), tl.float32)
    s_sum = tl.zeros([BQ * GP], tl.float32)
    acc = tl.zeros([BQ * GP, BDV], tl.float32)
    for n0 in range(_first_visible(t0, W, L, STRIDE) // BN * BN, n_vis, BN):
        cols = n0 + tl.arange(0, BN)
        kv_rows = kv_row0 + cols.to(tl.int64) * H
        k = load_rows(k_ptr, kv_rows, cols < n_vis, offs_d, D)  # [BN, BD]
        v = load_rows(v_ptr, kv_rows, cols < n_vis, offs_dv, DV)
        s = dot(q, tl.trans(k), IEEE) * qk_scale  # [BM, BN]
        visible = _visible(cols, tok, L, STRIDE, W) & (cols[None, :] < n_vis)
        s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row that has seen nothing yet stays all 0
        alpha = tl.exp2(m - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        s_sum = s_sum * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + dot(p.to(v.dtype), v, IEEE)
        m = m_new

    seen = s_sum > 0
    o = acc / tl.where(seen, s_sum, 1.0)[:, None]
    lse = tl.where(seen, (m + tl.log2(tl.where(seen, s_sum, 1.0))) * LN2, float("-inf"))
    store_rows(o_ptr, rows, row_ok, offs_dv, DV, o)
    tl.store(lse_ptr + rows, lse, mask=row_ok)


# the top-n key of a -inf score (Eq. 11's hidden blocks) divided by the block count: a key whose quotient is
# not above it is never taken. (A float32's bits read as int32, negatives' magnitude bits flipped, +2^31.)
MONO_NEG_INF = tl.constexpr(8388607)
TOPK_W = tl.constexpr(_attention.TOPK_WIDTH)  # the running top-n's width = selection blocks per key tile


@triton.jit
def _ranked(sc, sel, cur, NS):
    """Eq. 11's order as int64 keys, larger = preferred: sc [BQ, BNS] group scores of selection blocks
    sel [BNS] for queries in blocks cur [BQ]. The initial and the 2 local blocks rank +inf, blocks after the
    query's own (or past the NS scored) -inf; the low digits hold NS - 1 - id, so ties go to the lower id and
    keys are distinct (``selection._descending_key``'s order, made non-negative)."""
    forced = (sel[None, :] == 0) | (sel[None, :] == cur[:, None]) | (sel[None, :] == cur[:, None] - 1)
    hidden = (sel[None, :] > cur[:, None]) | (sel[None, :] >= NS)
    sc = tl.where(hidden, float("-inf"), tl.where(forced, float("inf"), sc))
    bits = sc.to(tl.int32, bitcast=True)
    mono = tl.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).to(tl.int64) + 2147483648  # >= 0, monotone in sc
    return mono * NS + (NS - 1 - sel)[None, :].to(tl.int64)


@triton.jit
def _merge_top(best, new, BQ: tl.constexpr):
    """The TOPK_W largest keys per row of best and new ([BQ, TOPK_W] each), in descending order."""
    both = tl.sort(tl.reshape(tl.join(best, new), (BQ, 2 * TOPK_W)), 1, descending=True)
    top, _ = tl.split(tl.permute(tl.reshape(both, (BQ, 2, TOPK_W)), (0, 2, 1)))
    return top


@triton.jit
def compressed_importance_kernel(
    q_ptr,  # [B, T, HQ, D]
    k_ptr,  # [B, NC, H, D]
    lse_ptr,  # [B, T, HQ] fp32 from the forward
    sc_ptr,  # [B, T1 - T0, H, NS] fp32, zero-filled: Eq. 9 scores of queries T0 .. T1-1 (group-summed)
    ids_ptr,  # [B, T1 - T0, H, N_SEL] int64: with TOPK, Eq. 11's block ids instead of the scores
    scale,
    T,
    T0,
    T1,
    NC,
    NS,
    L,
    STRIDE,
    M_BACK,  # l / d - 1: compressed blocks that start before a selection block and reach into it (<= R)
    N_SEL,  # blocks each query selects (TOPK: at most TOPK_W)
    H: tl.constexpr,
    G: tl.constexpr,
    D: tl.constexpr,
    GP: tl.constexpr,
    BQ: tl.constexpr,
    R: tl.constexpr,  # l_sel / d: compressed blocks starting inside one selection block
    BD: tl.constexpr,
    IEEE: tl.constexpr,
    TOPK: tl.constexpr,  # pick the blocks here (a running top-n per query), writing ids, not scores
):
    """Selection block j's score (Eq. 9) sums p over compressed blocks i with j*R - M_BACK <= i <= j*R + R - 1,
    each weighted by its overlap with block j in strides (selection.selection_block_scores).

    Key tiles of BN = 16 * R compressed blocks start at multiples of R, so the blocks starting inside tile
    columns' selection blocks are in the tile; the M_BACK blocks before a tile reach only into its first
    selection block and are carried over from the previous tile (M_BACK <= R). A tile's 16 scores are final
    once its carry is in: with TOPK they are merged into each query's running top-n (Eq. 11) at once, and the
    [T, H, NS] scores are never written.
    """
    BN: tl.constexpr = 16 * R
    BNS: tl.constexpr = 16  # selection blocks per key tile
    t0 = T0 + tl.program_id(0) * BQ
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows, tok, row_ok = _query_rows(b, t0, T1, T, h, H, G, GP, BQ)
    offs_d = tl.arange(0, BD)
    q = load_rows(q_ptr, rows, row_ok, offs_d, D)  # [BM, BD]
    lse2 = tl.load(lse_ptr + rows, mask=row_ok, other=float("-inf")) * LOG2E  # [BM] base 2
    qk_scale = scale * LOG2E

    # the Eq. 9 map of one key tile, in tile-local indices: W[i, j] = the strides compressed block i (strides
    # i .. i + M_BACK) shares with selection block j (strides j*R .. j*R + R - 1); the same for every tile (tiles
    # start at multiples of R)
    i_loc = tl.arange(0, BN)[:, None]
    j_loc = tl.arange(0, BNS)[None, :]
    shared = tl.minimum(i_loc + M_BACK + 1, j_loc * R + R) - tl.maximum(i_loc, j_loc * R)
    w_map = tl.maximum(shared, 0).to(tl.float32)  # [BN, BNS]
    # [BN] the strides the tile's last blocks share with the next tile's first selection block
    back = tl.maximum(tl.arange(0, BN) + M_BACK + 1 - BN, 0).to(tl.float32)
    first_col = tl.arange(0, BNS) == 0

    offs_q = tl.arange(0, BQ)
    tok_q = t0 + offs_q  # [BQ]
    q_ok = tok_q < T1
    sc_rows = ((b * (T1 - T0) + tok_q - T0).to(tl.int64) * H + h) * NS  # [BQ] row starts in sc
    t_last = tl.minimum(t0 + BQ - 1, T1 - 1)
    n_vis = _n_visible(t_last, NC, L, STRIDE)
    kv_row0 = (b * NC).to(tl.int64) * H + h
    cur = tok_q // (R * STRIDE)  # [BQ] each query's own selection block
    best = tl.zeros([BQ, TOPK_W], tl.int64)  # below every candidate's key
    carry = tl.zeros([BQ], tl.float32)
    for n0 in range(0, n_vis, BN):
        cols = n0 + tl.arange(0, BN)
        k = load_rows(k_ptr, kv_row0 + cols.to(tl.int64) * H, cols < n_vis, offs_d, D)  # [BN, BD]
        # [BM, BN] the forward's probabilities (the compressed branch has no window)
        p = _probs(q, k, cols, cols < n_vis, tok, row_ok, lse2, qk_scale, L, STRIDE, NO_WINDOW, IEEE)
        p_group = tl.sum(tl.reshape(p, (BQ, GP, BN)), 1)  # [BQ, BN] Eq. 10: summed over the group's heads
        sc = tl.dot(p_group, w_map, input_precision="ieee")  # [BQ, BNS] exact fp32 sums, whatever the inputs
        sc += tl.where(first_col[None, :], carry[:, None], 0.0)
        carry = tl.sum(p_group * back[None, :], 1)
        sel = n0 // R + tl.arange(0, BNS)  # [BNS] selection block ids
        if TOPK:
            best = _merge_top(best, _ranked(sc, sel, cur, NS), BQ)
        else:
            tl.store(sc_ptr + sc_rows[:, None] + sel[None, :], sc, mask=q_ok[:, None] & (sel[None, :] < NS))
    # the last tile's carry belongs to the selection block after it (0 into block 0 when nothing was visible)
    j_next = (n_vis + BN - 1) // BN * (BN // R)
    if TOPK:
        # blocks after the visited tiles score 0 (the carry aside) up to the last query's own block: candidates
        # too (ties go to lower ids, and the local blocks are forced)
        for j0 in range(j_next, t_last // (R * STRIDE) + 1, BNS):
            sc = tl.where(first_col[None, :] & (j0 == j_next), carry[:, None], 0.0) + tl.zeros([BQ, BNS], tl.float32)
            best = _merge_top(best, _ranked(sc, j0 + tl.arange(0, BNS), cur, NS), BQ)
        # best is in descending key order: the first N_SEL columns are the pick; written as sorted ids, -1 unused
        col = tl.arange(0, TOPK_W)[None, :]
        taken = (best // NS > MONO_NEG_INF) & (col < N_SEL)  # in int64: (MONO_NEG_INF + 1) * NS passes 2^31
        ids = tl.sort(tl.where(taken, NS - 1 - best % NS, NS), 1)  # unused slots (NS) sort last
        id_rows = ((b * (T1 - T0) + tok_q - T0).to(tl.int64) * H + h) * N_SEL  # [BQ]
        tl.store(ids_ptr + id_rows[:, None] + col, tl.where(ids == NS, -1, ids), mask=q_ok[:, None] & (col < N_SEL))
    else:
        j_col = j_next + tl.zeros([BQ], tl.int32)  # [BQ]
        tl.store(sc_ptr + sc_rows + j_col, carry, mask=q_ok & (j_col < NS))


@triton.jit
def attention_bwd_dq_kernel(
    q_ptr,  # [B, T, HQ, D]
    k_ptr,  # [B, NK, H, D]
    v_ptr,  # [B, NK, H, DV]
    do_ptr,  # [B, T, HQ, DV]
    lse_ptr,  # [B, T, HQ] fp32
    delta_ptr,  # [B, T, HQ] fp32: rowsum(o * do)
    dq_ptr,  # [B, T, HQ, D]
    scale,
    T,
    NK,
    L,
    STRIDE,
    W,
    H: tl.constexpr,
    G: tl.constexpr,
    D: tl.constexpr,
    DV: tl.constexpr,
    GP: tl.constexpr,
    BQ: tl.constexpr,
    BN: tl.constexpr,
    BD: tl.constexpr,
    BDV: tl.constexpr,
    IEEE: tl.constexpr,
):
    """Same tiling as the forward: dq = scale * sum over visible keys of dS @ K."""
    t0 = tl.program_id(0) * BQ
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows, tok, row_ok = _query_rows(b, t0, T, T, h, H, G, GP, BQ)
    offs_d = tl.arange(0, BD)
    offs_dv = tl.arange(0, BDV)
    q = load_rows(q_ptr, rows, row_ok, offs_d, D)
    do = load_rows(do_ptr, rows, row_ok, offs_dv, DV)
    lse2 = tl.load(lse_ptr + rows, mask=row_ok, other=float("-inf")) * LOG2E
    delta = tl.load(delta_ptr + rows, mask=row_ok, other=0.0)
    qk_scale = scale * LOG2E

    n_vis = _n_visible(tl.minimum(t0 + BQ - 1, T - 1), NK, L, STRIDE)
    kv_row0 = (b * NK).to(tl.int64) * H + h
    dq = tl.zeros([BQ * GP, BD], tl.float32)
    for n0 in range(_first_visible(t0, W, L, STRIDE) // BN * BN, n_vis, BN):
        cols = n0 + tl.arange(0, BN)
        kv_rows = kv_row0 + cols.to(tl.int64) * H
        k = load_rows(k_ptr, kv_rows, cols < n_vis, offs_d, D)
        v = load_rows(v_ptr, kv_rows, cols < n_vis, offs_dv, DV)
        p = _probs(q, k, cols, cols < n_vis, tok, row_ok, lse2, qk_scale, L, STRIDE, W, IEEE)  # [BM, BN]
        dp = dot(do, tl.trans(v), IEEE)  # [BM, BN]
        ds = p * (dp - delta[:, None])
        dq += dot(ds.to(k.dtype), k, IEEE)
    store_rows(dq_ptr, rows, row_ok, offs_d, D, dq * scale)


@triton.jit
def attention_bwd_dkdv_kernel(
    q_ptr,  # [B, T, HQ, D]
    k_ptr,  # [B, NK, H, D]
    v_ptr,  # [B, NK, H, DV]
    do_ptr,  # [B, T, HQ, DV]
    lse_ptr,  # [B, T, HQ] fp32
    delta_ptr,  # [B, T, HQ] fp32
    dk_ptr,  # [SPLIT, B, NK, H, D]: one slice per query chunk (SPLIT = 1: dk itself)
    dv_ptr,  # [SPLIT, B, NK, H, DV]
    scale,
    T,
    NK,
    L,
    STRIDE,
    W,
    T_CHUNK,  # queries per chunk (a multiple of BQ): program (., ., c) takes queries [c*T_CHUNK, (c+1)*T_CHUNK)
    H: tl.constexpr,
    G: tl.constexpr,
    D: tl.constexpr,
    DV: tl.constexpr,
    GP: tl.constexpr,
    BQ: tl.constexpr,
    BN: tl.constexpr,
    BD: tl.constexpr,
    BDV: tl.constexpr,
    IEEE: tl.constexpr,
):
    """One program = BN keys of one (batch, KV head) and one chunk of the queries; it owns those keys' dk/dv
    slice for the chunk (no atomics: the wrapper sums the slices in a fixed order) and walks the chunk's
    queries that can see any of the keys, BQ at a time. Chunks give a long query walk (the compressed branch's
    first blocks are seen by every later query) to many programs."""
    n0 = tl.program_id(0) * BN
    bh = tl.program_id(1)
    chunk = tl.program_id(2)
    b = bh // H
    h = bh % H
    offs_d = tl.arange(0, BD)
    offs_dv = tl.arange(0, BDV)
    cols = n0 + tl.arange(0, BN)
    in_range = cols < NK
    kv_rows = (b * NK).to(tl.int64) * H + h + cols.to(tl.int64) * H
    k = load_rows(k_ptr, kv_rows, in_range, offs_d, D)  # [BN, BD]
    v = load_rows(v_ptr, kv_rows, in_range, offs_dv, DV)
    qk_scale = scale * LOG2E

    dk = tl.zeros([BN, BD], tl.float32)
    dv = tl.zeros([BN, BDV], tl.float32)
    t_first = (n0 * STRIDE + L - 1) // BQ * BQ  # the first query that sees the tile's first key
    t_end = tl.minimum(T, (n0 + BN - 1) * STRIDE + L - 1 + W)  # past the last that sees its last key
    t_lo = chunk * T_CHUNK
    for t0 in range(tl.maximum(t_first, t_lo), tl.minimum(t_end, t_lo + T_CHUNK), BQ):
        rows, tok, row_ok = _query_rows(b, t0, T, T, h, H, G, GP, BQ)
        q = load_rows(q_ptr, rows, row_ok, offs_d, D)  # [BM, BD]
        do = load_rows(do_ptr, rows, row_ok, offs_dv, DV)
        lse2 = tl.load(lse_ptr + rows, mask=row_ok, other=float("-inf")) * LOG2E
        delta = tl.load(delta_ptr + rows, mask=row_ok, other=0.0)
        p = _probs(q, k, cols, in_range, tok, row_ok, lse2, qk_scale, L, STRIDE, W, IEEE)  # [BM, BN]
        dv += dot(tl.trans(p).to(do.dtype), do, IEEE)  # [BN, BDV]
        dp = dot(do, tl.trans(v), IEEE)
        ds = p * (dp - delta[:, None])
        dk += dot(tl.trans(ds).to(q.dtype), q, IEEE)  # [BN, BD]
    part = chunk.to(tl.int64) * tl.num_programs(1) * NK  # rows before this chunk's slice: B * H * NK a slice
    store_rows(dk_ptr, part + kv_rows, in_range, offs_d, D, dk * scale)
    store_rows(dv_ptr, part + kv_rows, in_range, offs_dv, DV, dv)
