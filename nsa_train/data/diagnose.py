"""Why local files cannot be used, in the user's terms.

`datasets` wraps what went wrong reading data.path in a DatasetGenerationError ("An error occurred while
generating the dataset"); the cause is further down the chain and often names no file, or a position inside a
decoder's chunk. These functions find the file (and the byte or line) again by reading the files themselves,
only once reading has already failed, or within a byte budget for `nsa check`.
"""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path
from typing import Any

from .arrow_text import is_text_type

CHUNK = 1 << 20
SCAN_BUDGET = 64 << 20  # bytes an error path reads to find the bad file; a larger corpus keeps the generic reason
UTF8_SCAN_BUDGET = 2 << 30  # decoding runs at memory speed: a few seconds at most
CAST_ERRORS = {"CastError", "ArrowInvalid", "TypeError"}  # a later JSON file that does not fit the first one's types
WRAPPERS = ("DatasetGenerationError",)  # datasets' "An error occurred while generating the dataset"


def shown(path: str) -> str:
    """A path as the user most likely typed it: relative to the working directory when it lies below it."""
    cwd = os.getcwd()
    if cwd != os.sep and os.path.isabs(path) and path.startswith(cwd + os.sep):
        return os.path.relpath(path, cwd)
    return path


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- before reading --------------------------------------------------------------------------------------------


def save_to_disk_problem(path: str, files: list[str]) -> str | None:
    """data.path that is (or holds) a `datasets` save_to_disk directory: its JSON metadata would be read as data."""
    found: tuple[Path, str] | None = None  # (the directory, the split to export: "" for a single Dataset)
    for f in map(Path, files):  # a DatasetDict's dataset_dict.json first: its splits are directories below it
        if f.name == "dataset_dict.json":
            try:
                splits = [str(s) for s in json.loads(f.read_text(encoding="utf-8")).get("splits") or ["train"]]
            except (OSError, ValueError, AttributeError, TypeError):
                splits = ["train"]
            found = (f.parent, "train" if "train" in splits else str(splits[0]))
            break
    for f in map(Path, files):
        if found is None and f.name == "state.json" and (f.parent / "dataset_info.json").is_file():
            found = (f.parent, "")
    if found is None:
        return None
    where, split = found
    name = shown(str(where))
    same = os.path.abspath(where) == os.path.abspath(os.path.expanduser(path))
    out = f"{name}-{split}.parquet" if split else f"{name}.parquet"
    select = f"[{split!r}]" if split else ""
    return (
        f"data.path {shown(path)} {'is' if same else f'holds {name},'} a `datasets` save_to_disk directory (.arrow "
        "files with state.json and dataset_info.json), not documents: its JSON metadata would be read as text. "
        f"Export it, e.g. python -c \"import datasets; datasets.load_from_disk('{name}'){select}.to_parquet('{out}')\""
        f", and set data.path to {out}"
    )


# -- reading the files again -----------------------------------------------------------------------------------


def first_invalid_utf8(file: str, limit: int | None = None) -> tuple[int, int] | None:
    """(file offset, byte) of the first byte that is not UTF-8 in the first ``limit`` bytes (all: None)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(file, "rb") as fh:
        while limit is None or offset < limit:
            chunk = fh.read(CHUNK if limit is None else min(CHUNK, limit - offset))
            at_end = not chunk or (limit is not None and offset + len(chunk) >= limit)
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the previous chunk
            try:
                decoder.decode(chunk, final=not chunk)  # a character cut by the limit is not an error
            except UnicodeDecodeError as e:
                return offset - pending + e.start, e.object[e.start]
            offset += len(chunk)
            if at_end:
                break
    return None


def utf8_problem(file: str, limit: int | None = None) -> str | None:
    bad = first_invalid_utf8(file, limit)
    if bad is None:
        return None
    pos, byte = bad
    with open(file, "rb") as fh:
        head = fh.read(2)
    # a UTF-16 byte-order mark (Windows tools write one): re-encoded from latin1, every other byte became a NUL
    source = "utf-16" if pos == 0 and head in (b"\xff\xfe", b"\xfe\xff") else "latin1"
    utf16 = ", which starts with a UTF-16 byte-order mark" if source == "utf-16" else ""
    return (
        f"{shown(file)} is not valid UTF-8 (byte 0x{byte:02x} at position {pos}{utf16}): save it as UTF-8 (e.g. "
        f"iconv -f {source} -t utf-8), or move it out of data.path"
    )


def _first_utf8_problem(files: list[str], budget: int) -> str | None:
    for f in files:
        if budget <= 0 or not os.path.isfile(f):  # a pipe: reading it here would take its data (or block)
            return None
        if problem := utf8_problem(f, budget):
            return problem
        budget -= os.path.getsize(f)
    return None


def first_invalid_text_row(column: Any, budget: int) -> int | None:
    """The first row of a pyarrow string column (a ChunkedArray) that is not valid UTF-8, looked for in its first
    ``budget`` bytes (None: none there, or not a string column). pyarrow's JSON and Parquet readers keep such bytes
    and fail only when the row is read: hours into a run, as a UnicodeDecodeError."""
    import pyarrow as pa  # a dependency of datasets

    if not is_text_type(column.type):
        return None

    def valid(a: Any) -> bool:
        try:
            a.validate(full=True)  # checks every string's UTF-8, at memory speed
        except pa.ArrowInvalid:
            return False
        return True

    base = 0
    for chunk in column.chunks:
        if budget <= 0:
            return None
        if not valid(chunk):
            lo, hi = 0, len(chunk)  # the first bad row is in [lo, hi): halve, reading each half once
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if valid(chunk.slice(lo, mid - lo)) else (lo, mid)
            return base + lo
        budget -= chunk.nbytes
        base += len(chunk)
    return None


# the kinds of JSON value that are not a string, by the first character of the JSON that stores them
JSON_KINDS = {"a list": "[", "an object": "{", "a boolean": "tf", "a number": "-0123456789", "null": "n"}


def text_column_problem(column: Any, field: str, path: str, n_files: int) -> str | None:
    """Records of data.path whose text field is missing, null or not a string (a pyarrow ChunkedArray, the loaded
    column): one line counting them and naming each kind met at its first record, None when every record has text.
    A missing field was read as an empty document and skipped without a word (a file whose records say "content"
    lost half the corpus); a number passed the start and stopped the run when training reached it."""
    import pyarrow as pa  # a dependency of datasets
    import pyarrow.compute as pc

    t, n = column.type, len(column)
    where = f"data.path {shown(path)}"
    storage = t.storage_type if isinstance(t, pa.BaseExtensionType) else t
    if not (is_text_type(storage) or pa.types.is_null(storage)):
        return (
            f"data.text_field {field!r} of {where} holds {t} values, not text: set data.text_field to the text's field"
        )
    bad = pc.is_null(column)
    values = None
    if storage is not t:  # datasets' Json type: a field whose values differ in type, each stored as its JSON
        values = pa.chunked_array([c.storage for c in column.chunks], storage)
        bad = pc.or_(bad, pc.invert(pc.fill_null(pc.starts_with(values, '"'), True)))
    count = pc.sum(bad).as_py() or 0
    if not count:
        return None
    # each kind at its first record, in record order: the lowest index of all is the first named
    kinds: list[tuple[int, str]] = []
    if column.null_count:
        kinds.append((pc.index(pc.is_null(column), True).as_py(), "missing or null"))
    if values is not None:
        heads = pc.utf8_slice_codeunits(values, 0, 1)
        for kind, chars in JSON_KINDS.items():
            first = pc.index(pc.is_in(heads, value_set=pa.array(list(chars))), True).as_py()
            if first >= 0:
                value = values[first].as_py()
                value = value if len(value) <= 40 else value[:40] + "…"
                kinds.append((first, f"{kind} ({value})"))
    met = ", ".join(f"{kind} in record {i}" for i, kind in sorted(kinds))
    verb = "holds" if count == 1 else "hold"
    return (
        f"data.text_field {field!r} of {where}: {count} of {n} records {verb} no text: {met} (counted from 0 over "
        f"its {_count(n_files, 'file')} in order); give every record its text, or set data.text_field to the field "
        "that holds it"
    )


def invalid_text_problem(path: str, builder: str, files: list[str], row: int) -> str:
    """The one line for a document of data.path whose text is not UTF-8 (``row``: its index over the files in
    order): the file and byte where the file is text (JSON), else the document."""
    if builder == "json":
        try:
            if problem := _first_utf8_problem(files, UTF8_SCAN_BUDGET):
                return problem
        except OSError:
            pass
    counted = f"(counted from 0 over its {_count(len(files), 'file')} in order)"
    return f"document {row} of data.path {shown(path)} {counted} {not_utf8()}"


def not_utf8(reason: str | None = None) -> str:
    """What is wrong with a document whose text is not UTF-8, and what to do (after "document N of ...")."""
    why = f" ({reason})" if reason else ""
    return f"holds text that is not valid UTF-8{why}: re-encode it as UTF-8, or move its file out of data.path"


# bytes that make no document: the text loader splits at blank lines, and a document of whitespace alone is skipped
BLANK = {"text": b" \t\r\n", "json": b" \t\r\n"}
EMPTY_LIST_MAX_BYTES = 4096  # `[]` with whitespace around it: a file this small is read whole


def _is_blank(file: str, blank: bytes) -> bool:
    """Only ``blank`` bytes in the file (read up to its first other byte: a few KB of most files)."""
    with open(file, "rb") as fh:
        size = 4096
        while chunk := fh.read(size):
            if chunk.strip(blank):
                return False
            size = CHUNK
    return True


def _is_empty_json_list(file: str) -> bool:
    """A small JSON file that is one empty list (`[]`), or JSON lines of only empty lists: no records either (sorted
    first, datasets took its empty schema as blank files gave it)."""
    if os.path.getsize(file) > EMPTY_LIST_MAX_BYTES:
        return False
    with open(file, "rb") as fh:
        lines = [line.strip() for line in fh.read().splitlines() if line.strip()]
    try:
        return bool(lines) and (all(line == b"[]" for line in lines) or json.loads(b"".join(lines)) == [])
    except ValueError:
        return False


def files_without_documents(builder: str, files: list[str]) -> list[str]:
    """The files of data.path that hold no documents and are left out of the load: empty or blank JSON files and
    empty JSON lists (one sorted first gave datasets an empty schema, "Couldn't cast ... because column names don't
    match", naming no file) and 0-row Parquet files (its reader fails on them, also naming no file). A pipe is never
    read here."""
    if builder == "parquet":
        return parquet_without_rows(files)
    if builder != "json":
        return []
    return [
        f
        for f in files
        if os.path.isfile(f) and (os.path.getsize(f) == 0 or _is_blank(f, BLANK["json"]) or _is_empty_json_list(f))
    ]


def no_documents_problem(path: str, builder: str, files: list[str]) -> str | None:
    """Every file of data.path empty (or, for text and JSON, only line breaks or whitespace): nothing to read."""
    blank = BLANK.get(builder, b"")
    for f in files:  # the first file with text ends it: usually the first file, after a few KB
        if not os.path.isfile(f):  # a pipe: reading it here would take its data (or block)
            return None
        if os.path.getsize(f) and not (blank and _is_blank(f, blank)):
            return None
    if len(files) == 1:
        return f"{shown(files[0])} holds no documents (it is {'empty' if os.path.getsize(files[0]) == 0 else 'blank'})"
    return f"the {len(files)} files of data.path {shown(path)} hold no documents (all empty or blank)"


def _json_values(file: str, budget: int) -> tuple[list[Any] | None, str | None]:
    """(the records of a JSON or JSON-lines file, or None) and the first problem, read within ``budget`` bytes."""
    if os.path.getsize(file) > budget:
        return None, None
    text = Path(file).read_text(encoding="utf-8", errors="replace")
    records: list[Any] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as e:
            try:  # a .json file may be one document (an array of records) instead of JSON lines
                whole = json.loads(text)
            except ValueError:
                return None, f"{shown(file)} line {n} is not JSON ({getattr(e, 'msg', e)})"
            return (whole if isinstance(whole, list) else [whole]), None
        # a .json array written on one line (json.dump without indent) is its items, as datasets reads it
        records.extend(value) if isinstance(value, list) else records.append(value)
    return records, None


def _json_problem(path: str, files: list[str], text_field: str) -> str | None:
    """A JSON file that does not parse, or whose records lack the text field the other files have."""
    budget, odd = SCAN_BUDGET, []
    for f in files:
        records, problem = _json_values(f, budget)
        budget -= os.path.getsize(f)
        if problem:
            return problem
        first = records[0] if records else None
        if records and not (isinstance(first, dict) and text_field in first):
            fields = sorted(first) if isinstance(first, dict) else f"a JSON {type(first).__name__}"
            odd.append((f, fields))
        if budget <= 0:
            break
    if not odd or len(odd) == len(files):
        return None
    f, fields = odd[0]
    others = f" and {_count(len(odd) - 1, 'other file')}" if len(odd) > 1 else ""
    them, verb = ("them", "hold") if others else ("it", "holds")
    kinds = sorted({Path(x).suffix for x in files} - {Path(x).suffix for x, _ in odd})
    root = os.path.expanduser(path)
    example = f" (e.g. {shown(os.path.join(root, '**', '*' + kinds[0]))})" if kinds and os.path.isdir(root) else ""
    return (
        f"{shown(f)}{others} {verb} records without data.text_field {text_field!r} (fields: {fields}), "
        f"unlike the other files of data.path {shown(path)}: move {them} out of data.path, or point data.path at the "
        f"documents only{example}"
    )


def _kind(value: Any) -> str | None:
    """A JSON value's type in the user's words; None for null (it fits any type)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "text", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def first_records(file: str) -> list[Any]:
    """The first record of a JSON or JSON-lines file (its first non-blank line; the first item of an array), as a
    list of at most one: `nsa check` reads no more of each file."""
    with open(file, encoding="utf-8-sig", errors="replace") as fh:  # a byte-order mark, as datasets skips it
        line = next((ln for ln in fh if ln.strip()), "")
    try:
        value = json.loads(line)
    except ValueError:  # an indented array, or not JSON: the full read (the trainer's) says more
        return []
    return (value[:1] if isinstance(value, list) else [value]) if line.strip() else []


NESTED = ("an object", "a list")  # datasets casts nothing else to these (nor a list to text): always a failure


def _object_keys(value: Any, where: str, out: dict[str, set[str]]) -> None:
    """The keys of every object in a JSON value, by where they sit ('meta', 'meta.source', 'tags[]'), into ``out``."""
    if isinstance(value, dict):
        out.setdefault(where, set()).update(value)
        for k, v in value.items():
            _object_keys(v, f"{where}.{k}", out)
    elif isinstance(value, list):
        for v in value:
            _object_keys(v, f"{where}[]", out)


def _new_key_problem(first: dict[str, set[str]], keys: dict[str, set[str]], text_field: str) -> tuple[str, str] | None:
    """(where, key) of an object key a later file has that the first file's objects there lack: datasets casts a
    later file's object to the first one's keys and fails ("Couldn't cast array of type struct<b: string> to {'a':
    Value('int64')}") on one it does not know; fewer keys load (null)."""
    for where in sorted(keys):
        if where in first and where.split(".")[0].split("[")[0] != text_field and (new := keys[where] - first[where]):
            return where, sorted(new)[0]
    return None


def field_type_problem(
    path: str, files: list[str], text_field: str, budget: int = SCAN_BUDGET, first_only: bool = False
) -> str | None:
    """A field other than the text that the first file's types do not fit: datasets reads every field of JSON files
    and casts each later file to the types of the first one's first chunk, failing ("Couldn't cast array of type
    string to {'a': Value('int64')}", "... because column names don't match") naming no file or field. Read after a
    cast failed: a field whose type differs between files, or which the first file lacks, or an object key the first
    file's objects there lack (_new_key_problem). ``first_only`` (`nsa
    check`: each file's first record, a line per file): only what always fails, a field held as an object or a list
    and as something else (datasets casts a number to text, text to a number when it is one, an object to text; a
    file's other records may hold a field its first one lacks)."""
    seen: dict[str, tuple[str, str]] = {}  # field -> (its first type, the file it was seen in)
    first_file: set[str] | None = None  # the fields of the first file's records
    first_keys: dict[str, set[str]] = {}  # where -> the keys of the first file's objects there
    first_name = files[0] if files else path
    for f in files:
        if budget <= 0 or not os.path.isfile(f):
            break
        records = first_records(f) if first_only else (_json_values(f, budget)[0] or [])
        budget -= 1 << 10 if first_only else os.path.getsize(f)
        fields = {k for r in records if isinstance(r, dict) for k in r}
        is_first = first_file is None and bool(fields)
        if is_first:
            # the first file with records: files[0] may be a blank one, left out of the load (files_without_documents)
            first_file, first_name = fields, f
        elif first_file is not None and not first_only and (new := sorted(fields - first_file - {text_field})):
            return (
                f"the field {new[0]!r} is in {shown(f)} but not in the first file {shown(first_name)}: datasets reads "
                "every field of JSON files and takes them from the first file (only data.text_field "
                f"{text_field!r} is trained on): give every file the same fields, or leave {new[0]!r} out"
            )
        for record in records:
            for field, value in record.items() if isinstance(record, dict) else ():
                kind = _kind(value)
                if field == text_field or kind is None:
                    continue
                then, where = seen.setdefault(field, (kind, f))
                if then != kind and where != f and (then in NESTED or kind == "a list" or not first_only):
                    return (
                        f"the field {field!r} holds {then} in {shown(where)} and {kind} in {shown(f)}: datasets reads "
                        "every field of JSON files and needs one type per field across them (only data.text_field "
                        f"{text_field!r} is trained on): give {field!r} one type, or leave it out"
                    )
        if first_only:  # a file's other records may hold the keys its first one lacks: not sure to fail
            continue
        keys: dict[str, set[str]] = {}
        for record in records:
            for field, value in record.items() if isinstance(record, dict) else ():
                _object_keys(value, field, keys)
        if is_first:
            first_keys = keys
        elif first_file is not None and (new_key := _new_key_problem(first_keys, keys, text_field)):
            where, key = new_key
            top = where.split(".")[0].split("[")[0]
            return (
                f"the objects of the field {where!r} have the key {key!r} in {shown(f)} but not in the first file "
                f"{shown(first_name)} (keys: {sorted(first_keys[where])}): datasets reads every field of JSON files "
                f"and takes each object's keys from the first file (only data.text_field {text_field!r} is trained "
                f"on): give {where!r} the same keys in every file, or leave {top!r} out"
            )
    return None


def mixed_json_problem(path: str, files: list[str], text_field: str) -> str | None:
    """A stray .json among .jsonl documents (or the reverse) whose records are not documents, after a load that
    succeeded: pyarrow reads a JSON list of strings as rows of text (a meta.json of names was trained on) and
    records without the text field as empty documents. Read only when the suffixes differ (within the scan
    budget): a corpus of one kind is checked by the load itself."""
    if len({Path(f).suffix for f in files}) < 2:
        return None
    try:
        return _json_problem(path, files, text_field)
    except OSError:
        return None


def missing_parquet_column(files: list[str], field: str) -> str | None:
    """The first Parquet file without the text column (its schema only: a footer read per file); None when every
    file has it, or a file is not Parquet (the read names that)."""
    import pyarrow.parquet as pq  # a dependency of datasets

    for f in files:
        try:
            names = pq.read_schema(f).names
        except Exception:  # not Parquet, truncated: the reader's error (read_error) says so
            return None
        if field not in names:
            return (
                f"data.text_field {field!r} is not a column of {shown(f)} (columns: {names}): set data.text_field to "
                "the column holding the text"
            )
    return None


def parquet_without_rows(files: list[str]) -> list[str]:
    """The Parquet files whose footer says 0 rows (a filter or dedup job's empty part file): they hold no
    documents, as an empty .jsonl does, but datasets' reader fails on them ("BatchSize must be greater than 0")
    naming no file. A file whose footer cannot be read is not among them: the read names its problem."""
    import pyarrow.parquet as pq  # a dependency of datasets

    empty = []
    for f in files:
        try:
            if pq.ParquetFile(f).metadata.num_rows == 0:
                empty.append(f)
        except Exception:
            continue
    return empty


def _parquet_problem(files: list[str]) -> str | None:
    import pyarrow.parquet as pq  # a dependency of datasets

    for f in files:
        try:
            pq.read_schema(f)
        except Exception as e:  # not Parquet, truncated: the reader's reason
            return f"{shown(f)} is not a readable Parquet file ({_one_line(e)})"
    return None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def _chain(e: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in out and len(out) < 20:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def read_error(description: str, path: str, builder: str, files: list[str], text_field: str, e: BaseException) -> str:
    """The one line for a load of data.path that raised ``e``: the file and what is wrong with it when the files
    say, else the innermost cause `datasets` wrapped."""
    chain = _chain(e)
    names = {type(x).__name__ for x in chain}
    try:
        problem = no_documents_problem(path, builder, files)
        if problem is None and "UnicodeDecodeError" in names:
            problem = _first_utf8_problem(files, UTF8_SCAN_BUDGET)
        if problem is None and builder == "json":
            problem = _json_problem(path, files, text_field)
            if problem is None and (names & CAST_ERRORS or any("cast" in str(x).lower() for x in chain)):
                problem = field_type_problem(path, files, text_field)
        if problem is None and builder == "parquet":
            problem = _parquet_problem(files)
    except OSError as err:  # a file that went away or cannot be opened: that is the reason then
        problem = f"cannot read {shown(err.filename or path)}: {err.strerror or err}"
    if problem:
        return problem
    cause = next((x for x in chain if type(x).__name__ not in WRAPPERS), e)
    return f"cannot read {description}: {type(cause).__name__}: {_one_line(cause)}"


def cheap_read_problem(path: str, builder: str, files: list[str], budget: int) -> tuple[str | None, bool]:
    """What the trainer would refuse about these files, read within ``budget`` bytes (for `nsa check`): (the
    problem or None, whether every byte was read). Files without documents, and .txt or JSON files that are not
    UTF-8 (Parquet's text is checked by the trainer, after pyarrow has read it)."""
    problem = no_documents_problem(path, builder, files)
    if problem or builder not in ("text", "json"):
        return problem, True
    read_all = all(map(os.path.isfile, files)) and sum(map(os.path.getsize, files)) <= budget
    return _first_utf8_problem(files, budget), read_all


def too_few_documents(description: str, n: int, val_docs: int, builder: str | None, files: int) -> str:
    """The holdout takes every document: with .txt files, often because they have no blank lines to split at."""
    msg = (
        f"{description} has {_count(n, 'document')} and data.val_docs={val_docs} "
        f"{'is' if val_docs == 1 else 'are'} held out: none left to train on"
    )
    if builder != "text":
        return msg
    if n <= files:
        which = "this file has none" if files == 1 else "these files have none"
        return (
            f"{msg}. .txt files are split into documents at blank lines and {which}: separate the documents by a "
            'blank line, or write .jsonl with one {"text": ...} object per document'
        )
    return f"{msg}. .txt files are split into documents at blank lines: lower data.val_docs, or give more text"
