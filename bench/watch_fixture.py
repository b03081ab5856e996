"""Build a big telemetry-v1 run directory for the `nsa watch` benchmarks (cached under /tmp).

Progress records look like the trainer's (every field of schema.PROGRESS_FIELDS), mirrored
in training.csv; an eval every 1000 records. Values are deterministic. bench/watch_load.py and
bench/watch_live.py build theirs under /tmp/nsa-bench; on its own it builds one where it is told:

    .venv/bin/python bench/watch_fixture.py DIR [--n 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from _args import positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("nsa_train")

from nsa_train.telemetry import schema

LOG_EVERY = 10


def progress_record(i: int, t0: float) -> tuple[dict, list]:
    step = (i + 1) * LOG_EVERY
    ts = t0 + step * 0.05
    loss = 2.5 + 8.0 * math.exp(-step / 2e6) + 0.05 * math.sin(step * 0.37)
    lr = 3e-4 * min(1.0, step / 20000)
    shares = [0.31, 0.36, 0.33]
    m = {
        "loss": round(loss, 5),
        "lr": lr,
        "toks_per_s": 41000.0 + 300 * math.sin(step * 0.011),
        "grad_norm": 0.8,
        "tokens_seen": step * 4096,
        "dt_step_s": 0.05,
        "dt_fetch_s": 0.001,
        "gpu_mem_alloc_gb": 18.9,
        "gpu_mem_reserved_gb": 21.0,
        "rss_gb": 3.1,
        "gate_entropy_mean": 0.95,
        "gate_entropy_min": 0.62,
        "gate_max_mean": 0.45,
        "gate_collapse_frac": 0.0,
        "gate_branch_shares": shares,
        "fallbacks": {},
    }
    row = [
        step,
        m["loss"],
        lr,
        m["toks_per_s"],
        0.8,
        m["tokens_seen"],
        0.05,
        0.001,
        18.9,
        21.0,
        3.1,
        0.95,
        0.62,
        0.45,
        0.0,
        *shares,
        round(ts, 3),
    ]
    return schema.make_record(schema.KIND_PROGRESS, 0, step, 4242, ts, **m), row


def build(path: Path, n: int, *, t0: float | None = None) -> Path:
    """A run with n progress records (cached: reused when it already has them)."""
    marker = path / ".bench-complete"
    if marker.exists() and marker.read_text() == str(n):
        return path
    path.mkdir(parents=True, exist_ok=True)
    t0 = time.time() - n * LOG_EVERY * 0.05 - 5 if t0 is None else t0
    cfg = {"train": {"steps": n * LOG_EVERY * 2, "warmup_steps": 20000}, "monitor": {}}
    (path / schema.RUN_JSON).write_text(
        json.dumps(
            {
                "v": 1,
                "format": schema.FORMAT_NAME,
                "run": path.name,
                "config": cfg,
                "start_time": t0,
                "total_steps": n * LOG_EVERY * 2,
                "world_size": 1,
            }
        )
    )
    with open(path / schema.heartbeat_name(0), "w") as hb, open(path / schema.TRAINING_CSV, "w") as csv:
        csv.write(",".join(schema.TRAINING_CSV_HEADER) + "\n")
        hb.write(schema.encode(schema.make_record(schema.KIND_BOOT, 0, 0, 4242, t0, world_size=1)))
        for i in range(n):
            rec, row = progress_record(i, t0)
            hb.write(schema.encode(rec))
            csv.write(",".join(repr(v) for v in row) + "\n")
            if (i + 1) % 1000 == 0:
                hb.write(
                    schema.encode(
                        schema.make_record(
                            schema.KIND_EVAL, 0, rec["step"], 4242, rec["ts"], val_loss=rec["loss"] + 0.05, val_ppl=10.0
                        )
                    )
                )
    marker.write_text(str(n))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="the run directory to build (reused when it already has --n records)")
    ap.add_argument("--n", type=positive_int, default=100_000, help="progress records (default 100000)")
    args = ap.parse_args()
    print(build(args.dir, args.n))


if __name__ == "__main__":
    main()
