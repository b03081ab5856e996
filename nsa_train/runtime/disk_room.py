"""The room a run needs on disk before it starts: its checkpoints under the run directory and, for a local source
whose files have no Arrow copy yet, the copy `datasets` builds in its cache at the start.

One estimate for `nsa check`'s and `nsa launch`'s disk row (nsa_tui.check_cheap) and the trainer's own start check
(a trainer started by hand, `python -m nsa_train.train` or torchrun, is refused in one line instead of failing later
with `No space left on device`). Standard library only: the tools import it without torch.

``NSA_CHECK_DISK_FREE_BYTES`` (an integer) replaces the free-space probe (DISK_FREE_ENV): rehearse a small disk.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsa_train.config.schema import Config
from nsa_train.telemetry import schema
from nsa_train.telemetry.units import human_bytes, human_count

PASS, WARN, FAIL = "pass", "warn", "fail"
DISK_FREE_ENV = "NSA_CHECK_DISK_FREE_BYTES"

# A checkpoint holds fp32 weights (4 bytes/param) and Adam's two fp32 moments (8 bytes/param).
CHECKPOINT_BYTES_PER_PARAM = 12
DISK_MARGIN = 1.2  # metadata, the data position, logs, TensorBoard events
GIB = 2**30
# leftover Arrow copies are a warning from this size on, or when they take as much as the cache's disk has free
OLD_COPIES_WARN_BYTES = 10 * GIB
OLD_COPIES_NAMED = 3  # leftover copies named in the disk row; the rest counted

DiskFree = Callable[[Path], int]

# the row sets what a run needs beside what is free: 2.34 and 2.31 GiB must not both read 2.3
SIZE_DECIMALS = 2


def size_text(n: float) -> str:
    """A size as the disk row says it, in the unit that shows it: a tiny model's checkpoints are 5.08 MiB, not
    0.00 GiB."""
    return human_bytes(n, SIZE_DECIMALS)


@dataclass(frozen=True)
class Room:
    """The verdict on the disk: PASS, WARN (tight, or large leftover copies) or FAIL (not enough), and why."""

    status: str
    reason: str


def default_disk_free(path: Path) -> int:
    """Free bytes on the file system holding ``path`` ($NSA_CHECK_DISK_FREE_BYTES overrides it)."""
    override = os.environ.get(DISK_FREE_ENV)
    if override is not None:
        return int(override)
    return shutil.disk_usage(path).free


def checkpoint_bytes(param_count: int) -> int:
    return param_count * CHECKPOINT_BYTES_PER_PARAM


def disk_needed_bytes(cfg: Config, param_count: int) -> int:
    """keep_last periodic checkpoints + best + the one being written (temp file), with a margin."""
    return _checkpoints_need(checkpoint_bytes(param_count), cfg.train.keep_last, 0)


def _checkpoints_need(one: int, keep_last: int, held: int) -> int:
    """keep_last + best + the one in flight, with the margin, less what the run's checkpoints hold already; the one
    in flight is written before an older one is pruned, so there is always room for it to find."""
    need = int(one * (keep_last + 2) * DISK_MARGIN)
    return max(need - held, int(one * DISK_MARGIN)) if held else need


def _fewer_checkpoints(one: int, keep_last: int, held: int, room: int) -> int | None:
    """The largest keep_last below the config's whose checkpoints fit in ``room`` bytes; None when even 1 does not."""
    return next((k for k in range(keep_last - 1, 0, -1) if _checkpoints_need(one, k, held) <= room), None)


def held_checkpoint_bytes(run_dir: Path) -> int:
    """The bytes of the checkpoints already in ``run_dir`` (a resume's, or an earlier run's that a --force start
    prunes as it saves): room the run's own take over, which the free space no longer shows."""
    total = 0
    try:
        files = list((run_dir / schema.CHECKPOINT_DIR).glob(schema.CHECKPOINT_GLOB))
    except OSError:
        return 0
    for f in files:
        try:
            total += f.stat().st_size
        except OSError:  # removed while counted
            pass
    return total


def exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:  # a name over NAME_MAX (Python raises it): not there either
        return False


def existing_ancestor(p: Path) -> Path:
    p = p.absolute()
    while not exists(p) and p != p.parent:
        p = p.parent
    return p


def disk_room(cfg: Config, run_dir: Path, param_count: int, disk_free: DiskFree = default_disk_free) -> Room:
    """Room for the checkpoints under ``run_dir`` (less those it holds already) and, for a local source whose files
    have no Arrow copy yet, for the copy `datasets` builds in its cache at the start (on its own file system when that
    is another); the copies earlier versions of the files left there are said, and a warning when large."""
    need = disk_needed_bytes(cfg, param_count)
    base = existing_ancestor(run_dir)
    try:
        free = disk_free(base)
    except (OSError, ValueError) as e:
        return Room(WARN, f"cannot measure free space under {run_dir}: {e}")
    detail = (
        f"~{size_text(need)} for checkpoints ({human_count(param_count)} params x {CHECKPOINT_BYTES_PER_PARAM} B x "
        f"(keep_last {cfg.train.keep_last} + best + 1 in flight) x {DISK_MARGIN}"
    )
    if held := held_checkpoint_bytes(run_dir):
        need = _checkpoints_need(checkpoint_bytes(param_count), cfg.train.keep_last, held)
        detail += f"; {size_text(held)} of them held by the checkpoints there already"
    detail += ")"

    def to_fit(room: int, *more: str) -> str:
        """What makes a run directory without room fit (a resume holds its checkpoints: no other --run-dir)."""
        fewer = _fewer_checkpoints(checkpoint_bytes(param_count), cfg.train.keep_last, held, room)
        ways = ["free space there"]
        ways += [f"keep fewer checkpoints (`--set train.keep_last={fewer}` fits)"] if fewer else []
        ways += [] if held else ["choose a --run-dir with room"]
        return "To fit: " + ", or ".join([*ways, *more])

    plan = _cache_plan(cfg)
    if plan is None:
        detail += f", {size_text(free)} free"
        return _verdict([(need, free)], detail, [], remedies=[to_fit(free)])
    cache_base = existing_ancestor(plan.cache)
    same = _same_file_system(base, cache_base)
    try:
        cache_free = free if same else disk_free(cache_base)
    except (OSError, ValueError) as e:
        return Room(WARN, f"{detail}; cannot measure free space under {plan.cache}: {e}")
    copy = f"datasets' Arrow copy of data.path in {plan.cache}"
    if same:  # the copy and the checkpoints share the free space
        if plan.build_bytes:
            detail += f" +~{size_text(plan.build_bytes)} for {copy}"
        detail += f", {size_text(free)} free"
        needs = [(need + plan.build_bytes, free)]
        remedies = [
            to_fit(free - plan.build_bytes, *(["set HF_DATASETS_CACHE to another disk"] if plan.build_bytes else []))
        ]
    else:
        detail += f", {size_text(free)} free"
        if plan.build_bytes:
            detail += f"; ~{size_text(plan.build_bytes)} for {copy} (another file system), "
            detail += f"{size_text(cache_free)} free there"
        needs = [(need, free), (plan.build_bytes, cache_free)]
        remedies = [to_fit(free), "To fit the copy: free space there, or set HF_DATASETS_CACHE to a disk with room"]
    if plan.current:
        detail += f"; {copy} is there already ({_bytes_of(plan.current)})"
    notes, large = _old_copies(plan, cache_free)
    return _verdict(needs, detail, notes, large, remedies)


def _verdict(
    needs: list[tuple[int, int]], detail: str, notes: list[str], large: bool = False, remedies: Sequence[str] = ()
) -> Room:
    """fail: a file system without room for what it takes, with what makes it fit (``remedies``, one per need);
    warn: less than twice that (logs and TensorBoard grow too), or large leftover copies."""
    said = "".join(f"; {n}" for n in notes)
    if failing := [i for i, (n, f) in enumerate(needs) if n > f]:
        ways = "".join(f". {remedies[i]}" for i in failing if i < len(remedies))
        return Room(FAIL, "not enough: " + detail + said + ways)
    if any(n * 2 > f for n, f in needs if n):
        return Room(WARN, "tight (logs and TensorBoard grow too): " + detail + said)
    if large:
        return Room(WARN, "large leftover Arrow copies in the datasets cache: " + detail + said)
    return Room(PASS, detail + said)


def _cache_plan(cfg: Config) -> Any:
    """The Arrow cache's plan for a local source (nsa_train.data.arrow_cache), None for another source or files
    that cannot be listed (the data path row, or the trainer's data phase, says why). The cache is where the
    trainer's `datasets` will look: the config's runtime.env wins over this environment, as `nsa launch` and the
    trainer set it."""
    if cfg.data.source != "local" or cfg.data.path is None:
        return None
    from nsa_train.data.arrow_cache import cache_plan, datasets_cache_dir
    from nsa_train.data.diagnose import files_without_documents
    from nsa_train.data.errors import DataError
    from nsa_train.data.fingerprint import file_listing
    from nsa_train.data.sources import resolve_local_files

    d = cfg.data
    try:
        builder, files = resolve_local_files(d.path)
        empty = set(files_without_documents(builder, files))
        loaded = [f for f in files if f not in empty]
        cache = datasets_cache_dir({**os.environ, **cfg.runtime.env})
        return cache_plan(cache, builder, files, loaded, d.path, d.text_field, lambda: file_listing(d.path, files))
    except (DataError, OSError):
        return None


def _same_file_system(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _bytes_of(copies: list[Any]) -> str:
    return size_text(sum(c.bytes for c in copies))


def _named_copies(copies: list[Any], cache: Path) -> str:
    names = [c.path.relative_to(cache).as_posix() for c in copies[:OLD_COPIES_NAMED]]
    more = len(copies) - len(names)
    return ", ".join(names) + (f" and {more} more" if more else "")


def _old_copies(plan: Any, cache_free: int) -> tuple[list[str], bool]:
    """What the leftover copies take and how to remove them; whether they are large (OLD_COPIES_WARN_BYTES, or
    more than the cache's file system has free)."""
    notes = []
    for copies, what in (
        (plan.older, "of earlier versions of data.path (or of its files by another path)"),
        (plan.others, "of other data (or built before their source was recorded)"),
    ):
        if copies:
            notes.append(
                f"{_bytes_of(copies)} in {len(copies)} Arrow {'copy' if len(copies) == 1 else 'copies'} {what} in "
                f"{plan.cache}: {_named_copies(copies, plan.cache)} (remove with rm -r when no run reads them; nsa "
                "never does)"
            )
    left = sum(c.bytes for c in plan.older + plan.others)
    return notes, left > OLD_COPIES_WARN_BYTES or left > cache_free
