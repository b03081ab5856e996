"""What a local source read, cheaply: its files (relative to data.path) with their sizes and a sample of their bytes,
and its document count.

A resume continues a saved position in a seeded permutation of the documents and keeps a seeded holdout: both
are only the same documents while the files are. Adding, removing, resizing or editing a file changes them without
a word, so the position records this fingerprint and a resume under another one is refused. Not mtimes (a copy
to another machine changes them) and not every byte (a pass over a corpus of many GB at each start): a digest of
each file's first and last 64 KiB and of 4 KiB pieces evenly spaced between them. An edit of the same size that
touches none of those bytes (in the middle of a file over 160 KiB) and keeps the document count still goes
unnoticed.

This module owns what counts as the same files: run.json's `data_listing` (compared before a --resume writes
anything), a moved corpus and the saved position's fingerprint all compare listings with listing_differences.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import init_from_hint

LISTED_FILES = 1000  # names, sizes, samples kept up to this many files (to say which changed); beyond, counts
SAMPLE_EDGE = 64 * 1024  # bytes hashed at each end of a file: headers, the first and last documents
SAMPLE_PIECES = 8  # pieces hashed between the ends, evenly spaced
SAMPLE_PIECE = 4 * 1024
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


def content_sample(f: str, st: os.stat_result) -> str | None:
    """A digest of the file's size and a bounded sample of its bytes (all of them up to 160 KiB): at most 160 KiB
    read, however large the file. None for what is not a regular file (a named pipe read here would be consumed) or
    cannot be read (reading the corpus says why, in its own words)."""
    if not stat.S_ISREG(st.st_mode):
        return None
    size = st.st_size
    h = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=8)
    try:
        with open(f, "rb") as fh:
            if size <= 2 * SAMPLE_EDGE + SAMPLE_PIECES * SAMPLE_PIECE:
                h.update(fh.read(size))
            else:
                span = size - 2 * SAMPLE_EDGE - SAMPLE_PIECE  # where a piece can start, between the two ends
                step = span // (SAMPLE_PIECES + 1)
                pieces = [(SAMPLE_EDGE + step * (i + 1), SAMPLE_PIECE) for i in range(SAMPLE_PIECES)]
                for offset, length in [(0, SAMPLE_EDGE), *pieces, (size - SAMPLE_EDGE, SAMPLE_EDGE)]:
                    fh.seek(offset)
                    h.update(fh.read(length))
    except OSError:
        return None
    return h.hexdigest()


def file_listing(path: str, files: list[str]) -> list[list[Any]]:
    """[[name relative to data.path, bytes, sample digest], ...] sorted by name: taken before the files are read.
    Beyond LISTED_FILES files [name, bytes] only: nothing keeps the names then, and sampling them costs reads."""
    root = _listing_root(path)
    sampled = len(files) <= LISTED_FILES
    listing = []
    for f in files:
        st = os.stat(f)
        name = Path(os.path.relpath(f, root)).as_posix()
        listing.append([name, st.st_size, content_sample(f, st)] if sampled else [name, st.st_size])
    return sorted(listing)


def is_listing(x: Any) -> bool:
    """A listing as run.json or a position holds it: [name, bytes, sample] entries, or [name, bytes] as written
    before the sample was recorded."""
    return isinstance(x, list) and all(isinstance(e, list) and len(e) in (2, 3) for e in x)


def _entries(listing: list[list[Any]]) -> dict[str, tuple[Any, Any]]:
    return {str(e[0]): (e[1], e[2] if len(e) > 2 else None) for e in listing}


def listing_differences(then: list[list[Any]], now: list[list[Any]]) -> list[str]:
    """What differs between two listings, file by file (empty: the same files): added, removed, resized, and, where
    both sides sampled a file, other bytes at the same size. A listing written before the sample was recorded
    compares by names and sizes only, as it did."""
    before, after = _entries(then), _entries(now)
    changes = [f"{n} added" for n in sorted(after.keys() - before.keys())]
    changes += [f"{n} removed" for n in sorted(before.keys() - after.keys())]
    for n in sorted(before.keys() & after.keys()):
        (size, sample), (size_now, sample_now) = before[n], after[n]
        if size != size_now:
            changes.append(f"{n} {size} -> {size_now} bytes")
        elif sample is not None and sample_now is not None and sample != sample_now:
            changes.append(f"{n} edited, the same size")
    return changes


def local_fingerprint(listing: list[list[Any]], documents: int) -> dict[str, Any]:
    """JSON for the saved data position: counts, a digest of the names and sizes (as before samples were listed: a
    position saved then still matches), and the listing itself, samples included, when short."""
    digest = hashlib.blake2b(json.dumps([e[:2] for e in listing]).encode(), digest_size=16).hexdigest()
    fp: dict[str, Any] = {
        "files": len(listing),
        "bytes": sum(e[1] for e in listing),
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
    if is_listing(then.get("listing")) and is_listing(now.get("listing")):
        changes = listing_differences(then["listing"], now["listing"])
        if not changes:
            return "the same files and sizes, other documents"
        return named_changes(changes)
    if then.get("bytes") != now.get("bytes"):
        return f"{then.get('bytes')} -> {now.get('bytes')} bytes"
    return "other file names or sizes"


def fingerprint_change(path: str, then: Any, now: dict[str, Any], weights: object) -> str | None:
    """The one-line refusal when the files at ``path`` are not those the saved position was taken in, else None.
    ``then`` comes from a checkpoint (``weights``, named in the refusal's way on): anything that is not a fingerprint
    is left alone (nothing to compare)."""
    if not isinstance(then, dict) or "digest" not in then:
        return None
    listed = is_listing(then.get("listing")) and is_listing(now.get("listing"))
    edited = listed and bool(listing_differences(then["listing"], now["listing"]))  # the digest is names and sizes
    if then.get("digest") == now["digest"] and then.get("documents") == now["documents"] and not edited:
        return None
    was = f"{_count(then.get('files'), 'file')}/{_count(then.get('documents'), 'document')}"
    is_ = f"{_count(now['files'], 'file')}/{_count(now['documents'], 'document')}"
    return (
        f"data.path {path} changed since the checkpoint: {was} then, {is_} now ({_what_changed(then, now)}); the "
        "data position and the validation holdout would not be the same documents. Restore the files or start a "
        f"new run from the checkpoint's weights {init_from_hint(weights)}"
    )


def listing_change(path: str, then: Any, now: list[list[Any]], weights: object) -> str | None:
    """The refusal when the files at ``path`` are not those of ``then``, the listing the run's last attempt (of the
    run directory ``weights``) recorded in run.json (names, sizes, samples: cheap, before anything starts), else
    None; a listing not known says nothing. The saved position's own fingerprint (document count too) is still
    compared once the files are read."""
    if not is_listing(then):
        return None
    changes = listing_differences(then, now)
    if not changes:
        return None
    return (
        f"data.path {path} changed since the run's last start: {_count(len(then), 'file')} then, "
        f"{_count(len(now), 'file')} now ({named_changes(changes)}); the data position "
        "and the validation holdout would not be the same documents. Restore the files or start a new run from the "
        f"checkpoint's weights {init_from_hint(weights)}"
    )


def named_changes(changes: list[str]) -> str:
    """The first changes of listing_differences for a message, and how many more there are."""
    more = f" and {len(changes) - _NAMED} more" if len(changes) > _NAMED else ""
    return ", ".join(changes[:_NAMED]) + more


def same_files(then: Any, now: list[list[Any]]) -> bool:
    """Whether ``then``, a listing from run.json, names the files of ``now`` (a moved corpus); False when not known."""
    return is_listing(then) and not listing_differences(then, now)
