"""The trainer's console (stdout/stderr) made unable to stop training.

Under `nsa launch` the console is a pipe to the launch wrapper, which copies it to console.log. When that reader
dies (the wrapper killed, the tmux pane closed) the next print raises BrokenPipeError inside the training loop, and
printing that error fails the same way: the run ended with reason `error` and no error record, its work since the
last checkpoint lost, over a log line. The telemetry files are the run's record; the console is a copy for people.
So a console whose reader is gone is dropped and training goes on (a SIGHUP that comes with a closed pane still
stops it cleanly, with a checkpoint: nsa_train.runtime.control).
"""

from __future__ import annotations

import errno
from typing import Any, TextIO

_GONE = (errno.EPIPE, errno.EIO, errno.ENXIO, errno.EBADF)  # the reader or the terminal is gone


class ResilientConsole:
    """Wraps a text stream: writes go through until one fails because its reader is gone; from then on nothing
    is written and nothing raised (``lost``)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.lost = False

    def _gone(self, e: OSError) -> bool:
        if isinstance(e, BrokenPipeError) or e.errno in _GONE:
            self.lost = True
            return True
        return False

    def write(self, text: str) -> int:
        if self.lost:
            return len(text)
        try:
            return self._stream.write(text)
        except OSError as e:
            if self._gone(e):
                return len(text)
            raise

    def flush(self) -> None:
        if self.lost:
            return
        try:
            self._stream.flush()
        except OSError as e:
            if not self._gone(e):
                raise

    def __getattr__(self, attr: str) -> Any:  # fileno, isatty, encoding, reconfigure...: the stream's own
        return getattr(self._stream, attr)
