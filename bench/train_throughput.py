"""Training throughput of a config with NSA attention and with its dense twin.

Measures what one optimizer step costs (forward, backward, clipping, AdamW) on the
config's model and batch, on real batches of the config's data collected before timing
(NSA's selection cost depends on the attention pattern, so random tokens would flatter it):

    .venv/bin/python bench/train_throughput.py                     # tiny default, CPU
    .venv/bin/python bench/train_throughput.py --steps 30 --json
    .venv/bin/python bench/train_throughput.py --config configs/m7c-125m.yaml --set train.batch_size=4  # GPU
    .venv/bin/python bench/train_throughput.py --compare-compile   # each row eager and torch.compile'd

The model is compiled as the trainer compiles it (train.compile: compile_model) when the config says so, or
twice over with --compare-compile; a compiled row's warm-up steps include the compilation.

Prints a Markdown table (impl, tokens/s, step ms) or, with --json, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _args import nonnegative_int, positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch", "nsa_train")

import torch

from nsa_train.config import ConfigError, load_config, resolve_config_path
from nsa_train.data import DataError, TrainStream, build_tokenizer
from nsa_train.model import build_model, compile_model
from nsa_train.nsa import fallbacks
from nsa_train.runtime.device import autocast_context, configure_matmul, resolve_device, resolve_precision


def collect_batches(cfg, n: int) -> tuple[list[torch.Tensor], int]:
    """n micro-batches [micro, seq_len + 1] from the training stream, and the vocab size."""
    tok = build_tokenizer(cfg.data)
    stream = TrainStream(cfg, tok, 0, 1, cfg.train.batch_size // cfg.train.grad_accum)
    try:
        batches = [torch.cat([x, y[:, -1:]], dim=1) for x, y in (next(stream) for _ in range(n))]
    finally:
        stream.close()
    return batches, cfg.model.vocab_size or tok.vocab_size


def measure(cfg, attention: str, steps: int, warmup: int, batches: list[torch.Tensor], vocab: int) -> dict:
    device = resolve_device(cfg.runtime, 0)
    precision = resolve_precision(cfg.runtime, device)
    configure_matmul(cfg.runtime, device)  # as the trainer does
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, vocab).to(device)
    if cfg.train.compile:
        torch._dynamo.reset()  # each row compiles from scratch, as a training process would
        compile_model(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, fused=device.type == "cuda" or None)
    fell_back = sum(fallbacks.snapshot().values())
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        for a in range(cfg.train.grad_accum):
            xy = batches[(i * cfg.train.grad_accum + a) % len(batches)].to(device)
            with autocast_context(device, precision):
                loss = model(xy[:, :-1], xy[:, 1:]) / cfg.train.grad_accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    impl = str(getattr(model.blocks[0].attn, "impl_name", attention))
    tokens = cfg.train.batch_size * cfg.train.seq_len
    return {
        "attention": attention,
        "impl": impl,
        "compiled": cfg.train.compile,
        "tokens_per_s": tokens / step_s,
        "step_ms": step_s * 1000,
        "step_ms_mean": statistics.mean(times) * 1000,
        "tokens_per_step": tokens,
        "fallbacks": sum(fallbacks.snapshot().values()) - fell_back,  # kernel calls the fast path stood in for
        "steps": steps,
        "device": str(device),
        "precision": precision,
        "fp32_matmul": torch.get_float32_matmul_precision(),
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", help="YAML config (default: the tiny CPU default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=positive_int, default=30, help="timed steps per attention (median reported)")
    p.add_argument("--warmup", type=nonnegative_int, default=5, help="untimed steps first")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    p.add_argument(
        "--nsa-impls",
        nargs="+",
        default=["auto"],
        choices=["auto", "fast", "triton"],
        help="nsa.impl of each NSA row ('triton': the compressed and window kernels too; default: auto)",
    )
    p.add_argument(
        "--compare-compile",
        action="store_true",
        help="measure every row twice: eager, then compiled as train.compile=true does",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = [("nsa", [f"nsa.impl={impl}"]) for impl in args.nsa_impls] + [("dense", [])]
    if args.compare_compile:
        runs = [(attention, extra + compiled) for attention, extra in runs for compiled in ([], ["train.compile=true"])]
    try:  # a config, --set or data mistake is one line, as the trainer says it
        base = resolve_config_path(args.config)
        cfg = load_config(base, args.overrides)
        if args.compare_compile and cfg.train.compile:
            p.error("--compare-compile measures eager and compiled rows: drop --set train.compile=true")
        configs = [(a, load_config(base, [*args.overrides, f"model.attention={a}", *extra])) for a, extra in runs]
        batches, vocab = collect_batches(cfg, (args.warmup + args.steps) * cfg.train.grad_accum)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = []
    for attention, cfg in configs:
        results.append(measure(cfg, attention, args.steps, args.warmup, batches, vocab))
        results[-1]["nsa_impl"] = cfg.nsa.impl if attention == "nsa" else "-"
    if args.json:
        print(json.dumps({"config": str(base) if base else "<embedded default>", "results": results}, indent=2))
        return 0
    r0 = results[0]
    print(
        f"config {base or '<embedded default>'} | {r0['params'] / 1e6:.2f}M params | {r0['tokens_per_step']} "
        f"tokens/step | {r0['device']} {r0['precision']} (fp32 matmul {r0['fp32_matmul']}) "
        f"| {r0['threads']} threads | median of {args.steps} steps"
    )
    print()
    print("| attention | nsa.impl | path | compiled | fallbacks | tokens/s | step ms |")
    print("|---|---|---|---|---:|---:|---:|")
    for r in results:
        compiled = "yes" if r["compiled"] else "no"
        cells = [r["attention"], r["nsa_impl"], r["impl"], compiled, r["fallbacks"], f"{r['tokens_per_s']:,.0f}"]
        print(f"| {' | '.join(map(str, cells))} | {r['step_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
