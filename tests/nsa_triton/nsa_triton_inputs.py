"""Input builders shared by the Triton tests."""

from __future__ import annotations

import torch


def make_qkv(B: int, T: int, HQ: int, H: int, D: int, DV: int, dtype=torch.float32, device="cpu", seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    q = torch.randn(B, T, HQ, D, generator=g)  # [B, T, HQ, D]
    k = torch.randn(B, T, H, D, generator=g)  # [B, T, H, D]
    v = torch.randn(B, T, H, DV, generator=g)  # [B, T, H, Dv]
    return [x.to(device=device, dtype=dtype).requires_grad_() for x in (q, k, v)]


def make_block_indices(B: int, T: int, H: int, S: int, block_size: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """[B, T, H, S] distinct block ids per row, in random slot order, NSA-like:

    the current (partially future) block is always selected; the others are drawn from the past
    blocks, with some future blocks mixed in (they must contribute nothing) and some -1 slots.
    One query row per (b, h) is left entirely -1 (it must get 0 output and no gradient).
    """
    g = torch.Generator().manual_seed(seed)
    n_blocks = -(-T // block_size)
    current = (torch.arange(T) // block_size).view(1, T, 1, 1)  # [1, T, 1, 1]
    block = torch.arange(n_blocks).view(1, 1, 1, n_blocks)
    score = torch.rand(B, T, H, n_blocks, generator=g)
    score = torch.where(block > current, score - 0.8, score)  # future blocks: allowed but rarely chosen
    score = torch.where(block == current, torch.full_like(score, 2.0), score)
    top = score.topk(min(S, n_blocks), dim=-1)
    idx = top.indices.masked_fill(top.values < 0, -1)
    idx = idx.masked_fill(torch.rand(idx.shape, generator=g) < 0.15, -1)  # unused slots, also the current one
    if idx.shape[-1] < S:
        idx = torch.cat([idx, idx.new_full((B, T, H, S - idx.shape[-1]), -1)], dim=-1)
    perm = torch.rand(B, T, H, S, generator=g).argsort(-1)  # slot order must not matter
    idx = idx.gather(-1, perm)
    idx[:, T // 3] = -1
    return idx.to(device)


def assert_close_scaled(pairs, atol: float) -> None:
    """Each (name, got, want) within atol after dividing both by max(|want|, 1): dk/dv and parameter gradients
    sum over many queries, so their error is judged relative to their size. got may be in a lower precision."""
    for name, got, want in pairs:
        scale = want.abs().max().clamp_min(1.0)
        torch.testing.assert_close(
            got.float() / scale, want.float() / scale, atol=atol, rtol=0, msg=lambda m, n=name: f"{n}: {m}"
        )
