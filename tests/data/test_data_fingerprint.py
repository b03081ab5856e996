"""A resume of local files continues only in the files it was saved in: the position records what the source read
(files, sizes, documents), and a resume under other files is refused by name. data.path counts by where it
points, not how it was typed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from nsa_train.data import DataError, TrainStream, build_tokenizer


def _corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for n in "bc":
        (root / f"{n}.txt").write_text("\n\n".join(f"{n} doc {i} " + "word " * 8 for i in range(12)))
    return root


def _saved_position(cfg, batches: int = 2) -> tuple[dict, list[torch.Tensor]]:
    """The position a checkpoint stores after ``batches`` batches, and the next three batches' inputs."""
    tok = build_tokenizer(cfg.data)
    stream = TrainStream(cfg, tok, 0, 1, 2)
    try:
        for _ in range(batches):
            next(stream)
        state = json.loads(json.dumps(stream.state_dict()))
        return state, [next(stream)[0] for _ in range(3)]
    finally:
        stream.close()


CKPT = "/runs/a/checkpoints/step_00000004.pt"  # the checkpoint a trainer's resume names as the stream's weights


def _resume(cfg, state: dict) -> TrainStream:
    stream = TrainStream(cfg, build_tokenizer(cfg.data), 0, 1, 2)
    stream.weights_from = CKPT
    stream.load_state_dict(state)
    return stream


def test_a_resume_after_the_files_changed_is_refused_by_what_changed(tmp_path: Path, make_cfg) -> None:
    root = _corpus(tmp_path / "dd")
    cfg = make_cfg(seq_len=16, source="local", path=str(root), val_docs=2)
    state, _ = _saved_position(cfg)
    assert state["fingerprint"]["files"] == 2 and state["fingerprint"]["documents"] == 24

    (root / "zz.txt").write_text("\n\n".join(f"extra {i} zebra" for i in range(5)))
    with pytest.raises(DataError) as e:
        _resume(cfg, state)
    msg = str(e.value)
    assert f"data.path {root} changed since the checkpoint: 2 files/24 documents then, 3 files/29 documents now" in msg
    assert "(zz.txt added);" in msg and "validation holdout" in msg and "Restore the files or start a new run" in msg
    # the weights are not lost with the data position: the way to a new run from them, the checkpoint named
    assert msg.endswith(
        f"start a new run from the checkpoint's weights (--set train.init_from={CKPT}, in another --run-dir)"
    )
    assert "\n" not in msg

    (root / "zz.txt").unlink()
    (root / "c.txt").write_text((root / "c.txt").read_text() + "\n\none more")
    resized = r"2 files/24 documents then, 2 files/25 documents now \(c\.txt \d+ -> \d+ bytes\)"
    with pytest.raises(DataError, match=resized):
        _resume(cfg, state)
    (root / "c.txt").unlink()
    with pytest.raises(DataError, match=r"then, 1 file/12 documents now \(c\.txt removed\)"):
        _resume(cfg, state)


def test_a_resume_after_an_edit_of_the_same_size_and_documents_is_refused(tmp_path: Path, make_cfg) -> None:
    """A word changed for another as long: the sizes and the document count stay, and the position used to resume
    on the changed text without a word. The listing's samples of each file's bytes tell it."""
    root = _corpus(tmp_path / "dd")
    cfg = make_cfg(seq_len=16, source="local", path=str(root), val_docs=2)
    state, _ = _saved_position(cfg)
    text = (root / "b.txt").read_text()
    (root / "b.txt").write_text(text.replace("word", "wore", 1))
    with pytest.raises(DataError, match=r"2 files/24 documents then, 2 files/24 documents now \(b\.txt edited, the "):
        _resume(cfg, state)
    (root / "b.txt").write_text(text)
    _resume(cfg, state).close()


def test_files_copied_back_resume_exactly(tmp_path: Path, make_cfg) -> None:
    """Only names, sizes and the document count count: the same bytes written again (a copy from another machine,
    with other mtimes) are the same data."""
    root = _corpus(tmp_path / "dd")
    cfg = make_cfg(seq_len=16, source="local", path=str(root), val_docs=2)
    state, following = _saved_position(cfg)
    for f in root.iterdir():
        f.write_bytes(f.read_bytes())
        os.utime(f, (1, 1))
    resumed = _resume(cfg, state)
    try:
        for x in following:
            assert torch.equal(next(resumed)[0], x)
        assert resumed.state_dict()["fingerprint"] == state["fingerprint"]  # the next checkpoint keeps checking
    finally:
        resumed.close()


def test_a_position_saved_before_the_fingerprint_still_loads(tmp_path: Path, make_cfg, monkeypatch) -> None:
    """Older checkpoints have no fingerprint (nothing to compare) and a data.path as it was typed: relative."""
    monkeypatch.chdir(tmp_path)
    root = _corpus(tmp_path / "dd")
    state, _ = _saved_position(make_cfg(seq_len=16, source="local", path=str(root), val_docs=2))
    for newer in ("fingerprint", "order_digest", "drawn_by"):  # the digest of the holdout came after the fingerprint
        del state[newer]
    state["source"] = "local files dd"
    (root / "zz.txt").write_text("not checked: the old position cannot tell\n")
    resumed = _resume(make_cfg(seq_len=16, source="local", path=str(root), val_docs=2), state)
    resumed.close()


def test_only_local_sources_record_a_fingerprint(make_cfg) -> None:
    state, _ = _saved_position(make_cfg(seq_len=16))
    assert "fingerprint" not in state


def test_a_position_saved_relative_resumes_absolute(tmp_path: Path, make_cfg, monkeypatch) -> None:
    """A position saved with data.path as typed (relative, before load_config made it absolute) is the same source
    as the absolute path to the same directory; another directory is the same only if it holds the same files
    (a corpus moved to another disk), by the fingerprint."""
    monkeypatch.chdir(tmp_path)
    root = _corpus(tmp_path / "data" / "dd")
    state, following = _saved_position(make_cfg(seq_len=16, source="local", path="data/dd", val_docs=2))
    assert state["source"] == "local files data/dd"
    resumed = _resume(make_cfg(seq_len=16, source="local", path=str(root), val_docs=2), state)
    try:
        assert torch.equal(next(resumed)[0], following[0])
    finally:
        resumed.close()
    with pytest.raises(DataError, match=r"data\.path \S+ changed since the checkpoint: .*\(dd/b\.txt added"):
        _resume(make_cfg(seq_len=16, source="local", path=str(tmp_path / "data"), val_docs=2), state)
    import shutil

    moved = shutil.copytree(root, tmp_path / "elsewhere" / "dd")
    resumed = _resume(make_cfg(seq_len=16, source="local", path=str(moved), val_docs=2), state)
    try:
        assert torch.equal(next(resumed)[0], following[0])
    finally:
        resumed.close()


def test_the_fingerprint_of_many_files_keeps_counts_only(tmp_path: Path, monkeypatch) -> None:
    from nsa_train.data import fingerprint as fp

    monkeypatch.setattr(fp, "LISTED_FILES", 1)
    root = _corpus(tmp_path / "dd")
    files = sorted(str(f) for f in root.iterdir())
    then = fp.local_fingerprint(fp.file_listing(str(root), files), 24)
    assert "listing" not in then and then["files"] == 2
    (root / "c.txt").write_text("short")
    now = fp.local_fingerprint(fp.file_listing(str(root), files), 13)
    assert fp.fingerprint_change("dd", then, now, "RUN").startswith(
        f"data.path dd changed since the checkpoint: 2 files/24 documents then, 2 files/13 documents now "
        f"({then['bytes']} -> {now['bytes']} bytes)"
    )
    assert fp.fingerprint_change("dd", then, then, "RUN") is None
    assert fp.fingerprint_change("dd", "corrupt", now, "RUN") is None  # not a fingerprint: nothing to compare


def test_files_are_named_relative_to_data_path(tmp_path: Path) -> None:
    from nsa_train.data.fingerprint import file_listing

    root = _corpus(tmp_path / "dd")
    (root / "sub").mkdir()
    (root / "sub" / "d.txt").write_text("x")
    files = sorted(str(f) for f in root.rglob("*.txt"))
    names = ["b.txt", "c.txt", "sub/d.txt"]
    assert [e[0] for e in file_listing(str(root), files)] == names
    assert [e[0] for e in file_listing(str(root / "**" / "*.txt"), files)] == names
    assert [e[:2] for e in file_listing(str(root / "sub" / "d.txt"), files[-1:])] == [["d.txt", 1]]
