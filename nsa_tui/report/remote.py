"""`nsa report --host`: the runs' files fetched whole from the host in one ssh call, drawn here.

The same remote script as `nsa status --host` (nsa_tui.runs.bundle.REMOTE_SCRIPT), asked for
whole files instead of tails, plus the names and sizes of the checkpoint files and the
`latest`/`best` pointers (never the checkpoints themselves). Nothing needs to be installed
on the host.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from nsa_train.telemetry import schema
from nsa_train.telemetry.pointers import POINTERS, order_names, pointer_name
from nsa_tui.errors import NOT_FOUND_EXIT, USAGE_EXIT, UserError
from nsa_tui.report.load import CheckpointListing, ReportRun, checkpoint_listing, report_run
from nsa_tui.runs.bundle import FILE_LIMITS, WHOLE_FILE, FileWindow

POINTER_BYTES = 4096
ORDER_BYTES = 64 * 1024  # the order file: a line per checkpoint the directory holds
# every file a local report reads, whole; then the pointers' contents and the checkpoints' names and sizes
REPORT_LIMITS: tuple[tuple[str, int], ...] = (
    *((pattern, WHOLE_FILE if limit > 0 else limit) for pattern, limit in FILE_LIMITS),
    (f"{schema.CHECKPOINT_DIR}/{schema.LATEST_POINTER}", POINTER_BYTES),
    (f"{schema.CHECKPOINT_DIR}/{schema.BEST_POINTER}", POINTER_BYTES),
    (f"{schema.CHECKPOINT_DIR}/{schema.CHECKPOINT_ORDER}", ORDER_BYTES),
    (f"{schema.CHECKPOINT_DIR}/*", 0),
)
# a long run's telemetry is tens of MB: more time than the status call's 60 s
REPORT_TIMEOUT_S = 600.0


def pop_checkpoints(files: dict[str, FileWindow]) -> CheckpointListing:
    """Take the ``checkpoints/...`` entries out of a fetched bundle's files: the checkpoint listing."""
    prefix = schema.CHECKPOINT_DIR + "/"
    entries = {name[len(prefix) :]: files.pop(name) for name in list(files) if name.startswith(prefix)}
    pointers = {p: _pointer_name(entries[p].data) for p in POINTERS if p in entries}
    order = entries.get(schema.CHECKPOINT_ORDER)
    names = order_names(order.data.decode("utf-8", errors="replace")) if order is not None else None
    return checkpoint_listing({name: w.size for name, w in entries.items()}, pointers, names)


def _pointer_name(data: bytes) -> str | None:
    """The file name a fetched pointer holds, as a local pointer is read (not UTF-8: none)."""
    try:
        return pointer_name(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def remote_location(host: str, path: str, remote_dir: str | None) -> str:
    """host:path, with a path relative to --remote-dir shown under it."""
    if remote_dir and not path.startswith("/"):
        path = f"{remote_dir.rstrip('/')}/{path}"
    return f"{host}:{path}"


def fetch_report_runs(host: str, runs: list[str], remote_dir: str | None = None) -> list[ReportRun]:
    """Each RUN on ``host`` ('' or none: the newest) with its whole history, in one ssh call. Raises
    UserError (exit 3) when the host cannot be reached, or a run is not there or has no telemetry."""
    from nsa_tui.remote.checkout import missing_run_message
    from nsa_tui.runs.bundle import MissingRun
    from nsa_tui.runs.remote import fetch_remote

    answer = fetch_remote(
        host, runs, prefer_nsa=False, remote_dir=remote_dir, limits=REPORT_LIMITS, timeout=REPORT_TIMEOUT_S
    )
    out: list[ReportRun] = []
    for item in answer.bundles:
        if isinstance(item, MissingRun) and item.twice:  # refused, as a local name two launched runs share
            raise UserError(item.twice, USAGE_EXIT)
        if isinstance(item, MissingRun) and item.unreadable:  # refused, as a local run it cannot read
            raise UserError(item.unreadable, NOT_FOUND_EXIT)
        if isinstance(item, MissingRun):
            said = item.said  # what the host knows of a name whose directory is gone, as status and watch say it
            raise UserError(missing_run_message(item.run, host, item.cwd, item.runs_root, said=said), NOT_FOUND_EXIT)
        if isinstance(item, bytes):  # a remote `nsa status` answer: not asked for (prefer_nsa=False)
            continue
        checkpoints = pop_checkpoints(item.files)
        where = remote_location(host, item.path, remote_dir)
        # named by the resolved directory, as a local report names a run (`.` is the directory it stands for)
        real = PurePosixPath(item.real_path or item.path.rstrip("/") or "/")
        item.run = real.name or item.run
        out.append(report_run(item, checkpoints, where, real.parent.name))
    if len(out) != max(len(runs), 1):
        raise UserError(f"could not read the runs on {host}: no answer from its shell", NOT_FOUND_EXIT)
    return out
