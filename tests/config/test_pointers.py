"""One reader of the checkpoint pointers and the order file (nsa_train.telemetry.pointers): every reader, trainer and
tools, takes a pointer for the same checkpoint, or for none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nsa_train.runtime import checkpoint as ck
from nsa_train.telemetry import schema
from nsa_train.telemetry.pointers import pointer_name, read_order, read_pointer
from nsa_tui.launch.halt import latest_checkpoint
from nsa_tui.launch.launcher import latest_checkpoint_name
from nsa_tui.report.load import list_checkpoints
from nsa_tui.report.remote import pop_checkpoints
from nsa_tui.runs.bundle import FileWindow

NAMES = ("step_00000004.pt", "step_00000008.pt")


def _run(tmp_path: Path, pointer: bytes) -> Path:
    run = tmp_path / "r"
    ckpts = run / schema.CHECKPOINT_DIR
    ckpts.mkdir(parents=True)
    for name in NAMES:
        (ckpts / name).write_bytes(b"PK\x03\x04")
    (ckpts / schema.LATEST_POINTER).write_bytes(pointer)
    return run


# (what `latest` holds, the name every reader takes from it, whether the trainer calls it broken)
CASES = [
    (b"step_00000008.pt\n", "step_00000008.pt", False),
    (b"  step_00000004.pt  \n\n", "step_00000004.pt", False),
    (b"", None, False),  # empty: no checkpoint yet
    (b"step_00000099.pt\n", "step_00000099.pt", True),  # names a file that is not there
    (b"../other/step_00000008.pt\n", None, True),
    # two names: the launcher tried to open a file named by both lines, halt named it, the order took it for latest's
    (b"step_00000004.pt\nstep_00000008.pt\n", None, True),
    (b"\xff\xfe not text", None, True),
]


@pytest.mark.parametrize(("content", "name", "broken"), CASES)
def test_every_reader_takes_the_same_name_from_a_pointer(tmp_path: Path, content: bytes, name: str | None, broken):
    run = _run(tmp_path, content)
    ckpts = run / schema.CHECKPOINT_DIR
    read = read_pointer(ckpts, schema.LATEST_POINTER)
    assert read.present and read.name == name and (read.problem is not None) == broken
    # the trainer: a broken pointer is one line (CheckpointError), never another file
    if broken:
        with pytest.raises(ck.CheckpointError):
            ck.read_pointer(ckpts, schema.LATEST_POINTER)
    else:
        assert ck.read_pointer(ckpts, schema.LATEST_POINTER) == (ckpts / name if name else None)
    # the tools: halt, the launcher, the local and the remote report
    assert latest_checkpoint(run, []) == (ckpts / name if name else None)
    assert latest_checkpoint_name(run) == (name or "")
    marked = {c.name for c in list_checkpoints(run).files if schema.LATEST_POINTER in c.pointers}
    files = {n: FileWindow(f"checkpoints/{n}", b"", 4, None) for n in NAMES}
    fetched = {**files, schema.LATEST_POINTER: FileWindow("", content, len(content), None)}
    remote = pop_checkpoints({f"{schema.CHECKPOINT_DIR}/{k}": v for k, v in fetched.items()})
    assert marked == {c.name for c in remote.files if schema.LATEST_POINTER in c.pointers} == ({name} & set(NAMES))


def test_no_pointer_is_no_checkpoint_and_not_broken(tmp_path: Path) -> None:
    read = read_pointer(tmp_path, schema.BEST_POINTER)
    assert not read.present and read.name is None and read.problem is None and read.target is None


def test_the_order_file_is_read_once_each_name_where_it_was_last_listed(tmp_path: Path) -> None:
    assert read_order(tmp_path) is None
    (tmp_path / schema.CHECKPOINT_ORDER).write_text("a.pt\nb.pt\n\na.pt\nx/c.pt\n")
    assert read_order(tmp_path) == ["b.pt", "a.pt"]
    assert pointer_name(" a.pt \n") == "a.pt" and pointer_name("a.pt\r\nb.pt") is None


def test_the_reader_imports_without_torch() -> None:
    code = "import nsa_train.telemetry.pointers, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
