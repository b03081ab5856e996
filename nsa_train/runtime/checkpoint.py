"""Atomic checkpoints: write a temp file, fsync, rename, fsync the directory, then move the pointer.

Layout under ``<run>/checkpoints/``: ``step_00000200.pt`` files (schema.checkpoint_name +
".pt"), two one-line pointer files, ``latest`` and ``best``, holding a file name, and ``order``,
the file names in the order they were written (checkpoint_order.py). A kill at any moment
leaves either the old or the new file under a name, never a torn one: the order file and the
pointers are only replaced after the checkpoint is durable, and atomically too.

A checkpoint is a dict of tensors and plain Python types only, so it loads with
``torch.load(weights_only=True)`` (no pickle code execution from a downloaded file).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import pickletools
import random
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsa_train.runtime import checkpoint_order as order
from nsa_train.telemetry import pointers, schema
from nsa_train.telemetry.disk import disk_full, disk_full_message, free_space

if TYPE_CHECKING:
    import torch

# torch is imported by the functions that need it: the trainer checks a resume's checkpoint files (pointers,
# checksums) before its boot record, and that must not wait for torch's import

TMP_SUFFIX = ".tmp"
CKPT_SUFFIX = schema.CHECKPOINT_SUFFIX


class CheckpointError(Exception):
    """A checkpoint that cannot be used; one-line message naming the file."""


# how a file torch.save wrote begins: its zip archive, or (the legacy format) a pickle of protocol 2 or later
TORCH_FILE_MAGIC = (b"PK\x03\x04", b"\x80")


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / schema.CHECKPOINT_DIR


def checkpoint_file_name(step: int) -> str:
    return schema.checkpoint_name(step) + CKPT_SUFFIX


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as e:
        full = disk_full(e)
        if full is None:
            if isinstance(e, OSError):  # a read-only mount, permissions: the user's to fix, said in one line
                raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from e
            raise
        tmp.unlink(missing_ok=True)  # first: the message says how much space is left without it
        then = "checkpoints written before are intact. Free space (or lower train.keep_last) and continue with --resume"
        free = f"{free_space(path.parent)} without the partial file"
        raise CheckpointError(disk_full_message(path, full, free, then)) from e
    finally:
        if tmp.exists():
            tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def check_writable(ckpt_dir: Path) -> None:
    """Before training: a checkpoint directory that cannot be written fails the run now, in one line, not at its
    first save (train.save_every steps of work later)."""
    probe = ckpt_dir / f".write-check.{os.getpid()}{TMP_SUFFIX}"
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        from nsa_train.runtime.rundir import file_in_the_way

        why = file_in_the_way(ckpt_dir) or e.strerror or e
        raise CheckpointError(f"checkpoints cannot be written to {ckpt_dir}: {why}") from None


def to_plain(obj: Any) -> Any:
    """Numpy scalars/arrays and tuples-of-those into plain types that weights_only loading accepts."""
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    import torch

    if isinstance(obj, torch.Tensor) or obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return obj.tolist()
    raise CheckpointError(f"cannot store a {type(obj).__name__} in a checkpoint (plain types and tensors only)")


def write_pointer(ckpt_dir: Path, pointer: str, file_name: str) -> None:
    _atomic_write(ckpt_dir / pointer, lambda f: f.write((file_name + "\n").encode()))


def read_pointer(ckpt_dir: Path, pointer: str) -> Path | None:
    """The checkpoint file ``pointer`` names; None when there is no pointer or an empty one (CheckpointError when it
    is broken: the contract's reader, nsa_train.telemetry.pointers, says why)."""
    read = pointers.read_pointer(ckpt_dir, pointer)
    if read.problem is not None:
        raise CheckpointError(read.problem)
    return read.target


def save_checkpoint(ckpt_dir: Path, step: int, state: dict[str, Any], pointers: tuple[str, ...] = ()) -> Path:
    """Write ``state`` durably as step_XXXXXXXX.pt, record it last in the order file, then move the given pointers
    to it."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = ckpt_dir / checkpoint_file_name(step)
    import torch

    _atomic_write(path, lambda f: torch.save(state, f))
    # recorded before the pointers move: a cut between the two leaves a file the order names after `latest`'s
    text = order.order_after_save(ckpt_dir, list_checkpoints(ckpt_dir), path.name)
    _atomic_write(order.order_file(ckpt_dir), lambda f: f.write(text.encode()))
    for pointer in pointers:
        write_pointer(ckpt_dir, pointer, path.name)
    return path


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Complete checkpoint files, oldest step first."""
    if not ckpt_dir.is_dir():
        return []
    return sorted(p for p in ckpt_dir.glob(schema.CHECKPOINT_GLOB) if not p.name.startswith("."))


def write_order(ckpt_dir: Path) -> list[Path]:
    """Complete checkpoint files, oldest written first (checkpoint_order.py: the order file, then mtimes)."""
    return order.write_order(ckpt_dir, list_checkpoints(ckpt_dir)).files


def written_after(ckpt_dir: Path, target: Path) -> list[Path]:
    """The complete checkpoints written after ``target`` (a pointer's), oldest first: a process killed between a
    checkpoint file and its pointer leaves a whole, newer one that `latest` does not name (an earlier run's files, which
    a fresh start over them left, are older than its own)."""
    return order.written_after(order.write_order(ckpt_dir, list_checkpoints(ckpt_dir)), target)


def other_checkpoints_hint(ckpt_dir: Path, but: Path | None = None, run_id: str | None = None) -> str:
    """For a resume that cannot use the latest pointer: the checkpoints the directory still holds (newest last, at
    most 5 named), and how to continue from one; "" when there are none. With ``run_id`` (run.json's), those that
    record another run's id (an earlier run a --force start replaced, or copied in) are not offered: a --resume
    refuses them, so they are said apart."""
    others = [p for p in write_order(ckpt_dir) if p != but]
    if not others:
        return ""
    foreign = [p for p in others if run_id and (saved := checkpoint_run_id(p)) and saved != run_id]
    own = [p for p in others if p not in foreign]
    if pointers.read_order(ckpt_dir) is None:
        # no record of the write order (a copy of *.pt alone, a run from before it): the mtimes left are a copy's
        # (`cp` gives them in directory order, a `touch` any), so the newest is the highest step
        own.sort(key=lambda p: (schema.checkpoint_step(p.name) or -1, p.name))
    pointer = ckpt_dir / schema.LATEST_POINTER
    said = ""
    if own:
        # the newest file that is whole: a cut or damaged one would only be refused by the resume the hint advises
        damaged = list(itertools.takewhile(lambda p: not is_whole(p), reversed(own)))
        if len(damaged) < len(own):
            pick = own[-1 - len(damaged)]
            verb = "is" if len(damaged) == 1 else "are"
            skipped = f": the newest whole one; {_listed(damaged)} {verb} cut short or damaged" if damaged else ""
            said = (
                f". {ckpt_dir} holds {_named(own)}: to continue from one, write its name into {pointer} "
                f"(echo {pick.name} > {pointer}{skipped}) and resume again"
            )
        else:
            said = (
                f". {ckpt_dir} holds {_named(own)}, none of them whole (each is cut short or damaged): start a new "
                "run instead (nsa launch --force, or another --run-dir)"
            )
    if foreign:
        held = f"{ckpt_dir} also holds" if own else f"{ckpt_dir} holds"
        said += (
            f". {held} {_named(foreign)}, written by another run than this one (an earlier run in this directory, "
            f"which a --force start replaced, or copied in): a --resume refuses {'it' if len(foreign) == 1 else 'them'}"
        )
        if not own:
            said += (
                "; start a new run instead (nsa launch --force, or another --run-dir; from one's weights, another "
                f"--run-dir with --set train.init_from={foreign[-1]}: a start here would overwrite or prune it)"
            )
    return said


def is_whole(path: Path) -> bool:
    """Whether ``path`` is a complete torch file: a zip archive with its end record and index (verify_archive
    without the CRC pass: milliseconds), or the legacy pickle format; not an empty, cut or foreign file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(TORCH_FILE_MAGIC[0]))
    except OSError:
        return False
    if head != TORCH_FILE_MAGIC[0]:
        return bool(head) and head.startswith(TORCH_FILE_MAGIC[1])
    try:
        verify_archive(path, checksums=False)
    except CheckpointError:
        return False
    return True


def _listed(paths: list[Path]) -> str:
    """Names, at most 3 of them."""
    names = ", ".join(p.name for p in paths[:3])
    return names + (f" (and {len(paths) - 3} more)" if len(paths) > 3 else "")


def _named(paths: list[Path]) -> str:
    """At most the 5 newest of ``paths`` (oldest written first) by name, and how many older ones there are."""
    names = ", ".join(p.name for p in paths[-5:])
    return names + (f" (and {len(paths) - 5} older)" if len(paths) > 5 else "")


_PICKLE_STRINGS = ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE")
_PICKLE_GETS = ("BINGET", "LONG_BINGET", "GET")
_PICKLE_PUTS = ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE")


def checkpoint_run_id(path: Path) -> str | None:
    """The run id ``path`` records (schema.CKPT_RUN_ID), read without torch (checkpoint_run)."""
    return checkpoint_run(path)[0]


def checkpoint_run(path: Path) -> tuple[str | None, str | None]:
    """(run id, run directory name) that ``path`` records (schema.CKPT_RUN_ID, CKPT_RUN_NAME), read without torch:
    the launcher and the checks before the boot record have none. The archive's pickle is scanned for each key and
    the string after it (pickletools: nothing is unpickled, no tensor is read). None for one it does not record
    (written before ids) or a file that is no readable archive."""
    found: dict[str, str] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            name = next((n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"), None)
            data = zf.read(name) if name is not None else b""
    except (OSError, zipfile.BadZipFile):
        return None, None
    keys = (schema.CKPT_RUN_ID, schema.CKPT_RUN_NAME)
    memo: dict[int, Any] = {}
    last: Any = None  # what the previous opcode pushed, when a string (memoized by the PUT after it)
    key: str | None = None  # the wanted key just pushed: the next string is its value
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in _PICKLE_PUTS:
                memo[len(memo) if arg is None else int(arg)] = last
                continue
            if op.name in _PICKLE_STRINGS:
                value = arg
            elif op.name in _PICKLE_GETS:
                value = memo.get(int(arg))
            else:
                last = key = None
                continue
            if key is not None and key not in found and isinstance(value, str) and value:
                found[key] = value
                if len(found) == len(keys):
                    break
                value = None  # a value, not a key
            last, key = value, value if value in keys else None
    except (ValueError, EOFError):  # a cut or foreign pickle: what was found so far
        pass
    return found.get(schema.CKPT_RUN_ID), found.get(schema.CKPT_RUN_NAME)


def prune(ckpt_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` last written checkpoints, never the best or latest target. Last written, not
    highest: a fresh start over an earlier run's directory writes low steps after its high ones."""
    keep = set(write_order(ckpt_dir)[-keep_last:])
    for pointer in (schema.LATEST_POINTER, schema.BEST_POINTER):
        try:
            target = read_pointer(ckpt_dir, pointer)
        except CheckpointError:
            target = None
        if target is not None:
            keep.add(target)
    removed = []
    for p in list_checkpoints(ckpt_dir):
        if p not in keep:
            p.unlink(missing_ok=True)  # gone since it was listed (removed by hand): nothing left to prune
            removed.append(p)
    return removed


def remove_stale_temps(ckpt_dir: Path) -> None:
    """Temp files of a save that was killed half-way."""
    if ckpt_dir.is_dir():
        for p in ckpt_dir.glob("." + "*" + TMP_SUFFIX):
            try:
                p.unlink(missing_ok=True)
            except OSError as e:
                raise CheckpointError(f"cannot remove {p} (a save's leftover): {e.strerror or e}") from None


def verify_archive(path: Path, checksums: bool = True) -> None:
    """A torch.save zip archive whose stored CRCs do not match its bytes (a disk or copy error) is refused: torch
    loads such a file without a word, and damaged weights show up as a NaN loss at the first step, sending the
    user after a divergence that is not there. Reads the whole file once (~0.4 s per GiB cached); with
    ``checksums`` False only its index (a truncated or foreign file, in milliseconds)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != TORCH_FILE_MAGIC[0]:
                return  # the legacy format, or no torch file at all: torch.load says which
            fh.seek(0)
            with zipfile.ZipFile(fh) as zf:
                bad = zf.testzip() if checksums else None
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"checkpoint {path} is damaged (not a complete zip archive: {e})") from None
    except OSError:
        return  # unreadable: torch.load's own error names it
    if bad is not None:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its part {bad} does not match the checksum written with it (the file "
            "changed after it was saved: a disk or copy error)"
        )


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    verify_archive(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as e:
        raise CheckpointError(load_failure(path, e)) from None
    usable = isinstance(state, dict) and isinstance(state.get("model"), dict) and isinstance(state.get("step"), int)
    if not usable:
        raise CheckpointError(f"{path} is not a trainer checkpoint (no model/step)")
    return state


def load_failure(path: Path, e: Exception) -> str:
    """One line for a file torch.load refused. A file that is no torch file at all (console.log, a config) is said
    to be none, and a weights-only refusal never comes with torch's advice to load it with weights_only=False
    (that would run whatever code the file holds): nsa checkpoints hold tensors and plain types only."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(TORCH_FILE_MAGIC[0]))
    except OSError:
        head = None  # said by torch's own error below
    if head and not head.startswith(TORCH_FILE_MAGIC):
        return f"{path} is not an nsa checkpoint (not a file torch.save wrote)"
    if isinstance(e, pickle.UnpicklingError) and "weights only" in str(e).lower():
        return (
            f"cannot load checkpoint {path}: not an nsa checkpoint (it holds pickled objects other than tensors and "
            "plain types, which are not loaded: that would run code from the file)"
        )
    why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    empty = " (an empty file)" if head == b"" else ""
    return f"cannot load checkpoint {path}{empty}: {why}"


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Strict load: a missing, unexpected or mis-shaped key is an error naming the keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                parts.append(f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}")
        raise CheckpointError(f"{path} does not fit this model ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)


CUDA_RNG = "cuda_device"  # this rank's own GPU's generator state
CUDA_RNG_ALL = "cuda"  # before 2026-12-07: every visible GPU's, a list indexed by device


def capture_rng() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # the rank's own device only: every visible device's (get_rng_state_all) could not be restored on a machine
        # that sees fewer GPUs (set_rng_state_all indexes a generator per saved state: IndexError)
        state[CUDA_RNG] = torch.cuda.get_rng_state()
    return state


def cuda_rng_for(state: dict[str, Any], device: int, count: int) -> Any | None:
    """The saved generator state for this rank's GPU ``device`` (of ``count`` visible): its own (CUDA_RNG), or, in
    an older checkpoint's list of every visible device's, the entry at that index when there is one."""
    if CUDA_RNG in state:
        return state[CUDA_RNG]
    states = state.get(CUDA_RNG_ALL)
    return states[device] if isinstance(states, list | tuple) and device < min(len(states), count) else None


def restore_rng(state: dict[str, Any]) -> None:
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        own = cuda_rng_for(state, torch.cuda.current_device(), torch.cuda.device_count())
        if own is not None:
            torch.cuda.set_rng_state(own)


def derived_seed(seed: int, step: int, rank: int) -> int:
    """A 63-bit seed for rank `rank` resumed at `step` of a run seeded `seed`: the same on every start, another for
    each rank and step (a --reshard has no saved RNG state for a rank the checkpoint did not have)."""
    digest = hashlib.blake2b(f"nsa-rng:{seed}:{step}:{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def reseed_rng(seed: int, step: int, rank: int) -> None:
    """Python's and torch's generators (every device's) seeded with derived_seed."""
    import torch

    derived = derived_seed(seed, step, rank)
    random.seed(derived)
    torch.manual_seed(derived)  # the CUDA generators too
