"""A resume that changes train.batch_size or train.eval_batches scores another validation set: said, not refused."""

from __future__ import annotations

from pathlib import Path

from nsa_train.config import load_config, val_set_change
from nsa_train.config.loader import dump_yaml


def _saved(tmp_path: Path, *overrides: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(load_config(None, list(overrides))))
    return path


def test_a_new_batch_size_changes_the_validation_set_and_says_how_to_keep_it(tmp_path):
    saved = _saved(tmp_path)  # the tiny default: eval_batches 8 x batch_size 8 = 64 windows
    said = val_set_change(saved, load_config(None, ["train.batch_size=16"]))
    assert said is not None
    assert said.startswith("the validation set changes with this resume (train.batch_size 8 -> 16): 128 held-out")
    assert said.endswith("To keep the run's set: --set train.eval_batches=4")
    kept = load_config(None, ["train.batch_size=16", "train.eval_batches=4"])
    assert val_set_change(saved, kept) is None
    odd = val_set_change(saved, load_config(None, ["train.batch_size=12"]))
    assert odd is not None and "To keep" not in odd  # 64 windows are no whole number of batches of 12


def test_nothing_to_say_without_a_change(tmp_path):
    assert val_set_change(_saved(tmp_path), load_config(None, ["train.lr=1e-2"])) is None
    assert val_set_change(tmp_path / "missing.yaml", load_config(None, ["train.batch_size=16"])) is None


def test_a_run_without_periodic_evaluations_still_has_its_final_one(tmp_path):
    """eval_every 0 in both configs said nothing, but the final evaluations (the run's, then the resume's) compare,
    and `best` is chosen across them."""
    saved = _saved(tmp_path, "train.eval_every=0")
    said = val_set_change(saved, load_config(None, ["train.eval_every=0", "train.eval_batches=1"]))
    assert said is not None and said.startswith("the validation set changes with this resume (train.eval_batches")
