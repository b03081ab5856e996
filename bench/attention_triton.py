"""NSA selected-block attention (Triton) vs causal SDPA/FlashAttention on one CUDA GPU, bf16.

    python bench/attention_triton.py                       # 8k, 16k, 32k, 64k; 8 query / 2 KV heads, D=64
    python bench/attention_triton.py --seq-lens 65536 --heads 64 --kv-heads 4 --head-dim 128

    python bench/attention_triton.py --branches            # all three branches' kernels (the paper's comparison)
    python bench/attention_triton.py --layer               # whole layers: the NSA layer against its dense twin

Times forward and forward+backward (median of --reps after --warmup, CUDA events) and peak
memory, and prints one Markdown table. The selection uses the paper's blocks (64 tokens, 16
selected per query and KV head, block 0 and the 2 local blocks always in); SDPA runs dense causal
attention with the same heads. Without a CUDA device (or without triton) it exits with code 2.

--branches times the paper's kernel comparison (its Fig. 6, 9x forward and 6x backward at 64k on an A100):
NSA's attention as its three branches' Triton ops, the compressed branch with its block choice (on q and
compressed keys/values, the paper's l=32, d=16), the selection on the blocks it chose and the sliding window
(w=512), their outputs summed, against SDPA with the same heads; no projections, compression MLP or gates.
``--branches --device cpu`` is a smoke run in the Triton interpreter (TRITON_INTERPRET=1).

--layer times the whole attention layer: bench/attention.py's layers (the
paper's NSA settings, dim 512, 8 query / 2 KV heads of 64) under bf16 autocast, the NSA layer with impl
'auto' (the Triton selection kernel, the PyTorch window and compressed branches, projections, gates)
against the dense twin (projections, RoPE, SDPA/FlashAttention); ``--nsa-impl triton`` runs the compressed and window
branches on their Triton kernels too. The table's header names the NSA layer's impl and path(s) and counts
the fallbacks seen. ``--layer --device cpu`` runs the same code in fp32 with wall-clock
timing and no memory column: a smoke run for the tests, not a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _args import nonnegative_int, positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch")  # nsa_train: from this checkout, below

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing

from attention import DIM, HEAD_DIM, N_HEADS, N_KV_HEADS, PAPER_NSA, DenseAttention  # the CPU table's layers

from nsa_train.nsa.triton import selection_attention_triton, triton_available

SELECTION_ONLY = ("heads", "kv_heads", "head_dim", "block_size", "n_sel")  # options of the op, not of --layer


def add_fp32_matmul_option(p: argparse.ArgumentParser, where: str) -> None:
    """--fp32-matmul, for the layer benches: default 'high' as the trainer's runtime.tf32 sets it."""
    p.add_argument(
        "--fp32-matmul",
        default="high",
        choices=["high", "highest"],
        help=f"{where}: fp32 matmul precision, 'high' (TF32, the trainer's runtime.tf32 default) or 'highest'",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-lens", type=positive_int, nargs="+", default=[8192, 16384, 32768, 65536])
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--heads", type=positive_int, default=8, help="query heads (HQ)")
    p.add_argument(
        "--kv-heads", type=positive_int, default=2, help="key/value heads (H); HQ/H heads share one selection"
    )
    p.add_argument("--head-dim", type=positive_int, default=64)
    p.add_argument("--block-size", type=positive_int, default=64, help="selection block size l_sel")
    p.add_argument("--n-sel", type=positive_int, default=16, help="selected blocks per query and KV head")
    p.add_argument("--warmup", type=nonnegative_int, default=3)
    p.add_argument("--reps", type=positive_int, default=10)
    p.add_argument("--layer", action="store_true", help="whole layers: the NSA layer against its dense twin")
    p.add_argument(
        "--branches", action="store_true", help="NSA's three branches (compressed + choice, selection, window)"
    )
    p.add_argument(
        "--device", default="cuda", choices=["cuda", "cpu"], help="cpu: a smoke run of --layer or --branches only"
    )
    add_fp32_matmul_option(p, "--layer on CUDA")
    p.add_argument(
        "--nsa-impl",
        default="auto",
        choices=["auto", "triton"],
        help="--layer: the NSA layer's nsa.impl; 'triton' also runs the compressed and window branches' kernels",
    )
    args = p.parse_args(argv)
    if args.layer and args.branches:
        p.error("--layer and --branches are two different tables: pick one")
    if args.device == "cpu" and not (args.layer or args.branches):
        p.error("--device cpu is for --layer or --branches only (a smoke run, not a measurement)")
    if args.heads % args.kv_heads:
        p.error(
            f"--heads ({args.heads}) must be a multiple of --kv-heads ({args.kv_heads}): each KV head serves a group"
        )
    op_only = [f"--{n.replace('_', '-')}" for n in SELECTION_ONLY if getattr(args, n) != p.get_default(n)]
    if args.layer and op_only:
        p.error(f"{', '.join(op_only)} set the selection op's shape; --layer uses bench/attention.py's layers")
    return args


def nsa_like_block_indices(B: int, T: int, H: int, n_sel: int, block_size: int, device) -> torch.Tensor:
    """[B, T, H, n_sel] distinct visible blocks per row: block 0 and the 2 local blocks, the rest random past blocks."""
    n_blocks = -(-T // block_size)
    current = (torch.arange(T, device=device) // block_size).view(T, 1)  # [T, 1]
    blocks = torch.arange(n_blocks, device=device).view(1, n_blocks)  # [1, NB]
    rows = []
    for _ in range(B * H):  # one [T, NB] score matrix at a time keeps memory at T*NB floats
        score = torch.rand(T, n_blocks, device=device)
        score = score.masked_fill(blocks > current, -1.0)
        forced = (blocks == 0) | (blocks == current) | (blocks == current - 1)
        score = score.masked_fill(forced, 2.0)
        top = score.topk(min(n_sel, n_blocks), dim=-1)
        rows.append(top.indices.masked_fill(top.values < 0, -1).to(torch.int32))
    return torch.stack(rows).view(B, H, T, -1).permute(0, 2, 1, 3).contiguous()  # [B, T, H, S]


def time_ms(fn: Callable[[], object], warmup: int, reps: int, device: str = "cuda") -> tuple[float, float]:
    """(median milliseconds, peak allocated GiB during one call)."""
    for _ in range(warmup):
        fn()
    if device == "cpu":  # --layer --device cpu: wall clock, no memory figure
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times), math.nan
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return statistics.median(times), (torch.cuda.max_memory_allocated() - base) / 2**30


def sdpa_backend_context():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION])


def nsa_branches_op(
    args: argparse.Namespace, kc: torch.Tensor, vc: torch.Tensor, kw: torch.Tensor, vw: torch.Tensor
) -> Callable[..., torch.Tensor]:
    """--branches: (q, k, v, idx, block_size) -> the three branches' summed outputs (idx unused: selection runs on
    the blocks the compressed branch chose), with the same signature as selection_attention_triton."""
    from nsa_train.nsa.triton import compressed_attention_and_selection_triton, sliding_window_attention_triton

    c = PAPER_NSA

    def op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, _idx: torch.Tensor | None, bs: int) -> torch.Tensor:
        o_cmp, ids = compressed_attention_and_selection_triton(q, kc, vc, c["l"], c["d"], bs, args.n_sel)
        o_sel = selection_attention_triton(q, k, v, ids, bs)
        return o_cmp + o_sel + sliding_window_attention_triton(q, kw, vw, c["w"])

    return op


def bench_one(T: int, args: argparse.Namespace) -> dict[str, float]:
    dev = torch.device(args.device)
    B, HQ, H, D, BS = args.batch, args.heads, args.kv_heads, args.head_dim, args.block_size

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=dev, dtype=torch.bfloat16, requires_grad=True)

    q, k, v = leaf(B, T, HQ, D), leaf(B, T, H, D), leaf(B, T, H, D)  # [B, T, HQ|H, D]
    do = torch.randn(B, T, HQ, D, device=dev, dtype=torch.bfloat16)
    # --branches selects with the compressed branch instead
    idx = None if args.branches else nsa_like_block_indices(B, T, H, args.n_sel, BS, dev)
    nsa_op = selection_attention_triton
    if args.branches:  # compressed keys/values [B, NC, H, D] and the window's own keys/values
        NC = (T - PAPER_NSA["l"]) // PAPER_NSA["d"] + 1
        nsa_op = nsa_branches_op(args, leaf(B, NC, H, D), leaf(B, NC, H, D), leaf(B, T, H, D), leaf(B, T, H, D))
    # SDPA takes [B, heads, T, D] with the KV heads repeated per group (done once, outside the timing).
    qs = q.detach().transpose(1, 2).contiguous().requires_grad_()
    ks = k.detach().repeat_interleave(HQ // H, 2).transpose(1, 2).contiguous().requires_grad_()
    vs = v.detach().repeat_interleave(HQ // H, 2).transpose(1, 2).contiguous().requires_grad_()
    dos = do.transpose(1, 2).contiguous()

    def sel_fwd():
        with torch.no_grad():
            return nsa_op(q, k, v, idx, BS)

    def sel_fwd_bwd():
        nsa_op(q, k, v, idx, BS).backward(do)

    def sdpa_fwd():
        with torch.no_grad(), sdpa_backend_context():
            return F.scaled_dot_product_attention(qs, ks, vs, is_causal=True)

    def sdpa_fwd_bwd():
        with sdpa_backend_context():
            F.scaled_dot_product_attention(qs, ks, vs, is_causal=True).backward(dos)

    row: dict[str, float] = {"T": T}
    row["sel_fwd"], row["sel_fwd_mem"] = time_ms(sel_fwd, args.warmup, args.reps, args.device)
    row["sel_fwd_bwd"], row["sel_fwd_bwd_mem"] = time_ms(sel_fwd_bwd, args.warmup, args.reps, args.device)
    row["sdpa_fwd"], row["sdpa_fwd_mem"] = time_ms(sdpa_fwd, args.warmup, args.reps, args.device)
    row["sdpa_fwd_bwd"], row["sdpa_fwd_bwd_mem"] = time_ms(sdpa_fwd_bwd, args.warmup, args.reps, args.device)
    return row


def bench_layer(T: int, args: argparse.Namespace) -> tuple[dict[str, float], str]:
    """One length of --layer: (the row, the NSA layer's path, per branch where they differ)."""
    from nsa_train.config import NSAConfig
    from nsa_train.nsa import NSAAttention

    dev = torch.device(args.device)
    torch.manual_seed(0)
    layers = {
        "nsa": NSAAttention(DIM, N_HEADS, N_KV_HEADS, HEAD_DIM, NSAConfig(impl=args.nsa_impl, **PAPER_NSA)).to(dev),
        "sdpa": DenseAttention(DIM, N_HEADS, N_KV_HEADS, HEAD_DIM).to(dev),
    }
    x = torch.randn(args.batch, T, DIM, device=dev, requires_grad=True)  # [B, T, dim]
    dy = torch.randn(args.batch, T, DIM, device=dev)
    # as in training: fp32 weights, bf16 compute; on CPU (the smoke run) plain fp32
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext()
    row: dict[str, float] = {"T": T}
    for name, layer in layers.items():

        def fwd(layer=layer) -> None:
            with torch.no_grad(), amp:
                layer(x)

        def fwd_bwd(layer=layer) -> None:
            with amp:
                y = layer(x)
            y.backward(dy)

        row[f"{name}_fwd"], row[f"{name}_fwd_mem"] = time_ms(fwd, args.warmup, args.reps, args.device)
        row[f"{name}_fwd_bwd"], row[f"{name}_fwd_bwd_mem"] = time_ms(fwd_bwd, args.warmup, args.reps, args.device)
    return row, layers["nsa"].impl_name


def _gib(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def layer_table(rows: list[dict[str, float]], args: argparse.Namespace, path: str, fell_back: int) -> str:
    where = (
        f"{torch.cuda.get_device_name()}, bf16 autocast, fp32 matmul {args.fp32_matmul}"
        if args.device == "cuda"
        else "CPU, fp32 (smoke run)"
    )
    nsa = " ".join(f"{k}={v}" for k, v in PAPER_NSA.items())
    head = (
        f"Attention layers, NSA (nsa.impl {args.nsa_impl}, path: {path}; fallbacks during the run: "
        f"{fell_back}) vs dense SDPA, batch "
        f"{args.batch}, dim {DIM}, {N_HEADS} query / {N_KV_HEADS} KV heads of {HEAD_DIM}, NSA {nsa}; {where}, "
        f"torch {torch.__version__}\n\n"
        "| T | SDPA fwd ms | NSA fwd ms | fwd speedup | SDPA fwd+bwd ms | NSA fwd+bwd ms | fwd+bwd speedup "
        "| SDPA fwd+bwd peak GiB | NSA fwd+bwd peak GiB |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {int(r['T'])} | {r['sdpa_fwd']:.2f} | {r['nsa_fwd']:.2f} | {r['sdpa_fwd'] / r['nsa_fwd']:.1f}x "
            f"| {r['sdpa_fwd_bwd']:.2f} | {r['nsa_fwd_bwd']:.2f} | {r['sdpa_fwd_bwd'] / r['nsa_fwd_bwd']:.1f}x "
            f"| {_gib(r['sdpa_fwd_bwd_mem'])} | {_gib(r['nsa_fwd_bwd_mem'])} |"
        )
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, float]], args: argparse.Namespace) -> str:
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU, Triton interpreter (smoke run)"
    if args.branches:
        c = PAPER_NSA
        what, col = f"NSA attention, its 3 branches (Triton; l={c['l']}, d={c['d']}, w={c['w']})", "NSA"
    else:
        what, col = "Selected attention (Triton)", "NSA-sel"
    head = (
        f"{what} vs causal SDPA, bf16, batch {args.batch}, {args.heads} query / {args.kv_heads} KV heads, head dim "
        f"{args.head_dim}, block {args.block_size}, {args.n_sel} blocks selected; {where}, torch {torch.__version__}"
        f"\n\n| T | SDPA fwd ms | {col} fwd ms | fwd speedup | SDPA fwd+bwd ms | {col} fwd+bwd ms | fwd+bwd speedup "
        f"| SDPA fwd+bwd peak GiB | {col} fwd+bwd peak GiB |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {int(r['T'])} | {r['sdpa_fwd']:.2f} | {r['sel_fwd']:.2f} | {r['sdpa_fwd'] / r['sel_fwd']:.1f}x "
            f"| {r['sdpa_fwd_bwd']:.2f} | {r['sel_fwd_bwd']:.2f} | {r['sdpa_fwd_bwd'] / r['sel_fwd_bwd']:.1f}x "
            f"| {_gib(r['sdpa_fwd_bwd_mem'])} | {_gib(r['sel_fwd_bwd_mem'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cpu" and args.layer:
        return run_layers(args)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("attention_triton.py needs a CUDA GPU (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    ok, reason = triton_available(args.device)
    if not ok:
        print(f"attention_triton.py cannot run the Triton kernels: {reason}", file=sys.stderr)
        return 2
    if args.layer:
        return run_layers(args)
    rows = []
    for T in args.seq_lens:
        rows.append(bench_one(T, args))
        if args.device == "cuda":
            torch.cuda.empty_cache()
    print(markdown_table(rows, args))
    return 0


def run_layers(args: argparse.Namespace) -> int:
    from nsa_train.nsa import fallbacks

    before = sum(fallbacks.snapshot().values())
    if args.device == "cuda":
        torch.set_float32_matmul_precision(args.fp32_matmul)  # as the trainer's runtime.tf32 sets it
    rows, path = [], ""
    for T in args.seq_lens:
        row, path = bench_layer(T, args)
        rows.append(row)
        if args.device == "cuda":
            torch.cuda.empty_cache()
    print(layer_table(rows, args, path, sum(fallbacks.snapshot().values()) - before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
