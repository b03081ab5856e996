"""The remote end of every `--host` command: enter `--remote-dir`, find a RUN there.

One POSIX sh prelude, shared by the scripts that launch, halt, judge and watch runs over
ssh, so that a RUN name means the same run to all of them:

- ``--remote-dir DIR`` is entered first (the login directory without it). A leading ``~``
  is the *remote* home: quoted (``'~/nsa'``) it reaches us unexpanded, and unquoted the
  local shell would have made it the local home.
- the checkout's ``.venv/bin`` goes first on PATH, so its `nsa` is the one used;
- a RUN is a directory (as given, relative to DIR), else a name under the runs root
  (``$NSA_RUNS_DIR``, a leading ``~`` the remote home, else ``runs``), else "" for the newest run there: the
  directory (not a plain file, not a hidden one) with the newest activity that holds a run (holds_run, the
  contract's definition) and can be read, as a local RUN of "" (nsa_tui.rundir.newest_run).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from nsa_train.runtime.rundir import DEFAULT_RUNS_ROOT, RUNS_ROOT_ENV
from nsa_tui.remote.holds_sh import HOLDS_RUN_SH
from nsa_tui.rundir import ACTIVITY_FILES

# Defines holds_run DIR (nsa_tui.remote.holds_sh: returns 0 when DIR holds a run), enter_dir (uses $dir; returns 1
# when it cannot cd), mtime PATH (its mtime in unix seconds, following a link; 0 when unknown), list_runs DIR (the
# run directories under DIR, newest activity first, one name a line, as nsa_tui.rundir.list_runs orders them
# locally) and find_run RUN (sets $d, "" when there is no such run, and
# $where, the runs root as an absolute path, for the error message). CDPATH is unset: with it a `cd` may print
# the directory, into the output our side parses.
PRELUDE = r"""
unset CDPATH
enter_dir() {
  case $dir in "~") dir=$HOME ;; "~/"*) dir=$HOME/${dir#"~/"} ;; esac
  [ -n "$dir" ] || return 0
  cd -- "$dir" >/dev/null 2>&1 || return 1
  if [ -x .venv/bin/nsa ]; then PATH=$PWD/.venv/bin:$PATH; fi
  return 0
}
mtime() {
  # GNU or busybox stat, BSD stat, else date -r
  mt_=$(stat -L -c %Y -- "$1" 2>/dev/null || stat -L -f %m -- "$1" 2>/dev/null || date -r "$1" +%s 2>/dev/null)
  case $mt_ in ''|*[!0-9]*) mt_=0 ;; esac
  echo "$mt_"
}
list_runs() {
  # directories only, not hidden ones; a run's time is the newest mtime of the files that show activity, then
  # (for a directory with none of them, and to break ties) the directory's own, which moves with anything made
  # in it (a report/, a .HALT): to the nanosecond with GNU stat, as Python's st_mtime; one stat call per run
  stfmt=
  for f_ in %.9Y %Y; do
    case $(stat -L -c "$f_" -- . 2>/dev/null) in ''|*[!0-9.]*) ;; *) stfmt=$f_; break ;; esac
  done
  for e in "$1"/*; do
    [ -d "$e" ] || continue
    printf 'D %s\n' "${e##*/}"
    set -- "$e"
    for f in @ACTIVITY_FILES@; do [ -e "$e/$f" ] && set -- "$@" "$e/$f"; done
    if [ -n "$stfmt" ]; then stat -L -c "$stfmt" -- "$@" 2>/dev/null
    else for f in "$@"; do mtime "$f"; done; fi
  done | awk '/^D / { n = substr($0, 3); if (!(n in m)) { m[n] = -1; own[n] = ""; o[++k] = n }; next }
    own[n] == "" { own[n] = $1 + 0; next }
    $1 + 0 > m[n] + 0 { m[n] = $1 }
    END { for (i = 1; i <= k; i++) { n = o[i]; t = m[n] + 0 < 0 ? own[n] : m[n]
      printf "%020.9f %020.9f %s\n", t, own[n], n } }' | LC_ALL=C sort -r | cut -d ' ' -f 3-
}
root=${@RUNS_ROOT_ENV@:-@DEFAULT_RUNS_ROOT@}
# a quoted ~ (a .env file, a systemd unit) is the home directory, as nsa_train.runtime.rundir.runs_root reads it
case $root in "~") root=$HOME ;; "~/"*) root=$HOME/${root#"~/"} ;; esac
find_run() {
  case $root in /*) where=$root ;; *) where=$PWD/$root ;; esac
  d=
  if [ -z "$1" ]; then
    # the newest that holds a run and can be read (nsa_tui.rundir.newest_run): not a report's --out
    d=$(list_runs "$root" | while IFS= read -r n_; do
      e_=$root/$n_
      [ -r "$e_" ] && [ -x "$e_" ] && holds_run "$e_" && { printf '%s\n' "$n_"; exit 0; }
    done)
    [ -n "$d" ] && d=$root/$d
  elif [ -d "$1" ]; then d=$1
  elif [ -d "$root/$1" ]; then d=$root/$1
  fi
  [ -n "$d" ] && [ -d "$d" ] || d=
}
""".replace("@ACTIVITY_FILES@", " ".join(ACTIVITY_FILES))
PRELUDE = HOLDS_RUN_SH + PRELUDE.replace("@RUNS_ROOT_ENV@", RUNS_ROOT_ENV).replace(
    "@DEFAULT_RUNS_ROOT@", DEFAULT_RUNS_ROOT
)


def forwarded_env(names: tuple[str, ...], environ: Mapping[str, str] | None = None) -> list[str]:
    """``K=V`` for each of ``names`` set here: the prefix of an ``env K=V ... sh -c`` command."""
    env = os.environ if environ is None else environ
    return [f"{k}={env[k]}" for k in names if env.get(k)]


LISTING = "@all:"  # a RUN argument that asks for every run directory under what follows
HINT = "pass --remote-dir where `nsa launch --remote-dir` ran"


def missing_run_message(run: str, host: str, cwd: str, runs_root: str, is_run_dir: bool = False) -> str:
    """One line for a RUN that is on no path the remote looked at (``cwd``: the directory it was
    in, ``runs_root``: the runs root there, both absolute), or for a listing of a run directory."""
    if run.startswith(LISTING) and is_run_dir:
        parent = runs_root.rstrip("/").rsplit("/", 1)[0] or "/"
        return (
            f"{runs_root} on {host} is a run directory, not a directory of runs: "
            f"`nsa status --host {host} {runs_root}`, or `nsa runs --host {host} {parent}`"
        )
    if run.startswith(LISTING):
        return f"no runs directory {runs_root} on {host} ({HINT}, or pass DIR)"
    if not run:
        return f"no runs under {runs_root} on {host} ({HINT}, or name a run)"
    if run.startswith("/"):
        return f"no run directory {run!r} on {host}"
    return (
        f"no run directory {run!r} on {host} (looked at {cwd.rstrip('/')}/{run} and "
        f"{runs_root.rstrip('/')}/{run}; {HINT}, or give the full path)"
    )


def no_remote_dir_message(remote_dir: str, host: str) -> str:
    return f"cannot cd to {remote_dir} on {host} (no such directory there)"
