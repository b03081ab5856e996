"""Fixtures of the data pipeline tests: configs and tiny local corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsa_train.config.schema import Config, DataConfig, TrainConfig


@pytest.fixture(autouse=True)
def hf_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the Arrow copies `datasets` makes of local files out of the user's HF cache."""
    from nsa_train.data.hf import import_datasets

    # The pipeline sets the offline switches for local sources; keep them from leaking into other tests.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = import_datasets(offline=True)
    cache = tmp_path_factory.mktemp("hf-cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    return cache


def build_cfg(seq_len: int = 32, **data: object) -> Config:
    """A config with dense attention (so any seq_len is valid) and the given data fields."""
    from nsa_train.config.schema import ModelConfig

    data.setdefault("first_batch_timeout_s", 60.0)
    return Config(
        model=ModelConfig(attention="dense"),
        data=DataConfig(**data),  # type: ignore[arg-type]
        train=TrainConfig(seq_len=seq_len),
    )


@pytest.fixture
def make_cfg():
    """Factory of configs: make_cfg(seq_len=..., **data_fields)."""
    return build_cfg


def numbered_docs(n: int, words: int = 40) -> list[str]:
    """Distinct documents of varied length, each starting with a unique tag."""
    return [f"<doc {i:04d}> " + " ".join(f"w{i}_{j}" for j in range(words + (i * 7) % 23)) for i in range(n)]


@pytest.fixture
def jsonl_corpus(tmp_path: Path) -> tuple[Path, list[str]]:
    docs = numbered_docs(60)
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"body": d, "id": i}) + "\n" for i, d in enumerate(docs)), encoding="utf-8")
    return path, docs


@pytest.fixture
def parquet_dir(tmp_path: Path) -> tuple[Path, list[str]]:
    """Four parquet shards, like a hub dataset repository laid out on disk."""
    import pandas as pd

    docs = numbered_docs(80)
    root = tmp_path / "hub-standin" / "data"
    root.mkdir(parents=True)
    for shard in range(4):
        part = docs[shard * 20 : (shard + 1) * 20]
        pd.DataFrame({"text": part}).to_parquet(root / f"train-{shard:05d}.parquet")
    return root.parent, docs
