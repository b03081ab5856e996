"""Resolve RUN arguments: a run directory, or a run name under the runs root."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

from nsa_train.runtime.rundir import runs_root as contract_runs_root
from nsa_train.telemetry import schema
from nsa_train.telemetry.holds import HOLDS_RUN_SAID
from nsa_train.telemetry.holds import holds_run as contract_holds_run
from nsa_tui.errors import NOT_FOUND_EXIT, USAGE_EXIT, UserError

UNREADABLE = "cannot read "  # how every error about a directory this user may not read starts (`nsa runs` shows them)
# the files whose newest mtime is a run's last activity: the newest run is the one with the latest (here, and in the
# remote script of nsa_tui.remote.checkout). launch.json counts: a run just launched has nothing else yet.
ACTIVITY_FILES = (schema.RUN_JSON, schema.LAUNCH_JSON, schema.heartbeat_name(0), schema.TRAINING_CSV)
FALLBACK_NAME_MAX = 255  # NAME_MAX of ext4, xfs, btrfs, tmpfs, APFS: when pathconf cannot say


def runs_root() -> Path:
    """Where run names live: $NSA_RUNS_DIR (~ expanded; empty: unset) or ./runs (nsa_train.runtime.rundir)."""
    return contract_runs_root()


def name_max(parent: Path) -> int:
    """The longest file name, in bytes, the file system under ``parent`` (or its nearest existing ancestor) takes."""
    p = Path(os.path.abspath(parent))
    while True:
        try:
            return os.pathconf(p, "PC_NAME_MAX")
        except (OSError, ValueError):  # not there (yet), or the system cannot say
            if p == p.parent:
                return FALLBACK_NAME_MAX
            p = p.parent


def no_run_dir(p: Path, e: OSError) -> UserError:
    """A RUN whose path cannot even be looked at (a name over NAME_MAX, a symlink loop): no such run, in one line,
    where the OSError was a traceback."""
    return UserError(f"no run directory {os.path.abspath(p)}: {e.strerror or e}", NOT_FOUND_EXIT)


def no_runs_dir(root: Path, e: OSError) -> UserError:
    """A runs root that cannot even be looked at (over NAME_MAX, a symlink loop), in one line, not a traceback."""
    return UserError(f"no runs directory {root}: {e.strerror or e}", NOT_FOUND_EXIT)


def _mtime(p: Path) -> float | None:
    try:
        return p.stat().st_mtime
    except OSError:  # not there, or removed since the directory was listed
        return None


def _activity_time(d: Path) -> tuple[float, float]:
    """The sort key of a run's last activity: the newest mtime among its ACTIVITY_FILES, then the directory's own.

    The directory's mtime moves with whatever is created or removed in it, which is not the run's doing: `nsa report`
    makes report/, a dry-run launch's writability probe a temp file, `nsa halt` a .HALT. So it stands in only for a
    directory with none of those files, and otherwise just breaks ties."""
    own = _mtime(d) or 0.0
    files = [t for t in (_mtime(d / name) for name in ACTIVITY_FILES) if t is not None]
    return (max(files) if files else own), own


def holds_run(d: Path) -> bool:
    """A run's files are there: the contract's one definition (nsa_train.telemetry.holds; any rank's heartbeat counts:
    a later node of a multi-node run started by hand has no rank 0's)."""
    return contract_holds_run(d)


def unreadable_dir(d: Path) -> str | None:
    """Why this user cannot list or read the files of directory ``d`` (None when it can): every reader would
    fail on it with a traceback, or take it for an empty directory."""
    if os.access(d, os.R_OK | os.X_OK):
        return None
    try:
        st = d.stat()
    except OSError as e:
        return f"{UNREADABLE}{os.path.abspath(d)}: {e.strerror or e}"
    import pwd
    import stat

    def user(uid: int) -> str:
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return f"uid {uid}"

    return (
        f"{UNREADABLE}{os.path.abspath(d)}: permission denied ({stat.filemode(st.st_mode)}, owner "
        f"{user(st.st_uid)}; nsa runs as {user(os.geteuid())})"
    )


def no_run_in(d: Path) -> str:
    """What a directory without a run's files lacks, in the words every command uses (holds_run's rule)."""
    return f"no run in {os.path.abspath(d)} (none of {HOLDS_RUN_SAID})"


def run_name(run_dir: Path) -> str:
    """A run's name: its directory's, taken from the absolute path (`nsa halt .` in the run: '.' has no name).
    Normalized, not resolved: a symlink to a run keeps the name it was given."""
    return Path(os.path.abspath(run_dir)).name or str(run_dir)


def check_run_arg(run: str) -> None:
    """An empty RUN is a usage mistake: as a path it is the current directory (`nsa halt ''` wrote its .HALT
    there and waited for it), and a command without RUN already means the newest run where it has a default."""
    if not run.strip():
        raise UserError("RUN is empty: give a run directory or a run name", USAGE_EXIT)


def _is_dir(d: Path) -> bool:
    try:
        return d.is_dir()
    except OSError:
        return False


def _is_file(f: Path) -> bool:
    try:
        return f.is_file()
    except OSError:
        return False


def _holds(d: Path) -> bool:
    try:
        return unreadable_dir(d) is None and holds_run(d)
    except OSError:
        return False


def newest_run(root: Path) -> Path:
    """The run directory under ``root`` with the newest activity. Not a directory that holds no run's files (a
    report's --out, a lost+found) nor one this user cannot read: `nsa status` judged an empty folder made a
    moment ago, exit 3, beside finished runs."""
    try:
        if root.is_dir() and (why := unreadable_dir(root)):
            raise UserError(why, NOT_FOUND_EXIT)
    except OSError as e:
        raise no_runs_dir(Path(os.path.abspath(root)), e) from None
    dirs = list_runs(root)
    for d in dirs:
        if _holds(d):
            return d
    where = f"{root.absolute()}/"
    if dirs:
        unread = [d.name for d in dirs if unreadable_dir(d) is not None]
        why = f"; {len(unread)} cannot be read here: {', '.join(unread[:3])}{', ...' if len(unread) > 3 else ''}"
        hold = "y holds" if len(dirs) == 1 else "ies hold"
        raise UserError(
            f"no runs under {where} (its {len(dirs)} director{hold} no run's files{why if unread else ''}): pass a "
            "run directory, or start one with `nsa launch`",
            NOT_FOUND_EXIT,
        )
    raise UserError(f"no runs under {where} (pass a run directory, or start one with `nsa launch`)", NOT_FOUND_EXIT)


def list_runs(root: Path | None = None) -> list[Path]:
    """Run directories under root, newest activity first."""
    root = root or runs_root()
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(dirs, key=_activity_time, reverse=True)


def resolve_run(run: str | None, root: Path | None = None, *, index: bool = True) -> Path:
    """A RUN argument to an existing directory; None means the most recent run. A bare name found neither here nor
    under the runs root is looked up among the runs `nsa launch` recorded (``index``; nsa_tui.launched): its
    directory, said in a note on stderr. The error names absolute paths: run by `nsa ... --host`, the relative
    ones would read as paths on the caller's machine."""
    root = root or runs_root()
    if run is None:
        return newest_run(root)
    check_run_arg(run)
    p = Path(run)
    named = root / run
    candidates = [p, named]
    if _is_dir(p) and _is_dir(named) and not p.is_absolute() and not _holds(p) and _holds(named):
        # `nsa status rep` in a directory with a data folder `rep` beside runs/rep: the run, not the folder (it
        # was judged "unknown, health OK", exit 0, while the run under that name trained on)
        candidates = [named]
    for d in candidates:
        try:
            found = d.is_dir()
        except PermissionError:  # a directory on its path cannot be searched (Python 3.11 raises)
            raise UserError(
                f"{UNREADABLE}{os.path.abspath(d)}: permission denied on its path", NOT_FOUND_EXIT
            ) from None
        except OSError as e:  # a name over NAME_MAX
            raise no_run_dir(d, e) from None
        if found:
            if why := unreadable_dir(d):
                raise UserError(why, NOT_FOUND_EXIT)
            return d
    for f in (p, named):
        if _is_file(f):  # a run's run.json, say: "no run directory" would send the user looking elsewhere
            path = Path(os.path.abspath(f))
            its = f" (its directory {path.parent} is a run)" if holds_run(path.parent) else ""
            raise UserError(f"{path} is a file, not a run directory{its}", NOT_FOUND_EXIT)
    # where it started, as the candidates above were looked at: a path (relative ones against the cwd, as the
    # absolute path would be), else a name under the runs root; a relative path may also mean one under the root
    olds = [named] if _bare_name(run) else list(dict.fromkeys((Path(os.path.abspath(p)), named)))
    for old in olds:
        if (went := renamed_run(old, root)) is not None:
            return went
    if p.is_absolute():  # root / run is the same path: nowhere else was looked at
        raise UserError(f"no run directory {run!r}", NOT_FOUND_EXIT)
    if index and (found_launched := launched_run(run)) is not None:
        return found_launched
    looked = f"no run directory {run!r} (looked at {p.absolute()} and {named.absolute()})"
    if index and _bare_name(run):
        from nsa_tui.deleted_runs import deleted_run_said

        if said := deleted_run_said(run, Path(os.path.abspath(named))):
            raise UserError(f"{looked}: {said}", NOT_FOUND_EXIT)
    raise UserError(looked, NOT_FOUND_EXIT)


def renamed_run(old: Path, root: Path) -> Path | None:
    """The run that first booted at ``old`` (not there), renamed since: its directory, said in a note on stderr;
    None when none is found (nsa_tui.moved_runs). Two of them (a copy) are refused, both named."""
    from nsa_tui.moved_runs import renamed_to

    found = renamed_to(old, root)
    if len(found) > 1:
        raise UserError(renamed_twice_message(os.path.abspath(old), list(map(str, found))), USAGE_EXIT)
    if found:
        print(renamed_note(os.path.abspath(old), str(found[0])), file=sys.stderr)
    return found[0] if found else None


def renamed_note(old: str, new: str, host: str | None = None) -> str:
    """The stderr line of a RUN path not there whose run was renamed since (``host``: where, for a --host command;
    the remote script of nsa_tui.remote.checkout looks there as renamed_run looks here)."""
    on = f" on {host}" if host else ""
    return f"note: {old}{on} is not there: the run that started there is {new} (renamed)"


def renamed_twice_message(old: str, found: list[str], host: str | None = None) -> str:
    """The refusal of a RUN path not there that several directories began as (a copy): both named."""
    on = f" on {host}" if host else ""
    return f"no run directory {old}{on}: runs that started there are {'; '.join(found)}"


def launched_run(run: str) -> Path | None:
    """The one run `nsa launch` recorded under the name ``run`` (a bare name: a path was meant as one), else the run
    a live tmux session of that name runs, its note on stderr; None when neither knows it. Two recorded runs of that
    name are refused, both named: never a silent choice."""
    if not _bare_name(run):
        return None
    from nsa_tui import launched

    matches = launched.named(run)
    if not matches:
        return session_run(run) or renamed_launch(run)
    if len(matches) > 1:
        raise UserError(launched_twice_message(run, [(m.run_dir, m.ts) for m in matches]), USAGE_EXIT)
    d = Path(matches[0].run_dir)
    if why := unreadable_dir(d):
        raise UserError(why, NOT_FOUND_EXIT)
    print(launched_note(run, str(d), matches[0].ts, str(launched.index_path())), file=sys.stderr)
    return d


def renamed_launch(run: str) -> Path | None:
    """The run `nsa launch` last recorded under the name ``run`` at a directory gone since, renamed beside it (outside
    the runs root, where renamed_run looked first); None when it was not."""
    from nsa_tui import launched

    gone = [e for e in launched.runs_gone() if e.name == run]
    return renamed_run(Path(gone[0].run_dir), Path(gone[0].run_dir).parent) if gone else None


def launched_note(run: str, run_dir: str, ts: float, index: str, host: str | None = None) -> str:
    """The stderr line of a RUN found in the launch index (``host``: the one whose index it is, for a --host
    command; the remote script of nsa_tui.remote.checkout looks it up there)."""
    on = f" on {host}" if host else ""
    return f"note: run {run!r} is {run_dir}{on} (launched {_when(ts)}; from {index})"


def launched_twice_message(run: str, matches: list[tuple[str, float]], host: str | None = None) -> str:
    """The refusal of a RUN name the launch index knows in several directories (``matches``: each one's directory
    and launch time, newest first): never a silent choice."""
    dirs = "; ".join(f"{d} (launched {_when(ts)})" for d, ts in matches)
    where = f"on {host}" if host else "here"
    return (
        f"no run directory {run!r} {where}, and nsa launch started {len(matches)} runs of that name: {dirs}; "
        "pass the run directory of the one you mean"
    )


def session_run(run: str) -> Path | None:
    """The run of that name whose tmux session is alive, by the directory its wrapper runs in, when that directory's
    launch.json names this run and session (a run launched before the index, or with it lost); None otherwise."""
    from nsa_tui.launch import tmux

    d = _session_dir(run)
    if d is None:
        return None
    if why := unreadable_dir(d):
        raise UserError(why, NOT_FOUND_EXIT)
    print(session_note(run, str(d), tmux.session_name(run)), file=sys.stderr)
    return d


def session_note(run: str, run_dir: str, session: str, host: str | None = None) -> str:
    """The stderr line of a RUN found by its live tmux session (``host``: where, for a --host command; the remote
    script of nsa_tui.remote.checkout looks there)."""
    on = f" on {host}" if host else ""
    return f"note: run {run!r} is {run_dir}{on} (its tmux session {session} runs there)"


def _session_dir(run: str) -> Path | None:
    """The directory the live tmux session of run ``run`` runs in, when its launch.json names this run and session."""
    from nsa_tui.launch import runstate, tmux

    session = tmux.session_name(run)
    d = tmux.session_run_dir(session)
    launch = runstate.read_launch_json(d) if d is not None else None
    if d is None or launch is None or launch.get("name") != run or launch.get("tmux_session") != session:
        return None
    return d


def known_elsewhere(run: str) -> list[Path]:
    """Where the index (or else the live tmux session) knows a run called ``run``, as launched_run looks, but quietly
    and never refusing: for an error that names them (`nsa launch --resume NAME` from another directory)."""
    if not _bare_name(run):
        return []
    from nsa_tui import launched

    if matches := launched.named(run):
        return [Path(m.run_dir) for m in matches]
    d = _session_dir(run)
    return [Path(os.path.abspath(d))] if d is not None else []


def _bare_name(run: str) -> bool:
    """A run's name, which the launch index and tmux sessions know runs by; a path (or . and ..) was meant as one."""
    return run not in (".", "..") and Path(run).name == run


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def holds_runs(d: Path) -> bool:
    """Run directories are in ``d``: a runs root (or another directory of runs) given where a run was expected."""
    try:
        return any(c.is_dir() and holds_run(c) for c in d.iterdir())
    except OSError:
        return False


def no_run_error(d: Path, nothing_to: str) -> UserError:
    """A command that acts on a run (``nothing_to``: "halt", "attach") given a directory that holds none: the same
    words and exit status from each, and the runs it holds named when it is a runs root."""
    inside = "; it holds run directories: name one of them" if holds_runs(d) else ""
    return UserError(f"{no_run_in(d)}; nothing to {nothing_to}{inside}", NOT_FOUND_EXIT)


def runs_command(directory: Path) -> str:
    """The `nsa runs` that lists the runs in ``directory``: bare for the runs root."""
    if directory.resolve() == runs_root().resolve():
        return "nsa runs"
    arg = str(directory)
    return shlex.join(["nsa", "runs", *(["--"] if arg.startswith("-") else []), arg])
