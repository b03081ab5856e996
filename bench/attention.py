"""One attention layer, NSA vs dense causal SDPA (and lucidrains' NSA): forward and forward+backward time,
peak RSS (fp32, CPU).

    python bench/attention.py --impl nsa --seq-len 8192 --json
    python bench/attention.py --table            # nsa and dense at 1k..32k, a Markdown table for the README
    bash bench/peer_env.sh                       # once: the peer's own environment, bench/.venv-peer
    python bench/attention.py --table --impls nsa,dense,lucidrains --lengths 2048,8192

Settings are the paper's: l=32, d=16, l_sel=64, n_sel=16, w=512; 8 query heads, 2 KV heads, head dim 64,
batch 1, dim 512. The dense twin has the same heads: q/k/v/o projections, RoPE and causal SDPA (GQA).
The peer is lucidrains' native-sparse-attention-pytorch (SparseAttention, pinned in bench/peer_env.sh) with
the same numbers: compress_block_size=32, compress_block_sliding_stride=16, selection_block_size=64,
num_selected_blocks=16, sliding_window_size=512, heads 8, kv_heads 2, dim_head 64, causal, its PyTorch path
(use_triton_kernel=False). Where it differs by design (docs/nsa.md): one K/V shared by the branches, an
input RMSNorm, its default compression MLP (hidden 32*64), one memory compressed key/value, and it does not
force the initial block into the selection.
Each --table measurement runs in a fresh subprocess (the peer's in bench/.venv-peer/bin/python) so that peak
RSS (ru_maxrss) belongs to one impl and length. Forward is timed under torch.no_grad(); forward+backward is
one training step of the layer (sum of outputs). The median of --repeats runs is reported, after one untimed
warm-up forward+backward.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

DIM, N_HEADS, N_KV_HEADS, HEAD_DIM = 512, 8, 2, 64
PAPER_NSA = {"l": 32, "d": 16, "l_sel": 64, "n_sel": 16, "w": 512}
TABLE_LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768]
IMPLS = ("nsa", "dense", "lucidrains")
PEER_PYTHON = Path(__file__).resolve().parent / ".venv-peer" / "bin" / "python"
LABELS = {"nsa": "NSA", "dense": "dense", "lucidrains": "lucidrains"}


class DenseAttention(nn.Module):
    """The comparison twin: same heads and projections shape as NSAAttention, full causal SDPA."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wkv = nn.Linear(dim, 2 * n_kv_heads * head_dim, bias=False)
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from nsa_train.nsa.rope import apply_rope, rope_angles

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
        from nsa_train.config import NSAConfig
        from nsa_train.nsa import NSAAttention

        return NSAAttention(DIM, N_HEADS, N_KV_HEADS, HEAD_DIM, NSAConfig(impl="fast", **PAPER_NSA))
    if impl == "lucidrains":
        try:
            from native_sparse_attention_pytorch import SparseAttention
        except ImportError:
            raise SystemExit(
                "error: --impl lucidrains needs the peer's own environment: run `bash bench/peer_env.sh`, then "
                f"{PEER_PYTHON.relative_to(Path.cwd()) if PEER_PYTHON.is_relative_to(Path.cwd()) else PEER_PYTHON}"
                " bench/attention.py --impl lucidrains ..."
            ) from None
        return SparseAttention(
            dim=DIM,
            dim_head=HEAD_DIM,
            heads=N_HEADS,
            kv_heads=N_KV_HEADS,
            sliding_window_size=PAPER_NSA["w"],
            compress_block_size=PAPER_NSA["l"],
            compress_block_sliding_stride=PAPER_NSA["d"],
            selection_block_size=PAPER_NSA["l_sel"],
            num_selected_blocks=PAPER_NSA["n_sel"],
            causal=True,
            use_triton_kernel=False,
        )
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
    """One measurement in a fresh interpreter, so its peak RSS is its own (the peer's in its own env)."""
    python = sys.executable
    if impl == "lucidrains":
        if not PEER_PYTHON.exists():
            raise SystemExit("error: the peer's environment is missing: run `bash bench/peer_env.sh` first")
        python = str(PEER_PYTHON)
    cmd = [python, __file__, "--impl", impl, "--seq-len", str(seq_len), "--repeats", str(repeats), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"impl": impl, "seq_len": seq_len, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cell(r: dict[str, object], key: str) -> str:
    return str(r[key]) if key in r else "failed"


def _ratio(base: dict[str, object], other: dict[str, object], key: str) -> str:
    if key not in base or key not in other:
        return "-"
    return f"{float(base[key]) / float(other[key]):.2f}x"  # type: ignore[arg-type]


def table(lengths: list[int], repeats: int, impls: list[str]) -> str:
    """Markdown: per length, each impl's fwd / fwd+bwd ms and peak RSS, and NSA's speedup over the others."""
    others = [i for i in impls if i != "nsa"]
    head = ["T"]
    for i in impls:
        head += [f"{LABELS[i]} fwd ms", f"{LABELS[i]} fwd+bwd ms", f"{LABELS[i]} peak RSS MB"]
    if "nsa" in impls:
        head += [f"NSA fwd+bwd speedup vs {LABELS[o]}" for o in others]
    rows = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for T in lengths:
        res = {i: run_child(i, T, repeats) for i in impls}
        for r in res.values():
            print(f"# {json.dumps(r)}", file=sys.stderr, flush=True)
        cells = [str(T)]
        for i in impls:
            cells += [_cell(res[i], "fwd_ms"), _cell(res[i], "fwd_bwd_ms"), _cell(res[i], "peak_rss_mb")]
        if "nsa" in impls:
            cells += [_ratio(res[o], res["nsa"], "fwd_bwd_ms") for o in others]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", choices=IMPLS)
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--table", action="store_true", help="run the impls over 1k..32k and print a Markdown table")
    ap.add_argument("--lengths", type=str, default=",".join(map(str, TABLE_LENGTHS)), help="for --table")
    ap.add_argument("--impls", type=str, default="nsa,dense", help="for --table: any of nsa,dense,lucidrains")
    args = ap.parse_args(argv)
    if args.table:
        impls = [i for i in args.impls.split(",") if i]
        if not impls or any(i not in IMPLS for i in impls):
            ap.error(f"--impls takes a comma list of {', '.join(IMPLS)}")
        print(table([int(t) for t in args.lengths.split(",")], args.repeats, impls))
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
