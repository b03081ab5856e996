"""A run directory as bounded byte windows: what `nsa status` reads, locally or over SSH.

A RunBundle holds, per interesting file, its last N bytes (N from FILE_LIMITS), its size,
mtime, and for CSVs its header line. Locally it is read with Python; over SSH the same
windows come back in one call from a POSIX sh script (REMOTE_SCRIPT: `tail -c`, `head`,
`ls`), framed, and are parsed by ``parse_frames``. Either way one parser judges them.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from nsa_train.telemetry import schema
from nsa_tui.health.defaults import RULES_WINDOW_POINTS
from nsa_tui.launched import RECENT, Launched
from nsa_tui.remote.checkout import PRELUDE, deleted_on_host, launched_note_line, launched_twice, unreadable_on_host
from nsa_tui.remote.liveness import LIVENESS_SH, parse_pids, parse_stopped
from nsa_tui.rundir import renamed_note, renamed_twice_message, session_note
from nsa_tui.stopped_ranks import Stop

KIB = 1024
MIB = 1024 * KIB

# The longest row of a history file, for the budgets that must hold the rules window (RULES_WINDOW_POINTS rows):
# a training.csv row is 19 cells of at most 24 characters (repr of a float) and commas; a val.csv row a step and
# two floats. A tail this long gives `nsa status` the same points the dashboard judges.
TRAINING_ROW_BYTES = 512
VAL_ROW_BYTES = 64
# (glob, bytes from the end). Order matters: a file takes the first pattern it matches.
FILE_LIMITS: tuple[tuple[str, int], ...] = (
    (schema.heartbeat_name(0), 512 * KIB),  # rank 0: ~800 recent progress records plus events
    (schema.HEARTBEAT_GLOB, 256 * KIB),  # other ranks: liveness only
    (schema.TRAINING_CSV, RULES_WINDOW_POINTS * TRAINING_ROW_BYTES),  # ~2 MiB: at least the rules window
    (schema.VAL_CSV, RULES_WINDOW_POINTS * VAL_ROW_BYTES),  # ~250 KiB: the evals of the rules window
    ("fallback_counters.csv", 256 * KIB),
    (schema.RUN_JSON, 512 * KIB),
    (schema.LAUNCH_JSON, 256 * KIB),
    (schema.CONFIG_YAML, 256 * KIB),
    (schema.SUMMARY_JSON, 256 * KIB),
    (schema.EXIT_STATUS, 64),
    (schema.EXIT_STATUS_PREVIOUS, 64),
    (schema.CONSOLE_LOG, 16 * KIB),
    (schema.HALT_FILE, 0),
    (".anomaly_type", 4 * KIB),
    ("stackdump_*.txt", 0),  # names only
    ("*_summary.json", 64 * KIB),  # generic trainers' end-of-run summary
    ("*.jsonl", 2 * MIB),  # generic training logs (the rules window of records up to 512 bytes)
    ("*.csv", 2 * MIB),
)
CSV_HEAD_BYTES = 4 * KIB


def file_limit(name: str) -> int | None:
    """Bytes to read from the end of ``name``; None when the file is not of interest."""
    for pattern, limit in FILE_LIMITS:
        if fnmatch(name, pattern):
            return limit
    return None


@dataclass
class FileWindow:
    name: str
    data: bytes  # the last bytes of the file
    size: int  # the whole file's size
    mtime: float | None
    head: bytes = b""  # the first line (CSV header), when the window starts mid-file

    @property
    def from_middle(self) -> bool:
        return len(self.data) < self.size


@dataclass
class RunBundle:
    """Everything `nsa status` needs from one run directory."""

    run: str  # display name
    path: str  # the directory as given (local or remote)
    files: dict[str, FileWindow] = field(default_factory=dict)
    now: float = 0.0  # the clock of the host that read the files
    tmux_sessions: list[str] | None = None  # None: unknown (no tmux, or not asked)
    host: str | None = None
    real_path: str | None = None  # over SSH: the directory's physical absolute path there, when known
    # over SSH: the host's name (uname -n, as run.json's "host") and its live pids with their starts (unix seconds,
    # None: unknown), when it has /proc
    pid_host: str | None = None
    live_pids: dict[int, float | None] | None = None
    # over SSH: which of live_pids are stopped, and how (SIGSTOP, ctrl-z; a debugger)
    stopped_pids: dict[int, Stop] = field(default_factory=dict)
    # files that are there but could not be read ({name: why}, a permission): not taken for missing ones
    unreadable: dict[str, str] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        w = self.files.get(name)
        return None if w is None else w.data.decode("utf-8", errors="replace")


def collect_local(run_dir: Path, *, tmux_sessions: list[str] | None = None) -> RunBundle:
    """Read the bounded windows of a local run directory."""
    run_dir = Path(run_dir)
    bundle = RunBundle(run=run_dir.name or str(run_dir), path=str(run_dir), now=time.time())
    try:
        names = sorted(os.listdir(run_dir))
    except OSError:
        return bundle
    for name in names:
        limit = file_limit(name)
        if limit is None:
            continue
        p = run_dir / name
        try:
            st = p.stat()
            if stat.S_ISDIR(st.st_mode):  # a run file's name on a directory (a mistaken mkdir, a copy gone wrong)
                bundle.unreadable[name] = "is a directory"
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            data = b""
            head = b""
            if limit > 0 and st.st_size > 0:
                with open(p, "rb") as fh:
                    start = max(0, st.st_size - limit)
                    if start > 0 and name.endswith(".csv"):
                        head = fh.read(CSV_HEAD_BYTES).split(b"\n", 1)[0]
                    fh.seek(start)
                    data = fh.read(limit)
        except FileNotFoundError:  # removed since the directory was listed
            continue
        except OSError as e:
            bundle.unreadable[name] = f"cannot be read ({e.strerror or type(e).__name__})"
            continue
        bundle.files[name] = FileWindow(name, data, max(st.st_size, len(data)), st.st_mtime, head)
    bundle.tmux_sessions = tmux_sessions
    return bundle


# ---------------------------------------------------------------- over SSH, one call
FRAME = b"\n@@nsa@@ "

# $1: the tmux socket name ('' for the default server), $2: 1 to prefer a remote `nsa`,
# $3: --remote-dir ('' for the login directory), then pairs of (glob, limit) ended by '--'
# (limit: bytes from the end, 0 the name and size only, -1 the whole file; a glob may name a
# subdirectory, and a file's name is then its path under the run directory), then the RUN
# arguments ('' = most recent, '@all:DIR' = every run directory under DIR, newest first;
# DIR '' = the runs root). A RUN not found is a `missing` frame whose body is the
# directory the script was in and the runs root there (absolute), one per line; for a listing
# whose DIR itself holds a run (holds_run), a third line `rundir`; a listing without DIR where the runs root is not
# there lists the runs the launch index knows instead (index_listing: an `indexed` frame first, the root as its REST,
# the index's path its body), when it knows any. A listing names each directory under DIR that holds
# no run (holds_run, nsa_tui.remote.holds_sh) in a `leftout` frame, its body the name. A RUN found by its name in the
# host's launch index has a `note` frame first, one found by its live tmux session a `session` frame (its directory,
# the session); one the index knows twice is a `twice` frame, one found in a directory this user cannot list an
# `unreadable` frame (the directory, its `ls -ld` line), each instead of the run. A `run` frame's body is the
# run directory's physical absolute path (its name is the run's, as a local `.` resolves). The last frame is `end`:
# an answer without it was cut short (the shell could not run the script, or it died), not an answer with fewer runs.
# Nothing is written on the host: a full or read-only /tmp there changes nothing. A file's window is the
# bytes up to the size measured first, so its frame length is exact while the trainer appends (a file that
# shrinks meanwhile is made up with newlines, empty lines to every reader).
REMOTE_SCRIPT = (
    PRELUDE
    + LIVENESS_SH
    + r"""
sock=$1; prefer_nsa=$2; dir=$3; shift 3
unset TMUX TMUX_PANE  # the servers launch.json names, never the one a login shell may sit in (nsa_tui.launch.tmux)
pats=""
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do pats="$pats $1:$2"; shift 2; done
[ "$#" -gt 0 ] && shift
frame() { printf '\n@@nsa@@ %s %s %s\n' "$1" "$2" "$3"; }
# a frame KIND REST whose body is the text BODY (its length counted first)
say() { frame "$1" "$(printf '%s' "$3" | wc -c | tr -d ' ')" "$2"; printf '%s' "$3"; }
# exactly $3 bytes of the file $1 from its byte $2 (counted from 1)
window() { { tail -c +"$2" -- "$1" 2>/dev/null; tr '\0' '\n' </dev/zero; } | head -c "$3"; }
if ! enter_dir; then frame nodir 0 "$dir"; exit 0; fi
use_nsa=0
if [ "$prefer_nsa" = 1 ] && command -v nsa >/dev/null 2>&1; then use_nsa=1; fi
batch=""
missing() {
  body=$(printf '%s\n%s' "$PWD" "$where")
  [ -z "${2:-}" ] || body=$(printf '%s\n%s' "$body" "$2")
  say missing "$1" "$body"
}
frame now 0 "$(date +%s)"
# for the runs started without `nsa launch`: is a rank's pid still there, held by the process that wrote its
# records (its start, every process's here: looked up on our side)
if p_=$(live_pids); then say procs "$(uname -n 2>/dev/null)" "$p_"; fi
listed=$sock
if command -v tmux >/dev/null 2>&1; then
  say tmux - "$(tmux_on "$sock" list-sessions -F '#{session_name}' 2>/dev/null)"
fi
run_socket() {
  # the tmux server the run was launched on (launch.json's tmux_socket, null: the default); else the one given
  rs=$(launch_socket "$1") || rs=$sock
  return 0
}
emit_run() {
  if [ "$use_nsa" = 1 ]; then
    # judged by the remote nsa with the next runs, in one process (its start-up costs ~0.4 s);
    # ./ keeps a directory named -x from reading as an option
    case $1 in -*) set -- "./$1" ;; esac
    q=$(printf '%s' "$1" | sed "s/'/'\\\''/g")
    batch="$batch '$q'"
  else
    emit_files "$1"
  fi
}
flush() {
  # the queued runs through one `nsa status --json` (it reads each run's launch.json for its tmux server);
  # when it says nothing, each is read here instead
  [ -n "$batch" ] || return 0
  b=$batch; batch=""
  eval "set -- $b"
  out=$(NSA_TMUX_SOCKET=$sock nsa status --json "$@" 2>/dev/null)
  if [ -n "$out" ]; then say json - "$out"; return; fi
  for d in "$@"; do emit_files "$d"; done
}
emit_files() {
  d=$1
  run_socket "$d"
  # the sessions frame applies to the runs after it: list again when this run's server differs
  if [ "$rs" != "$listed" ] && command -v tmux >/dev/null 2>&1; then
    say tmux - "$(tmux_on "$rs" list-sessions -F '#{session_name}' 2>/dev/null)"
    listed=$rs
  fi
  say run "$d" "$(cd -- "$d" >/dev/null 2>&1 && pwd -P)"
  seen=" "
  set -f
  for pl in $pats; do
    pat=${pl%:*}; lim=${pl##*:}
    set +f
    for f in "$d"/$pat; do
      [ -f "$f" ] || continue
      name=${f#"$d"/}
      case "$seen" in *" $name "*) continue;; esac
      seen="$seen$name "
      size=$(wc -c <"$f" 2>/dev/null | tr -d ' ')
      case $size in ''|*[!0-9]*) continue ;; esac  # not readable
      mt=$(mtime "$f")
      len=$size
      [ "$lim" -ge 0 ] && [ "$len" -gt "$lim" ] && len=$lim
      case "$name" in *.csv) if [ "$lim" -ge 0 ] && [ "$size" -gt "$lim" ]; then
        say head "$name" "$(head -c 4096 -- "$f" 2>/dev/null | head -n 1)"; fi;;
      esac
      frame file "$len" "$size $mt $name"
      [ "$len" -gt 0 ] && window "$f" "$((size - len + 1))" "$len"
    done
    set -f
  done
  set +f
}
# index_listing: the runs the launch index recorded that are there (at most @RECENT@, newest launch first), then those
# gone since, as an `indexed` frame (the runs root that is not there, the index's path) before their runs and a `gone`
# frame (nsa_tui.commands.runs.launched_runs); returns 1, printing nothing, when the index knows none
index_listing() {
  r_=$(launched "" | head -n @RECENT@)
  g_=$(deleted_in "")
  [ -n "$r_$g_" ] || return 1
  say indexed "$where" "$(index_path)"
  printf '%s\n' "$r_" | {
    while IFS= read -r l_; do [ -z "$l_" ] || emit_run "${l_#*"$tab_"}"; done
    flush
  }
  [ -z "$g_" ] || say gone - "$g_"
}
[ "$#" -eq 0 ] && set -- ""
for run in "$@"; do
  case "$run" in
    @all:*)
      ldir=${run#@all:}; [ -n "$ldir" ] || ldir=$root
      case $ldir in /*) where=$ldir ;; *) where=$PWD/$ldir ;; esac
      if [ ! -d "$ldir" ]; then
        flush
        # no runs root and no DIR: the runs the host's launch index knows, as a local `nsa runs` lists them
        if [ -z "${run#@all:}" ] && [ ! -e "$ldir" ] && index_listing; then continue; fi
        missing "$run"; continue
      fi
      if holds_run "$ldir"; then flush; missing "$run" rundir; continue; fi
      flush
      frame listing 0 "$ldir"
      list_runs "$ldir" | {
        while IFS= read -r e; do
          # one that holds no run (a data folder) is named, not judged, as a local listing leaves it out; one this
          # user cannot read may hold one: listed, as unreadable
          if [ -r "$ldir/$e" ] && [ -x "$ldir/$e" ] && ! holds_run "$ldir/$e"; then say leftout - "$e"; continue; fi
          emit_run "$ldir/$e"
        done
        flush
      }
      g_=$(deleted_in "$ldir")
      [ -z "$g_" ] || say gone - "$g_"
      continue;;
  esac
  find_run "$run"
  if [ -n "$renamed_many" ]; then
    flush; say renamedmany "$run" "$(printf '%s\n%s' "$renamed" "$renamed_many")"; continue
  fi
  if [ -n "$twice" ]; then flush; say twice "$run" "$twice"; continue; fi
  if [ -n "$unread" ]; then
    flush; say unreadable "$run" "$(printf '%s\n%s' "$unread" "$(ls -ld -- "$unread" 2>/dev/null)")"; continue
  fi
  if [ -z "$d" ]; then
    flush
    case $run in */*|.|..) ;; *) say deleted "$run" "$(printf '%s\n%s' "$where/$run" "$(deleted_facts "$run")")" ;; esac
    missing "$run"; continue
  fi
  [ -z "$renamed" ] || say renamed "$run" "$(printf '%s\n%s' "$renamed" "$d")"
  [ -z "$noted" ] || say note "$run" "$(printf '%s\n%s\n%s' "$d" "$noted" "$(index_path)")"
  [ -z "$insession" ] || say session "$run" "$(printf '%s\n%s' "$d" "$insession")"
  emit_run "$d"
done
flush
frame end 0 -
""".replace("@RECENT@", str(RECENT))
)


WHOLE_FILE = -1  # a limit that asks REMOTE_SCRIPT for the whole file


def remote_args(
    tmux_socket: str,
    runs: list[str],
    prefer_nsa: bool,
    remote_dir: str | None = None,
    limits: tuple[tuple[str, int], ...] = FILE_LIMITS,
) -> list[str]:
    args = [tmux_socket, "1" if prefer_nsa else "0", remote_dir or ""]
    for pattern, limit in limits:
        args += [pattern, str(limit)]
    return [*args, "--", *runs]


@dataclass(frozen=True)
class MissingRun:
    """A RUN argument the remote found on none of the paths it looked at."""

    run: str  # as given ('' = the newest run, '@all:DIR' = a listing)
    cwd: str  # the directory the remote was in (absolute)
    runs_root: str  # the runs root, or DIR for a listing (absolute)
    is_run_dir: bool = False  # a listing's DIR is a run directory itself (its subdirectories are no runs)
    twice: str = ""  # a name the host's launch index knows in several directories: the refusal that names them
    unreadable: str = ""  # a name found in a directory this user cannot list there: the refusal (cannot read ...)
    said: str = ""  # for a name whose directory is gone: what the host's launch index and tmux know of it


@dataclass
class RemoteAnswer:
    """What one remote call brought back, per RUN argument, in order."""

    bundles: list[RunBundle | MissingRun | bytes]  # a bundle, a RUN not found, or remote JSON (bytes)
    now: float | None
    tmux_sessions: list[str] | None
    no_dir: str | None = None  # the --remote-dir the remote could not enter (nothing else was read)
    complete: bool = False  # the script's last frame arrived: it ran to its end
    left_out: list[str] = field(default_factory=list)  # a listing's directories that hold no run, by name
    notes: list[str] = field(default_factory=list)  # where the host's launch index or tmux found a RUN, a line each
    # a listing's runs the host's launch index started there whose directory is gone, newest launch first, each with
    # whether a run of its name is there (nsa_tui.deleted_runs.deleted_launches)
    deleted: list[tuple[Launched, bool]] = field(default_factory=list)
    # a listing without DIR where the host has no runs root: that root and the launch index whose runs it lists
    from_index: tuple[str, str] | None = None


def parse_frames(data: bytes, host: str) -> RemoteAnswer:
    """Split the remote script's output into bundles (never raises on odd input)."""
    out: list[RunBundle | MissingRun | bytes] = []
    no_dir: str | None = None
    now: float | None = None
    sessions: list[str] | None = None
    pid_host: str | None = None
    live_pids: dict[int, float | None] | None = None
    stopped_pids: dict[int, Stop] = {}
    current: RunBundle | None = None
    pending_head: dict[str, bytes] = {}
    left_out: list[str] = []
    notes: list[str] = []
    deleted = ""
    gone: list[tuple[Launched, bool]] = []
    from_index: tuple[str, str] | None = None
    complete = False
    pos = data.find(FRAME)
    while pos >= 0:
        eol = data.find(b"\n", pos + len(FRAME))
        if eol < 0:
            break
        header = data[pos + len(FRAME) : eol].decode("utf-8", errors="replace")
        parts = header.split(" ", 2)
        if len(parts) < 3 or not parts[1].isdigit():
            pos = data.find(FRAME, eol)
            continue
        kind, length, rest = parts[0], int(parts[1]), parts[2]
        body = data[eol + 1 : eol + 1 + length]
        nxt = eol + 1 + length
        if kind == "now":
            try:
                now = float(rest)
            except ValueError:
                now = None
        elif kind == "procs":
            pid_host, live_pids, stopped_pids = rest, parse_pids(body), parse_stopped(body)
        elif kind == "tmux":
            sessions = [s for s in body.decode("utf-8", errors="replace").splitlines() if s]
        elif kind == "missing":
            cwd, _, root = body.decode("utf-8", errors="replace").partition("\n")
            root, _, flag = root.partition("\n")
            out.append(MissingRun(rest, cwd, root, is_run_dir=flag == "rundir", said=deleted))
            deleted = ""
        elif kind == "deleted":  # what the host knows of a run whose directory is gone, before its `missing` frame
            deleted = deleted_on_host(host, body.decode("utf-8", errors="replace"))
        elif kind == "renamed":  # a RUN path not there whose run was renamed since: the path, where it is now
            old, _, new = body.decode("utf-8", errors="replace").partition("\n")
            notes.append(renamed_note(old, new, host))
        elif kind == "renamedmany":  # ... that several directories began as: refused, as here
            old, _, found = body.decode("utf-8", errors="replace").partition("\n")
            out.append(MissingRun(rest, "", "", twice=renamed_twice_message(old, found.splitlines(), host)))
        elif kind == "note":  # a RUN found in the host's launch index: its directory, launch time, the index
            found = body.decode("utf-8", errors="replace").split("\n", 2)
            if len(found) == 3:
                notes.append(launched_note_line(host, rest, *found))
        elif kind == "twice":  # a RUN name the index knows in several directories: refused, as here
            out.append(MissingRun(rest, "", "", twice=launched_twice(host, rest, body.decode("utf-8", "replace"))))
        elif kind == "session":  # a RUN found by its live tmux session: its directory, the session
            found = body.decode("utf-8", errors="replace").split("\n", 1)
            if len(found) == 2:
                notes.append(session_note(rest, *found, host=host))
        elif kind == "unreadable":  # a RUN found by its name in a directory this user cannot list: refused, as here
            where, _, ls_line = body.decode("utf-8", errors="replace").partition("\n")
            out.append(MissingRun(rest, "", "", unreadable=unreadable_on_host(host, where, ls_line)))
        elif kind == "gone":  # a listing's runs deleted since their launch: "TS<tab>TAKEN<tab>RUN_DIR<tab>NAME" each
            gone += [g for line in body.decode("utf-8", errors="replace").splitlines() if (g := _gone(line))]
        elif kind == "indexed":  # no runs root: the runs the launch index knows follow (the root, the index)
            from_index = (rest, body.decode("utf-8", errors="replace"))
        elif kind == "leftout":
            left_out.append(body.decode("utf-8", errors="replace"))
        elif kind == "nodir":
            no_dir = rest
        elif kind == "json":
            out.append(body)
        elif kind == "run":
            current = RunBundle(run=rest.rstrip("/").rsplit("/", 1)[-1] or rest, path=rest, host=host)
            current.real_path = body.decode("utf-8", errors="replace") or None
            current.now = now or time.time()
            current.tmux_sessions = sessions
            current.pid_host, current.live_pids, current.stopped_pids = pid_host, live_pids, stopped_pids
            out.append(current)
        elif kind == "end":
            complete = True
        elif kind == "head":
            pending_head[rest] = body.rstrip(b"\n")
        elif kind == "file" and current is not None:
            fields = rest.split(" ", 2)
            if len(fields) == 3:
                size_s, mt_s, name = fields
                try:
                    size, mtime = int(size_s), float(mt_s) or None
                except ValueError:
                    size, mtime = len(body), None
                current.files[name] = FileWindow(name, body, max(size, len(body)), mtime, pending_head.pop(name, b""))
        pos = data.find(FRAME, nxt)
    return RemoteAnswer(out, now, sessions, no_dir, complete, left_out, notes, gone, from_index)


def _gone(line: str) -> tuple[Launched, bool] | None:
    """A `gone` frame's line: the launch, and whether a run of its name is there; None for a line cut short."""
    ts, taken, run_dir, name = [*line.split("\t", 3), "", "", ""][:4]
    try:
        return (Launched(name, run_dir, "", float(ts)), taken == "1") if name and run_dir else None
    except ValueError:
        return None
