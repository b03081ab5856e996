"""What a trainer process imports before its first step: every run, every rank and every test that starts a trainer
pays for each module, so one the run at hand does not use must not be imported."""

from __future__ import annotations

from pathlib import Path

from trainer_helpers import run_train


def imported(stderr: str) -> set[str]:
    """The modules a process imported, from its PYTHONPROFILEIMPORTTIME lines ("import time: self | cumulative |
    name", the name indented by its depth)."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_the_embedded_corpus_trains_without_datasets(tmp_path: Path) -> None:
    """`datasets` (the hub client and ~340 modules with it) cost every process ~0.3 s of CPU on top of pyarrow and
    pandas, for a corpus already in memory (docs/data.md); local files still read through it."""
    proc = run_train(tmp_path / "embedded", "train.steps=2", PYTHONPROFILEIMPORTTIME="1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = imported(proc.stderr)
    assert {"torch", "pyarrow", "nsa_train.data.sources"} <= modules  # the lines were read
    assert "datasets" not in modules and "huggingface_hub" not in modules

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("".join(f"paragraph {i} " * 20 + "\n\n" for i in range(40)), encoding="utf-8")
    local = ("data.source=local", f"data.path={data}", "data.val_docs=4")
    proc = run_train(tmp_path / "local", "train.steps=2", *local, PYTHONPROFILEIMPORTTIME="1", HF_HOME=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "datasets" in imported(proc.stderr)
