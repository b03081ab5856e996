"""torchrun's failure report in a console tail, left out of a crashed run's alert.

When the trainer fails, torchrun prints its own account after the trainer's error: its agent's log line, a
Python traceback ending in ChildFailedError and a framed "FAILED ... Root Cause" block, ~25 lines that say
only that rank 0 exited. Shown as "the last lines of console.log" they push the trainer's own error out of
view, so the alert leaves them out (console.log itself keeps them).
"""

from __future__ import annotations

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
