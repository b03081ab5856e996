"""A run name whose directory was deleted while its launch may still run: what the launch index and its tmux session
say of it, for the `no run directory` error of `nsa status NAME`, `nsa halt NAME` and the other commands.

`rm -rf runs/d1` under a live run left `nsa status d1` and `nsa halt d1` saying only `no run directory 'd1'`, though
the index (nsa_tui.launched) knew where it was and its tmux session `nsa-d1` trained on: nothing said the trainer was
still running, nor how to stop it. The trainer stops itself after the step in which it finds its directory gone
(nsa_train/runtime/run_dir_moves.py); a hung one does not.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nsa_tui.errors import UserError
from nsa_tui.launched import Launched


def started_in(run_dir: str, ts: float) -> str:
    """'nsa launch started it in /home/me/runs/d1 (2026-12-07 09:05)': where the index says the run was."""
    return f"nsa launch started it in {run_dir} ({time.strftime('%Y-%m-%d %H:%M', time.localtime(ts))})"


def gone_said(searched: Sequence[str], status: str = "nsa status") -> str:
    """A run directory not at the path recorded for it, in the words every command uses: deleted, or moved to a
    place no lookup searched (``searched``: where a renamed run was looked for, nsa_tui.moved_runs; the whole disk
    is not), and how to point at it if it was moved (``status``: `nsa status --host H` for a host's run)."""
    places = " and ".join(dict.fromkeys(searched))
    return (
        f"gone from there since (deleted, or moved outside {places}, where it was looked for; if moved: "
        f"`{status} NEW_PATH`)"
    )


def deleted_row_said(e: Launched, name_taken: bool, status: str = "nsa status") -> str:
    """What `nsa runs` says of a launched run whose directory is gone (no tmux asked: a listing stays quick), and the
    ``status`` command (`nsa status --host H` for a host's) that says whether it still runs, unless ``name_taken`` (a
    run that is there has its name: that `nsa status` would judge that one). A run renamed beside its old path was
    listed under its new name (deleted_launches): that is where it was looked for."""
    said = f"{started_in(e.run_dir, e.ts)}, {gone_said([posixpath.dirname(e.run_dir)], status)}"
    return said if name_taken else f"{said}: `{status} {shlex.quote(e.name)}` says if it still runs"


def deleted_launches(under: Path | None, limit: int) -> list[Launched]:
    """The runs `nsa launch` recorded whose directory is gone (those it started in ``under`` only, when given), newest
    launch first, at most ``limit``. A run renamed beside its old path is not gone (nsa_tui.moved_runs: its first boot
    record names that path); one moved elsewhere reads as deleted, as `nsa status NAME` says it."""
    from nsa_tui import launched
    from nsa_tui.moved_runs import renamed_from

    real = launched.real_parent_join()  # an index holds up to ~2000 launches: each parent resolved once
    gone = [(e, real(e.run_dir)) for e in launched.runs_gone()]
    if under is not None:
        here = os.path.realpath(under)
        gone = [(e, path) for e, path in gone if os.path.dirname(path) == here]
    renamed: dict[str, set[str]] = {}  # each parent listed once, and only until ``limit`` are found
    found: list[Launched] = []
    for e, path in gone:
        if len(found) == limit:
            break
        parent = os.path.dirname(path)
        if parent not in renamed:
            renamed[parent] = renamed_from(Path(parent))
        if path not in renamed[parent]:
            found.append(e)
    return found


def deleted_run_said(run: str, default_dir: Path) -> str:
    """What is known of run ``run`` whose directory is not there ('' when nothing is): the directory `nsa launch`
    recorded for it (else ``default_dir``, where the name would be), and whether its tmux session still runs."""
    from nsa_tui import launched
    from nsa_tui.launch import tmux

    recorded = [e for e in launched.entries() if e.name == run and not os.path.lexists(e.run_dir)]
    session = tmux.session_name(run)
    try:
        alive = tmux.has_session(session)
        wrapper_dir = tmux.session_run_dir(session) if alive else None
        pids = tmux.session_pids(session) if alive else []
    except UserError:  # no tmux, or a stuck server: nothing known of a session
        alive, wrapper_dir, pids = False, None, []
    if wrapper_dir is not None and os.path.lexists(wrapper_dir):
        alive = False  # that session runs a run whose directory is there: another run of this name, not this one
    kill = shlex.join(["tmux", *tmux.tmux_argv("kill-session", "-t", f"={session}")[1:]])  # as a user types it
    last = (recorded[-1].run_dir, recorded[-1].ts) if recorded else None
    return deleted_said(
        DeletedRun(session, last, alive, str(wrapper_dir) if wrapper_dir else None, pids[0] if pids else None),
        str(default_dir),
        kill,
    )


@dataclass(frozen=True)
class DeletedRun:
    """What the launch index and tmux say of a run whose directory is not there, here or on a host."""

    session: str  # its tmux session's name
    recorded: tuple[str, float] | None  # the directory `nsa launch` last recorded for it, gone since, and when
    alive: bool  # its session runs (the launch of this run: not of another run of the name, whose directory is there)
    wrapper_dir: str | None  # the directory the session's launch wrapper runs for
    pid: int | None  # the launch wrapper's


def deleted_said(f: DeletedRun, default_dir: str, kill: str, status: str = "nsa status") -> str:
    """The words of deleted_run_said for the facts ``f`` ('' when they say nothing); ``kill``: the command that
    ends the session, as a user types it (with --host, on the host), ``status`` the one that reads a run there. A
    run moved trains on (the trainer follows a rename on its filesystem), a deleted one stops."""
    if f.recorded is not None:
        where = started_in(*f.recorded)
    elif f.alive:
        where = f"its tmux session {f.session} runs the launch of {f.wrapper_dir or default_dir}"
    else:
        return ""
    # a name is looked for as a run renamed under the runs root, and beside the directory recorded for it
    beside = [posixpath.dirname(f.recorded[0])] if f.recorded is not None else []
    gone = gone_said([*beside, posixpath.dirname(default_dir)], status)
    if not f.alive:
        return f"{where}, {gone}; its tmux session {f.session} is gone: nothing of it runs"
    pid = f" (launch wrapper pid {f.pid})" if f.pid is not None else ""
    return (
        f"{where}, {gone}, and its tmux session {f.session} is still alive{pid}: deleted, the trainer stops itself "
        f"after the step it is in (if the session stays, `{kill}` ends it); moved on its filesystem, it trains on there"
    )
