"""Writers of a run directory's telemetry (v1, see schema.py and docs/telemetry.md).

Heartbeat records are appended to ``heartbeat_rank{r}.jsonl`` and flushed one line at a
time, synchronously, under a lock (the watchdog thread writes too). Why not a background
queue: a record is ~1 KB and rank 0 writes one every log_every steps, so write+flush into
the page cache costs microseconds (no fsync), far below one training step; a queue would
instead lose the last records exactly when they matter (kill -9, OOM kill, hard crash).

Rank 0 also keeps the human and tabular mirrors: training.csv, val.csv, train.log (echoed
to stdout) and TensorBoard events under tb/.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nsa_train.telemetry import schema
from nsa_train.telemetry.atomic import write_text_atomic
from nsa_train.telemetry.disk import DISK_FULL_ERRNOS, DiskFullError, disk_full, disk_full_message, free_space
from nsa_train.telemetry.mfu import fmt_mfu

STOP_AND_RESUME = "checkpoints written before are intact. Free space and continue with --resume"


@contextmanager
def full_disk_stops_run(path: Path, step: int, best_effort: bool = False) -> Iterator[None]:
    """Around a write of the run's telemetry: a full disk stops the run with one line (the step's records cannot
    be kept, and the next checkpoint could not be either), or passes unsaid for a ``best_effort`` write (a run
    already stopping); any other error goes on as it is."""
    try:
        yield
    except OSError as e:
        if e.errno not in DISK_FULL_ERRNOS:
            raise
        if not best_effort:
            then = f"the run stops at step {step}: {STOP_AND_RESUME}"
            raise DiskFullError(disk_full_message(path, e, free_space(path.parent), then)) from e


def unwritable_message(path: Path, e: OSError) -> str:
    """``cannot write NAME in DIR: WHY``, a full disk's with the free space."""
    if e.errno in DISK_FULL_ERRNOS:
        return disk_full_message(path, e, free_space(path.parent))
    return f"cannot write {path.name} in {path.parent}: {e.strerror or e}"


def close_even_when_full(fh: Any, path: Path, fsync: bool = False) -> None:
    """Flush (and fsync) and close; on a full disk what could not be flushed is lost, the stop already said why."""
    try:
        with full_disk_stops_run(path, 0, best_effort=True):
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
    finally:
        try:
            fh.close()
        except OSError:
            pass  # close flushes again: the same full disk


def ends_mid_line(path: Path) -> bool:
    """Whether the file's last line has no newline: cut by a full disk or a kill mid-write. Appended to as it is,
    the next record would be glued to it and lost with it (a resume's boot record was)."""
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            if f.seek(0, os.SEEK_END) == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


class HeartbeatWriter:
    """Appends one JSON line per record to this rank's heartbeat file."""

    def __init__(self, run_dir: Path, rank: int, liveness_every_s: float = 30.0) -> None:
        self.path = Path(run_dir) / schema.heartbeat_name(rank)
        self.rank = rank
        self.pid = os.getpid()
        self.liveness_every_s = liveness_every_s
        self._lock = threading.Lock()
        # a line cut by the previous process ends before this one's first record
        self._torn = ends_mid_line(self.path)
        self._fh: io.TextIOWrapper | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._last_liveness = 0.0

    def write(self, kind: str, step: int, *, best_effort: bool = False, **fields: Any) -> dict[str, Any]:
        """Append one record. A full disk raises DiskFullError, except ``best_effort`` (the records of a run that
        is already stopping: its error and end), which are kept only if there is room again."""
        rec = schema.make_record(kind, self.rank, step, self.pid, time.time(), **fields)
        with full_disk_stops_run(self.path, step, best_effort):
            self._append(schema.encode(rec))
        return rec

    def write_or_say_why(self, kind: str, step: int, **fields: Any) -> str | None:
        """A best-effort record the console speaks of (the end record): None once it is in the file, else why it
        is not (a full disk, any failed write), so that the console never claims a record the file lacks."""
        rec = schema.make_record(kind, self.rank, step, self.pid, time.time(), **fields)
        try:
            if not self._append(schema.encode(rec)):
                return f"{self.path.name} was already closed"
        except OSError as e:
            return unwritable_message(self.path, e)
        return None

    def _append(self, line: str) -> bool:
        """Write and flush one line; False if the file is closed already."""
        with self._lock:
            if self._fh is None:
                return False
            try:
                self._fh.write("\n" + line if self._torn else line)
                self._fh.flush()
            except OSError:
                self._torn = True  # part of it may be in the file: the next record starts a new line
                raise
            self._torn = False
            return True

    def moved_to(self, run_dir: Path) -> None:
        """The run directory was renamed: the open file went with it, its name (said in messages) follows."""
        with self._lock:
            self.path = Path(run_dir) / self.path.name

    def liveness(self, step: int, force: bool = False, *, best_effort: bool = False) -> None:
        """A liveness record, at most every liveness_every_s unless forced."""
        now = time.monotonic()
        if force or now - self._last_liveness >= self.liveness_every_s:
            self._last_liveness = now
            self.write(schema.KIND_LIVENESS, step, best_effort=best_effort)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                fh, self._fh = self._fh, None
                close_even_when_full(fh, self.path, fsync=True)


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)  # full precision; nan/inf stay visible
    return str(v)


def _first_row(path: Path) -> tuple[str, ...] | None:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            row = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return tuple(row) if row else None


def data_rows(path: Path) -> int:
    """The rows under a CSV's header (0 when there is no file, or it is not a regular file: /dev/full reads forever)."""
    if not path.is_file():
        return 0
    try:
        with open(path, "rb") as f:
            return max(0, sum(1 for _ in f) - 1)
    except OSError:
        return 0


def truncate_csv_after(path: Path, step: int, keep_rows: int = 0) -> None:
    """Drop rows with step > ``step`` (a resumed run rewrites the steps after its checkpoint), after the first
    ``keep_rows`` rows (an earlier run's, which a fresh start over it appended to: not this run's to cut)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if not lines:
        return
    if len(lines) > 1 and not lines[-1].endswith("\n"):
        lines.pop()  # a row cut by a full disk or a kill: its values are not whole
    kept = lines[: 1 + keep_rows]
    for line in lines[1 + keep_rows :]:
        head = line.split(",", 1)[0]
        if head.isdigit() and int(head) <= step:
            kept.append(line)
    # replaced whole, fsynced, its temp file this process's own and removed on a failed write (a full disk)
    write_text_atomic(path, "".join(kept))


class _CsvTable:
    def __init__(self, path: Path, header: tuple[str, ...]) -> None:
        self.path = path  # where it is (a renamed run directory moves it: MetricsLog.moved_to), for messages
        fresh = not path.is_file() or path.stat().st_size == 0
        # a table an earlier version of the trainer began (a resume after an upgrade) keeps its own columns: rows of
        # another width under its header would shift every value after the first difference
        existing = None if fresh else _first_row(path)
        self.header = existing if existing and existing[0] == header[0] else header
        torn = not fresh and ends_mid_line(path)
        self._fh = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 (kept open)
        self._w = csv.writer(self._fh, lineterminator="\n")
        if fresh or torn:
            with full_disk_stops_run(path, 0):
                if fresh:
                    self._w.writerow(header)
                else:
                    self._fh.write("\n")  # a row cut by the previous process ends before this one's first
                self._fh.flush()

    def row(self, values: dict[str, Any]) -> None:
        with full_disk_stops_run(self.path, int(values.get("step") or 0)):
            self._w.writerow([_csv_value(values.get(k)) for k in self.header])
            self._fh.flush()

    def close(self) -> None:
        close_even_when_full(self._fh, self.path)


class TensorBoardFailed(Exception):
    """TensorBoard's writer could not write its events (its thread failed): the run's one-line error."""


def format_log_line(step: int, m: dict[str, Any], mfu: float | None = None, warmup: bool = False) -> str:
    """One train.log line. ``warmup``: the lr is still ramping up (seed reports took warmup's tiny lr for a bug);
    ``mfu``: the step's model FLOPs utilisation, when the device's peak is known."""
    lr = f"lr {m['lr']:.2e}" + (" (warmup)" if warmup else "")
    parts = [f"step {step}", f"loss {m['loss']:.4f}", lr, f"toks/s {m['toks_per_s']:.0f}"]
    if mfu is not None:
        parts.append(f"mfu {fmt_mfu(mfu)}")
    parts.append(f"gnorm {m['grad_norm']:.3f}")
    parts.append(f"dt {m['dt_step_s'] * 1000:.0f}ms")
    if m.get("gate_entropy_mean") is not None:
        parts.append(f"gateH {m['gate_entropy_mean']:.3f}")
    return " | ".join(parts)


class MetricsLog:
    """Rank 0's training.csv, val.csv, train.log (+stdout) and TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool, first_step: int = 1, tb_parent: Path | None = None) -> None:
        """``first_step``: the step this attempt trains first. TensorBoard events of earlier attempts at that step and
        after are purged from TensorBoard's view (their files stay), so that no step shows two values: a resume
        redoes the steps after its checkpoint, as its CSV rows are cut back; a fresh start over an earlier run starts
        at 1 and hides that run in TensorBoard, while training.csv keeps its rows before the new run's.
        ``tb_parent``: the run directory by a path that follows a rename (FollowedRunDir.stable): TensorBoard's
        thread opens its events file by path at every write."""
        self.run_dir = run_dir = Path(run_dir)
        self._train = _CsvTable(run_dir / schema.TRAINING_CSV, schema.TRAINING_CSV_HEADER)
        self._val = _CsvTable(run_dir / schema.VAL_CSV, schema.VAL_CSV_HEADER)
        self._log = open(run_dir / schema.TRAIN_LOG, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._log_path = run_dir / schema.TRAIN_LOG
        self._tb = None
        self._tb_failed = False  # its failure was raised (the run's error): its close would raise it again
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str((tb_parent or run_dir) / schema.TB_DIR), purge_step=first_step)

    def moved_to(self, run_dir: Path) -> None:
        """The run directory was renamed: the open files went with it; their names (said in messages) follow."""
        self.run_dir = Path(run_dir)
        self._train.path = self.run_dir / schema.TRAINING_CSV
        self._val.path = self.run_dir / schema.VAL_CSV
        self._log_path = self.run_dir / schema.TRAIN_LOG

    def _to_tensorboard(self, step: int, scalars: dict[str, float]) -> None:
        """The scalars to TensorBoard. Its writer thread keeps its failure (a full disk, a directory gone) for the
        next call to raise: said as the run's one line, not as the thread's traceback (runtime/thread_errors.py)."""
        if self._tb is None:
            return
        try:
            for tag, value in scalars.items():
                self._tb.add_scalar(tag, value, step)
        except Exception as e:
            self._tb_failed = True
            raise tensorboard_failure(self.run_dir / schema.TB_DIR, step, e) from None

    def line(self, text: str, step: int = 0) -> None:
        """A human line in train.log and on stdout."""
        print(text, file=sys.stdout, flush=True)
        with full_disk_stops_run(self._log_path, step):
            self._log.write(text + "\n")
            self._log.flush()

    def progress(self, step: int, m: dict[str, Any], ts: float, mfu: float | None = None, warmup: bool = False) -> None:
        row = dict(m, step=step, ts=ts, **schema.gate_share_columns(m.get(schema.GATE_SHARES)))
        self._train.row(row)
        self.line(format_log_line(step, m, mfu, warmup), step)
        scalars = {
            f"train/{k}": v
            for k in schema.TRAINING_CSV_HEADER
            if k not in ("step", "ts") and isinstance(v := row.get(k), (int, float))
        }
        if mfu is not None:
            scalars["train/mfu"] = mfu
        scalars.update({f"fallbacks/{name}": n for name, n in (m.get("fallbacks") or {}).items()})
        self._to_tensorboard(step, scalars)

    def eval(self, step: int, val_loss: float, val_ppl: float) -> None:
        self._val.row({"step": step, "val_loss": val_loss, "val_ppl": val_ppl})
        self.line(f"eval step {step} | val_loss {val_loss:.4f} | val_ppl {val_ppl:.2f}", step)
        self._to_tensorboard(step, {"val/loss": val_loss, "val/ppl": val_ppl})

    def close(self) -> None:
        self._train.close()
        self._val.close()
        close_even_when_full(self._log, self._log_path)
        if self._tb is not None and not self._tb_failed:
            try:
                self._tb.close()  # flushes: a failure of its thread since the last write is raised here
            except Exception as e:
                raise tensorboard_failure(self.run_dir / schema.TB_DIR, None, e) from None


def tensorboard_failure(tb_dir: Path, step: int | None, e: BaseException) -> Exception:
    """TensorBoard's failure as one line: a full disk as every full disk is said (DiskFullError), else what failed."""
    at = f"the run stops at step {step}" if step is not None else "its last events are lost"
    if (full := disk_full(e)) is not None:
        return DiskFullError(
            disk_full_message(tb_dir / "events", full, free_space(tb_dir.parent), f"{at}: {STOP_AND_RESUME}")
        )
    why = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
    return TensorBoardFailed(
        f"TensorBoard's writer could not write its events in {tb_dir}: {why}; {at} (checkpoints written before are "
        "intact: mend it, or set runtime.tensorboard=false, and continue with --resume)"
    )
