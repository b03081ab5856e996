"""A background thread whose failure its owner raises is not printed as a raw traceback.

TensorBoard's writer thread keeps its exception (``thread.exception``) for its owner's next call to raise, and
re-raises it as well: Python's default hook printed `Exception in thread Thread-1:` and a traceback ahead of the
run's own error, two tracebacks for one failure that the owner (MetricsLog) says in one line. Any other thread's
failure is printed as before.
"""

from __future__ import annotations

import threading


def leave_kept_errors_to_owners() -> None:
    """Install the hook (once per process: the trainer's start)."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and getattr(args.thread, "exception", None) is args.exc_value:
            return  # kept for its owner, which raises it where the run can say it
        previous(args)

    threading.excepthook = hook
