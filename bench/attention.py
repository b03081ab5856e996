"""One attention layer, NSA vs dense causal SDPA vs lucidrains' NSA: time and peak RSS (fp32, CPU, batch 1).

    python bench/attention.py --impl nsa --seq-len 8192 --json
    python bench/attention.py --table            # nsa and dense at 1k..32k, a Markdown table for the README
    bash bench/peer_env.sh                       # once: the peer's own environment, bench/.venv-peer
    bench/.venv-peer/bin/python bench/attention.py --impl lucidrains --seq-len 2048 --json
    python bench/attention.py --table --impls nsa,dense,lucidrains --lengths 2048,8192
    python bench/attention.py --table --lengths 32768 --rounds 5   # 5 paired rounds: median ratio and range

Our settings are the paper's: l=32, d=16, l_sel=64, n_sel=16, w=512; 8 query heads, 2 KV heads, head dim 64,
dim 512. The dense twin has the same heads: q/k/v/o projections, RoPE and causal SDPA (GQA).

The peer is lucidrains' native-sparse-attention-pytorch (`SparseAttention`, the version pinned in
bench/peer_env.sh, installed from the registry into bench/.venv-peer only). Set up to match ours as far as its
constructor allows: dim 512, heads 8, kv_heads 2 (GQA, one selection per KV head shared by its query heads),
dim_head 64, causal, compress_block_size 32 with compress_block_sliding_stride 16, selection_block_size 64,
no input norm (norm=False: ours has none either), a compression MLP of our width (hidden 2*64 = 128 via
compress_mlp_expand_factor), a gate MLP of our shape (dim -> dim/4 -> 3 per head, SiLU, sigmoid) and its plain
PyTorch path (use_triton_kernel=False, no flex masks). Settings that cannot match, and how they were set:
  - window: its exact window keeps keys t-w..t (w+1 keys), so sliding_window_size=511 gives our 512 keys.
  - selected blocks: it masks the query's own block out of the top-k and then always adds it, so
    num_selected_blocks=15 gives our 16 attended blocks. It does not force the initial block nor the
    previous block (ours forces the initial block and 2 local blocks inside the 16).
  - importance: it ranks blocks by the mean of the compressed attention logits (not probabilities, Eq. 8)
    over the group's query heads and over the 4 compressed blocks inside a selection block (not Eq. 9's
    overlap sum).
  - compression: blocks are left-padded with l-d zeros, so block i covers tokens [(i+1)d-l, (i+1)d) and a
    query at t sees it only when (i+1)d-1 < t (ours: [id, id+l), seen when id+l-1 <= t); one learned memory
    key/value (num_compressed_mem_kv must be >= 1) is always visible; ReLU instead of our GELU.
  - one K/V projection shared by the three branches (ours: one per branch); no RoPE on the compressed keys
    (ours rotates each at its block's last token).
Speed-wise the main difference is its selection path: the forward gathers the selected keys and values per
query ([B, H, T, 16 blocks, 64, 64], 4.3 GB each at 8k) and the backward of that gather allocates a
[B, H, T, T/64, 64, 64] buffer (34 GB each at 8k), memory that grows with T squared.

Each measurement runs in one process: build, one untimed forward, --repeats timed forwards under
torch.no_grad(), then one untimed and --repeats timed forward+backward steps (sum of outputs); medians are
reported. Peak RSS is the process's ru_maxrss, in MiB (2^20 bytes; --json's key is `peak_rss_mb`, as the
issue named it); `base_rss_mb` is the same right after the layer is built, before its input and any pass (torch
and the layer: part of every peak). The address space is capped (--mem-limit-gb, default 3/4 of the machine's
memory) so that a length too big for the machine fails as "out of memory" instead of waking the kernel's OOM
killer on a shared box; a measurement past --time-limit-s stops and says so. --table runs each
impl and length in a fresh subprocess of the right interpreter (the peer's in bench/.venv-peer/bin/python), so
that each peak RSS belongs to one impl and one length. With --rounds N it measures each length N times, the
impls' order reversed every other round (a shared machine's speed drifts by 10-20% over minutes: paired rounds
put the drift on both sides of a ratio), and reports medians and the median ratio with its range. --table exits
1 when a cell is no measurement (over time, failed): the table is printed whole all the same. "out of memory" under
--mem-limit-gb is a result (the peer's forward+backward at 4k, in the README), not a failure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _args import positive_float, positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch")

import torch
import torch.nn.functional as F
from torch import nn

DIM, N_HEADS, N_KV_HEADS, HEAD_DIM = 512, 8, 2, 64
PAPER_NSA = {"l": 32, "d": 16, "l_sel": 64, "n_sel": 16, "w": 512}
TABLE_LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768]
IMPLS = ("nsa", "dense", "lucidrains")
PEER_PACKAGE = "native-sparse-attention-pytorch"
PEER_PYTHON = Path(__file__).resolve().parent / ".venv-peer" / "bin" / "python"
PEER_HINT = "run `bash bench/peer_env.sh`, then `bench/.venv-peer/bin/python bench/attention.py --impl lucidrains ...`"
LABELS = {"nsa": "NSA", "dense": "dense SDPA", "lucidrains": "lucidrains"}
PHASES = (("fwd", "forward"), ("fwd_bwd", "forward+backward"))


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
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)  # [B, T, HQ, D]
        k, v = self.wkv(x).view(B, T, 2, self.n_kv_heads, self.head_dim).unbind(2)  # [B, T, H, D]
        cos, sin = rope_angles(torch.arange(T, device=x.device), self.head_dim, 10000.0)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        o = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, enable_gqa=True
        )
        return self.wo(o.transpose(1, 2).reshape(B, T, -1))


def build_peer() -> nn.Module:
    """lucidrains' SparseAttention at our settings (the module docstring lists what cannot match)."""
    try:
        from native_sparse_attention_pytorch import SparseAttention
    except ModuleNotFoundError as e:
        if e.name != "native_sparse_attention_pytorch":
            raise SystemExit(f"error: the peer's package is installed but cannot import {e.name}: {e}") from None
        raise SystemExit(f"error: --impl lucidrains needs the peer's own environment: {PEER_HINT}") from None
    compress_hidden = 2 * HEAD_DIM  # our CompressionMLP's width
    gate_hidden = max(16, DIM // 4)  # our gate MLP's width
    return SparseAttention(
        dim=DIM,
        dim_head=HEAD_DIM,
        heads=N_HEADS,
        kv_heads=N_KV_HEADS,
        sliding_window_size=PAPER_NSA["w"] - 1,  # it keeps w+1 keys
        compress_block_size=PAPER_NSA["l"],
        compress_block_sliding_stride=PAPER_NSA["d"],
        selection_block_size=PAPER_NSA["l_sel"],
        num_selected_blocks=PAPER_NSA["n_sel"] - 1,  # it always adds the query's own block
        causal=True,
        norm=False,
        compress_mlp_expand_factor=compress_hidden / (PAPER_NSA["l"] * HEAD_DIM),
        strategy_combine_mlp=nn.Sequential(nn.Linear(DIM, gate_hidden), nn.SiLU(), nn.Linear(gate_hidden, 3 * N_HEADS)),
        use_triton_kernel=False,
    )


def build(impl: str) -> nn.Module:
    if impl == "nsa":
        from nsa_train.config import NSAConfig
        from nsa_train.nsa import NSAAttention

        return NSAAttention(DIM, N_HEADS, N_KV_HEADS, HEAD_DIM, NSAConfig(impl="fast", **PAPER_NSA))
    if impl == "lucidrains":
        return build_peer()
    return DenseAttention(DIM, N_HEADS, N_KV_HEADS, HEAD_DIM)


def cpu_name() -> str:
    """The CPU's model name: the README's tables come from machines of one kind whose CPUs differ, and dense SDPA's
    speed moves with the CPU's vector units more than NSA's does (docs/benchmarks.md)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def default_mem_limit_gb() -> float:
    return round(0.75 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def cap_address_space(gb: float) -> None:
    """Allocations past `gb` GiB fail in this process (RuntimeError/MemoryError) rather than in the machine."""
    if gb > 0:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        soft = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def is_out_of_memory(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e))


class OverTime(BaseException):
    """The measurement ran past --time-limit-s (a BaseException, so that no library's `except Exception` eats it)."""


def _raise_over_time(signum: int, frame: object) -> None:
    raise OverTime


def _median_ms(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up (allocator, thread pool, kernel selection)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def _max_rss_mb() -> float:
    """The process's peak resident set so far (ru_maxrss), in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(impl: str, seq_len: int, repeats: int, time_limit_s: float, mem_limit_gb: float) -> dict[str, object]:
    """Times forward and forward+backward; a phase that runs out of memory or time is None, and 'error' says why."""
    result: dict[str, object] = {"impl": impl, "seq_len": seq_len, "fwd_ms": None, "fwd_bwd_ms": None}
    errors: list[str] = []
    signal.signal(signal.SIGALRM, _raise_over_time)
    signal.setitimer(signal.ITIMER_REAL, time_limit_s)
    try:
        torch.manual_seed(0)
        layer = build(impl)
        # what the process holds before any pass (torch, the layer): part of every peak, the same for any T
        result["base_rss_mb"] = _max_rss_mb()
        x = torch.randn(1, seq_len, DIM)  # [B, T, dim]

        def fwd() -> None:
            with torch.no_grad():
                layer(x)

        def fwd_bwd() -> None:
            layer.zero_grad(set_to_none=True)
            layer(x.clone().requires_grad_(True)).sum().backward()

        for (name, label), fn in zip(PHASES, (fwd, fwd_bwd), strict=True):
            try:
                result[f"{name}_ms"] = _median_ms(fn, repeats)
            except (RuntimeError, MemoryError) as e:
                if not is_out_of_memory(e):
                    raise
                errors.append(f"{label}: out of memory (address space capped at {mem_limit_gb:g} GiB)")
                gc.collect()
    except (RuntimeError, MemoryError) as e:  # building the layer or its input
        if not is_out_of_memory(e):
            raise
        errors.append(f"setup: out of memory (address space capped at {mem_limit_gb:g} GiB)")
    except OverTime:
        errors.append(f"over the {time_limit_s:g} s time limit")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    result["peak_rss_mb"] = _max_rss_mb()
    result |= {"repeats": repeats, "threads": torch.get_num_threads(), "torch": torch.__version__}
    # the kernels torch dispatched to (AVX2, AVX512, ...): SDPA's CPU flash attention is vectorised by them
    result |= {"cpu": cpu_name(), "cpu_kernels": torch.backends.cpu.get_cpu_capability()}
    result["mem_limit_gb"] = mem_limit_gb
    if impl == "lucidrains":
        from importlib.metadata import version

        result["peer_version"] = version(PEER_PACKAGE)
    if errors:
        result["error"] = "; ".join(errors)
    return result


def run_child(impl: str, seq_len: int, repeats: int, time_limit_s: float, mem_limit_gb: float) -> dict[str, object]:
    """One measurement in a fresh interpreter, so its peak RSS is its own (the peer's in its own env)."""
    python = sys.executable
    if impl == "lucidrains":
        if not PEER_PYTHON.exists():
            raise SystemExit(f"error: the peer's environment is missing: {PEER_HINT}")
        python = str(PEER_PYTHON)
    cmd = [python, __file__, "--impl", impl, "--seq-len", str(seq_len), "--repeats", str(repeats), "--json"]
    cmd += ["--time-limit-s", str(time_limit_s), "--mem-limit-gb", str(mem_limit_gb)]
    try:
        # the child stops itself at the limit; this margin only catches one stuck inside a single long op
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=time_limit_s + 120)
    except subprocess.TimeoutExpired:
        return {"impl": impl, "seq_len": seq_len, "error": f"over the {time_limit_s:g} s time limit (killed)"}
    lines = out.stdout.strip().splitlines()
    if lines and lines[-1].startswith("{"):
        return json.loads(lines[-1])
    why = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
    return {"impl": impl, "seq_len": seq_len, "error": why}


def _cell(r: dict[str, object], key: str) -> str:
    if r.get(key) is not None:
        return str(r[key])
    err = str(r.get("error", ""))
    label = "forward+backward" if key == "fwd_bwd_ms" else "forward"
    if f"{label}: out of memory" in err or "setup: out of memory" in err:
        return "out of memory"
    return "over time" if "time limit" in err else "failed"


def _ran_out_of_memory(r: dict[str, object]) -> bool:
    return "out of memory" in str(r.get("error", ""))


def _rss_cell(r: dict[str, object]) -> str:
    # a run stopped by the cap never reached the memory it needed: its RSS is only a lower bound
    rss = r.get("peak_rss_mb")
    return "-" if rss is None else f"{rss} (stopped)" if _ran_out_of_memory(r) else str(rss)


def _ratio(rounds: list[tuple[dict[str, object], dict[str, object]]], key: str) -> str:
    """num/den per round of (num, den) results; over several rounds the median and, in brackets, the range."""
    values = []
    for num, den in rounds:
        a, b = num.get(key), den.get(key)
        if a is None or b is None:
            return "-"
        values.append(float(a) / float(b))  # type: ignore[arg-type]
    bound = ">" if key == "peak_rss_mb" and any(_ran_out_of_memory(num) for num, _ in rounds) else ""
    text = f"{bound}{statistics.median(values):.2f}x"
    return text if len(values) == 1 else f"{text} ({min(values):.2f}-{max(values):.2f})"


def combine_rounds(results: list[dict[str, object]]) -> dict[str, object]:
    """One impl's results over rounds -> one result: the median of each measurement that every round has (a
    round without it makes it None, and that round's error is kept)."""
    out = dict(results[0])
    for key in ("fwd_ms", "fwd_bwd_ms", "peak_rss_mb"):
        values = [r.get(key) for r in results]
        out[key] = None if any(v is None for v in values) else round(statistics.median(values), 1)  # type: ignore[type-var]
    errors = [str(r["error"]) for r in results if "error" in r]
    if errors:
        out["error"] = "; ".join(dict.fromkeys(errors))
    out["rounds"] = len(results)
    return out


def table(
    lengths: list[int], repeats: int, impls: list[str], time_limit_s: float, mem_limit_gb: float, rounds: int = 1
) -> tuple[str, bool]:
    """Markdown, one row per length and impl; the other impls' rows say how many times NSA is faster/smaller.
    With it, whether any measurement failed (ran out of time, or crashed): its cells say so. Running out of the
    memory cap is what that length needs, measured: no failure.

    With rounds > 1 each length is measured that many times, the impls' order reversed every other round, so
    that a machine whose speed drifts over minutes (a shared host) slows both sides of a ratio alike: cells are
    medians over rounds, ratios the median of the per-round ratios with their range.
    """
    head = ["T", "impl", "fwd ms", "fwd+bwd ms", "peak RSS MiB"]
    if "nsa" in impls and len(impls) > 1:
        head += ["NSA fwd speedup", "NSA fwd+bwd speedup", "peak RSS / NSA's"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---:|" * 2 + "---:|" * (len(head) - 2)]
    failed = False
    measured: list[dict[str, object]] = []
    for T in lengths:
        per_round = []
        for n in range(rounds):
            order = impls if n % 2 == 0 else impls[::-1]
            res = {i: run_child(i, T, repeats, time_limit_s, mem_limit_gb) for i in order}
            for i in order:
                print(f"# {json.dumps(res[i])}", file=sys.stderr, flush=True)
            per_round.append(res)
            measured += res.values()
        for i in impls:
            r = combine_rounds([res[i] for res in per_round])
            failed = failed or ("error" in r and not _ran_out_of_memory(r))
            cells = [str(T), LABELS[i], _cell(r, "fwd_ms"), _cell(r, "fwd_bwd_ms"), _rss_cell(r)]
            if len(head) > 5:
                if i == "nsa":
                    cells += ["", "", ""]
                else:
                    pairs = [(res[i], res["nsa"]) for res in per_round]
                    cells += [_ratio(pairs, "fwd_ms"), _ratio(pairs, "fwd_bwd_ms"), _ratio(pairs, "peak_rss_mb")]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + _machine_line(measured), failed


def _machine_line(results: list[dict[str, object]]) -> str:
    """What the table ran on, from the measurements themselves (a peer's child reports the same machine)."""
    seen = {(r["cpu"], r["cpu_kernels"], r["threads"]) for r in results if "cpu" in r}
    return "".join(f"\n\nCPU: {cpu} (torch's kernels: {isa}), threads: {n}" for cpu, isa, n in sorted(seen))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", choices=IMPLS)
    ap.add_argument("--seq-len", type=positive_int)
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--time-limit-s", type=positive_float, default=600.0, help="stop one measurement after this long")
    ap.add_argument(
        "--mem-limit-gb", type=float, default=default_mem_limit_gb(), help="address-space cap in GiB, 0 for none"
    )
    ap.add_argument("--table", action="store_true", help="run the impls over 1k..32k and print a Markdown table")
    # the --table options default to None, so that one given without --table is refused rather than ignored
    ap.add_argument("--lengths", help=f"for --table: a comma list (default {','.join(map(str, TABLE_LENGTHS))})")
    ap.add_argument("--impls", help="for --table: a comma list of nsa,dense,lucidrains (default nsa,dense)")
    ap.add_argument("--rounds", type=positive_int, help="for --table: measure each length this many times (default 1)")
    args = ap.parse_args(argv)
    if args.mem_limit_gb < 0:
        ap.error("--mem-limit-gb must be 0 (no cap) or more")
    if args.table:
        impls = [i for i in (args.impls or "nsa,dense").split(",") if i]
        if not impls or any(i not in IMPLS for i in impls):
            ap.error(f"--impls takes a comma list of {', '.join(IMPLS)}")
        if len(set(impls)) < len(impls):
            ap.error(f"--impls names an impl twice: {args.impls}")
        try:
            lengths = [int(t) for t in (args.lengths or ",".join(map(str, TABLE_LENGTHS))).split(",")]
        except ValueError:
            ap.error("--lengths takes a comma list of integers")
        if min(lengths) < 1:
            ap.error(f"--lengths must all be at least 1: {args.lengths}")
        text, failed = table(lengths, args.repeats, impls, args.time_limit_s, args.mem_limit_gb, args.rounds or 1)
        print(text)
        if failed:
            # the table is whole; the status tells a script that some of it is no measurement
            print(
                "error: some measurements did not finish: their cells say why, stderr's # lines the details",
                file=sys.stderr,
            )
        return 1 if failed else 0
    given = [f"--{k}" for k in ("lengths", "impls", "rounds") if getattr(args, k) is not None]
    if given:
        ap.error(f"{' and '.join(given)} {'are' if len(given) > 1 else 'is'} for --table only")
    if args.impl is None or args.seq_len is None:
        ap.error("--impl and a positive --seq-len are required (or use --table)")
    cap_address_space(args.mem_limit_gb)
    result = measure(args.impl, args.seq_len, args.repeats, args.time_limit_s, args.mem_limit_gb)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['impl']} T={result['seq_len']}: fwd {result['fwd_ms']} ms, "
            f"fwd+bwd {result['fwd_bwd_ms']} ms, peak RSS {result['peak_rss_mb']} MiB"
        )
    if "error" in result:
        print(f"error: {result['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
