"""The listing a --resume compares before it writes anything (run.json's `data_listing`) and the saved position's
fingerprint see a file edited in place at the same size, by a bounded sample of its bytes; a listing written before
the sample was recorded still compares by names and sizes. Torch-free."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest

from nsa_train.data import fingerprint as fp


def _corpus(root: Path) -> tuple[str, list[str]]:
    root.mkdir(parents=True, exist_ok=True)
    for n in "ab":
        (root / f"{n}.txt").write_text("\n\n".join(f"{n} doc {i} " + "word " * 8 for i in range(12)))
    return str(root), sorted(str(f) for f in root.iterdir())


def _same_size_edit(f: Path) -> None:
    """Another word at the same place, as long: the size and the paragraphs (documents) stay."""
    text = f.read_text()
    f.write_text(text.replace("word", "wore", 1))
    assert len(f.read_bytes()) == len(text.encode())


def test_a_file_edited_at_the_same_size_is_refused_by_name(tmp_path: Path) -> None:
    path, files = _corpus(tmp_path / "dd")
    then = fp.file_listing(path, files)
    assert [e[:2] for e in then] == [["a.txt", os.path.getsize(files[0])], ["b.txt", os.path.getsize(files[1])]]
    assert fp.listing_change("dd", then, fp.file_listing(path, files), "RUN") is None
    _same_size_edit(Path(files[1]))
    msg = fp.listing_change("dd", then, fp.file_listing(path, files), "RUN")
    assert msg == (
        "data.path dd changed since the run's last start: 2 files then, 2 files now (b.txt edited, the same size); "
        "the data position and the validation holdout would not be the same documents. Restore the files or start a "
        "new run from the checkpoint's weights (--set train.init_from=RUN, in another --run-dir)"
    )


def test_a_listing_written_before_the_sample_compares_names_and_sizes(tmp_path: Path) -> None:
    """run.json files of the previous version hold [name, bytes] pairs: they resume as before."""
    path, files = _corpus(tmp_path / "dd")
    old = [e[:2] for e in fp.file_listing(path, files)]
    _same_size_edit(Path(files[0]))
    now = fp.file_listing(path, files)
    assert fp.listing_change("dd", old, now, "RUN") is None and fp.same_files(old, now)
    Path(files[0]).write_text("short")
    assert "(a.txt " in fp.listing_change("dd", old, fp.file_listing(path, files), "RUN")
    assert fp.listing_change("dd", [["a.txt"]], now, "RUN") is None  # not a listing: nothing to compare


def test_the_same_files_elsewhere_are_the_same_files(tmp_path: Path) -> None:
    path, files = _corpus(tmp_path / "disk1" / "dd")
    then = fp.file_listing(path, files)
    moved = tmp_path / "disk2" / "dd"
    moved.mkdir(parents=True)
    for f in files:
        (moved / Path(f).name).write_bytes(Path(f).read_bytes())
    moved_files = sorted(str(f) for f in moved.iterdir())
    assert fp.same_files(then, fp.file_listing(str(moved), moved_files))
    _same_size_edit(moved / "a.txt")
    assert not fp.same_files(then, fp.file_listing(str(moved), moved_files))
    assert not fp.same_files(None, then)


@pytest.mark.parametrize("where", ["head", "piece 1", "piece 5", "tail"])
def test_a_large_file_is_sampled_in_bounded_reads_that_see_its_ends_and_pieces(
    tmp_path: Path, monkeypatch, where
) -> None:
    f = tmp_path / "big.txt"
    size = 64 * 1024 * 1024
    with open(f, "wb") as fh:  # sparse: no 64 MB written
        fh.truncate(size)
    read = []
    real_open = builtins.open

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def seek(self, offset):
            return self.fh.seek(offset)

        def read(self, n=-1):
            data = self.fh.read(n)
            read.append(len(data))
            return data

    monkeypatch.setattr(fp, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
    before = fp.content_sample(str(f), os.stat(f))
    assert 0 < sum(read) <= 2 * fp.SAMPLE_EDGE + fp.SAMPLE_PIECES * fp.SAMPLE_PIECE
    span = size - 2 * fp.SAMPLE_EDGE - fp.SAMPLE_PIECE
    step = span // (fp.SAMPLE_PIECES + 1)
    offset = {"head": 0, "piece 1": fp.SAMPLE_EDGE + step + 5, "piece 5": fp.SAMPLE_EDGE + step * 5 + 100}.get(
        where, size - 1
    )
    with real_open(f, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"x")
    assert fp.content_sample(str(f), os.stat(f)) != before


def test_what_is_not_a_regular_file_is_not_read(tmp_path: Path) -> None:
    pipe = tmp_path / "p.txt"
    os.mkfifo(pipe)  # opened for reading, it would wait for a writer
    assert fp.file_listing(str(pipe), [str(pipe)]) == [["p.txt", 0, None]]


def test_the_saved_position_sees_an_edit_and_a_position_saved_before_the_sample_does_not(tmp_path: Path) -> None:
    path, files = _corpus(tmp_path / "dd")
    then = fp.local_fingerprint(fp.file_listing(path, files), 24)
    _same_size_edit(Path(files[1]))
    now = fp.local_fingerprint(fp.file_listing(path, files), 24)
    assert then["digest"] == now["digest"]  # names and sizes: as a position saved before samples were listed
    assert fp.fingerprint_change("dd", then, now, "RUN").startswith(
        "data.path dd changed since the checkpoint: 2 files/24 documents then, 2 files/24 documents now "
        "(b.txt edited, the same size); "
    )
    old = {**then, "listing": [e[:2] for e in then["listing"]]}
    assert fp.fingerprint_change("dd", old, now, "RUN") is None
