"""A --resume refused for want of a `latest` pointer says one thing, whichever check finds it: resume_refusal before
the boot record, or the Trainer's _resume when the pointer went between the two (both take resumable's wording)."""

from __future__ import annotations

from pathlib import Path

from nsa_train.runtime import checkpoint as ck
from nsa_train.runtime.resumable import no_latest_pointer, resume_refusal


def test_no_latest_pointer_is_one_message_naming_the_checkpoints_left(tmp_path: Path) -> None:
    ckpts = ck.checkpoint_dir(tmp_path)
    ckpts.mkdir()
    (ckpts / ck.checkpoint_file_name(3)).write_bytes(b"PK\x03\x04")  # listed by name: the hint reads no bytes
    said = resume_refusal(tmp_path, None, [])
    assert said == no_latest_pointer(ckpts)
    assert said.startswith(f"--resume: no checkpoint in {ckpts} (no 'latest' pointer). {ckpts} holds ")
    assert ck.checkpoint_file_name(3) in said
