"""The fast selection op, a git revision's against this checkout's, alternated in one process (fp32, CPU).

    .venv/bin/python bench/selection_ab.py [--ref HEAD] [--seq-len 8192 32768] [--rounds 5] [--threads 1] [--check]

For a change to nsa_train/nsa/fast_selection.py: the file as it is at --ref is loaded beside the working tree's
and both run `SelectionAttentionFn` (gated, forward and forward+backward) on the same inputs at the paper's
selection settings (8 query / 2 KV heads of 64, 16 blocks of 64, NSA-like block ids: block 0, the two local
blocks, the rest random). Each round runs old and new back to back, in the other order every other round, so
a shared machine's drift lands on both sides; it prints the medians of wall and CPU seconds and the median of
the per-round new/old ratios (the number to read on a loaded machine: CPU seconds count only this process's
work). --threads defaults to 1 because, with other work on 2 cores, two torch threads time mostly waiting.
--check first compares the two versions' outputs and gradients (the largest absolute difference of each).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType

from _args import positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch", "nsa_train")

import torch
from attention_triton import nsa_like_block_indices

from nsa_train.nsa import fast_selection
from nsa_train.nsa.fast import _dedupe_future

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "nsa_train/nsa/fast_selection.py"
B, HQ, H, D, BLOCK, N_SEL = 1, 8, 2, 64, 64, 16


def load_at(ref: str) -> ModuleType:
    """fast_selection.py as it is at git revision ``ref``, imported under another name."""
    got = subprocess.run(["git", "show", f"{ref}:{SOURCE}"], cwd=ROOT, capture_output=True, text=True)
    if got.returncode != 0:
        raise SystemExit(f"error: cannot read {SOURCE} at {ref}: {got.stderr.strip()}")
    with tempfile.NamedTemporaryFile("w", suffix="_fast_selection.py", delete=False) as f:
        f.write(got.stdout)
    spec = importlib.util.spec_from_file_location("fast_selection_at_ref", f.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare_at(T: int, versions: dict[str, ModuleType], rounds: int, check: bool) -> None:
    """Both versions at ``T`` tokens: --check's differences, then the paired timings."""
    torch.manual_seed(0)
    q = torch.randn(B, T, HQ, D, requires_grad=True)  # [B, T, HQ, D]
    k = torch.randn(B, T, H, D, requires_grad=True)  # [B, T, H, D]
    v = torch.randn(B, T, H, D, requires_grad=True)
    g = torch.rand(B, T, HQ, requires_grad=True)  # [B, T, HQ]: the branch's gate
    idx = _dedupe_future(nsa_like_block_indices(B, T, H, N_SEL, BLOCK, "cpu"), BLOCK, -(-T // BLOCK))
    do = torch.randn(B, T, HQ, D)
    inputs = (q, k, v, g)

    def run(module: ModuleType, backward: bool) -> torch.Tensor:
        for t in inputs:
            t.grad = None
        o = module.SelectionAttentionFn.apply(q, k, v, idx, BLOCK, D**-0.5, g)
        if backward:
            o.backward(do)
        return o.detach()

    if check:
        outs = {}
        for name, module in versions.items():
            outs[name] = [run(module, True), *(t.grad.clone() for t in inputs)]  # type: ignore[union-attr]
        diffs = [round((a - b).abs().max().item(), 9) for a, b in zip(outs["old"], outs["new"], strict=True)]
        print(
            f"T={T} largest |new - old|: output {diffs[0]}, dq {diffs[1]}, dk {diffs[2]}, dv {diffs[3]}, "
            f"dgate {diffs[4]}"
        )
    for module in versions.values():
        run(module, True)  # warm-up: the allocator's first growth is no version's cost
    took: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in range(rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for phase in ("fwd", "fwd+bwd"):
            for name in order:
                wall, cpu = time.perf_counter(), time.process_time()
                if phase == "fwd":
                    with torch.no_grad():
                        run(versions[name], False)
                else:
                    run(versions[name], True)
                took.setdefault((name, phase), []).append((time.perf_counter() - wall, time.process_time() - cpu))
    for phase in ("fwd", "fwd+bwd"):
        old, new = took[("old", phase)], took[("new", phase)]
        cells = []
        for i, what in ((0, "wall"), (1, "cpu")):
            ratio = statistics.median(n[i] / o[i] for o, n in zip(old, new, strict=True))
            o_med, n_med = statistics.median(x[i] for x in old), statistics.median(x[i] for x in new)
            cells.append(f"{what} s old {o_med:.3f} new {n_med:.3f} (new/old {ratio:.3f})")
        print(f"T={T} {phase:8s} " + "  ".join(cells), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", default="HEAD", help="the git revision to compare against (default HEAD)")
    ap.add_argument("--seq-len", type=positive_int, nargs="+", default=[8192, 32768])
    ap.add_argument("--rounds", type=positive_int, default=5)
    ap.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    ap.add_argument("--check", action="store_true", help="first compare the two versions' outputs and gradients")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    versions = {"old": load_at(args.ref), "new": fast_selection}
    print(f"{SOURCE}: {args.ref} (old) against the working tree (new), {args.threads} thread(s)")
    for T in args.seq_len:
        compare_at(T, versions, args.rounds, args.check)


if __name__ == "__main__":
    main()
