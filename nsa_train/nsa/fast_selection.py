"""Fast selection attention on CPU: block-major ("pairs sorted by key block") computation with recompute.

Gathering each query's selected key blocks moves S*block*D floats per query and KV head, which makes the
obvious implementation memory-bound. Instead, per query tile, every (query row, slot) pair is sorted by the
key block it reads; the pairs of one block are packed into segments of SEG pairs, and each segment is one
small dense GEMM of SEG*G query vectors against that block's keys. Only query vectors and scores move
(G*D and G*block per pair instead of block*D), and the key blocks are read once per segment.

A tile is made large enough that most blocks get many pairs (few padding slots), and its segments are then
processed in chunks of CHUNK_SEGS, so the score buffers stay small whatever the tile: small enough to be
reused by the allocator instead of being mapped and page-faulted afresh for every tile (which, for
buffers of tens of MB, cost more than the GEMMs). Forward merges the chunks with an online softmax
(flash style) and keeps the output, the log-sum-exp and the block-layout keys/values; backward recomputes
the scores chunk by chunk, so memory is O(T) plus one chunk.
"""

from __future__ import annotations

import bisect

import torch
import torch.nn.functional as F

from nsa_train.nsa._common import LOG2E

SEG = 32  # pairs per segment: one GEMM of [SEG*G, D] x [D, block]
TILE_ROWS = 512  # (batch * tokens * kv-heads) rows per tile, at least
MAX_TILE_ROWS = 8192  # at most: bounds the tile's index arrays and per-row accumulators
PAIRS_PER_BLOCK = 64  # tile size target: about this many pairs per key block, so few slots are padding
CHUNK_SEGS = 64  # segments per chunk: bounds each score buffer to CHUNK_SEGS*SEG*G*block floats (2 MB at G=4)
RESCALE_SLACK = 16.0  # base-2 units a score may pass its row's reference max before the online softmax rescales


class _Tile:
    """One query tile packed block-major. Rows are the tile's (b, t, h) triples; a slot is one (row, selected
    block) pair placed in a segment; padding slots point at a dummy row ``n_rows`` and see no key."""

    def __init__(self, idx: torch.Tensor, c0: int, c1: int, n_blocks: int, bs: int) -> None:
        # idx [B, T, H, S] cleaned (-1 unused); key blocks are numbered (b * H + h) * n_blocks + block
        B, _, H, S = idx.shape
        dev = idx.device
        ic = idx[:, c0:c1]  # [B, C, H, S]
        self.c0, self.n_rows = c0, B * (c1 - c0) * H
        base = (torch.arange(B, device=dev)[:, None] * H + torch.arange(H, device=dev)) * n_blocks  # [B, H]
        gid = torch.where(ic >= 0, ic + base[:, None, :, None], -1).reshape(-1)  # [rows*S]
        pairs = torch.nonzero(gid >= 0).squeeze(1)
        g = gid[pairs]
        order = torch.argsort(g, stable=True)
        pairs, g = pairs[order], g[order]
        uniq, counts = torch.unique_consecutive(g, return_counts=True)
        n_seg = (counts + SEG - 1) // SEG
        seg_first = torch.cumsum(n_seg, 0) - n_seg
        group_first = torch.cumsum(counts, 0) - counts
        group = torch.repeat_interleave(torch.arange(len(uniq), device=dev), counts)
        pos = torch.arange(len(g), device=dev) - group_first[group]
        slot = (seg_first[group] + pos // SEG) * SEG + pos % SEG
        self.n_seg = int(n_seg.sum())
        self.block = torch.repeat_interleave(uniq, n_seg)  # [n_seg] global key block of each segment
        # forward keeps every tile for backward instead of idx (about as large: pairs plus padding slots)
        self.row = torch.full((self.n_seg * SEG,), self.n_rows, dtype=torch.long, device=dev)
        self.row[slot] = pairs // S  # [n_slots]; row = (b * C + t) * H + h
        self.n_blocks, self.n_kv_heads, self.n_tokens = n_blocks, H, c1 - c0
        # Only a segment of a query's own block can hold keys after the query (later blocks were never
        # selected). Those blocks are the tile's last ones of each (b, h), and segments are sorted by
        # (b, h, block): so they form a few runs of segments [a, b), masked in place (no gather and scatter).
        near = ((self.block % n_blocks) >= c0 // bs).to(torch.int8)
        edges = torch.nonzero(near.diff(prepend=near.new_zeros(1), append=near.new_zeros(1))).squeeze(1).tolist()
        self.near_runs = list(zip(edges[0::2], edges[1::2], strict=True))
        self.near_ends = edges[1::2]  # for bisect: the first run that ends after a chunk's start

    def chunks(self) -> list[tuple[int, int]]:
        """Segment ranges [s0, s1) processed together."""
        return [(s0, min(self.n_seg, s0 + CHUNK_SEGS)) for s0 in range(0, self.n_seg, CHUNK_SEGS)]

    def scores(
        self, s0: int, s1: int, q_ext: torch.Tensor, kf: torch.Tensor, bs: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores of segments s0..s1: ([n, G, bs], q_slots [n, G, D], k_seg [s1-s0, bs, D]) for n slots.

        q_ext [n_rows + 1, G, D]: the tile's query rows, already scaled (by scale * LOG2E: the scores are in
        base-2 units), plus a zero row for padding slots.
        Keys after a query are masked (see __init__). Padding slots keep their finite zero scores: they
        add only to the dummy row, whose results are dropped, and backward gives them p = 0 (lse = inf).
        """
        G = q_ext.shape[1]
        row = self.row[s0 * SEG : s1 * SEG]
        q_slots = q_ext.index_select(0, row)  # [n, G, D]
        k_seg = kf.index_select(0, self.block[s0:s1])  # [segs, bs, D]
        s = torch.bmm(q_slots.view(s1 - s0, SEG * G, -1), k_seg.transpose(1, 2))  # [segs, SEG*G, bs]
        for a, b in self.near_runs[bisect.bisect_right(self.near_ends, s0) :]:
            if a >= s1:
                break
            a, b = max(a, s0), min(b, s1)
            key_pos = (self.block[a:b] % self.n_blocks * bs)[:, None, None] + torch.arange(bs, device=s.device)
            r = self.row.view(-1, SEG)[a:b, :, None]  # [m, SEG, 1]
            t_slot = torch.where(r < self.n_rows, self.c0 + (r // self.n_kv_heads) % self.n_tokens, -1)
            s[a - s0 : b - s0].view(b - a, SEG, G, bs).masked_fill_((key_pos > t_slot).unsqueeze(2), float("-inf"))
        return s.view(-1, G, bs), q_slots, k_seg


def _block_views(x: torch.Tensor, bs: int) -> torch.Tensor:
    """[B, T, H, D] -> [B*H*NB, bs, D] (zero padded to whole blocks)."""
    B, T, H, D = x.shape
    nb = (T + bs - 1) // bs
    x = F.pad(x, (0, 0, 0, 0, 0, nb * bs - T)).view(B, nb, bs, H, D).permute(0, 3, 1, 2, 4)
    return x.reshape(B * H * nb, bs, D)


def _unblock(xf: torch.Tensor, B: int, H: int, T: int) -> torch.Tensor:
    """Inverse of _block_views: [B*H*NB, bs, D] -> [B, T, H, D], a strided view (a gradient need not be
    contiguous, and a copy here would be the backward's peak allocation)."""
    x = xf.view(B, H, -1, xf.shape[-1]).transpose(1, 2)
    return x[:, :T]


def _with_pad_row(rows: torch.Tensor, factor: torch.Tensor | float = 1.0, fill: float = 0.0) -> torch.Tensor:
    """[n_rows, ...] -> factor * rows as [n_rows + 1, ...]: the extra row (``fill``) is what padding slots read.
    One pass over the tile's rows (a scaling and then a concatenation would be two, and two fresh buffers)."""
    out = rows.new_empty(rows.shape[0] + 1, *rows.shape[1:])
    torch.mul(rows, factor, out=out[:-1])
    out[-1] = fill
    return out


class SelectionAttentionFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, idx, block_size, scale, g=None):  # type: ignore[override]
        # q [B, T, HQ, D], k [B, T, H, D], v [B, T, H, Dv], idx [B, T, H, S] (-1 unused, no duplicates/future),
        # g [B, T, HQ] or None: the output is g * o, o being what is saved
        B, T, HQ, D = q.shape
        H, Dv = k.shape[2], v.shape[3]
        G, bs = HQ // H, block_size
        qg = q.view(B, T, H, G, D)
        kf, vf = _block_views(k, bs), _block_views(v, bs)
        n_blocks = kf.shape[0] // (B * H)
        o = q.new_empty(B, T, H, G, Dv)
        lse = q.new_empty(B, T, H, G)
        lowest, tiny = torch.finfo(q.dtype).min, torch.finfo(q.dtype).tiny
        tiles = [_Tile(idx, c0, c1, n_blocks, bs) for c0, c1 in _tiles(T, B * H, n_blocks, idx.shape[-1])]
        for tile in tiles:
            c0, c1 = tile.c0, tile.c0 + tile.n_tokens
            q_ext = _with_pad_row(qg[:, c0:c1].reshape(-1, G, D), scale * LOG2E)  # once here, not per score
            # running softmax state per row (+ the padding row): reference max, denominator, unnormalised output
            m_ref = q.new_full((tile.n_rows + 1, G), float("-inf"))
            den = q.new_zeros(tile.n_rows + 1, G)
            acc = q.new_zeros(tile.n_rows + 1, G, Dv)
            for s0, s1 in tile.chunks():
                s, _, _ = tile.scores(s0, s1, q_ext, kf, bs)  # [n, G, bs]
                row = tile.row[s0 * SEG : s1 * SEG]
                m_seen = m_ref.scatter_reduce(0, row[:, None].expand(-1, G), s.amax(-1), "amax")
                # Lazy rescaling: a row's reference max moves only when a score passes it by more than
                # RESCALE_SLACK, so exponentials stay <= 2^RESCALE_SLACK (far from overflow, and never smaller
                # than with the exact max) and most chunks skip the pass over the whole tile's den and acc.
                # Rows seen for the first time (-inf) always move.
                grow = m_seen > m_ref + RESCALE_SLACK
                if bool(grow.any()):
                    m_new = torch.where(grow, m_seen, m_ref)
                    alpha = (m_ref - m_new.clamp_min(lowest)).exp2_()  # 1 where unmoved; 0 for rows new here
                    den.mul_(alpha)
                    acc.mul_(alpha.unsqueeze(-1))
                    m_ref = m_new
                m_safe = m_ref.clamp_min(lowest)  # finite for rows that have seen nothing yet
                e = s.sub_(m_safe.index_select(0, row).unsqueeze(-1)).exp2_()  # [n, G, bs], in place
                den.index_add_(0, row, e.sum(-1))
                v_seg = vf.index_select(0, tile.block[s0:s1])  # [segs, bs, Dv]
                acc.index_add_(0, row, torch.bmm(e.view(s1 - s0, SEG * G, bs), v_seg).view(-1, G, Dv))
            m_fin = m_ref[:-1].clamp_min(lowest)
            o[:, c0:c1] = (acc[:-1] / den[:-1, :, None].clamp_min(tiny)).view(B, c1 - c0, H, G, Dv)
            # rows that see nothing get lse=+inf so that recomputed probabilities are exactly 0 in backward
            lse_rows = torch.where(den[:-1] > 0, m_fin + den[:-1].log2(), float("inf"))  # base 2
            lse[:, c0:c1] = lse_rows.view(B, c1 - c0, H, G)
        # the block layouts, not k and v: backward needs them, and rebuilding them there (two copies) added
        # to the backward's peak while k and v were kept only for that
        ctx.save_for_backward(q, kf, vf, o, lse, g)
        ctx.block_size, ctx.scale, ctx.n_kv_heads, ctx.tiles = block_size, scale, H, tiles
        o = o.view(B, T, HQ, Dv)
        return o if g is None else o * g.unsqueeze(-1)

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, kf, vf, o, lse, g = ctx.saved_tensors
        bs, scale, H = ctx.block_size, ctx.scale, ctx.n_kv_heads
        B, T, HQ, D = q.shape
        Dv = vf.shape[-1]
        G = HQ // H
        qg = q.view(B, T, H, G, D)
        dkf, dvf = torch.zeros_like(kf), torch.zeros_like(vf)
        dq = torch.empty_like(qg)
        dog = do.contiguous().view(B, T, H, G, Dv)
        # do·o per row: the softmax's row term, and with a gate (out = g * o) the gate's gradient; the gate
        # then scales o's gradient (g * do) and so the row term (g * do·o)
        delta = torch.einsum("bthgd,bthgd->bthg", dog, o)  # [B, T, H, G]
        dg = g_rows = None
        if g is not None:
            dg = delta.reshape(B, T, HQ)
            g_rows = g.reshape(B, T, H, G)
            delta = delta * g_rows
        for tile in ctx.tiles:
            c0, c1 = tile.c0, tile.c0 + tile.n_tokens
            q_ext = _with_pad_row(qg[:, c0:c1].reshape(-1, G, D), scale * LOG2E)
            g_t = 1.0 if g_rows is None else g_rows[:, c0:c1].reshape(-1, G, 1)
            do_ext = _with_pad_row(dog[:, c0:c1].reshape(-1, G, Dv), g_t)  # gated here, tile by tile
            lse_ext = _with_pad_row(lse[:, c0:c1].reshape(-1, G), fill=float("inf"))  # padding: p = 0
            delta_ext = _with_pad_row(delta[:, c0:c1].reshape(-1, G))
            dq_rows = q.new_zeros(tile.n_rows + 1, G, D)
            for s0, s1 in tile.chunks():
                segs, row, blocks = s1 - s0, tile.row[s0 * SEG : s1 * SEG], tile.block[s0:s1]
                s, q_slots, k_seg = tile.scores(s0, s1, q_ext, kf, bs)
                p = s.sub_(lse_ext.index_select(0, row).unsqueeze(-1)).exp2_()  # [n, G, bs]
                do_slots = do_ext.index_select(0, row)  # [n, G, Dv]
                v_seg = vf.index_select(0, blocks)
                dp = torch.bmm(do_slots.view(segs, SEG * G, Dv), v_seg.transpose(1, 2)).view(-1, G, bs)
                # dL/ds (natural units); scale enters dq once per tile below, and dk through the scaled q_slots
                # (with LOG2E too, divided out at the end)
                ds = dp.sub_(delta_ext.index_select(0, row).unsqueeze(-1)).mul_(p)
                p_seg, ds_seg = p.view(segs, SEG * G, bs), ds.view(segs, SEG * G, bs)
                dvf.index_add_(0, blocks, torch.bmm(p_seg.transpose(1, 2), do_slots.view(segs, SEG * G, Dv)))
                dkf.index_add_(0, blocks, torch.bmm(ds_seg.transpose(1, 2), q_slots.view(segs, SEG * G, D)))
                dq_rows.index_add_(0, row, torch.bmm(ds_seg, k_seg).view(-1, G, D))
            dq[:, c0:c1] = dq_rows[:-1].mul_(scale).view(B, c1 - c0, H, G, D)
        dkf.div_(LOG2E)
        return dq.view(B, T, HQ, D), _unblock(dkf, B, H, T), _unblock(dvf, B, H, T), None, None, None, dg


def _tiles(T: int, rows_per_token: int, n_blocks: int, n_slots: int) -> list[tuple[int, int]]:
    """Query tiles [c0, c1). A tile's pairs spread over up to n_blocks key blocks per KV head; with too few
    tokens per tile most blocks get only a handful of pairs and their segments are mostly padding (random
    selections at 32k: 57% of the slots at 256 tokens per tile, 11% with this target). So a tile holds enough
    tokens for about PAIRS_PER_BLOCK pairs per block (tokens * n_slots / n_blocks), within [TILE_ROWS,
    MAX_TILE_ROWS] rows."""
    want = -(-PAIRS_PER_BLOCK * n_blocks // max(1, n_slots))
    step = max(1, TILE_ROWS // rows_per_token, min(want, MAX_TILE_ROWS // rows_per_token))
    return [(c0, min(T, c0 + step)) for c0 in range(0, T, step)]
