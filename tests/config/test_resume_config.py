"""What a resume may not change, by key: the comparison both `nsa launch --resume` and the trainer make
before anything heavy (torch-free; tests/trainer/test_resume_pins.py holds the list to the real model and
data stream)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsa_train.config import ConfigError, check_resume_config, load_config, resume_conflicts, schedule_change
from nsa_train.config.loader import dump_yaml


def conflicts(*overrides: str, saved: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return resume_conflicts(load_config(None, list(saved)), load_config(None, list(overrides)))


def test_the_same_config_and_what_a_resume_may_change_are_no_conflict() -> None:
    assert conflicts() == []
    # the schedule, the batch, the attention's speed path and sparsity that has no weights are the user's to change
    assert conflicts("train.steps=900", "train.lr=1e-3", "train.batch_size=16", "nsa.impl=reference") == []
    assert conflicts("nsa.w=128", "nsa.n_sel=8", "nsa.d=4", "model.rope_base=500000", "runtime.threads=4") == []


def test_a_changed_shape_or_data_position_is_named_with_both_values() -> None:
    assert conflicts("model.n_layers=6") == [("model.n_layers", "4 -> 6")]
    assert conflicts("nsa.l=32") == [("nsa.l", "16 -> 32")]
    assert conflicts("train.seq_len=512") == [("train.seq_len", "256 -> 512")]
    assert conflicts("data.tokenizer=gpt2") == [("data.tokenizer", "byte -> gpt2")]
    assert conflicts("data.seed=1", "data.val_docs=9") == [("data.seed", "1234 -> 1"), ("data.val_docs", "8 -> 9")]
    assert conflicts("model.attention=dense") == [("model.attention", "nsa -> dense")]  # not nsa.l as well


def test_values_count_as_the_model_resolves_them() -> None:
    assert conflicts("model.head_dim=32") == []  # dim 128 // 4 heads: the same model
    assert conflicts("model.head_dim=16") == [("model.head_dim", "32 (dim // n_heads) -> 16")]
    assert conflicts("model.mlp_ratio=2.7") == []  # 128 * 2.7 rounds up to the same 352
    assert conflicts("model.mlp_ratio=3") == [("model.mlp_ratio", "2.66667 (MLP width 352) -> 3 (MLP width 384)")]
    # a head_dim and MLP width that only follow the changed dim are left to it
    assert conflicts("model.dim=64") == [("model.dim", "128 -> 64")]


def test_a_source_counts_by_what_it_reads() -> None:
    hf = ("data.source=hf",)
    assert conflicts("data.source=hf", "data.text_field=body", saved=hf) == [("data.text_field", "'text' -> 'body'")]
    assert conflicts("data.source=hf", saved=hf) == []
    assert conflicts("data.source=hf", "data.hf_split=validation", saved=hf) == [
        ("data.source", "'hf dataset HuggingFaceFW/fineweb-edu (sample-10BT) split train' -> "
         "'hf dataset HuggingFaceFW/fineweb-edu (sample-10BT) split validation'"),
    ]  # fmt: skip


def test_check_names_the_run_and_how_to_go_on(tmp_path: Path) -> None:
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(load_config(None)))
    check_resume_config(saved, load_config(None, ["train.steps=900"]), "runs/a")
    with pytest.raises(ConfigError) as e:
        check_resume_config(saved, load_config(None, ["model.dim=64", "train.seq_len=64"]), "runs/a")
    msg = str(e.value)
    assert msg.startswith("--resume: runs/a cannot continue with model.dim 128 -> 64, train.seq_len 256 -> 64: ")
    assert "its checkpoint's weights and data position depend on them" in msg
    assert "leave these keys out of --set and --config" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="its checkpoint's data position depends on it. "):
        check_resume_config(saved, load_config(None, ["data.seed=7"]), "runs/a")


def test_a_run_without_a_readable_config_is_left_to_the_trainers_checks(tmp_path: Path) -> None:
    check_resume_config(tmp_path / "missing.yaml", load_config(None, ["model.dim=64"]), "runs/a")
    old = tmp_path / "config.yaml"
    old.write_text("model:\n  retired_key: 1\n")
    check_resume_config(old, load_config(None, ["model.dim=64"]), "runs/a")


def test_schedule_change_compares_the_next_steps_lr(tmp_path: Path) -> None:
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(load_config(None)))  # 600 steps, warmup 50, lr 3e-3 -> 3e-4
    assert schedule_change(saved, load_config(None), 300) is None
    assert schedule_change(saved, load_config(None, ["train.batch_size=16"]), 300) is None  # not the schedule
    assert schedule_change(tmp_path / "missing.yaml", load_config(None, ["train.lr=1e-3"]), 300) is None
    # mid-run: a lower peak; no advice on keeping an end the run has not reached
    msg = schedule_change(saved, load_config(None, ["train.lr=1e-3"]), 300)
    assert msg is not None and msg.startswith("the lr schedule changes with this resume (train.lr 0.003 -> 0.001): ")
    assert "step 301 trains at lr 6.98e-04, where the run's schedule had 1.83e-03 (0.38x)" in msg
    assert "--set" not in msg
    # a later warmup that still covers the resume step changes the lr too
    msg = schedule_change(saved, load_config(None, ["train.warmup_steps=400"]), 300)
    assert msg is not None and "train.warmup_steps 50 -> 400" in msg and "step 301 trains at lr 2.26e-03" in msg


def test_schedule_change_after_an_unchanged_next_step(tmp_path: Path) -> None:
    """Review revBC: a run halted in its warmup (step 41 of 50) and resumed with train.steps 80 -> 100 trains step 42
    at the lr it had, and its decay is another: nothing was said, and the lr chart shows no jump at the resume."""
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(load_config(None, ["train.steps=80"])))  # warmup 50, lr 3e-3 -> 3e-4
    msg = schedule_change(saved, load_config(None, ["train.steps=100"]), 41)
    assert msg is not None and msg.startswith("the lr schedule changes with this resume (train.steps 80 -> 100): ")
    # where the cosines part (step 51, by less than 1%), and the first step 1% apart
    assert "step 42 trains at the lr the run's schedule had, and from step 51 on they part: step 53 trains at lr" in msg
    assert schedule_change(saved, load_config(None, ["train.steps=80"]), 41) is None
    # a change no step of the rest of the run trains with: the warmup of steps already taken
    assert schedule_change(saved, load_config(None, ["train.steps=80", "train.warmup_steps=40"]), 79) is None


def test_schedule_change_of_a_schedule_that_ended_at_zero(tmp_path: Path) -> None:
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(load_config(None, ["train.min_lr=0"])))  # ends at lr 0: no ratio, no --set to keep it
    msg = schedule_change(saved, load_config(None, ["train.min_lr=0", "train.steps=800"]), 600)
    assert msg is not None and msg.endswith("where the run's schedule had 0.00e+00") and "--set" not in msg
