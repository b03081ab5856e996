"""The keys a resume may not change (nsa_train/config/resume.py) are exactly those the checkpoint cannot take.

Key by key, every model and NSA field is changed to another valid value, a checkpoint of the first model is
loaded into the second the way the trainer does (strict weights, then the optimizer), and the key must be
pinned exactly when that fails; every data field likewise against the saved data position. A new field
without an entry in these tables fails here, so the list cannot drift from the model or the stream.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from nsa_train.config import ConfigError, DataConfig, ModelConfig, NSAConfig, load_config, resume_conflicts
from nsa_train.data import DataError, TrainStream, build_tokenizer
from nsa_train.model import build_model
from nsa_train.runtime import checkpoint as ck
from nsa_train.runtime.preflight import micro_batch_size
from nsa_train.train import Trainer

BASE = ["model.dim=32", "model.n_layers=1", "model.n_heads=2", "model.n_kv_heads=1", "nsa.w=16", "train.seq_len=32"]

# another valid value for every model and NSA field (BASE's model: dim 32, 2 heads of 16, 1 KV head, l=16 d=8)
MODEL_CHANGES = {
    "model.dim": "48",
    "model.n_layers": "2",
    "model.n_heads": "4",
    "model.n_kv_heads": "2",
    "model.head_dim": "8",
    "model.mlp_ratio": "4",
    "model.vocab_size": "300",
    "model.attention": "dense",
    "model.rope_base": "500000",
    "model.norm_eps": "1e-6",
    "model.init_std": "0.05",
    "model.tie_embeddings": "false",
    "nsa.l": "32",
    "nsa.d": "4",
    "nsa.l_sel": "32",
    "nsa.n_sel": "6",
    "nsa.w": "8",
    "nsa.impl": "reference",
}
# values that keep the model's shapes: the resolved value is what counts
SAME_MODEL = {"model.head_dim": "16", "model.mlp_ratio": "2.7", "model.vocab_size": "257"}

DATA_CHANGES = {
    "data.source": "hf",
    "data.path": "elsewhere.txt",
    "data.hf_name": "other/set",
    "data.hf_config": "null",
    "data.hf_split": "validation",
    "data.text_field": "body",
    "data.tokenizer": "gpt2",
    "data.val_docs": "9",
    "data.seed": "7",
    "data.prefetch": "2",
    "data.first_batch_timeout_s": "60",
    "train.seq_len": "64",
    "train.batch_size": "16",
}


def _fields(cls: type) -> set[str]:
    section = {ModelConfig: "model", NSAConfig: "nsa", DataConfig: "data"}[cls]
    return {f"{section}.{f.name}" for f in dataclasses.fields(cls)}


def test_every_field_has_an_entry() -> None:
    assert set(MODEL_CHANGES) == _fields(ModelConfig) | _fields(NSAConfig)
    assert set(DATA_CHANGES) >= _fields(DataConfig)


def _model_and_optimizer(cfg):
    torch.manual_seed(0)
    model = build_model(cfg, cfg.model.vocab_size or 257)  # the byte tokenizer's vocabulary
    trainer = SimpleNamespace(torch=torch, cfg=cfg, model=model, device=torch.device("cpu"))
    return model, Trainer._make_optimizer(trainer)  # the trainer's own parameter groups


def _checkpoint_refused(saved_cfg, new_cfg, tmp_path: Path) -> bool:
    """Load what the trainer saves for the first config into the second's model and optimizer, as it does."""
    old_model, old_opt = _model_and_optimizer(saved_cfg)
    model, opt = _model_and_optimizer(new_cfg)
    try:
        ck.load_model_state(model, old_model.state_dict(), tmp_path / "step_00000001.pt")
        opt.load_state_dict(old_opt.state_dict())
    except (ck.CheckpointError, ValueError):
        return True
    return False


@pytest.mark.parametrize("key", sorted(MODEL_CHANGES))
def test_a_model_key_is_pinned_exactly_when_the_checkpoint_cannot_load(key: str, tmp_path: Path) -> None:
    base, changed = load_config(None, BASE), load_config(None, [*BASE, f"{key}={MODEL_CHANGES[key]}"])
    refused = _checkpoint_refused(base, changed, tmp_path)
    assert bool(resume_conflicts(base, changed)) == refused, (key, refused)
    if key in SAME_MODEL:
        same = load_config(None, [*BASE, f"{key}={SAME_MODEL[key]}"])
        assert not _checkpoint_refused(base, same, tmp_path) and resume_conflicts(base, same) == []


def _data_position_refused(saved_cfg, new_cfg) -> bool:
    def stream(cfg):
        return TrainStream(cfg, build_tokenizer(cfg.data), 0, 1, micro_batch_size(cfg, 1))

    try:
        stream(new_cfg).load_state_dict(stream(saved_cfg).state_dict())
    except DataError:
        return True
    return False


@pytest.mark.parametrize("key", sorted(DATA_CHANGES))
@pytest.mark.parametrize("source", ["embedded", "local", "hf"])
def test_a_data_key_is_pinned_exactly_when_the_data_position_cannot_continue(
    key: str, source: str, tmp_path: Path
) -> None:
    for name in ("corpus.txt", "elsewhere.txt"):
        (tmp_path / name).write_text("A document.\n\nAnother one.\n")
    base = [f"data.source={source}"] + ([f"data.path={tmp_path / 'corpus.txt'}"] if source == "local" else [])
    value = str(tmp_path / DATA_CHANGES[key]) if key == "data.path" else DATA_CHANGES[key]
    saved = load_config(None, [*BASE, *base])
    if (key == "data.path") != (source == "local") and key in ("data.path", "data.source"):
        # a path without source=local (or local without its path, once the source changes) is no config at all
        with pytest.raises(ConfigError, match="data.path"):
            load_config(None, [*BASE, *base, f"{key}={value}"])
        return
    if (key.startswith("data.hf_") and source != "hf") or (key == "data.text_field" and source == "embedded"):
        # nothing would read it: a config error, not a value a resume could change
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, [*BASE, *base, f"{key}={value}"])
        return
    changed = load_config(None, [*BASE, *base, f"{key}={value}"])
    refused = _data_position_refused(saved, changed)
    assert bool(resume_conflicts(saved, changed)) == refused, (key, refused)
