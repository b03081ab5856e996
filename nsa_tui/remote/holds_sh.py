"""`holds_run DIR` in POSIX sh: the contract's one definition of a directory that holds a run
(nsa_train.telemetry.holds, docs/telemetry.md "Holds a run") for the scripts that list and find runs over ssh.

Its file names, globs and byte count are holds.py's own constants, substituted here, so the two cannot drift
apart on a name; tests/remote/test_holds_sh.py runs both on one table of directory states.
"""

from __future__ import annotations

from nsa_train.telemetry import schema
from nsa_train.telemetry.holds import LAUNCHER_FILES, LOGS, ROWS_READ_BYTES
from nsa_train.telemetry.pointers import POINTERS

# files whose being there is enough: run.json, an earlier launch's files, a checkpoint pointer (is_file: followed)
_PLAIN_FILES = (schema.RUN_JSON, *LAUNCHER_FILES, *(f"{schema.CHECKPOINT_DIR}/{p}" for p in POINTERS))

# holds_run DIR: returns 0 when DIR holds a run (holds.holds_run), 1 when not. The checks that start no process
# come first (a real run answers there); a log's rows are read last. Its variables start with hr_: the callers'
# $d, $e, $f are left alone.
# - a glob's entry counts whatever it is (a directory, a dangling link), as Path.glob lists it; a pattern that
#   matched nothing stays as written, and counts only when a file of that very name is there, as with Path.glob;
# - a log has a row when its first ROWS_READ_BYTES bytes split into more than one line (bytes.splitlines: \n, \r
#   and \r\n end a line): a \r left in the first \n-line once a trailing one is dropped ends a line with more after
#   it, else any byte after the first \n is a row (an empty line too, as splitlines counts it).
HOLDS_RUN_SH = (
    r"""
hr_cr=$(printf '\r')
holds_run() {
  for hr_f in @PLAIN_FILES@; do [ -f "$1/$hr_f" ] && return 0; done
  for hr_f in "$1"/@HEARTBEAT_GLOB@ "$1/@CHECKPOINT_DIR@"/@CHECKPOINT_GLOB@; do
    if [ -e "$hr_f" ] || [ -L "$hr_f" ]; then return 0; fi
  done
  for hr_f in @LOGS@; do
    [ -f "$1/$hr_f" ] || continue
    case $(head -c @ROWS_READ_BYTES@ -- "$1/$hr_f" 2>/dev/null | LC_ALL=C sed -n "1{
s/$hr_cr\$//
/$hr_cr/{
s/^/x/p
q
}
d
}
s/^/x/p
q") in x*) return 0 ;; esac
  done
  return 1
}
""".replace("@PLAIN_FILES@", " ".join(_PLAIN_FILES))
    .replace("@HEARTBEAT_GLOB@", schema.HEARTBEAT_GLOB)
    .replace("@CHECKPOINT_DIR@", schema.CHECKPOINT_DIR)
    .replace("@CHECKPOINT_GLOB@", schema.CHECKPOINT_GLOB)
    .replace("@LOGS@", " ".join(LOGS))
    .replace("@ROWS_READ_BYTES@", str(ROWS_READ_BYTES))
)
