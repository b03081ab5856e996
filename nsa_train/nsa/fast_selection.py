"""Fast selection attention on CPU: block-major ("pairs sorted by key block") computation with recompute.

Gathering each query's selected key blocks moves S*block*D floats per query and KV head, which makes the
obvious implementation memory-bound. Instead, per query tile, every (query row, slot) pair is sorted by the
key block it reads; the pairs of one block are packed into segments of SEG pairs, and each segment is one
small dense GEMM of SEG*G query vectors against that block's keys. Only query vectors and scores move
(G*D and G*block per pair instead of block*D), and the key blocks are read once per segment.

Softmax statistics are per (row, query head) over all slots; forward keeps only the output and the
log-sum-exp, backward recomputes the scores (flash-attention style), so memory is O(T) plus one tile.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SEG = 32  # pairs per segment: one GEMM of [SEG*G, D] x [D, block]
TILE_ROWS = 512  # (batch * tokens * kv-heads) rows per tile


class _Tile:
    """One query tile packed block-major. Rows are the tile's (b, t, h) triples; a slot is one (row, selected
    block) pair placed in a segment; padding slots point at a dummy row ``n_rows`` and see no key."""

    def __init__(self, qg, kf, vf, idx, c0, c1, bs, scale):
        # qg [B, T, H, G, D], kf/vf [B*H*NB, bs, D|Dv], idx [B, T, H, S] cleaned (-1 unused)
        B, _, H, G, D = qg.shape
        S = idx.shape[-1]
        dev = idx.device
        nb = kf.shape[0] // (B * H)
        ic = idx[:, c0:c1]  # [B, C, H, S]
        self.n_rows, self.G = B * (c1 - c0) * H, G
        base = (torch.arange(B, device=dev)[:, None] * H + torch.arange(H, device=dev)) * nb  # [B, H]
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
        self.block = torch.repeat_interleave(uniq, n_seg)  # [n_seg] global key block row of each segment
        self.row = torch.full((self.n_seg * SEG,), self.n_rows, dtype=torch.long, device=dev)
        self.row[slot] = pairs // S  # [n_slots]
        t_slot = torch.full((self.n_seg * SEG,), -1, dtype=torch.long, device=dev)
        t_slot[slot] = c0 + (pairs // (S * H)) % (c1 - c0)
        key_pos = (self.block % nb).repeat_interleave(SEG)[:, None] * bs + torch.arange(bs, device=dev)
        self.hidden = (key_pos > t_slot[:, None]).unsqueeze(1)  # [n_slots, 1, bs]: after the query, or padding
        self.q_rows = qg[:, c0:c1].reshape(-1, G, D)
        self.q_seg = _rows_to_slots(self.q_rows, self.row).view(self.n_seg, SEG * G, D)
        self.k_seg = kf.index_select(0, self.block)  # [n_seg, bs, D]
        self.v_seg = vf.index_select(0, self.block)  # [n_seg, bs, Dv]
        s = torch.bmm(self.q_seg, self.k_seg.transpose(1, 2)).mul_(scale)  # [n_seg, SEG*G, bs]
        self.scores = s.view(-1, G, bs).masked_fill_(self.hidden, float("-inf"))  # [n_slots, G, bs]

    def seg(self, x: torch.Tensor) -> torch.Tensor:
        """[n_slots, G, X] -> [n_seg, SEG*G, X] for the per-segment GEMMs."""
        return x.view(self.n_seg, SEG * self.G, x.shape[-1])

    def to_rows(self, per_slot: torch.Tensor) -> torch.Tensor:
        """Sum [n_slots, ...] into [n_rows + 1, ...] (the last row collects padding)."""
        out = per_slot.new_zeros(self.n_rows + 1, *per_slot.shape[1:])
        return out.index_add_(0, self.row, per_slot)


def _rows_to_slots(rows: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """[n_rows, ...] -> [n_slots, ...], padding slots (row == n_rows) get zeros."""
    ext = torch.cat([rows, rows.new_zeros(1, *rows.shape[1:])])
    return ext.index_select(0, row)


def _block_views(x: torch.Tensor, bs: int) -> torch.Tensor:
    """[B, T, H, D] -> [B*H*NB, bs, D] (zero padded to whole blocks)."""
    B, T, H, D = x.shape
    nb = (T + bs - 1) // bs
    x = F.pad(x, (0, 0, 0, 0, 0, nb * bs - T)).view(B, nb, bs, H, D).permute(0, 3, 1, 2, 4)
    return x.reshape(B * H * nb, bs, D)


def _unblock(xf: torch.Tensor, B: int, H: int, T: int) -> torch.Tensor:
    """Inverse of _block_views: [B*H*NB, bs, D] -> [B, T, H, D]."""
    x = xf.view(B, H, -1, xf.shape[-1]).transpose(1, 2)
    return x[:, :T].contiguous()


class SelectionAttentionFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, idx, block_size, scale):  # type: ignore[override]
        # q [B, T, HQ, D], k [B, T, H, D], v [B, T, H, Dv], idx [B, T, H, S] (-1 unused, no duplicates/future)
        B, T, HQ, D = q.shape
        H, Dv = k.shape[2], v.shape[3]
        G = HQ // H
        qg = q.view(B, T, H, G, D)
        kf, vf = _block_views(k, block_size), _block_views(v, block_size)
        o = q.new_empty(B, T, H, G, Dv)
        lse = q.new_empty(B, T, H, G)
        for c0, c1 in _tiles(T, B * H):
            tile = _Tile(qg, kf, vf, idx, c0, c1, block_size, scale)
            s = tile.scores  # [n_slots, G, bs]
            # per-row max over all of the row's slots (scatter-amax), finite even for rows that see nothing
            m_row = s.new_full((tile.n_rows + 1, G), float("-inf"))
            m_row.scatter_reduce_(0, tile.row[:, None].expand(-1, G), s.amax(-1), "amax")
            m_row.clamp_min_(torch.finfo(s.dtype).min)
            e = s.sub_(m_row.index_select(0, tile.row).unsqueeze(-1)).exp_()  # [n_slots, G, bs], in place
            den = tile.to_rows(e.sum(-1))  # [rows+1, G]
            o_slots = torch.bmm(tile.seg(e), tile.v_seg).view(-1, G, Dv)
            o_rows = tile.to_rows(o_slots)[:-1] / den[:-1, :, None].clamp_min(torch.finfo(s.dtype).tiny)
            o[:, c0:c1] = o_rows.view(B, c1 - c0, H, G, Dv)
            # rows that see nothing get lse=+inf so that recomputed probabilities are exactly 0 in backward
            lse_rows = torch.where(den[:-1] > 0, m_row[:-1] + den[:-1].log(), float("inf"))
            lse[:, c0:c1] = lse_rows.view(B, c1 - c0, H, G)
        ctx.save_for_backward(q, k, v, idx, o, lse)
        ctx.block_size, ctx.scale = block_size, scale
        return o.view(B, T, HQ, Dv)

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, idx, o, lse = ctx.saved_tensors
        bs, scale = ctx.block_size, ctx.scale
        B, T, HQ, D = q.shape
        H, Dv = k.shape[2], v.shape[3]
        G = HQ // H
        qg = q.view(B, T, H, G, D)
        kf, vf = _block_views(k, bs), _block_views(v, bs)
        dkf, dvf = torch.zeros_like(kf), torch.zeros_like(vf)
        dq = torch.empty_like(qg)
        dog = do.contiguous().view(B, T, H, G, Dv)
        delta = (dog * o).sum(-1)  # [B, T, H, G]
        for c0, c1 in _tiles(T, B * H):
            tile = _Tile(qg, kf, vf, idx, c0, c1, bs, scale)
            lse_ext = torch.cat([lse[:, c0:c1].reshape(-1, G), lse.new_full((1, G), float("inf"))])
            delta_ext = torch.cat([delta[:, c0:c1].reshape(-1, G), delta.new_zeros(1, G)])
            p = tile.scores.sub_(lse_ext.index_select(0, tile.row).unsqueeze(-1)).exp_()  # [n_slots, G, bs]
            do_slots = _rows_to_slots(dog[:, c0:c1].reshape(-1, G, Dv), tile.row)  # [n_slots, G, Dv]
            dp = torch.bmm(tile.seg(do_slots), tile.v_seg.transpose(1, 2)).view(-1, G, bs)
            ds = dp.sub_(delta_ext.index_select(0, tile.row).unsqueeze(-1)).mul_(p).mul_(scale)
            dvf.index_add_(0, tile.block, torch.bmm(tile.seg(p).transpose(1, 2), tile.seg(do_slots)))
            dkf.index_add_(0, tile.block, torch.bmm(tile.seg(ds).transpose(1, 2), tile.q_seg))
            dq_slots = torch.bmm(tile.seg(ds), tile.k_seg).view(-1, G, D)
            dq[:, c0:c1] = tile.to_rows(dq_slots)[:-1].view(B, c1 - c0, H, G, D)
        return dq.view(B, T, HQ, D), _unblock(dkf, B, H, T), _unblock(dvf, B, H, T), None, None, None


def _tiles(T: int, rows_per_token: int) -> list[tuple[int, int]]:
    step = max(1, TILE_ROWS // rows_per_token)
    return [(c0, min(T, c0 + step)) for c0 in range(0, T, step)]
