"""What a run directory says about its run: last heartbeat records, end records,
exit status, launch.json. Reads only the ends of files (heartbeats grow for days)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsa_train.telemetry import schema
from nsa_train.telemetry.readback import heartbeat_files
from nsa_tui.runs.tail import read_tail_lines

TAIL_BYTES = 256 * 1024


def tail_records(path: Path, max_bytes: int = TAIL_BYTES) -> list[dict[str, Any]]:
    """The decodable records in the last ``max_bytes`` of a JSONL file, oldest first (the tools' tail reader: a
    partial first line, cut by the window, and a last line still being written are skipped)."""
    return [
        r for r in (schema.decode(line) for line in read_tail_lines(path, max_bytes) if line.strip()) if r is not None
    ]


def last_record(records: list[dict[str, Any]], kind: str | None = None) -> dict[str, Any] | None:
    for r in reversed(records):
        if kind is None or r.get("kind") == kind:
            return r
    return None


def rank0_records(run_dir: Path) -> list[dict[str, Any]]:
    """The tail of rank 0's heartbeat file (the first rank's when rank 0 has none)."""
    files = heartbeat_files(run_dir)
    first = files.get(0) or (next(iter(files.values())) if files else None)
    return tail_records(first) if first else []


def run_host(run_dir: Path) -> str | None:
    """The machine the run's trainer ran on: its boot record's host (written before anything else, so a start
    killed before run.json has it), else run.json's (the tools' RunHistory.run_host is the same rule)."""
    boot = last_record(rank0_records(run_dir), schema.KIND_BOOT)
    if boot is not None and isinstance(boot.get("host"), str) and boot["host"]:
        return boot["host"]
    host = (read_run_json(run_dir) or {}).get(schema.RUN_HOST)
    return host if isinstance(host, str) and host else None


def read_exit_status(run_dir: Path) -> int | None:
    try:
        return int((run_dir / schema.EXIT_STATUS).read_text().strip())
    except (OSError, ValueError):
        return None


def launch_refused(run_dir: Path) -> bool:
    """The newest launch (launch.json) started a --resume that the trainer refused once booted: rank 0 wrote an
    end record saying ``resume_refused`` since that launch (the tools' RunHistory.launch_refused, from the tail)."""
    launched = (read_launch_json(run_dir) or {}).get("ts")
    if not isinstance(launched, (int, float)) or isinstance(launched, bool):
        return False
    return any(
        r.get("kind") == schema.KIND_END
        and r.get("rank") in (0, None)
        and r.get(schema.RESUME_REFUSED) is True
        and isinstance(r.get("ts"), (int, float))
        and r["ts"] >= launched
        for r in rank0_records(run_dir)
    )


def read_launch_json(run_dir: Path) -> dict[str, Any] | None:
    return _read_object(run_dir / schema.LAUNCH_JSON)


def read_run_json(run_dir: Path) -> dict[str, Any] | None:
    return _read_object(run_dir / schema.RUN_JSON)


def _read_object(path: Path) -> dict[str, Any] | None:
    """A JSON object file; None when it is missing, unreadable or holds something else."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class HeartbeatState:
    newest_mtime: float | None  # newest heartbeat file write, any rank
    ended: bool  # rank 0's last record is an `end` record
    end_record: dict[str, Any] | None

    def recent(self, window_s: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.newest_mtime is not None and now - self.newest_mtime < window_s


def heartbeat_state(run_dir: Path) -> HeartbeatState:
    files = heartbeat_files(run_dir)
    if not files:
        return HeartbeatState(None, False, None)
    mtimes = [t for t in (_mtime(p) for p in files.values()) if t is not None]  # one removed since it was listed
    newest = max(mtimes) if mtimes else None
    first = files.get(0, next(iter(files.values())))
    end = last_record(tail_records(first))
    ended = end is not None and end.get("kind") == schema.KIND_END
    return HeartbeatState(newest, ended, end if ended else None)


END_TAIL_BYTES = 16 * 1024  # a rank's last record, its end record, is a few hundred bytes


def attempt_end_records(run_dir: Path, end: dict[str, Any], since: float | None) -> list[dict[str, Any]]:
    """Every rank's end record of the attempt rank 0's ``end`` closed: a rank's last record when it is an end of the
    same step (the ranks stop together, after one step) written at or after ``since`` (the attempt's launch) where
    that is known. A rank file an earlier attempt of more ranks left ends with that attempt's end: not this one's."""
    out = []
    for path in heartbeat_files(run_dir).values():
        rec = last_record(tail_records(path, END_TAIL_BYTES))
        if rec is None or rec.get("kind") != schema.KIND_END or rec.get("step") != end.get("step"):
            continue
        ts = rec.get("ts")
        if since is None or (isinstance(ts, int | float) and not isinstance(ts, bool) and ts >= since):
            out.append(rec)
    return out


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def launched_here(run_dir: Path, launch: dict) -> bool:
    """launch.json was written for this directory, or for the path it had before it was renamed under its live run
    (renamed_here) and no later launch there took its session's name: a copy of a live run (`cp -r`) names the
    session of the run it was copied from, which halting the copy would not stop. A launch.json without run_dir
    (older) is taken at its word."""
    recorded = launch.get("run_dir")
    if not isinstance(recorded, str) or not recorded:
        return True
    try:
        if Path(recorded).samefile(run_dir):
            return True
    except OSError:  # the recorded directory is gone: renamed (here, or elsewhere), or deleted
        pass
    if (read_launch_json(Path(recorded)) or {}).get("tmux_session") == launch.get("tmux_session"):
        # a later launch at that path (this launch.json went with the rename): the session of that name is its run's
        # now, which a halt, attach or --force of this directory must not take for this one's
        return False
    ts = launch.get("ts")
    launched = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None
    return renamed_here(run_dir, Path(recorded), launched)


def renamed_here(run_dir: Path, recorded: Path, launched: float | None) -> bool:
    """The directory launched at ``recorded`` (at time ``launched``) was renamed to ``run_dir`` while its run
    trained: its trainer said so (the last of its `moved` records since the launch names this directory; a copy of
    the renamed directory holds that record too, naming the directory it was copied from), or, before it looked again
    (at its next step), a live trainer of this directory was started at ``recorded``. Read from rank 0's tail: a
    rename older than that, of a run no longer alive, is not told from a copy."""
    moves = [
        r
        for r in rank0_records(run_dir)
        if r.get("kind") == schema.KIND_MOVED and (launched is None or _at_or_after(r, launched))
    ]
    to = moves[-1].get(schema.MOVED_TO) if moves else None
    if isinstance(to, str) and same_dir(Path(to), run_dir):
        return True
    from nsa_tui.launch.dump import command_names_run_dir, rank_processes  # here: dump imports this module

    return any(
        p.problem is None and p.pid is not None and command_names_run_dir(p.pid, recorded)
        for p in rank_processes(run_dir)
    )


def same_dir(a: Path, b: Path) -> bool:
    """The same directory; where one is not there, the same absolute path."""
    try:
        return a.samefile(b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _at_or_after(record: dict[str, Any], ts: float) -> bool:
    t = record.get("ts")
    return isinstance(t, int | float) and not isinstance(t, bool) and t >= ts
