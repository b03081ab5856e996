"""A tiny real run and its run directory: the telemetry v1 contract, end to end."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from trainer_helpers import REPO, clean_env, records, run_train

from nsa_train.telemetry import schema

pytestmark = pytest.mark.slow

ROUND_TRIP = (
    "train.steps=6",
    "train.log_every=2",
    "train.eval_every=3",
    "train.save_every=3",
    "runtime.tensorboard=true",
)
# the tests that read the module's one round-trip run: one worker trains it for both (each trained its own)
SHARES_THE_ROUND_TRIP_RUN = pytest.mark.xdist_group("telemetry-round-trip-run")


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished 6-step run (ROUND_TRIP; a liveness record every 600 s, so none but the trainer's own at its boot,
    first step and end), trained once, and its stdout: read-only, a test that changes it copies it."""
    run_dir = tmp_path_factory.mktemp("round-trip") / "run"
    proc = run_train(run_dir, *ROUND_TRIP, "monitor.liveness_every_s=600")
    assert proc.returncode == 0, proc.stderr
    return run_dir, proc.stdout


@SHARES_THE_ROUND_TRIP_RUN
def test_run_directory_round_trip(round_trip: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, stdout = round_trip
    recs = records(run_dir)
    for r in recs:
        assert schema.validate(r) == [], r
    kinds = [r["kind"] for r in recs]
    assert kinds[0] == "boot" and kinds[-1] == "end"
    assert [r["phase"] for r in recs if r["kind"] == "phase" and not r.get("done")] == list(schema.PHASES)
    [config_done] = [r for r in recs if r["kind"] == "phase" and r.get("done")]
    assert config_done["phase"] == "config" and config_done["total_steps"] == 6  # before run.json exists
    assert recs[-1]["reason"] == "completed" and recs[-1]["exit_status"] == 0
    assert "liveness" in kinds
    # each phase record holds exactly what the schema declares for it (a replay report: test_loop_edges.py)
    for r in (r for r in recs if r["kind"] == "phase"):
        assert set(r) == {*schema.COMMON_FIELDS, *schema.phase_fields(r)}, r

    progress = [r for r in recs if r["kind"] == "progress"]
    assert [r["step"] for r in progress] == [2, 4, 6]
    for r in progress:
        assert set(schema.PROGRESS_FIELDS) <= set(r)
        assert r["gpu_mem_alloc_gb"] is None and r["gpu_mem_reserved_gb"] is None  # CPU
        assert 0 < r["rss_gb"] < 8  # GiB, not MiB
        assert r["grad_norm"] > 0  # measured before zero_grad
        assert 0 < r["gate_entropy_min"] <= r["gate_entropy_mean"] <= math.log(3) + 1e-6
        assert sum(r["gate_branch_shares"]) == pytest.approx(1.0, abs=1e-4)
        assert isinstance(r["fallbacks"], dict)
    assert progress[-1]["tokens_seen"] == 6 * 4 * 32

    evals = [r for r in recs if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [3, 6]
    assert all(r["val_ppl"] == pytest.approx(math.exp(r["val_loss"])) for r in evals)
    ckpts = [r for r in recs if r["kind"] == "checkpoint"]
    assert [r["step"] for r in ckpts] == [3, 6]
    # the size of the file written and the room beside it (the disk_low rule compares the two)
    assert ckpts[-1]["bytes"] == Path(ckpts[-1]["path"]).stat().st_size > 0
    assert 0 < ckpts[-1]["disk_free_gb"] <= shutil.disk_usage(run_dir).total / 2**30

    with open(run_dir / schema.TRAINING_CSV) as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == schema.TRAINING_CSV_HEADER
    assert [int(r[0]) for r in rows[1:]] == [2, 4, 6]
    assert float(rows[1][1]) == progress[0]["loss"]
    with open(run_dir / schema.VAL_CSV) as f:
        vrows = list(csv.reader(f))
    assert tuple(vrows[0]) == schema.VAL_CSV_HEADER and len(vrows) == 3
    log = (run_dir / schema.TRAIN_LOG).read_text()
    assert f"step 2 | loss {progress[0]['loss']:.4f} | lr " in log
    assert "step 2 | loss" in stdout  # also on stdout

    run = json.loads((run_dir / schema.RUN_JSON).read_text())
    assert tuple(run) == schema.RUN_JSON_FIELDS  # every key the trainer writes is in the schema, in its order
    assert run["tokens_per_step"] == 128 and run["total_steps"] == 6 and run["attention_impl"]
    # how much data: counted at the start, said on the [data] line too
    data = run["data_summary"]
    assert tuple(data) == schema.DATA_SUMMARY_FIELDS and data["planned_tokens"] == 6 * 128
    assert data["train_tokens"] == data["train_bytes"] + data["train_documents"] > 0
    assert f"{data['train_documents']:,} training documents ({data['val_documents']:,} held out)" in stdout
    from nsa_train.config import load_config, train_flops_per_token

    # MFU's parts: the config's cost per token; no peak on a CPU, so no MFU in the log either
    assert run["flops_per_token"] == train_flops_per_token(load_config(run_dir / schema.CONFIG_YAML), 257)
    assert (run["device_name"], run["precision"], run["peak_flops"]) == ("cpu", "fp32", None)
    assert " mfu " not in log
    assert (run_dir / schema.CONFIG_YAML).is_file()
    assert list((run_dir / schema.TB_DIR).glob("events.out.tfevents.*"))

    summary = json.loads((run_dir / schema.SUMMARY_JSON).read_text())
    assert tuple(summary) == schema.SUMMARY_FIELDS
    assert summary["end_reason"] == "completed" and summary["tokens_seen"] == 6 * 128
    # the end record carries the loop's time as the summary counts it: a report over attempts divides by it
    assert recs[-1][schema.END_TRAIN_TIME] == round(summary["train_time_s"], 3) > 0
    assert summary["final_val_loss"] == evals[-1]["val_loss"]
    assert summary["best_val_loss"] == min(r["val_loss"] for r in evals)
    best = (run_dir / "checkpoints" / schema.BEST_POINTER).read_text().strip()
    assert best == f"step_{summary['best_step']:08d}.pt"
    assert "alerts" not in summary  # verdicts come from the tools (docs/telemetry.md, summary.json)

    # a resume from step 3 redoes steps 4-6: TensorBoard showed the first attempt's values and the second's at each,
    # a zig-zag, where training.csv was cut back; the redone steps now replace the first attempt's there too
    run_dir = shutil.copytree(run_dir, tmp_path / "run")  # the shared run stays as it finished
    (run_dir / "checkpoints" / schema.LATEST_POINTER).write_text("step_00000003.pt\n")
    proc = run_train(run_dir, *ROUND_TRIP, resume=True)
    assert proc.returncode == 0, proc.stderr
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with open(run_dir / schema.TRAINING_CSV) as f:
        csv_loss = {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}
    tb = EventAccumulator(str(run_dir / schema.TB_DIR))
    tb.Reload()
    tb_loss = [(e.step, e.value) for e in tb.Scalars("train/loss")]
    assert [step for step, _ in tb_loss] == [2, 4, 6] == sorted(csv_loss)
    assert all(value == pytest.approx(csv_loss[step]) for step, value in tb_loss)
    assert [e.step for e in tb.Scalars("val/loss")] == [3, 6]


def test_dense_twin_has_null_gate_stats(run_dir: Path) -> None:
    """Also: a peak given by hand (monitor.peak_tflops) gives MFU even on a CPU, in train.log, which marks the
    warmup's lr as such (seed reports took it for a bug)."""
    proc = run_train(
        run_dir, "train.steps=2", "train.warmup_steps=1", "model.attention=dense", "monitor.peak_tflops=0.001"
    )
    assert proc.returncode == 0, proc.stderr
    progress = [r for r in records(run_dir) if r["kind"] == "progress"]
    assert progress and all(r["gate_entropy_mean"] is None and r["gate_branch_shares"] is None for r in progress)
    run = json.loads((run_dir / schema.RUN_JSON).read_text())
    assert run["peak_flops"] == pytest.approx(1e9)
    log = (run_dir / schema.TRAIN_LOG).read_text().splitlines()
    mfu = progress[0]["toks_per_s"] * run["flops_per_token"] / 1e9
    assert f"lr {progress[0]['lr']:.2e} (warmup) | toks/s" in log[0], log
    assert f"| mfu {mfu * 100:.1f}% |" in log[0], log
    assert f"lr {progress[1]['lr']:.2e} | toks/s" in log[1], log


def test_a_bf16_run_trains(run_dir: Path) -> None:
    """runtime.precision=bf16 (the GPU default, here on the CPU): fp32 weights under bf16 autocast through every
    NSA branch and the optimizer. It once failed at the first step in the fast selection path."""
    proc = run_train(run_dir, "train.steps=2", "train.warmup_steps=1", "runtime.precision=bf16")
    assert proc.returncode == 0, proc.stderr
    config_done = [r for r in records(run_dir) if r["kind"] == "phase" and r.get("done")]
    assert config_done[-1]["precision"] == "bf16"
    progress = [r for r in records(run_dir) if r["kind"] == "progress"]
    assert [r["step"] for r in progress] == [1, 2] and all(math.isfinite(r["loss"]) for r in progress)


def test_nan_stops_with_reason_nan(run_dir: Path) -> None:
    proc = run_train(run_dir, "train.steps=20", "train.lr=1e12", "train.min_lr=1e12", "train.grad_clip=0")
    assert proc.returncode == 3, proc.stderr
    recs = records(run_dir)
    end = recs[-1]
    assert end["kind"] == "end" and end["reason"] == "nan" and end["exit_status"] == 3
    assert end["step"] < 20
    bad = next(r for r in recs if r["kind"] == "error" and "non-finite" in r["message"])
    # the step that went non-finite updated nothing: it is not counted as completed
    summary = json.loads((run_dir / schema.SUMMARY_JSON).read_text())
    assert summary["steps_completed"] == bad["step"] - 1 == end["step"]
    assert summary["tokens_seen"] == summary["steps_completed"] * 4 * 32  # batch 4 x seq 32 (TINY)
    assert "(this rank: loss " in bad["message"]  # which value went non-finite, and what it was


def test_a_nan_stop_logs_the_steps_that_led_to_it(run_dir: Path) -> None:
    """Steps 1-3 updated the weights and the NaN came at step 4 with log_every 10: training.csv stayed empty and no
    progress record said what loss and grad norm led there. (An lr of 1e12 from step 1 makes the NaN come within a
    few steps on any CPU; lr 30 over a 30-step warmup reached it at step 4 on one CPU and at step 29 on another.)"""
    proc = run_train(
        run_dir, "train.steps=30", "train.warmup_steps=1", "train.lr=1e12", "train.min_lr=1e12", "train.grad_clip=0",
        "train.log_every=10",
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    recs = records(run_dir)
    end = recs[-1]
    assert end["reason"] == "nan" and 1 <= end["step"] < 10, end  # before the first log step
    [progress] = [r for r in recs if r["kind"] == "progress"]
    assert progress["step"] == end["step"] and math.isfinite(progress["grad_norm"])
    # the gate statistics are those steps' too, not the failed step's NaN (`gates: entropy -` in nsa status, NaN in
    # the dashboard, for steps whose gates were fine)
    gate_values = [progress["gate_entropy_mean"], progress["gate_max_mean"], *progress["gate_branch_shares"]]
    assert all(math.isfinite(v) for v in gate_values), progress
    rows = (run_dir / schema.TRAINING_CSV).read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == [str(end["step"])]


def test_tiny_default_model_learns(run_dir: Path) -> None:
    """The default model (dim 128, 4 layers, NSA, seq 256, batch 8) on the embedded corpus, 10 steps:
    the loss falls and held-out loss is far below uniform (ln 257 = 5.55 nats)."""
    cmd = [sys.executable, "-m", "nsa_train.train", "--run-dir", str(run_dir)]
    for s in (
        "train.steps=10",
        "train.warmup_steps=3",
        "train.log_every=5",
        "train.eval_batches=2",
        "runtime.tensorboard=false",
    ):
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    recs = records(run_dir)
    losses = [r["loss"] for r in recs if r["kind"] == "progress"]
    assert len(losses) == 2 and losses[1] < losses[0] - 0.5, losses
    val = [r["val_loss"] for r in recs if r["kind"] == "eval"]
    assert val and val[-1] < 4.0, val


def test_checkpoint_record_path_is_absolute_with_a_relative_run_dir(tmp_path: Path) -> None:
    """The contract says absolute: with `--run-dir runs/x` the record said runs/x/checkpoints/..., and `nsa halt`,
    joining it to the run directory, reported runs/x/runs/x/checkpoints/..., a file that does not exist."""
    from trainer_helpers import train_cmd

    from nsa_tui.launch.halt import latest_checkpoint

    cmd = train_cmd(Path("runs/x"), "train.steps=2", "train.save_every=2")
    proc = subprocess.run(cmd, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "runs/x"
    recs = records(run)
    [ckpt] = [r for r in recs if r["kind"] == schema.KIND_CHECKPOINT]
    assert Path(ckpt["path"]).is_absolute() and Path(ckpt["path"]).is_file()
    assert latest_checkpoint(run, recs) == Path(ckpt["path"])
    # a record from before (relative to the trainer's cwd, which it does not name) still finds the file
    legacy = [{**r, "path": "runs/x/checkpoints/" + Path(ckpt["path"]).name} for r in recs]
    assert latest_checkpoint(run, legacy) == Path(ckpt["path"])


def test_why_a_path_fell_back_is_said_once_and_quoted_by_the_alert(tmp_path: Path) -> None:
    """nsa.impl=triton on a machine without a GPU: every call fell back and was counted, but the cause (no CUDA
    device) was recorded in the process only; console, records and `nsa status` said that it fell back, never why."""
    run = tmp_path / "r"
    proc = run_train(run, "train.steps=4", "train.log_every=2", "nsa.impl=triton", TRITON_INTERPRET="0")
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: the NSA ")]
    assert len(said) == 3 and all("path fell back (counted in fallbacks): " in ln for ln in said), proc.stderr
    assert {ln.split()[3] for ln in said} == {
        "compressed.triton->fast",
        "selection.triton->fast",
        "window.triton->fast",
    }
    progress = [r for r in records(run) if r["kind"] == "progress"]
    first, later = progress[0], progress[1:]
    assert set(first["fallback_reasons"]) == {
        "compressed.triton->fast",
        "selection.triton->fast",
        "window.triton->fast",
    }
    assert later and all("fallback_reasons" not in r for r in later)  # once, where first counted
    from nsa_tui.health import build_rules, evaluate
    from nsa_tui.runs import load_run

    h = load_run(run)
    msg = next(
        a.message for a in evaluate(h, first["ts"] + 60, build_rules(h.config)).alerts if a.rule == "fallbacks_rising"
    )
    assert "why (first cause): " in msg and first["fallback_reasons"]["selection.triton->fast"][:40] in msg, msg


@SHARES_THE_ROUND_TRIP_RUN
def test_every_rank_records_its_first_step_at_once(round_trip: tuple[Path, str]) -> None:
    """Ranks other than 0 write only liveness records, every monitor.liveness_every_s (30 s): for the first 30 s of a
    DDP run the dashboard showed "r1 s0" for a rank that trained, as for a stuck one."""
    run, _ = round_trip  # trained with monitor.liveness_every_s=600
    steps = [r["step"] for r in records(run) if r["kind"] == "liveness"]
    assert steps[:2] == [0, 1], steps  # its boot, then its first step (not 600 s later)


def test_a_resume_cuts_its_tables_back_through_the_atomic_writer(tmp_path: Path) -> None:
    """truncate_csv_after wrote `training.csv.tmp`, one name for every process, without fsync, and left it behind
    when a write failed; a leftover at that name (here a directory a copy tool made) failed the resume. It now
    writes as every small run file is written (telemetry.atomic): a temp file of its own, fsynced, then renamed."""
    from nsa_train.telemetry.writer import truncate_csv_after

    table = tmp_path / schema.TRAINING_CSV
    table.write_text("step,loss\n1,2.0\n2,1.9\n3,1.8\n4,1.")  # the last row cut by a kill
    (tmp_path / f"{schema.TRAINING_CSV}.tmp").mkdir()
    truncate_csv_after(table, 2)
    assert table.read_text() == "step,loss\n1,2.0\n2,1.9\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [schema.TRAINING_CSV, f"{schema.TRAINING_CSV}.tmp"]
