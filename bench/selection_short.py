"""The fast selection op on short sequences: its block-major path against one masked SDPA call, fp32 on CPU.

    .venv/bin/python bench/selection_short.py [--reps 15] [--threads 2]

What sets ``fast_selection_masked.MAX_SCORES`` and ``MAX_KEYS_PER_SELECTED``, the bounds within which the fast
path computes selection as one masked SDPA over all keys. Forward+backward of the gated op (median of --reps
after 3 warm-ups) on NSA-like block ids (block 0, the two local blocks, the rest random), per shape: the
tiny default's (batch 8, 256 tokens, 4/2 heads of 32, 4 blocks of 16) and around it, and the paper's blocks
(16 of 64) at 1k and 2k tokens. The last column is the route the fast path takes for that shape.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _args import positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch")

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing

from nsa_train.nsa import fast, fast_selection_masked

# (B, T, HQ, H, D, block_size, n_sel)
SHAPES = [
    (1, 256, 4, 2, 32, 16, 4),
    (8, 128, 4, 2, 32, 16, 4),
    (8, 256, 4, 2, 32, 16, 4),
    (16, 256, 4, 2, 32, 16, 4),
    (8, 384, 4, 2, 32, 16, 4),
    (8, 512, 4, 2, 32, 16, 4),
    (1, 1024, 8, 2, 64, 64, 16),
    (1, 2048, 8, 2, 64, 64, 16),
]


def block_ids(B: int, T: int, H: int, block_size: int, n_sel: int) -> torch.Tensor:
    """[B, T, H, n_sel]: block 0, the query's block and the one before, the rest random (none after the query)."""
    own = (torch.arange(T) // block_size)[None, :, None, None].expand(B, T, H, 1)
    rest = torch.randint(0, max(1, T // block_size), (B, T, H, n_sel - 3), generator=torch.Generator().manual_seed(0))
    return torch.minimum(torch.cat([torch.zeros_like(own), own, (own - 1).clamp(min=0), rest], -1), own)


def time_ms(B: int, T: int, HQ: int, H: int, D: int, block_size: int, n_sel: int, masked: bool, reps: int) -> float:
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(B, T, n, D, generator=g).requires_grad_() for n in (HQ, H, H))
    gate = torch.rand(B, T, HQ, generator=g).requires_grad_()
    ids = block_ids(B, T, H, block_size, n_sel)
    times = []
    with fast_selection_masked.route(masked):  # this route whatever the shape
        for i in range(reps + 3):
            t0 = time.perf_counter()
            fast.gated_selection_fast(q, k, v, ids, block_size, gate).sum().backward()
            if i >= 3:
                times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=positive_int, default=15, help="timed repetitions per shape and route (default 15)")
    ap.add_argument("--threads", type=positive_int, default=2, help="torch threads (default 2)")
    ap.add_argument("--shapes", type=positive_int, default=len(SHAPES), help="only the first N shapes (a smoke run)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"fast selection, forward+backward, fp32, {args.threads} threads, median of {args.reps}\n")
    head = "| B | T | HQ/H | D | blocks | B·HQ·T² | block-major ms | masked SDPA ms | masked / block-major |"
    print(head + " fast path takes |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for B, T, HQ, H, D, bs, n_sel in SHAPES[: args.shapes]:
        tiled = time_ms(B, T, HQ, H, D, bs, n_sel, False, args.reps)
        masked = time_ms(B, T, HQ, H, D, bs, n_sel, True, args.reps)
        route = "masked" if fast_selection_masked.use_masked_selection(B, T, HQ, n_sel, bs) else "block-major"
        print(
            f"| {B} | {T} | {HQ}/{H} | {D} | {n_sel} of {bs} | {B * HQ * T * T / 2**20:.1f}M | {tiled:.1f} | "
            f"{masked:.1f} | {masked / tiled:.2f}x | {route} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
