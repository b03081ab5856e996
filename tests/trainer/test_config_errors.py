"""Config mistakes through the real entry point: nonzero exit, one message, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from trainer_helpers import REPO, clean_env, records

from nsa_train.telemetry import schema


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nsa_train.train", *args],
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for n in needles:
        assert n in errors[0]
    return errors[0]


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("train:\n  stepz: 10\n")
    proc = run(["--config", str(cfg), "--run-dir", str(tmp_path / "run")])
    assert_one_error(proc, "train.stepz", str(cfg))
    # the run directory tells the tools what happened
    recs = records(tmp_path / "run")
    assert recs[0]["kind"] == "boot"
    assert recs[-1]["kind"] == "end" and recs[-1]["reason"] == "error" and recs[-1]["exit_status"] == 2
    assert any(r["kind"] == "error" and "train.stepz" in r["message"] for r in recs)


def test_wrong_type_in_override(tmp_path: Path) -> None:
    proc = run(["--run-dir", str(tmp_path / "run"), "--set", "train.steps=many"])
    assert_one_error(proc, "train.steps", "int")


def test_config_env_disagreeing_with_flag(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("train:\n  steps: 60\n")
    b.write_text("train:\n  steps: 70\n")
    proc = run(["--config", str(a), "--run-dir", str(tmp_path / "run")], CONFIG=str(b))
    assert_one_error(proc, "CONFIG", str(a))


def test_missing_config_file(tmp_path: Path) -> None:
    proc = run(["--config", str(tmp_path / "nope.yaml"), "--run-dir", str(tmp_path / "run")])
    assert_one_error(proc, "not found")


@pytest.mark.slow
def test_batch_not_divisible_is_one_error(tmp_path: Path) -> None:
    proc = run(["--run-dir", str(tmp_path / "run"), "--set", "train.batch_size=6", "--set", "train.grad_accum=4"])
    assert_one_error(proc, "train.batch_size", "divisible")


def test_a_run_that_fails_before_its_first_step_leaves_a_summary(tmp_path: Path) -> None:
    """Seen on a run whose hub dataset could not be opened: the end record was there, summary.json was not (it was
    written only once the model existed), so `nsa report` had no wall time and docs/telemetry.md was wrong."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"body": f"document {i}"}) + "\n" for i in range(20)))
    run_dir = tmp_path / "run"
    sets = ["data.source=local", f"data.path={corpus}", "data.text_field=content"]
    proc = run(["--run-dir", str(run_dir), *(x for kv in sets for x in ("--set", kv))])
    assert_one_error(proc, "'content' is not a column")
    summary = json.loads((run_dir / schema.SUMMARY_JSON).read_text())
    assert summary["end_reason"] == "error" and summary["steps_completed"] == 0 and summary["param_count"] is None
    assert summary["wall_time_s"] > 0
    recs = records(run_dir)
    assert recs[-1]["kind"] == "end"
    # when the attempt began and ended, to tell its summary from an earlier attempt's without the end record
    assert summary["started_at"] <= recs[0]["ts"] and recs[0]["ts"] <= summary["ended_at"] <= recs[-1]["ts"]


def test_a_config_from_the_config_variable_says_so(tmp_path: Path) -> None:
    """The trainer's [config] line named the file only: an exported CONFIG picked it without a word."""
    cfg = tmp_path / "x.yaml"
    cfg.write_text(f"data:\n  source: local\n  path: {tmp_path / 'nope.txt'}\n")  # stops at the data, soon after
    proc = run(["--run-dir", str(tmp_path / "run")], CONFIG=str(cfg))
    assert proc.stdout.splitlines()[1] == f"[config] {cfg} (from $CONFIG; resolved, saved as config.yaml):"
    proc = run(["--config", str(cfg), "--run-dir", str(tmp_path / "run")])
    assert proc.stdout.splitlines()[1] == f"[config] {cfg} (resolved, saved as config.yaml):"


def test_help_says_what_the_defaults_are() -> None:
    """--run-dir's help read "(default: $NSA_RUNS_DIR or ./runs, /<config>-<time>)", and --config's left $CONFIG
    out."""
    out = " ".join(run(["--help"]).stdout.split())
    assert (
        "--run-dir RUN_DIR run directory (default: <runs root>/<config file stem>-<YYYYMMDD-HHMMSS>, the runs root "
        "being $NSA_RUNS_DIR, else ./runs; required with more than one rank)" in out
    ), out
    assert "YAML config (default: $CONFIG, else the run directory's config.yaml on --resume, else configs/" in out


def test_a_one_rank_checkpoint_is_written_by_1_rank() -> None:
    """A resume refusal said "written by 1 ranks"."""
    from nsa_train.runtime.resumable import world_size_mismatch

    assert world_size_mismatch(Path("c.pt"), 1, 2) == (
        "--resume: c.pt was written by 1 rank, this run has 2; the data position cannot continue exactly: start it "
        "with 1 (torchrun --nproc-per-node 1, or `nsa launch --resume`, which does); or add --reshard to continue on 2 "
        "(documents some ranks had read are read again, counted at the start: docs/data.md)"
    )
    assert "written by 2 ranks, this run has 1" in world_size_mismatch(Path("c.pt"), 2, 1)
    unknown = world_size_mismatch(Path("c.pt"), None, 1)
    assert "written by an unknown number of ranks" in unknown and "cannot continue exactly; or add --reshard" in unknown


def test_the_trainer_refuses_a_config_given_twice(tmp_path):
    """argparse kept the last --config without a word (`--config a --config b` trained b)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "nsa_train.train", "--config", "a.yaml", "--config", "b.yaml", "--run-dir", "r"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "--config given twice (a.yaml, b.yaml)" in proc.stderr, proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag", ["--config", "--run-dir"])
def test_the_trainer_refuses_an_empty_config_or_run_dir(tmp_path, flag):
    """`--config "$CFG"` with CFG unset trained the default config (and `--run-dir ''` a default directory)
    without a word: the 24-hour wrong-config failure of the seed reports."""
    from nsa_train.train import parse_args

    with pytest.raises(SystemExit) as e:
        parse_args([flag, ""])
    assert e.value.code == 2


def test_nsa_check_refuses_an_empty_config_or_run_dir(monkeypatch):
    from typer.testing import CliRunner

    from nsa_tui.cli import app

    monkeypatch.setenv("CONFIG", "configs/tiny-cpu.yaml")  # an empty --config must not fall back to it either
    for flag in ("--config", "--run-dir"):
        res = CliRunner().invoke(app, ["check", flag, ""])
        assert res.exit_code == 2 and f"{flag} is empty" in res.output, res.output
    from nsa_train.config import ConfigError, resolve_config_path

    with pytest.raises(ConfigError, match="--config is empty"):
        resolve_config_path(" ", env={})


def test_an_nsa_section_a_dense_model_does_not_read_is_said():
    """`--set model.attention=dense --set nsa.w=32` ran dense without a word about the nsa keys (the data section
    refuses its unread keys; here a warning: the dense twin of an NSA config is how the two are compared)."""
    from nsa_train.config import load_config
    from nsa_train.runtime.preflight import preflight_warnings

    said = preflight_warnings(
        load_config(None, ["model.attention=dense", "nsa.w=32", "nsa.impl=triton"]), "cpu", "fp32"
    )
    assert said == ["model.attention=dense: the nsa section is not used (w=32, impl=triton)"]
    assert preflight_warnings(load_config(None, ["model.attention=dense"]), "cpu", "fp32") == []
    assert preflight_warnings(load_config(None, ["nsa.w=32"]), "cpu", "fp32") == []


def test_a_run_without_a_save_cadence_is_told_what_does_save():
    """With evaluations, the best checkpoints are saved (and latest moves to them): "a crash loses everything" was
    not so."""
    from nsa_train.config import load_config
    from nsa_train.runtime.preflight import preflight_warnings

    sets = ["train.steps=5000", "train.save_every=0", "train.warmup_steps=3"]
    evals = preflight_warnings(load_config(None, [*sets, "train.eval_every=500"]), "cpu", "fp32")
    assert "only an evaluation that improves the val loss saves one (train.eval_every=500)" in evals[0]
    none = preflight_warnings(load_config(None, [*sets, "train.eval_every=0"]), "cpu", "fp32")
    assert none[0].endswith("a crash loses everything")
