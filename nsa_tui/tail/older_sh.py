"""`older_events END` in POSIX sh: the events of a heartbeat's part before the window `nsa watch` reads first.

A heartbeat is read from HEARTBEAT_WINDOW bytes before its end (source.py): its progress records are mirrored in
training.csv, and the health rules look at recent windows. Its evals, checkpoints, phases, warnings and errors
before that window are few lines among millions of progress and liveness records, found without parsing JSON by
one grep over the bytes (a byte-level check of the record's kind: the trainer writes `"kind":"progress"`, the
previous trainer `"msg": "progress"`). The same function runs locally (source's thread, on the opened file) and
in `nsa watch --host`'s script on the host, so both sides find the same lines and only those cross the link.
"""

from __future__ import annotations

import subprocess
from typing import BinaryIO

from nsa_train.telemetry import schema

# at most this much of the newest lines the check keeps (~4000 events): a heartbeat of another writer, whose lines
# the check cannot tell from events, must not come over whole
OLDER_BYTES = 1 << 20
# the kinds skipped before any JSON is parsed: the records written every step or every few seconds
_FREQUENT = (schema.KIND_PROGRESS, schema.KIND_LIVENESS, "step_end")  # step_end: the previous trainer's liveness
_SKIP_ERE = '"(kind|msg)" ?: ?"(' + "|".join(_FREQUENT) + ')"'

# older_events END: stdin's first END bytes, less the lines of a frequent record, the newest OLDER_BYTES of them
# (the first line may come cut: the reader drops what it cannot parse). grep -a where grep has it (GNU, busybox,
# BSD): a NUL left in a crashed run's file makes a grep without it print "Binary file matches" instead of the lines.
OLDER_EVENTS_SH = r"""
oe_a=; printf 'x\n' | grep -a x >/dev/null 2>&1 && oe_a=-a
older_events() {
  head -c "$1" | LC_ALL=C grep $oe_a -v -E '@SKIP@' | tail -c @OLDER_BYTES@
}
""".replace("@SKIP@", _SKIP_ERE).replace("@OLDER_BYTES@", str(OLDER_BYTES))


def window_end(f: BinaryIO, start: int, limit: int = 1 << 20) -> int:
    """Where the lines a window starting at ``start`` drops end: past the first newline at or after ``start``
    (nsa_tui.tail.lines.LineSplitter.start_mid_line drops that line, cut or not). The script finds the same with
    `tail -c +START | head -n 1 | wc -c`."""
    f.seek(start)
    got = 0
    while got < limit:
        chunk = f.read(64 << 10)
        if not chunk:
            break
        nl = chunk.find(b"\n")
        if nl >= 0:
            return start + got + nl + 1
        got += len(chunk)
    return start + got


def scan_older(f: BinaryIO, end: int, timeout_s: float = 120.0) -> bytes:
    """older_events on the first ``end`` bytes of the open file ``f`` (a process of its own: no GIL held while
    hundreds of MiB are looked at); b"" where sh or grep cannot run."""
    f.seek(0)
    try:
        done = subprocess.run(
            ["sh", "-c", OLDER_EVENTS_SH + 'older_events "$1"', "sh", str(end)],
            stdin=f,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return b""
    return done.stdout
