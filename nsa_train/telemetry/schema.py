"""Telemetry v1: the contract between the trainer and the ``nsa`` tools.

This module is the single source of truth for the files of a run directory and
the records inside them. It is imported by the trainer (which writes) and by the
tools (which read), so it must stay standard-library only: no torch, no numpy.
``docs/telemetry.md`` explains the same contract in prose.
"""

from __future__ import annotations

import json
from typing import Any

SCHEMA_VERSION = 1
FORMAT_NAME = "nsa-v1"

# ---------------------------------------------------------------- run directory
# rank 0, once the model is built (on --resume, also its checkpoint loaded): not at boot, and each attempt that gets
# that far rewrites it (an attempt that fails before then leaves the previous one's)
RUN_JSON = "run.json"
LAUNCH_JSON = "launch.json"  # written by `nsa launch` before the trainer starts
CONFIG_YAML = "config.yaml"  # the resolved config, as the trainer used it
TRAINING_CSV = "training.csv"
VAL_CSV = "val.csv"
TRAIN_LOG = "train.log"
CONSOLE_LOG = "console.log"  # stdout+stderr of the whole launch (written by `nsa launch`)
EXIT_STATUS = "exit_status"  # the launcher's exit code, one integer, written when it ends
# the exit_status of the launch the run is judged by, set aside by `nsa launch --resume` before it starts another:
# a resume that the trainer refuses after its boot leaves the run as that launch ended (nsa_tui RunHistory.exit_status)
EXIT_STATUS_PREVIOUS = "exit_status.previous"
SUMMARY_JSON = "summary.json"
HALT_FILE = ".HALT"
TB_DIR = "tb"
CHECKPOINT_DIR = "checkpoints"
LATEST_POINTER = "latest"  # text file under checkpoints/: the name of the newest checkpoint
BEST_POINTER = "best"  # text file under checkpoints/: the name of the best-by-val checkpoint
# text file under checkpoints/: the checkpoint file names in the order they were written, oldest first, one a line
# (runtime/checkpoint_order.py): the write order survives a copy that gives the files new mtimes
CHECKPOINT_ORDER = "order"
STACKDUMP_GLOB = "stackdump_rank*_*.txt"


_HEARTBEAT_PREFIX, _HEARTBEAT_SUFFIX = "heartbeat_rank", ".jsonl"
HEARTBEAT_GLOB = f"{_HEARTBEAT_PREFIX}*{_HEARTBEAT_SUFFIX}"


def heartbeat_name(rank: int) -> str:
    return f"{_HEARTBEAT_PREFIX}{rank}{_HEARTBEAT_SUFFIX}"


def _rank_digits(digits: str) -> int | None:
    # ASCII only: str.isdigit() also takes "²", which int() refuses
    return int(digits) if digits.isascii() and digits.isdigit() else None


def heartbeat_rank(name: str) -> int | None:
    """The rank of a heartbeat file (``heartbeat_rank3.jsonl`` -> 3; of a path, its last part); None for any other
    name."""
    base = name.rsplit("/", 1)[-1]
    if not (base.startswith(_HEARTBEAT_PREFIX) and base.endswith(_HEARTBEAT_SUFFIX)):
        return None
    return _rank_digits(base[len(_HEARTBEAT_PREFIX) : len(base) - len(_HEARTBEAT_SUFFIX)])


def trainer_lock_name(rank: int) -> str:
    """A hidden file each rank holds an exclusive flock on while it runs (its pid inside): a second trainer
    for the same directory and rank is refused while the first lives, and the kernel releases the lock however
    the first ends (kill -9 included)."""
    return f".trainer_rank{rank}.lock"


def console_error_prefix(rank: int) -> str:
    """How a rank's error line starts in console.log: the trainer prints each error there as well as in its error
    record, so a rank that cannot write its heartbeat (a full disk) still says why (nsa_tui/health/console_tail)."""
    return "error: " if rank == 0 else f"error (rank {rank}): "


# A rank's last console line when its end record could not be written (a full disk): `[end] <how it ended>; its
# end record could not be written: <why>`, `[end] rank N: ...` for a rank other than 0 (which says nothing at its
# end otherwise). The tools quote the why where they find the rank's end record missing.
CONSOLE_END_UNWRITTEN = "; its end record could not be written: "


def console_end_prefix(rank: int) -> str:
    """How a rank's `[end]` line starts in console.log (rank 0's is the trainer's usual last line)."""
    return "[end] " if rank == 0 else f"[end] rank {rank}: "


def stackdump_name(rank: int, ts: float) -> str:
    return f"stackdump_rank{rank}_{int(ts)}.txt"


def stackdump_rank(name: str) -> int | None:
    """The rank of a stack dump file (``stackdump_rank2_1700000000.txt`` -> 2); None for any other name."""
    if not (name.startswith("stackdump_rank") and name.endswith(".txt")):
        return None
    return _rank_digits(name.removeprefix("stackdump_rank").split("_", 1)[0])


def stackdump_ts(name: str) -> int | None:
    """When a stack dump file was written, by its name (``stackdump_rank2_1700000000.txt`` -> 1700000000, also with
    the ``_1`` a second dump within that second adds); None for any other name."""
    if stackdump_rank(name) is None:
        return None
    parts = name.removesuffix(".txt").split("_")
    return int(parts[2]) if len(parts) in (3, 4) and parts[2].isdigit() else None


CHECKPOINT_SUFFIX = ".pt"  # a checkpoint file is checkpoint_name(step) + this
# a checkpoint file under CHECKPOINT_DIR (a hidden one, a save's temp file, never matches: it starts with '.')
CHECKPOINT_GLOB = "step_*" + CHECKPOINT_SUFFIX


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def checkpoint_step(file_name: str) -> int | None:
    """The step of a checkpoint file (``step_00000300.pt`` -> 300, what the ``latest`` pointer holds); None for
    any other name."""
    stem = file_name.removesuffix(CHECKPOINT_SUFFIX)
    digits = stem.removeprefix("step_")
    return int(digits) if stem.startswith("step_") and digits.isdigit() else None


# ---------------------------------------------------------------- records
KIND_BOOT = "boot"
KIND_PHASE = "phase"
KIND_PROGRESS = "progress"
KIND_EVAL = "eval"
KIND_CHECKPOINT = "checkpoint"
KIND_STALL = "stall"
KIND_END = "end"
KIND_ERROR = "error"
KIND_LIVENESS = "liveness"  # every rank, periodically: "this process is alive at this step"
KIND_MOVED = "moved"  # every rank, once per rename: the run directory was renamed while it ran, and it went on there
KINDS = (
    KIND_BOOT,
    KIND_PHASE,
    KIND_PROGRESS,
    KIND_EVAL,
    KIND_CHECKPOINT,
    KIND_STALL,
    KIND_END,
    KIND_ERROR,
    KIND_LIVENESS,
    KIND_MOVED,
)

# In the `boot` record: the NSA_LAUNCH_TIME `nsa launch` gave the process (launch.json's ``ts``), null when none did.
# It names the launch the process belongs to, where comparing the two times would not (a clock stepped between them)
BOOT_LAUNCH_TS = "launch_ts"

# Every record carries these.
COMMON_FIELDS = ("v", "ts", "kind", "rank", "step", "pid")

# Phases, in the order a healthy start passes them.
PHASE_CONFIG = "config"
PHASE_DATA = "data"
PHASE_MODEL = "model"
PHASE_COMPILE = "compile"
PHASE_TRAIN = "train"
PHASES = (PHASE_CONFIG, PHASE_DATA, PHASE_MODEL, PHASE_COMPILE, PHASE_TRAIN)
# In the `train` phase record: true when the trainer removed a .HALT older than its attempt (`nsa halt` during
# the boot re-creates its request on this, not on the wording of the warning that says it)
STALE_HALT_REMOVED = "stale_halt_removed"

# A `phase` record holds `phase` and that phase's fields, written as the phase starts.
PHASE_FIELDS = {
    PHASE_CONFIG: ("config_path",),
    PHASE_DATA: ("source", "tokenizer"),
    PHASE_MODEL: ("attention",),
    PHASE_COMPILE: ("enabled",),
    PHASE_TRAIN: ("start_step", "warnings", STALE_HALT_REMOVED),
}
# Two phases write a second kind of record: `config` once the machine is known (with `done: true`; total_steps is
# this attempt's train.steps, which a resume may change before run.json is rewritten; warmup_steps this attempt's
# train.warmup_steps, where its lr warmup ends: the lr charts mark each attempt's own; absent from older trainers') ...
CONFIG_DONE_FIELDS = (
    "done",
    "total_steps",
    "device",
    "precision",
    "threads",
    "micro_batch",
    "warnings",
    "warmup_steps",
)
# ... and `data` while a resume replays its stream to the saved position (documents re-read, the saved index)
DATA_REPLAY_FIELDS = ("replayed", "replay_of")


def phase_fields(record: dict[str, Any]) -> tuple[str, ...] | None:
    """The fields a phase record holds besides the common ones, by its phase and which of its records it is; None
    for a phase not in PHASES."""
    phase = record.get("phase")
    if phase not in PHASE_FIELDS:
        return None
    if phase == PHASE_CONFIG and "done" in record:
        return ("phase", *CONFIG_DONE_FIELDS)
    if phase == PHASE_DATA and "replayed" in record:
        return ("phase", *DATA_REPLAY_FIELDS)
    return ("phase", *PHASE_FIELDS[phase])


# A `progress` record holds every metric of one step (rank 0, every log_every steps).
# Units are in the names: *_s seconds, *_gb GiB (2**30 bytes), toks_per_s tokens/second.
PROGRESS_FIELDS = (
    "loss",
    "lr",
    "toks_per_s",
    "grad_norm",
    "tokens_seen",
    "dt_step_s",
    "dt_fetch_s",
    "gpu_mem_alloc_gb",  # peak allocated since the previous progress record; null on CPU
    "gpu_mem_reserved_gb",  # null on CPU
    "rss_gb",
    "gate_entropy_mean",  # nats, normalised 3-way gate, mean over tokens, heads and NSA layers
    "gate_entropy_min",
    "gate_max_mean",  # mean of the largest normalised gate share
    "gate_collapse_frac",  # share of (token, head) rows with entropy < 0.1 and max share > 0.95
    "gate_branch_shares",  # [cmp, sel, win], mean normalised shares
    "fallbacks",  # {name: cumulative count}
)
# and, in the progress record that first counts a fallback only, "fallback_reasons": {name: its first cause}
GATE_SHARES = "gate_branch_shares"
# training.csv's columns for gate_branch_shares, in its order [cmp, sel, win]
GATE_SHARE_COLUMNS = ("gate_share_cmp", "gate_share_sel", "gate_share_win")


def gate_share_columns(shares: Any) -> dict[str, Any]:
    """A progress record's gate_branch_shares by training.csv's columns ({"gate_share_cmp": ..., ...}); {} for
    anything but three values (a dense model's null)."""
    if not isinstance(shares, (list, tuple)) or len(shares) != len(GATE_SHARE_COLUMNS):
        return {}
    return dict(zip(GATE_SHARE_COLUMNS, shares, strict=True))


EVAL_FIELDS = ("val_loss", "val_ppl")
# the file's size; the room left beside it; the pointers (latest, best) it was made
CHECKPOINT_FIELDS = ("path", "seconds", "bytes", "disk_free_gb", "pointers")
STALL_FIELDS = ("seconds_since_progress", "dump")
END_FIELDS = ("reason", "exit_status")
# In an `end` record: true when a --resume was refused (a user error: config, data, checkpoint) before its checkpoint
# loaded. The attempt wrote nothing but its records: the run's checkpoints, config.yaml, run.json and summary.json
# are as the attempt before it left them, and the tools judge the run by that attempt (a finished run stays finished)
RESUME_REFUSED = "resume_refused"
# In an `end` record: the seconds this process spent in its training loop (summary.json's train_time_s, on every rank):
# what a report over several attempts divides their trained tokens by. Absent when the loop never started
END_TRAIN_TIME = "train_time_s"
# In rank 0's `end` record of reason `signal`: true when a `.HALT` was there, asked for after the step the signal
# stopped at was checked: a halt had been requested, the signal ended the run first. Absent otherwise
END_HALT_REQUESTED = "halt_requested"
ERROR_FIELDS = ("message",)
# A `moved` record: the run directory's absolute path before the rename, and after it (where it writes from then on)
MOVED_FROM = "from_run_dir"
MOVED_TO = "run_dir"
MOVED_FIELDS = (MOVED_FROM, MOVED_TO)
# A boot record's world size is believed up to this (a corrupt 10**12 would cost a range() per rank)
MAX_WORLD_SIZE = 65536


def world_size_of(boot: dict[str, Any]) -> int | None:
    """A boot record's ``world_size``; None when it says none, or a corrupt or foreign value."""
    n = boot.get("world_size")
    return n if isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_WORLD_SIZE else None


END_COMPLETED = "completed"
END_HALT = "halt"
END_SIGNAL = "signal"
END_ERROR = "error"
END_NAN = "nan"
END_REASONS = (END_COMPLETED, END_HALT, END_SIGNAL, END_ERROR, END_NAN)

# Gate collapse thresholds (shared by the trainer's statistic and the docs).
GATE_COLLAPSE_ENTROPY = 0.1  # nats
GATE_COLLAPSE_MAX_SHARE = 0.95

# training.csv mirrors every scalar of the progress records, one row per progress record,
# so the tools can load a long history with a fast CSV parser instead of parsing JSON.
TRAINING_CSV_HEADER = (
    "step",
    "loss",
    "lr",
    "toks_per_s",
    "grad_norm",
    "tokens_seen",
    "dt_step_s",
    "dt_fetch_s",
    "gpu_mem_alloc_gb",
    "gpu_mem_reserved_gb",
    "rss_gb",
    "gate_entropy_mean",
    "gate_entropy_min",
    "gate_max_mean",
    "gate_collapse_frac",
    *GATE_SHARE_COLUMNS,
    "ts",
)
VAL_CSV_HEADER = ("step", "val_loss", "val_ppl")

# ---------------------------------------------------------------- run.json
# Keys of run.json (nsa_train.train.Trainer._write_run_json), one constant each: both sides name them by these.
RUN_VERSION = "v"
RUN_FORMAT = "format"  # FORMAT_NAME
RUN_NAME = "run"  # the run directory's name
# the run's id, made at its first start and kept by every --resume (a renamed or moved run keeps it): its checkpoints
# record it (CKPT_RUN_ID), and a --resume refuses a checkpoint of another id (one copied in from another run)
RUN_ID = "run_id"
RUN_CONFIG = "config"  # the resolved config, as a dict
RUN_ARGV = "argv"
RUN_WORLD_SIZE = "world_size"
RUN_GIT_SHA = "git_sha"
RUN_HOST = "host"
RUN_START_TIME = "start_time"  # Unix seconds, this attempt's boot
RUN_PARAM_COUNT = "param_count"
RUN_TOKENS_PER_STEP = "tokens_per_step"
RUN_TOTAL_STEPS = "total_steps"
# the attention path(s) that run: as planned at the model phase, as the first training step ran them once it has
# (a Triton backward that fell back: 'triton,backward=fast'; nsa_train.nsa.layer.paths_ran)
RUN_ATTENTION_IMPL = "attention_impl"
RUN_DEVICE_NAME = "device_name"
RUN_PRECISION = "precision"
RUN_FLOPS_PER_TOKEN = "flops_per_token"  # model FLOPs of one trained token (nsa_train.config.flops)
RUN_PEAK_FLOPS = "peak_flops"  # one device's peak FLOP/s for the run's precision; null on CPU or an unknown card
RUN_CONFIG_PATH = "config_path"  # the config file given; null for the embedded default
RUN_RESUMED_FROM_STEP = "resumed_from_step"  # null on a fresh start
RUN_RESHARDED = "resharded"  # what a --reshard did (its old ranks, where the data continues); null otherwise
# where the run's initial weights came from (train.init_from): INIT_FROM_FIELDS; null for random initial weights,
# absent from a run.json of an earlier version. Kept by every --resume: the run's checkpoints carry it (CKPT_INIT_FROM)
RUN_INIT_FROM = "init_from"
RUN_DATA_LISTING = "data_listing"  # entries of DATA_LISTING_ENTRY (below)
RUN_DATA_SUMMARY = "data_summary"  # how much data the run trains on: DATA_SUMMARY_FIELDS (below)
# what the start warned about (its config and train phase records' `warnings`), filled in at the train phase
RUN_START_WARNINGS = "start_warnings"
# the fallback counters this attempt's first training step raised, with their first cause ({} for none): null
# until that step ran (the backward kernels compile at its backward); absent from a run.json of an earlier version
RUN_ATTENTION_FALLBACKS = "attention_fallbacks"
# a checkpoint's record of the run that wrote it: run.json's run_id and the run directory's name then (absent from
# checkpoints written before them: resumed with a start warning)
CKPT_RUN_ID = "run_id"
CKPT_RUN_NAME = "run_name"
CKPT_INIT_FROM = "init_from"  # run.json's init_from, for the resumes that rewrite run.json
# the NSA maths the weights were trained with (nsa_train/nsa/maths_version.py): a resume or init_from from a
# checkpoint of other maths says so in its start warnings; absent from checkpoints written before it
CKPT_NSA_MATHS = "nsa_maths"
# run.json's `init_from`: the checkpoint file loaded (absolute; a run directory given is resolved through its
# `latest`), the run id and run directory name it records (null for a checkpoint written before them), its step
INIT_FROM_PATH = "path"
INIT_FROM_RUN_ID = "run_id"
INIT_FROM_RUN_NAME = "run_name"
INIT_FROM_STEP = "step"
INIT_FROM_FIELDS = (INIT_FROM_PATH, INIT_FROM_RUN_ID, INIT_FROM_RUN_NAME, INIT_FROM_STEP)
RUN_JSON_FIELDS = (
    RUN_VERSION,
    RUN_FORMAT,
    RUN_NAME,
    RUN_ID,
    RUN_CONFIG,
    RUN_ARGV,
    RUN_WORLD_SIZE,
    RUN_GIT_SHA,
    RUN_HOST,
    RUN_START_TIME,
    RUN_PARAM_COUNT,
    RUN_TOKENS_PER_STEP,
    RUN_TOTAL_STEPS,
    RUN_ATTENTION_IMPL,
    RUN_DEVICE_NAME,
    RUN_PRECISION,
    RUN_FLOPS_PER_TOKEN,
    RUN_PEAK_FLOPS,
    RUN_CONFIG_PATH,
    RUN_RESUMED_FROM_STEP,
    RUN_RESHARDED,
    RUN_INIT_FROM,
    RUN_DATA_LISTING,
    RUN_DATA_SUMMARY,
    RUN_START_WARNINGS,
    RUN_ATTENTION_FALLBACKS,
)
# An entry of run.json's `data_listing` (null but for local files, up to 1000 of them), one per file the start read:
# its name relative to data.path, its bytes, and a digest of a bounded sample of them (nsa_train.data.fingerprint:
# null for what is not a regular file). A run.json of an earlier version holds [name, bytes]: compared by those.
DATA_LISTING_ENTRY = ("name", "bytes", "sample")
# run.json's `data_summary` (nsa_train.data.summary): the source, and what was counted of it at the start. The
# counts are null for a streamed source; tokens and epochs are null but for the byte tokenizer (exact there).
DATA_SOURCE = "source"  # data.source
DATA_PATH = "path"  # data.path of a local source, else null
DATA_DESCRIPTION = "description"  # the source as the trainer names it ("local files DIR")
DATA_FILES = "files"  # files read (a local source), plays (the embedded corpus)
DATA_TRAIN_DOCUMENTS = "train_documents"  # documents trained on per epoch (held-out, copies, empty ones aside)
DATA_VAL_DOCUMENTS = "val_documents"  # held out (data.val_docs)
DATA_HELD_OUT_COPIES = "held_out_copies"  # other documents not trained on as their text equals a held-out one's
DATA_EMPTY_DOCUMENTS = "empty_documents"  # other documents not trained on as they are empty or whitespace only
DATA_TRAIN_BYTES = "train_bytes"  # UTF-8 bytes of the training documents
DATA_TRAIN_TOKENS = "train_tokens"  # byte tokenizer: train_bytes + one EOS per training document
DATA_PLANNED_TOKENS = "planned_tokens"  # train.steps x tokens_per_step
DATA_EPOCHS = "epochs"  # planned_tokens / train_tokens: passes over the training data the plan makes
DATA_SUMMARY_FIELDS = (
    DATA_SOURCE,
    DATA_PATH,
    DATA_DESCRIPTION,
    DATA_FILES,
    DATA_TRAIN_DOCUMENTS,
    DATA_VAL_DOCUMENTS,
    DATA_HELD_OUT_COPIES,
    DATA_EMPTY_DOCUMENTS,
    DATA_TRAIN_BYTES,
    DATA_TRAIN_TOKENS,
    DATA_PLANNED_TOKENS,
    DATA_EPOCHS,
)


# ---------------------------------------------------------------- summary.json
# Keys of summary.json (nsa_train.train.Trainer._write_summary): rank 0, at the end of each attempt but a refused
# resume. Its numbers are that attempt's process's, not the whole run's.
SUMMARY_VERSION = "v"
SUMMARY_RUN = "run"  # the run directory's name
SUMMARY_END_REASON = "end_reason"  # one of END_REASONS
SUMMARY_STEPS_COMPLETED = "steps_completed"  # the step it ended at (its end record's)
SUMMARY_TOTAL_STEPS = "total_steps"
SUMMARY_TOKENS_SEEN = "tokens_seen"  # the run's, resumed attempts included
SUMMARY_FINAL_VAL_LOSS = "final_val_loss"  # null when this process evaluated nothing
SUMMARY_FINAL_VAL_PPL = "final_val_ppl"
SUMMARY_BEST_VAL_LOSS = "best_val_loss"
SUMMARY_BEST_VAL_PPL = "best_val_ppl"
SUMMARY_BEST_STEP = "best_step"  # the step of best_val_loss
SUMMARY_WALL_TIME_S = "wall_time_s"  # this attempt's, boot to end
SUMMARY_STARTED_AT = "started_at"  # Unix seconds: the attempt's boot ...
SUMMARY_ENDED_AT = "ended_at"  # ... and end (tells this attempt's summary from an earlier one's)
SUMMARY_TRAIN_TIME_S = "train_time_s"  # seconds in the training loop (the end record's END_TRAIN_TIME)
SUMMARY_MEAN_TOKS_PER_S = "mean_toks_per_s"  # tokens this process trained / train_time_s; null before a step
SUMMARY_PARAM_COUNT = "param_count"
SUMMARY_ATTENTION_IMPL = "attention_impl"
SUMMARY_FIELDS = (
    SUMMARY_VERSION,
    SUMMARY_RUN,
    SUMMARY_END_REASON,
    SUMMARY_STEPS_COMPLETED,
    SUMMARY_TOTAL_STEPS,
    SUMMARY_TOKENS_SEEN,
    SUMMARY_FINAL_VAL_LOSS,
    SUMMARY_FINAL_VAL_PPL,
    SUMMARY_BEST_VAL_LOSS,
    SUMMARY_BEST_VAL_PPL,
    SUMMARY_BEST_STEP,
    SUMMARY_WALL_TIME_S,
    SUMMARY_STARTED_AT,
    SUMMARY_ENDED_AT,
    SUMMARY_TRAIN_TIME_S,
    SUMMARY_MEAN_TOKS_PER_S,
    SUMMARY_PARAM_COUNT,
    SUMMARY_ATTENTION_IMPL,
)


def make_record(kind: str, rank: int, step: int, pid: int, ts: float, **fields: Any) -> dict[str, Any]:
    """Build a record with the common fields first (stable column order for humans)."""
    if kind not in KINDS:
        raise ValueError(f"unknown telemetry kind {kind!r}")
    rec: dict[str, Any] = {"v": SCHEMA_VERSION, "ts": ts, "kind": kind, "rank": rank, "step": step, "pid": pid}
    rec.update(fields)
    return rec


def encode(record: dict[str, Any]) -> str:
    """One JSON line. Non-finite floats are written as NaN/Infinity (Python's JSON
    extension) so that a NaN loss stays visible as a NaN, not as a missing value."""
    return json.dumps(record, separators=(",", ":"), allow_nan=True) + "\n"


def decode(line: str | bytes) -> dict[str, Any] | None:
    """Parse one line; None for anything that is not a JSON object (corrupt, partial, empty)."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def validate(record: dict[str, Any]) -> list[str]:
    """Problems with a v1 record (empty list when it conforms)."""
    problems = [f"missing {k!r}" for k in COMMON_FIELDS if k not in record]
    if record.get("v") not in (None, SCHEMA_VERSION):
        problems.append(f"unsupported version {record.get('v')!r}")
    kind = record.get("kind")
    if kind is not None and kind not in KINDS:
        problems.append(f"unknown kind {kind!r}")
    required = {
        KIND_PROGRESS: PROGRESS_FIELDS,
        KIND_EVAL: EVAL_FIELDS,
        KIND_END: END_FIELDS,
        KIND_STALL: STALL_FIELDS,
        KIND_CHECKPOINT: CHECKPOINT_FIELDS,
        KIND_ERROR: ERROR_FIELDS,
        KIND_MOVED: MOVED_FIELDS,
    }.get(kind, ())
    if kind == KIND_PHASE:
        required = phase_fields(record) or ("phase",)
        if "phase" in record and record["phase"] not in PHASE_FIELDS:
            problems.append(f"unknown phase {record['phase']!r}")
    if kind == KIND_END and "reason" in record and record["reason"] not in END_REASONS:
        problems.append(f"unknown end reason {record['reason']!r}")
    problems += [f"{kind} record missing {k!r}" for k in required if k not in record]
    return problems
