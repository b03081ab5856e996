"""The trainer's best checkpoint and summary.json after a tiny run with evaluations."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from nsa_train.telemetry import schema

pytestmark = pytest.mark.slow


def test_summary_matches_val_csv_and_best_pointer(tiny_run: Path) -> None:
    rows = list(csv.DictReader((tiny_run / schema.VAL_CSV).open()))
    assert [int(r["step"]) for r in rows] == [10, 20, 30]
    vals = {int(r["step"]): float(r["val_loss"]) for r in rows}
    best_step = min(vals, key=vals.__getitem__)

    s = json.loads((tiny_run / schema.SUMMARY_JSON).read_text())
    assert s["end_reason"] == schema.END_COMPLETED
    assert s["steps_completed"] == s["total_steps"] == 30
    assert s["tokens_seen"] == 30 * 4 * 64
    assert s["final_val_loss"] == pytest.approx(vals[30], rel=1e-6)
    assert s["best_val_loss"] == pytest.approx(vals[best_step], rel=1e-6)
    assert s["best_step"] == best_step
    assert s["best_val_ppl"] == pytest.approx(math.exp(vals[best_step]), rel=1e-6)
    assert s["final_val_ppl"] == pytest.approx(math.exp(vals[30]), rel=1e-6)
    assert s["wall_time_s"] >= s["train_time_s"] > 0
    assert s["mean_toks_per_s"] == pytest.approx(s["tokens_seen"] / s["train_time_s"], rel=1e-6)

    ckpt_dir = tiny_run / schema.CHECKPOINT_DIR
    best = (ckpt_dir / schema.BEST_POINTER).read_text().strip()
    assert best == schema.checkpoint_name(best_step) + ".pt"
    assert (ckpt_dir / best).is_file()
    assert (ckpt_dir / schema.LATEST_POINTER).read_text().strip() == schema.checkpoint_name(30) + ".pt"
