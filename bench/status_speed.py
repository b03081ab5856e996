"""How fast is `nsa status --json` on a huge run, beside reading everything with pandas?

    .venv/bin/python bench/status_speed.py [--lines 1000000] [--repeat 5] [--dir DIR] [--keep]

Writes a telemetry-v1 run whose heartbeat_rank0.jsonl has ``--lines`` progress records
(hundreds of MB) and whose training.csv has the same rows, then times, wall clock:
1. the real `nsa status --json RUN` executable (start-up included), median of --repeat;
2. the naive way: pandas reading the whole heartbeat (read_json lines, in chunks to bound
   memory) and the whole training.csv.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from _args import positive_int

from nsa_train.telemetry import schema


def write_run(run: Path, lines: int) -> None:
    """A running v1 run: boot, phases, then ``lines`` progress records, 1 s apart, ending now."""
    run.mkdir(parents=True, exist_ok=True)
    total = lines * 10 + 1000
    start = time.time() - lines * 1.0 - 5
    cfg = {"train": {"steps": total, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 50}, "monitor": {}}
    info = {"v": 1, "format": schema.FORMAT_NAME, "run": run.name, "config": cfg, "total_steps": total}
    (run / schema.RUN_JSON).write_text(json.dumps(info))
    template = schema.encode(
        schema.make_record(
            schema.KIND_PROGRESS, 0, 0, 1234, 0.0,
            loss=0.0, lr=0.0, toks_per_s=5000.0, grad_norm=0.8, tokens_seen=0, dt_step_s=0.4, dt_fetch_s=0.01,
            gpu_mem_alloc_gb=18.9, gpu_mem_reserved_gb=21.0, rss_gb=3.1, gate_entropy_mean=0.95,
            gate_entropy_min=0.62, gate_max_mean=0.52, gate_collapse_frac=0.0, gate_branch_shares=[0.31, 0.36, 0.33],
            fallbacks={"sel_triton_unsupported_shape": 0, "cmp_sdpa_mask": 2},
        )
    )  # fmt: skip
    # fill the variable fields by string substitution: 1M json.dumps calls would dominate the bench setup
    template = template.replace('"ts":0.0', '"ts":{ts:.3f}').replace('"step":0', '"step":{step}')
    template = template.replace('"loss":0.0', '"loss":{loss:.5f}').replace('"lr":0.0', '"lr":{lr:.6g}')
    template = template.replace('"tokens_seen":0', '"tokens_seen":{tok}')
    from nsa_train.config.schedule import lr_at

    with open(run / schema.heartbeat_name(0), "w") as hb, open(run / schema.TRAINING_CSV, "w") as csv:
        hb.write(schema.encode(schema.make_record(schema.KIND_BOOT, 0, 0, 1234, start - 2)))
        hb.write(schema.encode(schema.make_record(schema.KIND_PHASE, 0, 0, 1234, start - 1, phase="train")))
        csv.write(",".join(schema.TRAINING_CSV_HEADER) + "\n")
        buf_h, buf_c = [], []
        for i in range(1, lines + 1):
            step, ts = i * 10, start + i
            loss = 6.0 - 4.0 * i / lines  # steadily learning: a healthy verdict
            lr = lr_at(step, lr=3e-3, min_lr=3e-4, warmup_steps=50, total_steps=total)
            buf_h.append(template.replace("{ts:.3f}", f"{ts:.3f}").replace("{step}", str(step))
                         .replace("{loss:.5f}", f"{loss:.5f}").replace("{lr:.6g}", f"{lr:.6g}")
                         .replace("{tok}", str(step * 2048)))  # fmt: skip
            buf_c.append(
                f"{step},{loss:.5f},{lr:.6g},5000.0,0.8,{step * 2048},0.4,0.01,18.9,21.0,3.1,0.95,0.62,0.52,0.0,"
                f"0.31,0.36,0.33,{ts:.3f}\n"
            )
            if len(buf_h) == 50_000:
                hb.write("".join(buf_h))
                csv.write("".join(buf_c))
                buf_h, buf_c = [], []
        hb.write("".join(buf_h))
        csv.write("".join(buf_c))


def time_cmd(argv: list[str], repeat: int) -> tuple[float, float, str]:
    times, out = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        p = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        out = p.stdout
    return statistics.median(times), min(times), out


def naive_pandas(run: Path) -> tuple[float, dict]:
    import pandas as pd

    t0 = time.perf_counter()
    last = None
    rows = 0
    for chunk in pd.read_json(run / schema.heartbeat_name(0), lines=True, chunksize=200_000):
        rows += len(chunk)
        prog = chunk[chunk["kind"] == "progress"]
        if len(prog):
            last = prog.iloc[-1]
    csv = pd.read_csv(run / schema.TRAINING_CSV)
    elapsed = time.perf_counter() - t0
    return elapsed, {"rows": rows, "csv_rows": len(csv), "step": int(last["step"]), "loss": float(last["loss"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=positive_int, default=1_000_000)
    ap.add_argument("--repeat", type=positive_int, default=5)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="nsa-status-bench-"))
    run = base / "huge"
    try:
        t0 = time.perf_counter()
        if not (run / schema.heartbeat_name(0)).exists():
            write_run(run, args.lines)
        setup = time.perf_counter() - t0
        hb_mb = (run / schema.heartbeat_name(0)).stat().st_size / 2**20
        csv_mb = (run / schema.TRAINING_CSV).stat().st_size / 2**20
        nsa = str(Path(sys.executable).parent / "nsa")
        subprocess.run([nsa, "status", "--json", str(run)], capture_output=True)  # warm the page cache
        med, best, out = time_cmd([nsa, "status", "--json", str(run)], args.repeat)
        verdict = json.loads(out)
        help_med, _, _ = time_cmd([nsa, "--help"], args.repeat)
        print(f"run: {run} ({args.lines:,} progress lines; heartbeat {hb_mb:.0f} MiB, training.csv {csv_mb:.0f} MiB;"
              f" written in {setup:.1f} s)\n")  # fmt: skip
        print("| method | wall time (s) | result |")
        print("|---|---:|---|")
        print(f"| `nsa --help` (start-up only), median of {args.repeat} | {help_med:.3f} | - |")
        print(
            f"| `nsa status --json RUN`, median of {args.repeat} (min {best:.3f}) | {med:.3f} | "
            f"step {verdict['step']}, loss {verdict['loss']:.5f}, health {verdict['health']} |"
        )
        if not args.skip_naive:
            t, res = naive_pandas(run)
            print(
                f"| pandas: read_json(lines, chunks) of the whole heartbeat + read_csv of training.csv | {t:.2f} | "
                f"step {res['step']}, loss {res['loss']:.5f} ({res['rows']:,} records) |"
            )
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
