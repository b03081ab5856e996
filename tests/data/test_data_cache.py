"""The `datasets` Arrow cache of local files follows their bytes, not only their path and mtime."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nsa_train.data.sources import open_source


def _write(path: Path, tag: str) -> None:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": f"{tag} document number {i:03d}"}) + "\n" for i in range(40)))
    else:
        path.write_text("".join(f"{tag} document number {i:03d}\n\n" for i in range(40)))


@pytest.mark.parametrize("name", ["a.jsonl", "a.txt"])
def test_edit_keeping_size_and_mtime_is_read_again(tmp_path: Path, make_cfg, name: str) -> None:
    """cp -p, rsync -t, touch -r, a coarse-mtime file system: the same size and mtime, other bytes. The cache keyed
    on path + mtime handed back the old text while the fingerprint (run.json's data_listing) hashed the new."""
    path = tmp_path / name
    _write(path, "OLDOLD")
    cfg = make_cfg(source="local", path=str(path), val_docs=4)
    first = open_source(cfg, 0, 1)
    assert first.val_texts()[0].startswith("OLDOLD")
    st = os.stat(path)
    _write(path, "NEWNEW")  # the same length
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns
    again = open_source(cfg, 0, 1)
    assert again.fingerprint != first.fingerprint
    assert again.val_texts()[0].startswith("NEWNEW")
    assert all(text.startswith("NEWNEW") for _, text in again.train_texts(0, 0))
