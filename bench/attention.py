"""One attention layer, NSA vs dense causal SDPA: forward and forward+backward time, peak RSS (fp32, CPU).

    python bench/attention.py --impl nsa --seq-len 8192 --json
    python bench/attention.py --table            # both impls at 1k..32k, a Markdown table for the README

Settings are the paper's: l=32, d=16, l_sel=64, n_sel=16, w=512; 8 query heads, 2 KV heads, head dim 64,
batch 1, dim 512. The dense twin has the same heads: q/k/v/o projections, RoPE and causal SDPA (GQA).
Each --table measurement runs in a fresh subprocess so that peak RSS (ru_maxrss) belongs to one impl and length.
Forward is timed under torch.no_grad(); forward+backward is one training step of the layer (sum of outputs).
The median of --repeats runs is reported, after one untimed warm-up forward+backward.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from nsa_train.config import NSAConfig
from nsa_train.nsa import NSAAttention
from nsa_train.nsa.rope import apply_rope, rope_angles

DIM, N_HEADS, N_KV_HEADS, HEAD_DIM = 512, 8, 2, 64
PAPER_NSA = {"l": 32, "d": 16, "l_sel": 64, "n_sel": 16, "w": 512}
TABLE_LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768]


class DenseAttention(nn.Module):
    """The comparison twin: same heads and projections shape as NSAAttention, full causal SDPA."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wkv = nn.Linear(dim, 2 * n_kv_heads * head_dim, bias=False)
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k, v = self.wkv(x).view(B, T, 2, self.n_kv_heads, self.head_dim).unbind(2)
        cos, sin = rope_angles(torch.arange(T, device=x.device), self.head_dim, 10000.0)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        o = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, enable_gqa=True
        )
        return self.wo(o.transpose(1, 2).reshape(B, T, -1))


def build(impl: str) -> nn.Module:
    if impl == "nsa":
        return NSAAttention(DIM, N_HEADS, N_KV_HEADS, HEAD_DIM, NSAConfig(impl="fast", **PAPER_NSA))
    return DenseAttention(DIM, N_HEADS, N_KV_HEADS, HEAD_DIM)


def measure(impl: str, seq_len: int, repeats: int) -> dict[str, object]:
    torch.manual_seed(0)
    layer = build(impl)
    x = torch.randn(1, seq_len, DIM)

    def fwd() -> None:
        with torch.no_grad():
            layer(x)

    def fwd_bwd() -> None:
        layer.zero_grad(set_to_none=True)
        xg = x.clone().requires_grad_(True)
        layer(xg).sum().backward()

    fwd_bwd()  # warm-up (allocator, thread pool, kernel selection)
    times: dict[str, list[float]] = {"fwd": [], "fwd_bwd": []}
    for _ in range(repeats):
        for name, fn in (("fwd", fwd), ("fwd_bwd", fwd_bwd)):
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {
        "impl": impl,
        "seq_len": seq_len,
        "fwd_ms": round(statistics.median(times["fwd"]), 1),
        "fwd_bwd_ms": round(statistics.median(times["fwd_bwd"]), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def run_child(impl: str, seq_len: int, repeats: int) -> dict[str, object]:
    """One measurement in a fresh interpreter, so its peak RSS is its own."""
    cmd = [sys.executable, __file__, "--impl", impl, "--seq-len", str(seq_len), "--repeats", str(repeats), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(lengths: list[int], repeats: int) -> str:
    rows = [
        "| T | dense fwd ms | NSA fwd ms | fwd speedup | dense fwd+bwd ms | NSA fwd+bwd ms | fwd+bwd speedup "
        "| dense peak RSS MB | NSA peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for T in lengths:
        d, n = run_child("dense", T, repeats), run_child("nsa", T, repeats)
        print(f"# {json.dumps(d)}\n# {json.dumps(n)}", file=sys.stderr, flush=True)
        rows.append(
            f"| {T} | {d['fwd_ms']} | {n['fwd_ms']} | {d['fwd_ms'] / n['fwd_ms']:.2f}x | {d['fwd_bwd_ms']} "
            f"| {n['fwd_bwd_ms']} | {d['fwd_bwd_ms'] / n['fwd_bwd_ms']:.2f}x "
            f"| {d['peak_rss_mb']} | {n['peak_rss_mb']} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", choices=["nsa", "dense"])
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--table", action="store_true", help="run both impls over 1k..32k and print a Markdown table")
    ap.add_argument("--lengths", type=str, default=",".join(map(str, TABLE_LENGTHS)), help="for --table")
    args = ap.parse_args(argv)
    if args.table:
        print(table([int(t) for t in args.lengths.split(",")], args.repeats))
        return 0
    if args.impl is None or args.seq_len is None or args.seq_len < 1:
        ap.error("--impl and a positive --seq-len are required (or use --table)")
    result = measure(args.impl, args.seq_len, args.repeats)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['impl']} T={result['seq_len']}: fwd {result['fwd_ms']} ms, fwd+bwd {result['fwd_bwd_ms']} ms, "
            f"peak RSS {result['peak_rss_mb']} MB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
