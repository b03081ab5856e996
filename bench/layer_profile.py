"""Where the NSA layer's time goes on one device: a torch.profiler breakdown and a sweep of the fast path's tiles.

    python bench/layer_profile.py --seq-lens 8192 65536                     # CUDA, bf16 autocast
    python bench/layer_profile.py --device cpu --seq-lens 2048 --reps 1     # a smoke run (fp32)
    python bench/layer_profile.py --sweep-cmp-tile 256 4096 --sweep-window-group 2048 16384

For each length: the wall time of the layer's forward+backward against the time its kernels ran on the device
(when it is far less, the path is launch-bound: Python and dispatch between small kernels), how many kernels it
launched, and the ops with the most device time and the most host time. Then the layer's forward and
forward+backward with the device's default tile sizes, and with each pair of the --sweep-* sizes: query tiles
of the compressed branch (CMP_TILE), query groups of the window branch (WINDOW_GROUP). The layer and settings
are bench/attention.py's (the paper's NSA settings, dim 512, 8 query / 2 KV heads of 64), impl 'auto' or
--nsa-impl's (triton: all three branches on their kernels, so the tile sizes no longer matter).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

from _args import nonnegative_int, positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch")

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing

from attention import DIM, HEAD_DIM, N_HEADS, N_KV_HEADS, PAPER_NSA
from attention_triton import add_fp32_matmul_option

from nsa_train.config import NSAConfig
from nsa_train.nsa import NSAAttention, fallbacks, fast


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-lens", type=positive_int, nargs="+", default=[8192, 65536])
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    add_fp32_matmul_option(p, "on CUDA")
    p.add_argument("--warmup", type=nonnegative_int, default=2)
    p.add_argument("--reps", type=positive_int, default=3)
    p.add_argument("--top", type=positive_int, default=12, help="ops listed per ranking")
    p.add_argument("--no-profile", action="store_true", help="only the sweep")
    p.add_argument("--no-sweep", action="store_true", help="only the profile")
    p.add_argument("--sweep-cmp-tile", type=positive_int, nargs="*", default=[], help="compressed-branch query tiles")
    p.add_argument("--sweep-window-group", type=positive_int, nargs="*", default=[], help="window-branch query groups")
    p.add_argument("--nsa-impl", default="auto", choices=["auto", "triton"], help="the layer's nsa.impl")
    return p.parse_args(argv)


class Layer:
    """The NSA layer with an input and an output gradient, run as in training (bf16 autocast on CUDA)."""

    def __init__(self, B: int, T: int, device: torch.device, impl: str = "auto") -> None:
        torch.manual_seed(0)
        self.device = device
        cfg = NSAConfig(impl=impl, **PAPER_NSA)
        self.layer = NSAAttention(DIM, N_HEADS, N_KV_HEADS, HEAD_DIM, cfg).to(device)
        self.x = torch.randn(B, T, DIM, device=device, requires_grad=True)  # [B, T, dim]
        self.dy = torch.randn(B, T, DIM, device=device)

    def amp(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def fwd(self) -> None:
        with torch.no_grad(), self.amp():
            self.layer(self.x)

    def fwd_bwd(self) -> None:
        with self.amp():
            y = self.layer(self.x)
        y.backward(self.dy)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def time_ms(self, fn, warmup: int, reps: int) -> float:
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)


def profile(T: int, args: argparse.Namespace) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    dev = torch.device(args.device)
    run = Layer(args.batch, T, dev, args.nsa_impl)
    wall = run.time_ms(run.fwd_bwd, args.warmup, args.reps)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        run.fwd_bwd()
        run.sync()
    events = prof.key_averages()
    # the kernels themselves: an op's row repeats its kernels' device time, so summing every row counts it twice
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    device_ms = sum(e.self_device_time_total for e in kernels) / 1000
    launches = sum(e.count for e in kernels)
    print(f"\n## B={args.batch} T={T}: forward+backward {wall:.1f} ms wall (median of {args.reps}), ", end="")
    if dev.type == "cuda":
        print(f"{device_ms:.1f} ms of kernels on the device, {launches} kernel launches\n")
        print(f"top {args.top} by device time:\n")
        print(events.table(sort_by="self_device_time_total", row_limit=args.top, max_name_column_width=60))
    else:
        print("(CPU: no device time)\n")
    print(f"top {args.top} by host time:\n")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=60))


def sweep(T: int, args: argparse.Namespace) -> None:
    dev = torch.device(args.device)
    knobs = ("CMP_TILE", "WINDOW_GROUP", "CUDA_CMP_TILE_BYTES", "CUDA_WINDOW_GROUP")
    saved = {k: getattr(fast, k) for k in knobs}
    nc = (T - PAPER_NSA["l"]) // PAPER_NSA["d"] + 1
    auto = (fast.cmp_tile(dev, args.batch, N_HEADS, nc, T), fast.window_group(dev))
    print(f"\n## B={args.batch} T={T}: layer ms by CMP_TILE and WINDOW_GROUP ({dev.type})\n")
    print("| CMP_TILE | WINDOW_GROUP | fwd ms | fwd+bwd ms |\n|---|---|---:|---:|")
    run = Layer(args.batch, T, dev, args.nsa_impl)
    rows = [(None, None)] + [(c, g) for c in args.sweep_cmp_tile or [None] for g in args.sweep_window_group or [None]]
    try:
        for c, g in rows:
            # a swept size is used as it is (the CUDA sizing off); None: the default for the device
            fast.CMP_TILE, fast.CUDA_CMP_TILE_BYTES = (c, 0) if c else (saved["CMP_TILE"], saved["CUDA_CMP_TILE_BYTES"])
            fast.WINDOW_GROUP, fast.CUDA_WINDOW_GROUP = (
                (g, 0) if g else (saved["WINDOW_GROUP"], saved["CUDA_WINDOW_GROUP"])
            )
            f = run.time_ms(run.fwd, args.warmup, args.reps)
            fb = run.time_ms(run.fwd_bwd, args.warmup, args.reps)
            name_c = str(c) if c else f"{auto[0]} (default)"
            name_g = str(g) if g else f"{auto[1]} (default)"
            print(f"| {name_c} | {name_g} | {f:.2f} | {fb:.2f} |", flush=True)
    finally:
        for k, v in saved.items():
            setattr(fast, k, v)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("layer_profile.py: no CUDA device (use --device cpu for a smoke run)", file=sys.stderr)
        return 2
    where = "CPU"
    if args.device == "cuda":
        torch.set_float32_matmul_precision(args.fp32_matmul)  # as the trainer's runtime.tf32 sets it
        where = f"{torch.cuda.get_device_name()}, bf16 autocast, fp32 matmul {args.fp32_matmul}"
    heads = f"{N_HEADS}/{N_KV_HEADS} heads of {HEAD_DIM}"
    print(f"NSA layer (impl {args.nsa_impl}), dim {DIM}, {heads}, {PAPER_NSA}; {where}")
    for T in args.seq_lens:
        if not args.no_profile:
            profile(T, args)
        if not args.no_sweep:
            sweep(T, args)
        if args.device == "cuda":
            torch.cuda.empty_cache()
    # a kernel that could not run was replaced by the fast path: the profile above is then partly the fast path's
    print(f"\nfallbacks during the run: {fallbacks.snapshot() or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
