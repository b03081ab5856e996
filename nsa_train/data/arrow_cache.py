"""The Arrow copies `datasets` keeps of a local source: where its cache is, which copy this version of data.path
reads, what a copy about to be built takes, and which copies are left over from earlier versions.

A local source is loaded under a builder config named ``cache_name(listing)``, so its copy is
``<HF_DATASETS_CACHE>/<text|json|parquet>/nsa-<listing digest>-<datasets' hash of the paths and mtimes>/``, about the
size of the corpus, one per version of the files, never removed. The trainer records a sidecar (SIDECAR) in each copy
it reads: data.path and a stamp of the paths and mtimes `datasets` keys its hash on, so `nsa check` tells this
version's copy, and the older copies of the same data.path, without importing `datasets` (about 1 s) or torch.
Standard library only (pyarrow's Parquet footer reader is imported when a .parquet size is estimated).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILDERS = ("text", "json", "parquet")
COPY_PREFIX = "nsa-"
SIDECAR = "nsa-source.json"
# Arrow copy bytes / source bytes, measured with datasets 5.2 on 5.3 MB of the bundled plays (2026-12-07): .txt 1.016
# (paragraph documents; the offsets), .jsonl 0.90-0.96 (keys and quotes dropped; its other fields are copied too),
# .parquet 1.57-1.65 (snappy) and 2.37 (zstd). Rounded up: a disk check that errs, errs towards room.
ARROW_FACTOR = {"text": 1.05, "json": 1.0, "parquet": 2.5}
# A Parquet footer states its text column's uncompressed bytes: the copy was 1.00-1.03 times that, whatever the codec
PARQUET_UNCOMPRESSED_FACTOR = 1.05


def datasets_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where `datasets` keeps its copies, by its own rule (datasets.config): $HF_DATASETS_CACHE, else
    $HF_HOME/datasets, else $XDG_CACHE_HOME/huggingface/datasets, else ~/.cache/huggingface/datasets."""
    if cache := environ.get("HF_DATASETS_CACHE"):
        return _expand_user(cache, environ)
    home = environ.get("HF_HOME") or os.path.join(environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return _expand_user(home, environ) / "datasets"


def _expand_user(p: str, environ: Mapping[str, str]) -> Path:
    """``~`` as the environment's HOME (the trainer's, which may not be this process's)."""
    if p == "~" or p.startswith("~/"):
        return Path((environ.get("HOME") or os.path.expanduser("~")) + p[1:])
    return Path(os.path.expanduser(p))  # ~user


def cache_name(listing: list[list[Any]]) -> str:
    """The builder config name a local source is loaded under: its part of the `datasets` cache directory
    (<HF_DATASETS_CACHE>/<builder>/nsa-<digest>-<datasets' own hash>), one per version of the files' bytes."""
    return COPY_PREFIX + hashlib.blake2b(json.dumps(listing).encode(), digest_size=8).hexdigest()


def copy_stamp(builder: str, files: list[str], text_field: str) -> str:
    """A digest of what `datasets` keys a copy's hash on besides the config name: the files' paths and mtimes, and
    the column a Parquet load keeps. A touched file is another copy, the same bytes or not."""
    column = text_field if builder == "parquet" else None
    entries = [[os.path.abspath(f), os.stat(f).st_mtime] for f in sorted(files)]
    return hashlib.blake2b(json.dumps([builder, column, entries]).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Copy:
    """One nsa-* directory of the cache and what its sidecar says."""

    path: Path
    bytes: int
    complete: bool  # datasets finished it (its dataset_info.json is out of the .incomplete directory)
    data_path: str | None  # the absolute data.path the trainer read it for; None when not recorded
    stamp: str | None
    real_path: str | None = None  # data_path with its symlinks resolved when recorded (None: an older sidecar)

    def of(self, real: str) -> bool:
        """Whether this copy was read for ``real`` (a data.path with its symlinks resolved): the same files, however
        either path spells them (through a symlinked directory: a working directory reached through a link, or
        $PWD/data beside a relative data/, which resolves against the physical directory)."""
        if self.data_path is None:
            return False
        return (self.real_path or os.path.realpath(self.data_path)) == real


def _dir_bytes(p: Path) -> int:
    total = 0
    for root, _, names in os.walk(p):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed while walked
                pass
    return total


def _sidecar(p: Path) -> dict[str, Any]:
    try:
        data = json.loads((p / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def copies(cache: Path) -> list[Copy]:
    """Every nsa-* copy under the cache's text/, json/ and parquet/, sorted by path: what this package left there."""
    out = []
    for builder in BUILDERS:
        try:
            names = sorted(os.listdir(cache / builder))
        except OSError:  # no such builder directory yet
            continue
        for name in names:
            p = cache / builder / name
            if not name.startswith(COPY_PREFIX) or not p.is_dir():
                continue
            side = _sidecar(p)
            # <version>/<hash>/dataset_info.json: an interrupted build leaves <hash>.incomplete/ instead
            done = any(not i.parent.name.endswith(".incomplete") for i in p.glob("*/*/dataset_info.json"))
            out.append(Copy(p, _dir_bytes(p), done, side.get("data_path"), side.get("stamp"), side.get("real_path")))
    return out


def reads_this_version(c: Copy, builder: str, name: str, stamp: str) -> bool:
    """Whether ``c`` is the copy a load of these files (config ``name``, ``stamp``) reads rather than builds: a
    finished copy under that name, of the same paths and mtimes where its sidecar says them."""
    return (
        c.complete and c.path.parent.name == builder and c.path.name.startswith(name + "-") and c.stamp in (None, stamp)
    )


def copy_dir_of(arrow_file: str | os.PathLike[str]) -> Path | None:
    """The nsa-* directory holding one of a loaded dataset's cache files (<builder>/<nsa-...>/<version>/<hash>/x)."""
    for p in Path(arrow_file).parents:
        if p.name.startswith(COPY_PREFIX) and p.parent.name in BUILDERS:
            return p
    return None


def record_copy(copy_dir: Path, data_path: str, stamp: str) -> None:
    """Write the sidecar naming what ``copy_dir`` was built from (once: each rank loads the same copy). A cache the
    trainer cannot write to keeps no sidecar; the check then counts the copy among those of unrecorded data."""
    side = _sidecar(copy_dir)
    here = os.path.expanduser(data_path)
    # real_path: the files as `nsa check` finds them by any other path (a symlinked directory), even after the link
    # has moved on to other files
    record = {"data_path": os.path.abspath(here), "real_path": os.path.realpath(here), "stamp": stamp}
    if all(side.get(k) == v for k, v in record.items()):
        return
    record["written"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp = copy_dir / f".{SIDECAR}.{os.getpid()}.tmp"  # this process's own: ranks write beside each other
    try:
        tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
        os.replace(tmp, copy_dir / SIDECAR)
    except OSError:
        tmp.unlink(missing_ok=True)


def _parquet_text_bytes(f: str, text_field: str) -> int | None:
    """The uncompressed bytes of the text column in a Parquet file's footer; None when it cannot be read."""
    try:
        import pyarrow.parquet as pq  # a dependency of datasets; ~0.1 s, not datasets' ~1 s

        meta = pq.ParquetFile(f).metadata
        names = [meta.schema.column(i).path for i in range(meta.num_columns)]
        cols = [i for i, n in enumerate(names) if n == text_field or n.startswith(text_field + ".")]
        if not cols:
            return None
        groups = [meta.row_group(r) for r in range(meta.num_row_groups)]
        return sum(g.column(i).total_uncompressed_size for g in groups for i in cols)
    except Exception:  # not Parquet, truncated, no pyarrow: the factor
        return None


def estimate_copy_bytes(builder: str, files: list[str], text_field: str) -> int:
    """The size of the Arrow copy `datasets` will build of ``files``: their bytes times ARROW_FACTOR; a Parquet
    file's text column by its footer (its codec decides how much it grows)."""
    total = 0.0
    for f in files:
        size = os.stat(f).st_size
        if builder == "parquet" and (plain := _parquet_text_bytes(f, text_field)) is not None:
            total += plain * PARQUET_UNCOMPRESSED_FACTOR
        else:
            total += size * ARROW_FACTOR[builder]
    return int(total)


@dataclass(frozen=True)
class CachePlan:
    """What loading data.path does to the cache: the copy it builds (``build_bytes``, 0 when this version's copy is
    there: ``current``), and the copies left over, of this data.path (by their sidecars) and of anything else."""

    cache: Path
    builder: str
    build_bytes: int
    current: list[Copy]
    older: list[Copy]  # of the same data.path (by any path to its files: Copy.of)
    others: list[Copy]  # of other data, or not recorded (built before sidecars were written)


def cache_plan(
    cache: Path,
    builder: str,
    files: list[str],
    loaded: list[str],
    data_path: str,
    text_field: str,
    listing: Callable[[], list[list[Any]]],
) -> CachePlan:
    """The plan for a local source of ``files`` (``loaded``: those with documents, which datasets reads).
    ``listing`` is called only when the cache holds nsa-* copies of this builder: it samples every file."""
    found = copies(cache)
    current: list[Copy] = []
    if any(c.path.parent.name == builder for c in found):
        name, stamp = cache_name(listing()), copy_stamp(builder, loaded, text_field)
        current = [c for c in found if reads_this_version(c, builder, name, stamp)]
    real = os.path.realpath(os.path.expanduser(data_path))
    rest = [c for c in found if c not in current]
    return CachePlan(
        cache,
        builder,
        0 if current else estimate_copy_bytes(builder, loaded, text_field),
        current,
        [c for c in rest if c.of(real)],
        [c for c in rest if not c.of(real)],
    )
