"""torchrun's failure report in a console tail, left out of a crashed run's alert but for its root cause.

When the trainer fails, torchrun prints its own account after the trainer's error: its agent's log line, a
Python traceback ending in ChildFailedError and a framed "FAILED ... Root Cause" block, ~25 lines. Shown as
"the last lines of console.log" they push the trainer's own error out of view, so the alert leaves them out
(console.log itself keeps them). What they say that nothing else does is kept (torchrun_failures): which rank
failed first and how, such as a rank killed by SIGKILL (exitcode -9) that wrote no record of its end, while the
other ranks' errors only say they lost their peer.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from nsa_train.telemetry import schema

REPORT_ERROR = "torch.distributed.elastic.multiprocessing.errors.ChildFailedError"
TRACEBACK = "Traceback (most recent call last)"
RULE = "=" * 20  # the report's frame: a line of '=' before and after it
AGENT_LOG = "torch/distributed/elastic/"  # the agent's "failed (exitcode: N)" line just before the traceback


def without_torchrun_report(lines: list[str]) -> tuple[list[str], bool]:
    """lines without each torchrun failure report in them, and whether one was there. A report cut at the top
    (the tail starts inside it) is removed from the first line; one cut at the bottom to its last line."""
    out = list(lines)
    found = False
    while (i := next((k for k, line in enumerate(out) if REPORT_ERROR in line), None)) is not None:
        found = True
        start = next((k for k in range(i, -1, -1) if out[k].startswith(TRACEBACK)), 0)
        while start > 0 and AGENT_LOG in out[start - 1]:
            start -= 1
        rules = [k for k in range(i + 1, len(out)) if out[k].startswith(RULE)]
        end = rules[1] if len(rules) >= 2 else len(out) - 1
        del out[start : end + 1]
    return out, found


# the launch wrapper's restatement of a rank's error record (runner.trainer_errors), after torchrun's report
_RESTATED = re.compile(r"^\[nsa [^\]]*\] rank \d+ error (?:at|after) step [^:]*: (.+)$")


def last_lines_said_once(lines: list[str], n: int) -> list[str]:
    """The last ``n`` of ``lines``, less each wrapper restatement of an error that another of those lines (the
    trainer's own `error: ...`) already holds whole: the restatement is there for when torchrun's report hides that
    line, and ``lines`` are without it. Each line dropped lets an earlier one in."""
    out = list(lines)
    while True:
        window = out[-n:] if n > 0 else []
        said_twice = next(
            (
                i
                for i, line in enumerate(window)
                if (m := _RESTATED.match(line))
                and any(m.group(1) in other for k, other in enumerate(window) if k != i and not _RESTATED.match(other))
            ),
            None,
        )
        if said_twice is None:
            return window
        del out[len(out) - len(window) + said_twice]


def rank_console_error(lines: list[str], rank: int) -> str | None:
    """The last error ``rank`` printed among ``lines`` (its `error: ...` line), without the prefix; None if none.
    A rank that could not write its error record (a full disk) says its cause here only."""
    prefix = schema.console_error_prefix(rank)
    said = next((line for line in reversed(lines) if line.startswith(prefix)), None)
    return said[len(prefix) :].strip() or None if said is not None else None


_OTHER_RANK_END = re.compile(r"\[end\] rank (\d+): ")  # schema.console_end_prefix of a rank other than 0


def end_line_rank(line: str) -> int | None:
    """The rank whose `[end]` line (schema.console_end_prefix) ``line`` is; None for another line."""
    if not line.startswith(schema.console_end_prefix(0)):
        return None
    m = _OTHER_RANK_END.match(line)
    return int(m.group(1)) if m else 0


def rank_end_unwritten(lines: list[str], rank: int) -> str | None:
    """Why ``rank``'s end record could not be written, as its last `[end]` line among ``lines`` says
    (schema.CONSOLE_END_UNWRITTEN); None when its last `[end]` line says nothing of it, or there is none."""
    said = next((line for line in reversed(lines) if end_line_rank(line) == rank), None)
    if said is None:
        return None
    _, sep, why = said.partition(schema.CONSOLE_END_UNWRITTEN)
    return (why.strip() or None) if sep else None


_ENTRY = re.compile(r"^\[\d+\]:\s*$")
_RANK = re.compile(r"^\s*rank\s*:\s*(\d+)")
_EXITCODE = re.compile(r"^\s*exitcode\s*:\s*(-?\d+)")
_SIGNAL = re.compile(r"\((SIG[A-Z]+)\)")


@dataclass
class TorchrunFailure:
    """One worker failure of torchrun's report: its global rank, exit code (negative: the signal that killed
    it) and the signal's name; ``root_cause``: torchrun's "first observed failure"."""

    rank: int | None = None
    exitcode: int | None = None
    signal: str | None = None
    root_cause: bool = False

    def describe(self) -> str:
        """'rank 1, exitcode -9 (SIGKILL)'."""
        sig = f" ({self.signal})" if self.signal else ""
        return f"rank {'?' if self.rank is None else self.rank}, exitcode {self.exitcode}{sig}"


def torchrun_failures(lines: list[str]) -> list[TorchrunFailure]:
    """The failures torchrun's reports in ``lines`` list ("Failures:" and "Root Cause" entries), in order."""
    out: list[TorchrunFailure] = []
    section: bool | None = None  # None: outside a report's lists; else whether in its Root Cause list
    cur: TorchrunFailure | None = None
    for line in lines:
        if line.startswith("Failures:"):
            section, cur = False, None
        elif line.startswith("Root Cause"):
            section, cur = True, None
        elif line.startswith(RULE):
            section, cur = None, None
        elif section is not None and _ENTRY.match(line):
            cur = TorchrunFailure(root_cause=section)
            out.append(cur)
        elif cur is not None:
            if m := _RANK.match(line):
                cur.rank = int(m.group(1))
            elif m := _EXITCODE.match(line):
                cur.exitcode = int(m.group(1))
                if s := _SIGNAL.search(line):
                    cur.signal = s.group(1)
                elif cur.exitcode < 0:  # older torchrun names the signal on the traceback line only
                    try:
                        cur.signal = signal.Signals(-cur.exitcode).name
                    except ValueError:
                        pass
    return [f for f in out if f.rank is not None or f.exitcode is not None]
