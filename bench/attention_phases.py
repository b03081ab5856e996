"""Where one attention layer's memory and time go: peak RSS and seconds per phase of a forward+backward
(fp32, CPU, batch 1).

    .venv/bin/python bench/attention_phases.py --impl nsa --seq-len 32768 [--timed-passes 3] [--saved]

A thread samples the process's resident set every 0.5 ms while the layer runs once (no warm-up: the first
pass is the one that grows the heap). Phases are the NSA fast path's three branch ops, forward and backward,
and "other" for everything between them (projections, RoPE, compression MLP, gates, the output projection).
Prints the peak per phase and the timeline of phase changes with the RSS at each. Then, without the sampler,
--timed-passes more passes are timed phase by phase (wall seconds, median over the passes). Layer and
settings are bench/attention.py's (the paper's NSA settings, 8/2 heads of 64).

--recompute-backward makes the window and compressed branches take the path they take off CPU (keep no
output, recompute each tile's probabilities in backward), to measure what that trade is worth on CPU.

--saved lists instead what autograd keeps from the forward for the backward: every tensor storage saved by
an op (once, however many ops save it), its size and the line of the layer (or the op) that saved it, and
the total without parameters and without the layer's input (which exist anyway).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from _args import nonnegative_int, positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch", "nsa_train")

import torch
from attention import DIM, IMPLS, build

from nsa_train.nsa import fast, fast_selection

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


class PhaseSampler:
    def __init__(self) -> None:
        self.phase = "init"
        self.peaks: dict[str, float] = {}
        self.timeline: list[tuple[str, float]] = []
        self.seconds: dict[str, float] = {}  # time spent inside each tagged op, this pass
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        """Record the current RSS under the current phase."""
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * PAGE_MB
        p = self.phase
        self.peaks[p] = max(self.peaks.get(p, 0.0), rss)
        if not self.timeline or self.timeline[-1][0] != p:
            self.timeline.append((p, rss))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(0.0005)

    def __enter__(self) -> PhaseSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.01)
        self._stop.set()
        self._thread.join()

    def tag(self, owner: type, name: str, label: str) -> None:
        """Run owner.name (a staticmethod of an autograd Function) under the phase label."""
        fn: Callable = getattr(owner, name)
        sampler = self

        def tagged(*a: object, **k: object) -> object:
            # a sample as each phase ends (the outer one here, the op's own below): a phase shorter than the
            # polling period (tiny lengths, a busy machine) still gets one
            sampler.sample()
            outer, sampler.phase = sampler.phase, label
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                sampler.seconds[label] = sampler.seconds.get(label, 0.0) + time.perf_counter() - t0
                sampler.sample()
                sampler.phase = outer

        setattr(owner, name, staticmethod(tagged))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", choices=[i for i in IMPLS if i != "lucidrains"], default="nsa")
    ap.add_argument("--seq-len", type=positive_int, default=8192)
    ap.add_argument("--threads", type=positive_int, default=2)
    ap.add_argument(
        "--timed-passes", type=nonnegative_int, default=3, help="warm passes timed per phase (0: memory only)"
    )
    ap.add_argument("--saved", action="store_true", help="list the tensors kept for backward, then stop")
    ap.add_argument(
        "--recompute-backward",
        action="store_true",
        help="NSA's window and compressed branches keep no output and recompute their tiles in backward (the "
        "path used off CPU) instead of calling PyTorch's CPU flash-attention backward: the memory/time trade",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.recompute_backward:
        fast._cpu_flash_route = lambda q, v: False  # what the branches ask before choosing the CPU flash op
    if args.saved:
        torch.manual_seed(0)
        print_saved(args.impl, args.seq_len)
        return
    sampler = PhaseSampler()
    for owner, label in (
        (fast._CmpSelectFn, "cmp"),
        (fast_selection.SelectionAttentionFn, "sel"),
        (fast._WindowFn, "win"),
    ):
        sampler.tag(owner, "forward", f"{label}.fwd")
        sampler.tag(owner, "backward", f"{label}.bwd")
    torch.manual_seed(0)
    layer = build(args.impl)
    x = torch.randn(1, args.seq_len, DIM)  # [B, T, dim]
    with sampler:
        sampler.phase = "fwd.other"
        y = layer(x.clone().requires_grad_(True)).sum()
        sampler.phase = "bwd.other"
        y.backward()
    print(f"{args.impl} T={args.seq_len}: peak RSS per phase (MiB)")
    for phase, peak in sampler.peaks.items():
        print(f"  {phase:10s} {peak:8.0f}")
    print("timeline: " + " -> ".join(f"{p} {r:.0f}" for p, r in sampler.timeline))
    if args.impl == "nsa" and "sel.fwd" not in sampler.peaks:
        print(
            f"note: at T={args.seq_len} the selection branch is one masked SDPA call (the fast path's route for "
            "short sequences, docs/nsa.md), not a phase of its own: its time and memory are in fwd.other/bwd.other"
        )
    if args.timed_passes > 0:
        print_times(layer, x, sampler, args.timed_passes)


def print_saved(impl: str, seq_len: int) -> None:
    """The storages autograd keeps from one forward for the backward, largest first, with where they were saved."""
    layer = build(impl)
    x = torch.randn(1, seq_len, DIM).requires_grad_(True)  # [B, T, dim]
    params = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    kept: dict[int, tuple[torch.UntypedStorage, tuple[int, ...], str]] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in kept:  # the storage stays referenced here, so its address cannot be reused
            ours = [f for f in traceback.extract_stack()[:-1] if "nsa_train" in f.filename or "bench" in f.filename]
            where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno} {(ours[-1].line or '').strip()}" if ours else "?"
            kept[storage.data_ptr()] = (storage, tuple(t.shape), where)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = layer(x)
    print(f"{impl} T={seq_len}: storages kept for backward, grouped by where and shape (MiB, count x MiB each)")
    groups: dict[tuple[str, str], list[float]] = {}
    for ptr, (storage, shape, where) in kept.items():
        kind = "parameter" if ptr in params else "input" if ptr == x.untyped_storage().data_ptr() else ""
        groups.setdefault((kind or str(list(shape)), where), []).append(storage.nbytes() / 2**20)
    total = 0.0
    for (what, where), sizes in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
        total += 0.0 if what in ("parameter", "input") else sum(sizes)
        if sum(sizes) >= 0.05:
            same = len(set(sizes)) == 1
            count = "" if len(sizes) == 1 else f"{len(sizes)} x {sizes[0]:.1f}" if same else f"{len(sizes)} storages"
            print(f"  {sum(sizes):8.1f}  {count:>12s}  {what:<22s} {where[:90]}")
    print(f"  {total:8.1f}  total without parameters and input")
    del y


def print_times(layer: torch.nn.Module, x: torch.Tensor, sampler: PhaseSampler, passes: int) -> None:
    """Median wall seconds per phase over warm passes; "other" is each direction's total minus its branches."""
    rows: dict[str, list[float]] = {}
    for _ in range(passes):
        sampler.seconds = {}
        t0 = time.perf_counter()
        y = layer(x.clone().requires_grad_(True)).sum()
        t1 = time.perf_counter()
        y.backward()
        t2 = time.perf_counter()
        fwd = {k: v for k, v in sampler.seconds.items() if k.endswith(".fwd")}
        bwd = {k: v for k, v in sampler.seconds.items() if k.endswith(".bwd")}
        times = {**fwd, "fwd.other": t1 - t0 - sum(fwd.values()), **bwd, "bwd.other": t2 - t1 - sum(bwd.values())}
        times["total"] = t2 - t0
        for k, v in times.items():
            rows.setdefault(k, []).append(v)
    print(f"wall seconds per phase, median of {passes} warm passes")
    for phase, ts in rows.items():
        print(f"  {phase:10s} {statistics.median(ts):8.3f}")


if __name__ == "__main__":
    main()
