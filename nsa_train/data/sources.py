"""Document sources: where texts come from, which are held out for validation, and which this rank trains on.

Every source goes through Hugging Face `datasets`:
- embedded: the bundled Shakespeare scenes as an in-memory ``datasets.Dataset``;
- local: ``load_dataset("text"|"json"|"parquet", data_files=...)`` (map-style; HF caches the Arrow copy);
- hf: ``load_dataset(hf_name, hf_config, split=..., streaming=True)``.

Map-style sources hold out ``val_docs`` documents chosen by a seeded sample and give each epoch a
seeded permutation of the rest, dealt round-robin to the ranks. The streaming source holds out the
first ``val_docs`` documents of the stream and shards with ``split_dataset_by_node`` after a seeded
shard + buffer shuffle (``set_epoch`` reshuffles). Either way any training document whose text equals
a validation document is skipped, so duplicated text cannot leak into training.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from nsa_train.pathkind import special_kind

from .arrow_cache import cache_name, copy_dir_of, copy_stamp, record_copy
from .arrow_text import text_chunks
from .corpus import embedded_documents, plays_dir
from .diagnose import (
    UTF8_SCAN_BUDGET,
    files_without_documents,
    first_invalid_text_row,
    invalid_text_problem,
    missing_parquet_column,
    mixed_json_problem,
    no_documents_problem,
    not_utf8,
    read_error,
    save_to_disk_problem,
    shown,
    text_column_problem,
    too_few_documents,
)
from .errors import DataError
from .fingerprint import LISTED_FILES, file_listing, is_glob, local_fingerprint
from .hf import import_datasets

FORMATS = {".txt": "text", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
STREAM_SHUFFLE_BUFFER = 1000  # documents; small enough that the first batch of a hub stream comes quickly
# A map-style epoch deals a new permutation, and the start checked there is a training document per rank: a rank's
# share holds none of them in under half of the epochs (the worst: a share of one entry, fewer than half of the
# entries trained on), so 100 in a row (< 1e-30) is not chance but a corpus that changed under the run
MAP_EMPTY_EPOCH_LIMIT = 100


def text_hash(text: str) -> bytes:
    """A document's identity for the held-out check: its text without surrounding whitespace. The text loader
    keeps the line break after a file's last paragraph only, so one paragraph held out from the middle of a file
    and found again at the end of another was trained on."""
    return hashlib.blake2b(text.strip().encode("utf-8"), digest_size=16).digest()


class DocSource(Protocol):
    description: str
    replayed: int
    """Documents re-read so far to reach a resume's saved position (a stream cannot seek; 0 for the others)."""
    fingerprint: dict[str, Any] | None
    """What a local source read (its files, their sizes, its document count: fingerprint.py); None for the others."""
    skipped: Skipped
    """The documents the latest train_texts pass did not yield, and why (empty, or a validation document's text)."""
    empty_epoch_limit: int
    """Consecutive epochs whose share for this rank holds nothing trained on, at which the stream gives up (1: the
    first such epoch is an error)."""

    def val_texts(self) -> list[str]:
        """The held-out documents, in a fixed order (the same on every rank)."""
        ...

    def train_texts(self, epoch: int, start_doc: int) -> Iterator[tuple[int, str]]:
        """(index, text) of this rank's training documents of `epoch`, from index `start_doc` on.

        Indices count every document of the rank's epoch order (skipped ones included), so that a
        position saved as an index is found again on resume.
        """
        ...


def resolve_local_files(path: str) -> tuple[str, list[str]]:
    """(datasets builder name, sorted files) for data.path: a file, a directory (recursive) or a glob. A path that
    exists is that file or directory, `[`, `?` or `*` in its name included: as a glob, `data/x[1]/a.jsonl` read
    `data/x1/a.jsonl`, another file, without a word."""
    p = Path(path).expanduser()
    if is_glob(path):
        files = sorted(f for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
        if not files:
            raise DataError(f"data.path {path!r}: the glob matches no files")
    elif p.is_dir():
        files = _directory_files(p).read
        if not files:
            raise DataError(f"data.path {path!r}: no {'/'.join(FORMATS)} files in this directory")
    elif p.is_file():
        files = [str(p)]
    elif p.exists():
        kind = special_kind(p)
        fix = (
            "the corpus is read more than once (checked, counted, loaded), a pipe's data only once: write it to a "
            "file and point data.path there"
            if kind == "named pipe"
            else "point it at a file, a directory or a glob of files"
        )
        raise DataError(f"data.path {path!r} is a {kind}, not a file or a directory: {fix}")
    else:
        raise DataError(f"data.path {path!r} does not exist")
    if problem := save_to_disk_problem(path, files):
        raise DataError(problem)
    kinds = {Path(f).suffix.lower() for f in files}
    unknown = kinds - set(FORMATS)
    if unknown:
        kind = sorted(unknown)[0]
        raise DataError(f"data.path {path!r}: unsupported file type {kind!r} (use .txt, .jsonl, .json or .parquet)")
    builders = {FORMATS[k] for k in kinds}
    if len(builders) > 1:
        raise DataError(f"data.path {path!r} mixes file types {sorted(kinds)}; point it at one kind")
    return builders.pop(), files


class DirectoryListing(NamedTuple):
    """The entries under a directory data.path, each list sorted: those read and those left out, by why."""

    read: list[str]  # files of a kind data.path reads
    other: list[str]  # files of another kind
    broken: list[str]  # links to nothing: a disk not mounted is shards missing
    special: list[str]  # named pipes, sockets, devices: a pipe read here would wait for a writer


def _directory_files(p: Path) -> DirectoryListing:
    """The entries under directory ``p``. Hidden files and directories are left out, as a glob leaves them:
    .ipynb_checkpoints/ holds copies of the corpus (trained on twice), .git/ and .cache/ hold tooling. Linked
    directories are entered (shards linked in from another disk were skipped without a word, where a `**` glob
    follows them), each real directory once: a link back up the tree is no loop, and two links to one directory do
    not read it twice."""
    out = DirectoryListing([], [], [], [])
    entered = {os.path.realpath(p)}
    for root, dirs, names in os.walk(p, followlinks=True):
        keep = []
        for d in sorted(dirs):  # sorted: which of two links to one directory is read never depends on the disk
            # (hidden ones are not walked at all: a .git of many objects)
            real = os.path.realpath(os.path.join(root, d))
            if not d.startswith(".") and real not in entered:
                entered.add(real)
                keep.append(d)
        dirs[:] = keep
        for name in names:
            f = os.path.join(root, name)
            if name.startswith("."):
                continue
            if os.path.isfile(f):
                (out.read if os.path.splitext(name)[1].lower() in FORMATS else out.other).append(f)
            elif os.path.islink(f) and not os.path.exists(f):
                out.broken.append(f)
            elif os.path.exists(f):  # os.walk lists what is not a directory among the names
                out.special.append(f)
    for entries in out:
        entries.sort()
    return out


def skipped_files(path: str) -> DirectoryListing | None:
    """What a directory data.path holds that is not read (hidden entries aside): files of another kind than
    .txt/.jsonl/.json/.parquet, links that lead nowhere, named pipes, sockets and devices; for a glob, its matches
    that are links to nothing or not files (directories aside: `**` matches those); None for a file. Said at the
    start, as a CSV left out without a word looks like part of the corpus, and a link to a disk not mounted is
    shards missing."""
    p = Path(path).expanduser()
    if is_glob(path):
        matches = sorted(glob.glob(str(p), recursive=True))
        broken = [m for m in matches if os.path.islink(m) and not os.path.exists(m)]
        special = [m for m in matches if os.path.exists(m) and not (os.path.isfile(m) or os.path.isdir(m))]
        return DirectoryListing([m for m in matches if os.path.isfile(m)], [], broken, special)
    if not p.is_dir():
        return None
    return _directory_files(p)


def _named(paths: list[str]) -> str:
    return ", ".join(shown(f) for f in paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def _without_documents(path: str) -> tuple[list[str], str]:
    """(the files of data.path left out of the load as they hold no documents, what they are); none when data.path
    cannot be listed or every file is one of them: the start and `nsa check` refuse it then, saying why."""
    try:
        builder, files = resolve_local_files(path)
        empty = files_without_documents(builder, files)
    except (DataError, OSError):
        return [], ""
    what = "0 rows" if builder == "parquet" else "empty, blank or an empty list"
    return (empty, what) if len(empty) < len(files) else ([], "")


def skipped_files_warning(path: str) -> str | None:
    listing = skipped_files(path) or DirectoryListing([], [], [], [])
    other, broken, special = listing.other, listing.broken, listing.special
    said = []
    empty, what = _without_documents(path)
    if empty:
        said.append(f"{len(empty)} file(s) without documents not read ({_named(empty)}: {what})")
    if other:
        kinds = ", ".join(FORMATS)
        said.append(f"{len(other)} file(s) of another kind not read ({_named(other)}): only {kinds} are")
    if broken:
        ends = _named([f"{f} -> {os.readlink(f)}" for f in broken])
        said.append(f"{len(broken)} link(s) to nothing not read ({ends}): a disk not mounted?")
    if special:
        what = _named([f"{f}: a {special_kind(f)}" for f in special])
        n = len(special)
        said.append(f"{n} {'entry that is not a file' if n == 1 else 'entries that are not files'} not read ({what})")
    return f"data.path {shown(path)}: {'; '.join(said)}" if said else None


def local_text_field(builder: str, text_field: str, path: str) -> str:
    """The column a local source's documents come from: .txt files have one ('text', a paragraph per document),
    so another data.text_field there is a mistake, not a preference to drop silently."""
    if builder != "text":
        return text_field
    if text_field != "text":
        raise DataError(
            f"data.text_field {text_field!r} is not read from the .txt files of data.path {path!r} (each paragraph "
            "is a document): drop it, or give .jsonl/.parquet files"
        )
    return "text"


OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_hint(e: BaseException, environ: Mapping[str, str] = os.environ) -> str:
    """What to do when the hub cannot be reached; datasets raises the builtin ConnectionError for DNS failures,
    refused connections and offline mode alike. Empty for other errors (auth, a wrong name: their own text)."""
    if not isinstance(e, ConnectionError):
        return ""
    offline = [k for k in OFFLINE_VARS if environ.get(k, "").strip().upper() in ("1", "ON", "YES", "TRUE")]
    why = f"{' and '.join(offline)} set here" if offline else "this machine cannot reach the Hugging Face Hub"
    return (
        f". {why[0].upper()}{why[1:]}: train where the hub is reachable, or save the data as .parquet or .jsonl "
        "files and use data.source=local, data.path=<them> (docs/data.md)"
    )


def check_source(cfg: Any) -> None:
    """Cheap checks that can fail before any thread starts (missing paths)."""
    if cfg.data.source == "local":
        builder, _ = resolve_local_files(cfg.data.path)
        local_text_field(builder, cfg.data.text_field, cfg.data.path)


def open_source(cfg: Any, rank: int, world_size: int) -> DocSource:
    d = cfg.data
    if d.source == "embedded":
        datasets = import_datasets(offline=True)
        ds = datasets.Dataset.from_dict({"text": list(embedded_documents())})
        embedded = MapSource(ds, "text", d.val_docs, d.seed, rank, world_size, d.source_description)
        embedded.files = sum(1 for _ in plays_dir().rglob("*.md"))  # the plays (data_summary's files)
        return embedded
    if d.source == "local":
        builder, files = resolve_local_files(d.path)
        listing = file_listing(d.path, files)  # the sizes and samples of what is about to be read
        datasets = import_datasets(offline=True)
        # utf-8-sig: a byte-order mark (Windows editors write one) was trained on as the first document's content
        kwargs: dict[str, Any] = {"sample_by": "paragraph", "encoding": "utf-8-sig"} if builder == "text" else {}
        if builder == "parquet":
            # the text column only: files whose other columns differ (an `id` here, a `url` there) failed in
            # datasets' cast, naming no file; read from each file's schema, a missing column names its file
            if problem := missing_parquet_column(files, d.text_field):
                raise DataError(problem)
            kwargs["columns"] = [d.text_field]
        # files without documents (0-row Parquet, empty or blank JSON) are left out of the load, named in the start
        # warnings (skipped_files_warning); the fingerprint (listing) still counts them, as run.json's listing does
        without_rows = set(files_without_documents(builder, files))
        if without_rows and len(without_rows) == len(files):
            raise DataError(
                no_documents_problem(d.path, builder, files)
                or too_few_documents(f"data.path {shown(d.path)}", 0, d.val_docs, builder, len(files))
            )
        try:
            # datasets reads data_files as patterns: escaped, `x[1]/a.jsonl` is that file, not `x1/a.jsonl`
            escaped = [glob.escape(f) for f in files if f not in without_rows]
            # keyed on the listing (sizes and sampled bytes), not only on datasets' own path + mtime key: an edit that
            # keeps both (cp -p, rsync -t, a coarse-mtime file system) read the old text from its Arrow cache
            ds = datasets.load_dataset(builder, name=cache_name(listing), data_files=escaped, split="train", **kwargs)
        except Exception as e:  # datasets wraps the cause: find the file and what is wrong with it again
            raise DataError(read_error(d.source_description, d.path, builder, files, d.text_field, e)) from e
        if ds.cache_files and (copy := copy_dir_of(ds.cache_files[0]["filename"])) is not None:
            # what the copy was built from: `nsa check` tells this version's copy, and older ones of data.path, by it
            loaded = [f for f in files if f not in without_rows]
            record_copy(copy, d.path, copy_stamp(builder, loaded, d.text_field))
        field = local_text_field(builder, d.text_field, d.path)
        if field not in ds.column_names:
            raise DataError(
                f"data.text_field {field!r} is not a column of {d.source_description} (columns: {ds.column_names})"
            )
        key = (builder, field, tuple(map(os.path.abspath, files)), json.dumps(listing))
        if builder == "json" and (problem := _once(("json", *key), lambda: mixed_json_problem(d.path, files, field))):
            raise DataError(problem)
        # now, not when training reaches the document (a .txt file fails in load_dataset already); before the
        # count: a .json object of lists ({"text": [...]}) is one document whose text is a list, which is the problem
        if problem := _once(
            ("field", *key), lambda: text_column_problem(ds.data.column(field), field, d.path, len(files))
        ):
            raise DataError(problem)
        if len(ds) <= d.val_docs:
            # files of line breaks only load as one '\n' document each: "1 document, and none to split at" of a
            # blank file said the opposite of what it holds
            raise DataError(
                no_documents_problem(d.path, builder, files)
                or too_few_documents(f"data.path {shown(d.path)}", len(ds), d.val_docs, builder, len(files))
            )
        budget = UTF8_SCAN_BUDGET
        bad = _once(("utf8", budget, *key), lambda: first_invalid_text_row(ds.data.column(field), budget))
        if bad is not None:
            raise DataError(invalid_text_problem(d.path, builder, files, bad))
        source = MapSource(
            ds.select_columns([field]), field, d.val_docs, d.seed, rank, world_size, d.source_description
        )
        source.fingerprint = local_fingerprint(listing, len(ds))
        source.files = len(files) - len(without_rows)  # the files read (run.json's data_summary.files)
        return source
    datasets = import_datasets(offline=False)
    try:
        stream = datasets.load_dataset(d.hf_name, d.hf_config, split=d.hf_split, streaming=True)
    except Exception as e:  # hub/network/auth errors: one line naming the dataset
        raise DataError(f"cannot open {d.source_description}: {type(e).__name__}: {_one_line(e)}{hub_hint(e)}") from e
    return StreamSource(stream, d.text_field, d.val_docs, d.seed, rank, world_size, d.source_description)


def _docs(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


# each rank opens the local files twice (its validation set, and the training stream's thread): the checks that read
# them whole run once per process for the same files and sizes
_CHECKED: dict[tuple[Any, ...], Any] = {}


def _once(key: tuple[Any, ...], check: Callable[[], Any]) -> Any:
    if key not in _CHECKED:
        _CHECKED[key] = check()
    return _CHECKED[key]


def _text_of(row: dict, field: str, description: str) -> str:
    if field not in row:
        raise DataError(f"data.text_field {field!r} is not a field of {description} (fields: {sorted(row)})")
    text = row[field]
    if text is None:
        return ""
    if not isinstance(text, str):
        raise DataError(f"data.text_field {field!r} of {description} holds {type(text).__name__}, not text")
    return text


def data_listing(data: Any) -> list[list[Any]] | None:
    """[[name, bytes, sample digest], ...] of a local source's files (run.json's `data_listing`: what a --resume
    compares before it writes anything, fingerprint.py); None for another source or beyond LISTED_FILES files."""
    if data.source != "local" or not data.path:
        return None
    _, files = resolve_local_files(data.path)
    return file_listing(data.path, files) if len(files) <= LISTED_FILES else None


class Skipped:
    """The documents of one pass that are not trained on: empty ones, and those whose text equals a validation
    document's (a held-out text is never trained on). Counted: an epoch left with none says why."""

    def __init__(self) -> None:
        self.seen = self.empty = self.held_out = 0

    def keep(self, text: str, val_hashes: set[Any]) -> bool:
        self.seen += 1
        if not text.strip():  # whitespace alone teaches nothing (a .txt paragraph of spaces is one)
            self.empty += 1
            return False
        if text_hash(text) in val_hashes:
            self.held_out += 1
            return False
        return True

    def why_none(self) -> str:
        """Why a pass that kept nothing kept nothing."""
        if not self.seen:
            return "no documents came to this rank"
        parts = []
        if self.held_out:
            parts.append(f"{self.held_out} equal a validation document (held-out texts are never trained on)")
        if self.empty:
            parts.append(f"{self.empty} are empty")
        return f"of its {self.seen} documents, " + " and ".join(parts)


class Trained(NamedTuple):
    """What training reads of a map-style source's training documents, by Skipped's rules."""

    index: np.ndarray  # the rows it reads, ascending
    copies: int  # rows it skips as their text equals a held-out document's
    empty: int  # rows it skips as empty or whitespace only


def trained_rows(column: Any, held_out: np.ndarray, val_texts: list[str], enough: int | None = None) -> Trained:
    """The training rows of an Arrow string column (``held_out`` aside) that Skipped keeps, vectorised in pyarrow: no
    Python loop over a corpus. Arrow's whitespace is Python's (Zs, or bidi class WS, B or S), so a trimmed text
    equal to a trimmed held-out one is exactly text_hash's equality. A chunk at a time (the trimmed copy of one chunk
    in memory, not of the corpus); stops once ``enough`` rows are kept, the counts then partial."""
    import pyarrow as pa
    import pyarrow.compute as pc

    held = sorted({t.strip() for t in val_texts if t.strip()})
    kept: list[np.ndarray] = []
    copies = empty = found = start = 0
    for chunk in text_chunks(column):
        n = len(chunk)
        train = ~held_out[start : start + n]
        trimmed = pc.utf8_trim_whitespace(chunk)
        blank = pc.fill_null(pc.equal(pc.binary_length(trimmed), 0), True).to_numpy(zero_copy_only=False)
        copy = pc.fill_null(pc.is_in(trimmed, value_set=pa.array(held, type=chunk.type)), False)
        copy = copy.to_numpy(zero_copy_only=False) & ~blank
        keep = np.flatnonzero(train & ~blank & ~copy) + start
        kept.append(keep)
        copies += int((train & copy).sum())
        empty += int((train & blank).sum())
        found += len(keep)
        start += n
        if enough is not None and found >= enough:
            break
    index = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    return Trained(index.astype(np.int64, copy=False), copies, empty)


class MapSource:
    """A random-access `datasets.Dataset`: seeded validation sample, seeded permutation per epoch."""

    # an epoch whose deal gives this rank only documents it skips is passed over (stream.doc_tokens): a few distinct
    # documents among copies of held-out texts or empty ones land on one rank at times, and the next deal differs
    empty_epoch_limit = MAP_EMPTY_EPOCH_LIMIT

    def __init__(self, ds: Any, field: str, val_docs: int, seed: int, rank: int, world_size: int, description: str):
        self.description = description
        self.replayed = 0  # random access: a resume starts at its saved index at once
        self.fingerprint: dict[str, Any] | None = None  # set by open_source for local files
        self.files: int | None = None  # files read (set by open_source; the plays of the embedded corpus)
        self.skipped = Skipped()  # of the latest training pass
        self._ds, self._field, self._rank, self._world, self._seed = ds, field, rank, world_size, seed
        n = len(ds)
        if n <= val_docs:
            raise DataError(too_few_documents(description, n, val_docs, None, 0))
        self._val_index = sorted(random.Random(seed).sample(range(n), val_docs))
        self._val_hashes = {text_hash(t) for t in self.val_texts()}
        self._held_out = np.zeros(n, dtype=bool)
        self._held_out[self._val_index] = True
        self._train_index = np.flatnonzero(~self._held_out)  # int64 [n - val_docs]
        self._trained: Trained | None = None
        self._order_digest: str | None = None
        # now, on every rank alike: the stream's thread failed on the short ranks only. What training reads: a
        # corpus of copies of its held-out texts passed on its row count and failed per rank once training began
        found = trained_rows(self.text_column(), self._held_out, self.val_texts(), enough=world_size)
        if len(found.index) < world_size:
            skipped = "".join(
                f", {k} {what}"
                for k, what in ((found.copies, "equal a held-out document"), (found.empty, "empty"))
                if k
            )
            ranks = f" for {world_size} ranks" if world_size > 1 else ""
            fewer = ", train on fewer ranks," if world_size > 1 else ""
            raise DataError(
                f"{description} has {_docs(len(found.index), 'training document')}{ranks} ({n} documents, "
                f"data.val_docs={val_docs} held out{skipped}): every rank needs one; lower data.val_docs{fewer} or "
                f"give more {'distinct ' if found.copies else ''}documents",
                every_rank=True,
            )

    def _text(self, i: int) -> str:
        try:
            row = self._ds[int(i)]
        except UnicodeDecodeError as e:  # past the start's UTF-8 check (its byte budget)
            raise DataError(f"document {int(i)} of {self.description} {not_utf8(e.reason)}") from e
        return _text_of(row, self._field, self.description)

    def val_texts(self) -> list[str]:
        return [self._text(i) for i in self._val_index]

    @property
    def n_val(self) -> int:
        """Held-out documents (data.val_docs)."""
        return len(self._val_index)

    @property
    def train_index(self) -> np.ndarray:
        """The training documents' indices, before the per-epoch shuffle."""
        return self._train_index

    def text_column(self) -> Any:
        """The documents' text as one Arrow column (summary.py counts its bytes without a Python loop)."""
        return self._ds.data.column(self._field)

    def trained(self) -> Trained:
        """The training documents training reads, and those it skips (summary.py: once, on rank 0)."""
        if self._trained is None:
            self._trained = trained_rows(self.text_column(), self._held_out, self.val_texts())
        return self._trained

    @property
    def n_train(self) -> int:
        """Training documents per epoch (the held-out ones aside)."""
        return len(self._train_index)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """All ranks' document indices for `epoch`: a seeded shuffle of the training set, the same for any world
        size (a --reshard continues it: reshard.py)."""
        return np.random.default_rng([self._seed, epoch]).permutation(self._train_index)

    @property
    def order_digest(self) -> str:
        """A digest of the holdout and epoch 0's order. Both are drawn from data.seed by Python's random.sample and
        NumPy's Generator.permutation, whose draws neither library promises to keep across versions: a resume
        after an upgrade that drew others would train on former validation documents and leave the stream's
        position meaningless, without a word. The saved data position keeps it and a resume compares."""
        if self._order_digest is None:
            h = hashlib.blake2b(digest_size=8)
            h.update(np.ascontiguousarray(self._val_index, dtype=np.int64))
            h.update(np.ascontiguousarray(self.epoch_order(0), dtype=np.int64))  # hashed in place: no copies
            self._order_digest = h.hexdigest()
        return self._order_digest

    def rank_order(self, epoch: int) -> np.ndarray:
        """This rank's document indices for `epoch`: the epoch's order dealt round-robin."""
        return self.epoch_order(epoch)[self._rank :: self._world]

    def trained_text(self, index: int) -> str:
        """Document `index`'s text as training reads it: "" for one it skips (empty, or a held-out text)."""
        text = self._text(index)
        return text if Skipped().keep(text, self._val_hashes) else ""

    def train_texts(self, epoch: int, start_doc: int) -> Iterator[tuple[int, str]]:
        order = self.rank_order(epoch)
        self.skipped = Skipped()
        for k in range(start_doc, len(order)):
            text = self._text(order[k])
            if self.skipped.keep(text, self._val_hashes):
                yield k, text


class StreamSource:
    """A `datasets.IterableDataset` (the hub, streamed): the first documents are validation."""

    # its next epoch is its shard read again (over the network): an empty one is an error at once
    empty_epoch_limit = 1

    def __init__(self, stream: Any, field: str, val_docs: int, seed: int, rank: int, world_size: int, description: str):
        self.description = description
        self.replayed = 0
        self.fingerprint = None
        self.skipped = Skipped()  # of the latest training pass
        self._stream, self._field, self._rank, self._world, self._seed = stream, field, rank, world_size, seed
        self._val = []
        for row in stream:
            text = _text_of(row, field, description)
            if text:
                self._val.append(text)
            if len(self._val) == val_docs:
                break
        else:
            raise DataError(f"{description} has fewer than data.val_docs={val_docs} documents: none left to train on")
        self._val_hashes = {text_hash(t) for t in self._val}

    def val_texts(self) -> list[str]:
        return list(self._val)

    def train_texts(self, epoch: int, start_doc: int) -> Iterator[tuple[int, str]]:
        from datasets.distributed import split_dataset_by_node

        shuffled = self._stream.shuffle(seed=self._seed, buffer_size=STREAM_SHUFFLE_BUFFER)
        shard = split_dataset_by_node(shuffled, rank=self._rank, world_size=self._world)
        shard.set_epoch(epoch)
        # Resuming replays the rank's stream up to the saved document: exact, at the cost of re-reading it (after
        # days of training, millions of documents: the trainer reports `replayed` while it waits)
        self.skipped = Skipped()
        for k, row in enumerate(shard):
            if k < start_doc:
                self.replayed = k + 1
                continue
            text = _text_of(row, self._field, self.description)
            if self.skipped.keep(text, self._val_hashes):
                yield k, text
