"""Find runs on a remote host, and fetch their bundles in ONE ssh call (nsa on the remote or not)."""

from __future__ import annotations

import sys
from typing import NamedTuple

from nsa_tui.errors import NOT_FOUND_EXIT, UNREACHABLE_EXIT, USAGE_EXIT, UserError
from nsa_tui.remote.checkout import (
    FORWARDED_ENV,
    PRELUDE,
    deleted_on_host,
    forwarded_env,
    launched_note_line,
    launched_twice,
    missing_run_message,
    no_remote_dir_message,
    unreadable_on_host,
)
from nsa_tui.remote.ssh import SSHError, no_answer_message, remote_script, run_remote
from nsa_tui.rundir import renamed_note, renamed_twice_message, session_note
from nsa_tui.runs.bundle import FILE_LIMITS, REMOTE_SCRIPT, RemoteAnswer, parse_frames, remote_args

REMOTE_TIMEOUT_S = 60.0

# Whether a run's tmux session is alive is asked of the tmux server its launch.json names
# ("tmux_socket"; null means tmux's default server): the server a launch.json without the key is checked on is the
# remote's default one, whatever NSA_TMUX_SOCKET says (sent, it names the server a run is looked for by its session).
REMOTE_DEFAULT_TMUX_SOCKET = ""


def fetch_remote(
    host: str,
    runs: list[str],
    *,
    prefer_nsa: bool = True,
    remote_dir: str | None = None,
    limits: tuple[tuple[str, int], ...] = FILE_LIMITS,
    timeout: float = REMOTE_TIMEOUT_S,
) -> RemoteAnswer:
    """Bounded tails of each RUN on ``host`` (or its own `nsa status --json` when installed
    and ``prefer_nsa``), after entering ``remote_dir`` there. A RUN of '' means the most recent
    run, '@all:DIR' every run in DIR. ``limits`` says which files and how much of each (the
    status windows by default). Our NSA_RUNS_DIR is the runs root there too, as for
    `nsa launch --host`. Raises UserError (one line, exit 3) when the host cannot be reached
    or ``remote_dir`` is not there, or the script did not run to its end there (the last line of the remote
    stderr says why); a RUN that is not there is a MissingRun in the answer."""
    args = remote_args(REMOTE_DEFAULT_TMUX_SOCKET, runs or [""], prefer_nsa, remote_dir, limits)
    command = remote_script(REMOTE_SCRIPT, args, forwarded_env(FORWARDED_ENV))
    try:
        result = run_remote(host, command, timeout=timeout)
    except SSHError as e:
        raise UserError(str(e), UNREACHABLE_EXIT) from None
    answer = parse_frames(result.stdout, host)
    for note in answer.notes:  # a RUN found in the host's launch index: where, as a local command says it
        print(note, file=sys.stderr)
    if answer.no_dir is not None:
        raise UserError(no_remote_dir_message(answer.no_dir, host), UNREACHABLE_EXIT)
    if not answer.complete:
        raise UserError(no_answer_message(host, "read the runs", result), UNREACHABLE_EXIT)
    return answer


# $1: --remote-dir ('' for the login directory), then the RUN arguments. First the record LOCATE_START
# (what a login shell prints before it, e.g. a greeting from its rc file, is skipped), then for each RUN one
# NUL-terminated record: "ok", the run directory's absolute path and the runs root there; or "missing", the RUN, the
# directory the script was in and the runs root there. "nodir", DIR when DIR cannot be entered. A RUN found in the
# host's launch index has a "note" record first (the RUN, its directory, launch time and the index's path); one the
# index knows in several directories is a "twice" record instead (the RUN, the launched lines of find_launched). One
# found by its live tmux session has a "session" record first (the RUN, its directory, the session); a directory found
# by its name that cannot be listed is an "unreadable" record (the directory, its `ls -ld` line). A RUN path not there
# whose run was renamed since has a "renamed" record first (the path as an absolute one, where the run is now); several
# such directories are a "renamedmany" record instead (the path, the directories one a line). A bare name not found has
# a "deleted" record before its "missing" one: where it would be, then deleted_facts' lines.
LOCATE_START = b"\n@@nsa@@\0"
LOCATE_SCRIPT = (
    PRELUDE
    + r"""
dir=$1; shift
printf '\n@@nsa@@\0'
if ! enter_dir; then printf 'nodir\0%s\0' "$dir"; exit 0; fi
[ "$#" -eq 0 ] && set -- ""
for run in "$@"; do
  find_run "$run"
  if [ -n "$renamed_many" ]; then printf 'renamedmany\0%s\0%s\0' "$renamed" "$renamed_many"; continue; fi
  if [ -n "$twice" ]; then printf 'twice\0%s\0%s\0' "$run" "$twice"; continue; fi
  if [ -n "$unread" ]; then printf 'unreadable\0%s\0%s\0' "$unread" "$(ls -ld -- "$unread" 2>/dev/null)"; continue; fi
  [ -n "$renamed" ] && printf 'renamed\0%s\0%s\0' "$renamed" "$d"
  [ -n "$noted" ] && printf 'note\0%s\0%s\0%s\0%s\0' "$run" "$d" "$noted" "$(index_path)"
  [ -n "$insession" ] && printf 'session\0%s\0%s\0%s\0' "$run" "$d" "$insession"
  if [ -n "$d" ] && abs=$(cd -- "$d" >/dev/null && pwd); then printf 'ok\0%s\0%s\0' "$abs" "$where"; continue; fi
  case $run in */*|.|..|'') ;; *) printf 'deleted\0%s\0%s\n%s\0' "$run" "$where/$run" "$(deleted_facts "$run")" ;; esac
  printf 'missing\0%s\0%s\0%s\0' "$run" "$PWD" "$where"
done
"""
)


class LocatedRun(NamedTuple):
    path: str  # the run directory's absolute path on the host
    runs_root: str  # the host's runs root, absolute: where a run directory renamed while watched is looked for too


def locate_remote_runs(host: str, runs: list[str], remote_dir: str | None = None) -> list[LocatedRun]:
    """The absolute path on ``host`` of each RUN ('' or none: the newest run), resolved as every
    `--host` command resolves it (``remote_dir``, then a directory, then a name under the runs
    root). One short ssh call. Raises UserError (exit 3) for a RUN or directory that is not
    there, and when the host cannot be reached."""
    command = remote_script(LOCATE_SCRIPT, [remote_dir or "", *runs], forwarded_env(FORWARDED_ENV))
    try:
        result = run_remote(host, command, timeout=REMOTE_TIMEOUT_S)
    except SSHError as e:
        raise UserError(str(e), UNREACHABLE_EXIT) from None
    start = result.stdout.find(LOCATE_START)
    if start < 0:
        raise UserError(no_answer_message(host, "locate the runs", result), UNREACHABLE_EXIT)
    fields = result.stdout[start + len(LOCATE_START) :].decode("utf-8", errors="replace").split("\0")
    paths: list[LocatedRun] = []
    deleted = ""
    i = 0
    while i < len(fields) - 1:
        kind = fields[i]
        if kind == "ok" and i + 2 < len(fields):
            paths.append(LocatedRun(fields[i + 1], fields[i + 2]))
            i += 3
        elif kind == "nodir":
            raise UserError(no_remote_dir_message(fields[i + 1], host), UNREACHABLE_EXIT)
        elif kind == "missing" and i + 3 < len(fields):
            run, cwd, root = fields[i + 1 : i + 4]
            raise UserError(missing_run_message(run, host, cwd, root, said=deleted), UNREACHABLE_EXIT)
        elif kind == "deleted" and i + 2 < len(fields):  # what the host knows of a run whose directory is gone
            deleted = deleted_on_host(host, fields[i + 2])
            i += 3
        elif kind == "renamed" and i + 2 < len(fields):
            print(renamed_note(*fields[i + 1 : i + 3], host=host), file=sys.stderr)
            i += 3
        elif kind == "renamedmany" and i + 2 < len(fields):
            old, found = fields[i + 1], fields[i + 2].splitlines()
            raise UserError(renamed_twice_message(old, found, host), USAGE_EXIT)
        elif kind == "note" and i + 4 < len(fields):
            print(launched_note_line(host, *fields[i + 1 : i + 5]), file=sys.stderr)
            i += 5
        elif kind == "session" and i + 3 < len(fields):
            print(session_note(*fields[i + 1 : i + 4], host=host), file=sys.stderr)
            i += 4
        elif kind == "unreadable" and i + 2 < len(fields):
            raise UserError(unreadable_on_host(host, *fields[i + 1 : i + 3]), NOT_FOUND_EXIT)
        elif kind == "twice" and i + 2 < len(fields):
            raise UserError(launched_twice(host, fields[i + 1], fields[i + 2]), USAGE_EXIT)
        else:
            break
    if len(paths) != max(len(runs), 1):
        raise UserError(no_answer_message(host, "locate the runs", result), UNREACHABLE_EXIT)
    return paths
