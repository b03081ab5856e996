"""Each NSA branch on its Triton kernels against the fast PyTorch path, on one CUDA GPU, bf16 inputs.

    python bench/triton_vs_fast.py                      # 8k, 16k, 32k, 64k tokens
    python bench/triton_vs_fast.py --seq-lens 2048 --batch 8

What decides ``dispatch.AUTO_TRITON_OPS`` (the ops whose kernels nsa.impl=auto runs on CUDA): a kernel joins
when it beats the fast path. Per branch and length, forward and forward+backward of the op the NSA layer calls
(median of --reps after --warmup, CUDA events): the compressed branch with its block choice
(``compressed_attention_and_selection_*``), selection on NSA-like block ids, the sliding window. The paper's
settings (l=32, d=16, l_sel=64, n_sel=16, w=512), 8 query / 2 KV heads of 64, as bench/attention.py. Inputs
are bf16, as under the trainer's autocast (the fast path computes in fp32 from them); fp32 matmuls in TF32
unless --fp32-matmul highest. Then a second table: the compressed branch's block choice on its own, the
importance kernel picking each query's blocks itself against writing its scores for select_top_blocks (time,
peak memory, and whether both chose the same ids). Exits 2 without a CUDA device or Triton.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from _args import nonnegative_int, positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch")

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing

from attention import HEAD_DIM, N_HEADS, N_KV_HEADS, PAPER_NSA
from attention_triton import add_fp32_matmul_option, nsa_like_block_indices, time_ms

from nsa_train.nsa import fast
from nsa_train.nsa.triton import (
    compressed_attention_and_selection_triton,
    selection_attention_triton,
    sliding_window_attention_triton,
    triton_available,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-lens", type=positive_int, nargs="+", default=[8192, 16384, 32768, 65536])
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--warmup", type=nonnegative_int, default=2)
    p.add_argument("--reps", type=positive_int, default=5)
    add_fp32_matmul_option(p, "the fast path's")
    p.add_argument(
        "--device",
        default="cuda",
        choices=["cuda", "cpu"],
        help="cpu: a smoke run under TRITON_INTERPRET=1 (kernels in the interpreter, wall clock): not a measurement",
    )
    return p.parse_args(argv)


def branch_ops(
    T: int, B: int, dev: torch.device
) -> dict[str, tuple[Callable[..., object], Callable[..., object], tuple]]:
    """{branch: (fast op, triton op, differentiable inputs + other arguments)} on fresh bf16 inputs."""
    c = PAPER_NSA

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=dev, dtype=torch.bfloat16).requires_grad_()

    q, k, v = leaf(B, T, N_HEADS, HEAD_DIM), leaf(B, T, N_KV_HEADS, HEAD_DIM), leaf(B, T, N_KV_HEADS, HEAD_DIM)
    NC = (T - c["l"]) // c["d"] + 1
    kc, vc = leaf(B, NC, N_KV_HEADS, HEAD_DIM), leaf(B, NC, N_KV_HEADS, HEAD_DIM)
    idx = nsa_like_block_indices(B, T, N_KV_HEADS, c["n_sel"], c["l_sel"], dev)
    cmp_args = (c["l"], c["d"], c["l_sel"], c["n_sel"])
    return {
        "compressed + block choice": (
            fast.compressed_attention_and_selection_fast,
            compressed_attention_and_selection_triton,
            ((q, kc, vc), cmp_args),
        ),
        "selection": (fast.selection_attention_fast, selection_attention_triton, ((q, k, v), (idx, c["l_sel"]))),
        "sliding window": (fast.sliding_window_attention_fast, sliding_window_attention_triton, ((q, k, v), (c["w"],))),
    }


def block_choice(
    T: int, B: int, dev: torch.device, args: argparse.Namespace
) -> tuple[float, float, float, float, bool]:
    """The compressed branch's block choice alone (after its forward): the importance kernel picking the blocks
    itself against its scores + select_top_blocks. -> (ms, peak GiB) of each, and whether the ids agree."""
    from nsa_train.nsa.triton import compressed
    from nsa_train.nsa.triton._attention import KERNELS, NO_WINDOW, AttentionFn, prepare
    from nsa_train.nsa.triton.availability import load_kernels

    c = PAPER_NSA
    NC = (T - c["l"]) // c["d"] + 1
    q = torch.randn(B, T, N_HEADS, HEAD_DIM, device=dev, dtype=torch.bfloat16)
    kc, vc = (torch.randn(B, NC, N_KV_HEADS, HEAD_DIM, device=dev, dtype=torch.bfloat16) for _ in range(2))
    q, kc, vc, scale = prepare("compressed-attention", q, kc, vc, None)
    with torch.no_grad():
        _, lse = AttentionFn.apply(q, kc, vc, c["l"], c["d"], NO_WINDOW, scale, None)
    choice = (load_kernels(KERNELS), q, kc, lse, c["l"], c["d"], c["l_sel"], c["n_sel"], scale)
    fused_ms, fused_gib = time_ms(lambda: compressed.block_ids(*choice), args.warmup, args.reps, args.device)
    scores_ms, scores_gib = time_ms(
        lambda: compressed.block_ids_from_scores(*choice), args.warmup, args.reps, args.device
    )
    same = torch.equal(compressed.block_ids(*choice), compressed.block_ids_from_scores(*choice))
    return scores_ms, scores_gib, fused_ms, fused_gib, same


def time_op(fn: Callable[..., object], inputs: tuple, rest: tuple, args: argparse.Namespace) -> tuple[float, float]:
    """(forward ms, forward+backward ms) of fn(*inputs, *rest); the first output's gradient is ones."""

    def first(out: object) -> torch.Tensor:
        return out[0] if isinstance(out, tuple) else out  # type: ignore[index, return-value]

    def fwd() -> None:
        with torch.no_grad():
            fn(*inputs, *rest)

    def fwd_bwd() -> None:
        o = first(fn(*inputs, *rest))
        o.backward(torch.ones_like(o))

    return time_ms(fwd, args.warmup, args.reps, args.device)[0], time_ms(fwd_bwd, args.warmup, args.reps, args.device)[
        0
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("triton_vs_fast.py needs a CUDA GPU (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    ok, reason = triton_available(dev)
    if not ok:
        print(f"triton_vs_fast.py cannot run the Triton kernels: {reason}", file=sys.stderr)
        return 2
    torch.set_float32_matmul_precision(args.fp32_matmul)
    where = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU, Triton interpreter (smoke run)"
    print(
        f"NSA branches, Triton kernels vs the fast path, batch {args.batch}, {N_HEADS} query / {N_KV_HEADS} KV heads "
        f"of {HEAD_DIM}, {PAPER_NSA}, bf16 inputs, fp32 matmul {args.fp32_matmul}; {where}, torch {torch.__version__}\n"
    )
    print(
        "| T | branch | fast fwd ms | Triton fwd ms | fwd speedup | fast fwd+bwd ms | Triton fwd+bwd ms "
        "| fwd+bwd speedup |\n|---:|---|---:|---:|---:|---:|---:|---:|"
    )
    for T in args.seq_lens:
        for branch, (fast_fn, triton_fn, (inputs, rest)) in branch_ops(T, args.batch, dev).items():
            f_fwd, f_all = time_op(fast_fn, inputs, rest, args)
            t_fwd, t_all = time_op(triton_fn, inputs, rest, args)
            print(
                f"| {T} | {branch} | {f_fwd:.2f} | {t_fwd:.2f} | {f_fwd / t_fwd:.1f}x | {f_all:.2f} | {t_all:.2f} "
                f"| {f_all / t_all:.1f}x |"
            )
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    print(
        "\nThe compressed branch's block choice alone (forward, no gradient): its scores [B, T, H, T/l_sel] + "
        "select_top_blocks, against the importance kernel keeping each query's top n_sel itself\n\n"
        "| T | scores + top-k ms | in-kernel top-n ms | speedup | scores + top-k peak GiB | in-kernel peak GiB "
        "| same ids |\n|---:|---:|---:|---:|---:|---:|---|"
    )
    for T in args.seq_lens:
        scores_ms, scores_gib, fused_ms, fused_gib, same = block_choice(T, args.batch, dev, args)
        print(
            f"| {T} | {scores_ms:.2f} | {fused_ms:.2f} | {scores_ms / fused_ms:.1f}x | {scores_gib:.3f} "
            f"| {fused_gib:.3f} | {'yes' if same else 'NO'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
