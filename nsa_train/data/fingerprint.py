"""What a local source read, cheaply: its files (relative to data.path) with their sizes, and its document count.

A resume continues a saved position in a seeded permutation of the documents and keeps a seeded holdout: both
are only the same documents while the files are. Adding, removing or resizing a file changes them without a
word, so the position records this fingerprint and a resume under another one is refused. Not mtimes (a copy
to another machine changes them) and not contents (reading every byte would cost a pass over the corpus): an
edit that keeps every size and the document count goes unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

LISTED_FILES = 1000  # names and sizes are kept up to this many files (to say which changed); beyond, counts only
_NAMED = 3  # changed files named in a message


def _wild(s: str) -> bool:
    return any(ch in s for ch in "*?[")


def is_glob(path: str) -> bool:
    """data.path read as a glob: it has a wildcard and names nothing that exists (an existing path is itself)."""
    return _wild(path) and not os.path.exists(os.path.expanduser(path))


def _listing_root(path: str) -> str:
    """The directory the files of data.path are named relative to: the directory itself, a file's parent, or
    the part of a glob before its first wildcard."""
    p = os.path.expanduser(path)
    if is_glob(p):  # as resolve_local_files tells a glob
        parts = Path(p).parts
        fixed = next(i for i, part in enumerate(parts) if _wild(part))
        return str(Path(*parts[:fixed])) if fixed else "."
    return p if os.path.isdir(p) else os.path.dirname(p) or "."


def file_listing(path: str, files: list[str]) -> list[list[Any]]:
    """[[name relative to data.path, bytes], ...] sorted by name: taken before the files are read."""
    root = _listing_root(path)
    return sorted([Path(os.path.relpath(f, root)).as_posix(), os.stat(f).st_size] for f in files)


def local_fingerprint(listing: list[list[Any]], documents: int) -> dict[str, Any]:
    """JSON for the saved data position: counts, a digest of the listing, and the listing itself when short."""
    digest = hashlib.blake2b(json.dumps(listing).encode(), digest_size=16).hexdigest()
    fp: dict[str, Any] = {
        "files": len(listing),
        "bytes": sum(size for _, size in listing),
        "documents": documents,
        "digest": digest,
    }
    if len(listing) <= LISTED_FILES:
        fp["listing"] = listing
    return fp


def _count(n: Any, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _what_changed(then: dict[str, Any], now: dict[str, Any]) -> str:
    """Which files were added, removed or resized, when both listings are known; else the totals."""
    if isinstance(then.get("listing"), list) and isinstance(now.get("listing"), list):
        before = {str(name): size for name, size in then["listing"]}
        after = {str(name): size for name, size in now["listing"]}
        changes = [f"{n} added" for n in sorted(after.keys() - before.keys())]
        changes += [f"{n} removed" for n in sorted(before.keys() - after.keys())]
        changes += [
            f"{n} {before[n]} -> {after[n]} bytes" for n in sorted(before) if n in after and before[n] != after[n]
        ]
        if not changes:
            return "the same files and sizes, other documents"
        more = f" and {len(changes) - _NAMED} more" if len(changes) > _NAMED else ""
        return ", ".join(changes[:_NAMED]) + more
    if then.get("bytes") != now.get("bytes"):
        return f"{then.get('bytes')} -> {now.get('bytes')} bytes"
    return "other file names or sizes"


def fingerprint_change(path: str, then: Any, now: dict[str, Any]) -> str | None:
    """The one-line refusal when the files at ``path`` are not those the saved position was taken in, else None.
    ``then`` comes from a checkpoint: anything that is not a fingerprint is left alone (nothing to compare)."""
    if not isinstance(then, dict) or "digest" not in then:
        return None
    if then.get("digest") == now["digest"] and then.get("documents") == now["documents"]:
        return None
    was = f"{_count(then.get('files'), 'file')}/{_count(then.get('documents'), 'document')}"
    is_ = f"{_count(now['files'], 'file')}/{_count(now['documents'], 'document')}"
    return (
        f"data.path {path} changed since the checkpoint: {was} then, {is_} now ({_what_changed(then, now)}); the "
        "data position and the validation holdout would not be the same documents. Restore the files or start a "
        "new run"
    )


def listing_change(path: str, then: Any, now: list[list[Any]]) -> str | None:
    """The refusal when the files at ``path`` are not those of ``then``, the listing the run's last attempt recorded
    in run.json (names and sizes: cheap, before anything starts), else None; a listing not known says nothing. The
    saved position's own fingerprint (document count too) is still compared once the files are read."""
    if not isinstance(then, list) or not all(isinstance(x, list) and len(x) == 2 for x in then):
        return None
    before = sorted([str(name), size] for name, size in then)
    if before == now:
        return None
    return (
        f"data.path {path} changed since the run's last start: {_count(len(before), 'file')} then, "
        f"{_count(len(now), 'file')} now ({_what_changed({'listing': before}, {'listing': now})}); the data position "
        "and the validation holdout would not be the same documents. Restore the files or start a new run"
    )
