"""data.path counts by where it points: made absolute when a config is loaded (so a run's config.yaml finds its
data from any directory), and compared resolved by a resume (relative and absolute spellings are one source)."""

from __future__ import annotations

import os
from pathlib import Path

from nsa_train.config import (
    check_resume_config,
    config_from_dict,
    config_to_dict,
    dump_yaml,
    load_config,
    resume_conflicts,
)
from nsa_train.data.sources import check_source


def _local(path: str) -> list[str]:
    return ["data.source=local", f"data.path={path}"]


def _corpus(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "a.txt").write_text("One.\n\nTwo.\n")
    return root


def test_a_relative_data_path_is_made_absolute_where_it_is_given(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None, _local("data/dd")).data.path == str(tmp_path / "data" / "dd")
    assert load_config(None, _local("./data/../data/dd/")).data.path == str(tmp_path / "data" / "dd")
    assert load_config(None, _local("data/*.txt")).data.path == str(tmp_path / "data" / "*.txt")  # globs kept
    assert load_config(None, _local("~/x.jsonl")).data.path == os.path.expanduser("~/x.jsonl")
    assert load_config(None).data.path is None
    # a config stored in a run or checkpoint (maybe another host's) is taken as it is
    stored = config_to_dict(load_config(None, _local("/x")))
    stored["data"]["path"] = "rel/x"
    assert config_from_dict(stored).data.path == "rel/x"


def test_the_saved_config_finds_the_data_from_another_directory(tmp_path: Path, monkeypatch) -> None:
    """Resuming from another working directory used to fail with "data.path 'data/dd' does not exist"."""
    monkeypatch.chdir(tmp_path)
    root = _corpus(tmp_path / "data" / "dd")
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(load_config(None, _local("data/dd"))))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = load_config(saved, [])
    assert cfg.data.path == str(root)
    check_source(cfg)  # found: no DataError
    check_resume_config(saved, cfg, "runs/dd")


def test_relative_and_absolute_spellings_are_one_source(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = _corpus(tmp_path / "data" / "dd")
    absolute = load_config(None, _local(str(root)))
    assert resume_conflicts(load_config(None, _local("data/dd")), absolute) == []
    # a run whose config.yaml was written before paths were made absolute: resolved against this directory
    old = tmp_path / "config.yaml"
    old.write_text(dump_yaml(absolute).replace(f"path: {root}", "path: data/dd"))
    assert "path: data/dd" in old.read_text()
    check_resume_config(old, absolute, "runs/dd")
    check_resume_config(old, load_config(None, _local("data/dd")), "runs/dd")
    typed = load_config(None, _local("x"))
    typed.data.path = "data/dd"  # a Config not made by load_config compares resolved as well
    assert resume_conflicts(typed, absolute) == []
    other = resume_conflicts(absolute, load_config(None, _local("data")))
    # local files either way: named as the key that changed (it read `data.source 'local files A' -> ...`)
    assert other == [("data.path", f"{str(root)!r} -> {str(tmp_path / 'data')!r}")]
