"""The `datasets` Arrow copies of a local source in `nsa check`'s disk row: the copy a start is about to build is
counted before it fills the disk, and the copies earlier versions of the files left behind are said."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nsa_train.config import load_config
from nsa_train.config.schema import Config
from nsa_train.data.arrow_cache import (
    ARROW_FACTOR,
    SIDECAR,
    copies,
    datasets_cache_dir,
    estimate_copy_bytes,
)
from nsa_train.data.sources import open_source
from nsa_train.runtime.disk_room import size_text
from nsa_tui.check_cheap import DISK_FREE_ENV, check_disk, disk_needed_bytes

PARAMS = 1000  # checkpoints of ~70 KiB: small beside the copies of these corpora of ~1 MiB
GIB = 2**30


@pytest.fixture
def cache(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The check finds the cache where the trainer's `datasets` does: by the environment (conftest points
    datasets.config there already)."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(hf_cache))
    return hf_cache


def _texts(n: int, tag: str) -> list[str]:
    return [f"{tag} {i:05d} " + " ".join(f"word{(i * 7 + j) % 997}" for j in range(60)) for i in range(n)]


def _write(path: Path, texts: list[str]) -> None:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)))
    elif path.suffix == ".txt":
        path.write_text("".join(t + "\n\n" for t in texts))
    else:
        import pandas as pd

        codec = "zstd" if "zstd" in path.name else "snappy"
        pd.DataFrame({"text": texts, "id": range(len(texts))}).to_parquet(path, compression=codec)


def _corpus(tmp_path: Path, name: str, texts: list[str]) -> Path:
    """tmp_path/corpus holding one file ``name`` of ``texts``: a local data.path."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write(corpus / name, texts)
    return corpus


def _disk(cfg: Config, tmp_path: Path, free: int):
    return check_disk(cfg, tmp_path / "run", PARAMS, lambda _p: free)


def _arrow_bytes(c: Path) -> int:
    return sum(f.stat().st_size for f in c.rglob("*.arrow"))


@pytest.mark.parametrize("name", ["c.txt", "c.jsonl", "c.parquet", "c-zstd.parquet"])
def test_the_copy_about_to_be_built_is_counted_then_not(tmp_path: Path, cache: Path, make_cfg, name: str) -> None:
    """The row counted checkpoints only: a corpus of tens of GB filled the disk at the start, converting."""
    corpus = _corpus(tmp_path, name, _texts(2000, "doc"))
    cfg = make_cfg(source="local", path=str(corpus), val_docs=4)
    builder = {".txt": "text", ".jsonl": "json", ".parquet": "parquet"}[Path(name).suffix]
    estimate = estimate_copy_bytes(builder, [str(corpus / name)], "text")
    ckpt = disk_needed_bytes(cfg, PARAMS)
    free = ckpt + estimate // 2  # room for the checkpoints twice over, not for them and the copy
    row = _disk(cfg, tmp_path, free)
    assert row.status == "fail", row
    assert f"+~{size_text(estimate)} for datasets' Arrow copy of data.path in {cache}" in row.reason
    assert _disk(cfg, tmp_path, (ckpt + estimate) * 2 + 1).status == "pass"

    open_source(cfg, 0, 1)  # the trainer's load builds the copy
    [built] = copies(cache)
    # the measured factor errs towards room, by no more than half the copy
    assert _arrow_bytes(built.path) <= estimate <= 1.5 * _arrow_bytes(built.path), (estimate, built)
    row = _disk(cfg, tmp_path, free)
    assert row.status == "pass", row
    assert "+~" not in row.reason
    assert f"datasets' Arrow copy of data.path in {cache} is there already ({size_text(built.bytes)})" in row.reason


def test_copies_of_earlier_versions_are_named_and_never_removed(tmp_path: Path, cache: Path, make_cfg) -> None:
    corpus, other = tmp_path / "corpus", tmp_path / "other"
    corpus.mkdir()
    other.mkdir()
    _write(corpus / "a.jsonl", _texts(300, "first"))
    _write(other / "b.jsonl", _texts(300, "another"))
    cfg = make_cfg(source="local", path=str(corpus), val_docs=4)
    open_source(cfg, 0, 1)
    open_source(make_cfg(source="local", path=str(other), val_docs=4), 0, 1)
    [first] = [c for c in copies(cache) if c.data_path == str(corpus)]
    assert json.loads((first.path / SIDECAR).read_text())["data_path"] == str(corpus)

    _write(corpus / "a.jsonl", _texts(400, "second"))  # a new version of data.path
    row = _disk(cfg, tmp_path, 100 * GIB)
    assert row.status == "pass", row
    assert "+~" in row.reason and "is there already" not in row.reason
    rel = first.path.relative_to(cache).as_posix()
    assert (
        f"{size_text(first.bytes)} in 1 Arrow copy of earlier versions of data.path (or of its files by another "
        f"path) in {cache}: {rel} (remove with rm -r when no run reads them; nsa never does)"
    ) in row.reason
    assert "in 1 Arrow copy of other data (or built before their source was recorded)" in row.reason

    open_source(cfg, 0, 1)  # the new version's copy: the check removed nothing, nor does the load
    assert len(copies(cache)) == 3 and first.path.is_dir()


def test_a_copy_read_through_another_path_to_the_files_is_data_paths(
    tmp_path: Path, cache: Path, make_cfg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative data.path is made absolute against the physical working directory; a shell in a directory reached
    through a symlink spells the same files $PWD/corpus. `nsa check` given that named the copy the trainer had made as
    "other data". The sidecar records the resolved path too, so a link moved on later does not claim the copy."""
    real, other = tmp_path / "real", tmp_path / "other"
    real.mkdir()
    other.mkdir()
    corpus = _corpus(real, "a.jsonl", _texts(300, "doc"))
    _corpus(other, "a.jsonl", _texts(300, "else"))
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.chdir(link)  # a shell's `cd link`: the process's working directory is the physical one
    cfg = load_config(None, ["data.source=local", "data.path=corpus", "data.val_docs=4"])
    assert cfg.data.path == str(corpus)
    open_source(cfg, 0, 1)
    via_link = make_cfg(source="local", path=str(link / "corpus"), val_docs=4)  # the shell's $PWD/corpus
    row = _disk(via_link, tmp_path, 100 * GIB)
    # datasets keys its copy on the paths given: through the link it builds another, which the row counts
    assert "+~" in row.reason and "other data" not in row.reason, row
    assert "in 1 Arrow copy of earlier versions of data.path (or of its files by another path)" in row.reason
    open_source(via_link, 0, 1)
    assert len(copies(cache)) == 2 and "is there already" in _disk(via_link, tmp_path, 100 * GIB).reason
    link.unlink()
    link.symlink_to(other)  # the link now names other files: neither copy is theirs
    row = _disk(via_link, tmp_path, 100 * GIB)
    assert "in 2 Arrow copies of other data" in row.reason and "earlier versions" not in row.reason, row


def test_leftover_copies_over_the_free_space_or_10_gib_are_a_warning(tmp_path: Path, cache: Path, make_cfg) -> None:
    corpus = _corpus(tmp_path, "a.txt", _texts(300, "first"))
    cfg = make_cfg(source="local", path=str(corpus), val_docs=4)
    open_source(cfg, 0, 1)
    [old] = copies(cache)
    _write(corpus / "a.txt", _texts(300, "second"))
    open_source(cfg, 0, 1)  # this version's copy is there; the first one is left over
    # no parameters, no checkpoints: only the leftover copy against the free space
    row = check_disk(cfg, tmp_path / "run", 0, lambda _p: old.bytes - 1)
    assert row.status == "warn", row
    assert row.reason.startswith("large leftover Arrow copies in the datasets cache: ")
    assert "in 1 Arrow copy of earlier versions of data.path" in row.reason
    assert check_disk(cfg, tmp_path / "run", 0, lambda _p: old.bytes * 4).status == "pass"
    # over 10 GiB on a large disk: a copy of unrecorded data, its file sparse (its size is what `datasets` wrote)
    (cache / "json" / "nsa-0000000000000000-0000000000000000").mkdir(parents=True)
    with open(cache / "json" / "nsa-0000000000000000-0000000000000000" / "json-train.arrow", "wb") as f:
        f.truncate(11 * GIB)
    row = check_disk(cfg, tmp_path / "run", 0, lambda _p: 1000 * GIB)
    assert row.status == "warn", row
    assert "11.00 GiB in 1 Arrow copy of other data (or built before their source was recorded)" in row.reason


def test_a_touched_file_is_another_copy(tmp_path: Path, cache: Path, make_cfg) -> None:
    """`datasets` keys its copy on the files' paths and mtimes too: the same bytes touched are built again."""
    corpus = _corpus(tmp_path, "a.jsonl", _texts(300, "doc"))
    cfg = make_cfg(source="local", path=str(corpus), val_docs=4)
    open_source(cfg, 0, 1)
    assert "is there already" in _disk(cfg, tmp_path, 100 * GIB).reason
    st = os.stat(corpus / "a.jsonl")
    os.utime(corpus / "a.jsonl", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    row = _disk(cfg, tmp_path, 100 * GIB)
    assert "+~" in row.reason and "in 1 Arrow copy of earlier versions of data.path" in row.reason
    open_source(cfg, 0, 1)
    assert len(copies(cache)) == 2  # as the row said: datasets built another
    assert "is there already" in _disk(cfg, tmp_path, 100 * GIB).reason


def test_an_interrupted_copy_is_built_again(tmp_path: Path, cache: Path, make_cfg) -> None:
    """A start stopped while converting leaves datasets' <hash>.incomplete/ directory: no copy to read."""
    corpus = _corpus(tmp_path, "a.jsonl", _texts(300, "doc"))
    cfg = make_cfg(source="local", path=str(corpus), val_docs=4)
    open_source(cfg, 0, 1)
    [built] = copies(cache)
    [info] = built.path.glob("*/*/dataset_info.json")
    info.parent.rename(info.parent.with_name(info.parent.name + ".incomplete"))  # as it stood before the rename
    row = _disk(cfg, tmp_path, 100 * GIB)
    assert "+~" in row.reason and "is there already" not in row.reason, row
    assert "in 1 Arrow copy of earlier versions of data.path" in row.reason


def test_datasets_cache_dir_is_datasets_own_rule(tmp_path: Path) -> None:
    """HF_DATASETS_CACHE, else HF_HOME/datasets, else XDG_CACHE_HOME/huggingface/datasets, else ~/.cache/...: the
    directory `datasets` itself resolves, each asked of a fresh interpreter (it reads them at import)."""
    base = {k: v for k, v in os.environ.items() if k not in ("HF_DATASETS_CACHE", "HF_HOME", "XDG_CACHE_HOME")}
    base["HOME"] = str(tmp_path / "home")
    cases = [
        {"HF_DATASETS_CACHE": str(tmp_path / "dc"), "HF_HOME": str(tmp_path / "hh")},
        {"HF_HOME": str(tmp_path / "hh"), "XDG_CACHE_HOME": str(tmp_path / "xdg")},
        {"XDG_CACHE_HOME": str(tmp_path / "xdg")},
        {},
        {"HF_DATASETS_CACHE": "~/elsewhere"},
    ]
    # datasets/config.py alone (the package's __init__ imports everything: ~1 s a case)
    code = (
        "import importlib.util, os\n"
        "path = os.path.join(os.path.dirname(importlib.util.find_spec('datasets').origin), 'config.py')\n"
        "spec = importlib.util.spec_from_file_location('datasets_config', path)\n"
        "config = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(config)\n"
        "print(os.path.expanduser(str(config.HF_DATASETS_CACHE)))\n"  # as datasets' builder expands it
    )
    for extra in cases:
        env = {**base, **extra}
        said = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert said.stdout.strip() == str(datasets_cache_dir(env)), extra
    assert datasets_cache_dir({"HOME": "/h", "HF_HOME": "/hh"}) == Path("/hh/datasets")


def test_a_larger_parquet_factor_than_text(tmp_path: Path) -> None:
    """Parquet is compressed: a file unreadable as Parquet falls back to the largest factor."""
    assert ARROW_FACTOR["parquet"] > ARROW_FACTOR["text"] >= ARROW_FACTOR["json"]
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet" * 100)
    assert estimate_copy_bytes("parquet", [str(bad)], "text") == int(bad.stat().st_size * ARROW_FACTOR["parquet"])


def test_the_disk_row_imports_neither_torch_nor_datasets(tmp_path: Path, cache: Path, make_cfg) -> None:
    """The cheap check finds this version's copy by the listing's digest, without `datasets` (~1 s to import)."""
    corpus = _corpus(tmp_path, "a.jsonl", _texts(50, "doc"))
    open_source(make_cfg(source="local", path=str(corpus), val_docs=4), 0, 1)
    code = (
        "import sys; from pathlib import Path\n"
        "from nsa_train.config import load_config\n"
        "from nsa_tui.check_cheap import cheap_checks\n"  # as `nsa launch` runs them
        f"cfg = load_config(None, ['data.source=local', 'data.path={corpus}', 'data.val_docs=4'])\n"
        f"rows = {{r.name: r for r in cheap_checks(cfg, Path({str(tmp_path / 'run')!r}))}}\n"
        "print(rows['disk'].reason)\n"
        "print([m for m in ('torch', 'datasets') if m in sys.modules])\n"
    )
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), DISK_FREE_ENV: str(2**40)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "is there already" in out and out.splitlines()[-1] == "[]", out


def test_nsa_check_says_the_copy_its_own_data_row_builds(tmp_path: Path, cache: Path, make_cfg) -> None:
    """`nsa check` ran its cheap rows after the deep ones, whose data row loads data.path and so builds the Arrow
    copy: a first check's disk row said the copy was "there already" (the check had just made it) where the start
    would have needed the room for it."""
    from nsa_tui.commands.check import run_check

    corpus = _corpus(tmp_path, "a.txt", _texts(300, "doc"))
    sets = ["data.source=local", f"data.path={corpus}", "data.val_docs=60"]
    rows = {r["name"]: r for r in run_check(None, sets, tmp_path / "run", nsa_test=False)}
    assert rows["data"]["status"] == "pass", rows["data"]
    assert "+~" in rows["disk"]["reason"] and "there already" not in rows["disk"]["reason"], rows["disk"]
    assert len(copies(cache)) == 1  # the data row built it: a second check says so
    again = {r["name"]: r for r in run_check(None, sets, tmp_path / "run", nsa_test=False)}
    assert "is there already" in again["disk"]["reason"], again["disk"]
