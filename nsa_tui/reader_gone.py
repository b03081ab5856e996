"""A reader that stops reading a command's output (`nsa status | head -1`): the rest of the output goes nowhere
and the command exits with the code it had decided, quietly. A verdict does not change because nobody read it all;
Typer's own handling exits 1 (a warning, to `nsa status`), and Python's shutdown flush of a closed pipe prints
"Exception ignored ... BrokenPipeError" and exits 120.

A command that acts (`nsa launch`, `nsa halt`, `nsa dump`) must not stop half way with its reader: after
keep_going() its output to a closed pipe goes nowhere and it carries on to its own outcome; so does `nsa status`,
whose later runs' error lines still reach a stderr whose reader is there (`nsa status 2>err.log | head -1`)."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

# What a command cut short before it decided its exit code exits with: 128 + SIGPIPE, as a shell reports a writer
# its reader left; no nsa verdict or error uses it
CUT_SHORT_EXIT = 141

_decided: int | None = None


def decided(code: int) -> int:
    """Record ``code`` as this command's exit status whatever its output's reader does (call it before printing
    the result); returns it."""
    global _decided
    _decided = code
    return code


def decided_code() -> int | None:
    """The exit status recorded by decided(), None before."""
    return _decided


def _reader_gone(fd: int) -> bool:
    """Whether ``fd`` is a pipe whose reader has closed it (poll says POLLERR for such a write end)."""
    import select

    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError):
        return False


def _to_devnull(fd: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def silence() -> None:
    """Point stdout, and stderr where its reader has gone too (`2>&1 | head`), at /dev/null, so that no later write
    nor the shutdown flush meets the closed pipe (the Python docs' recipe for SIGPIPE)."""
    for fd in [fd for fd in (1, 2) if _reader_gone(fd)] or [1]:
        _to_devnull(fd)


def exit_reader_gone() -> NoReturn:
    """stdout's reader has gone: no more output, and the decided exit code (CUT_SHORT_EXIT when none was)."""
    silence()
    raise SystemExit(CUT_SHORT_EXIT if _decided is None else _decided)


class _GoesOn:
    """A text stream (stdout, stderr) whose closed pipe is pointed at /dev/null where it is met, and the write or
    flush goes on: the rest of its output goes nowhere, and the other stream is left as it is."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    def _gone(self) -> None:
        _to_devnull(self._stream.fileno())
        try:
            self._stream.flush()  # what its buffer held, to /dev/null now
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def keep_going() -> None:
    """From now on a reader that has gone ends nothing: output to its closed pipe goes nowhere, and the command
    carries on to its own outcome and exit code (a launch, halt or dump is never left half done)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _GoesOn):
            setattr(sys, name, _GoesOn(stream))


def flush_output() -> None:
    """At the end of a command: what print() left in stdout's buffer written now, and a closed pipe met here,
    where it is handled, rather than at interpreter shutdown."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            silence()
        except ValueError:  # a stream already closed: nothing left to write
            pass


def console(**kwargs: Any) -> Any:
    """A rich Console (``kwargs`` as its own) whose broken pipe ends as any other output's (exit_reader_gone):
    rich's own ends it with exit 1, a warning to `nsa status`. Rich is imported here, not when the CLI starts."""
    from rich.console import Console

    class ReaderGoneConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True  # nothing more to write, should anything try
            exit_reader_gone()

    return ReaderGoneConsole(**kwargs)


class ReaderGoneHelp:
    """A click command (mixed in before it) whose help, into a pipe whose reader has gone (`nsa --help | head -1`),
    ends as any other output does: quietly, with the code decided, 0 for help asked for (a usage mistake that shows
    help, `nsa` alone, decides its own first). Typer prints help outside the command, where rich's console ended the
    closed pipe with exit 1 and click's echo with Typer's exit 1."""

    def get_help(self, ctx: Any) -> str:
        if decided_code() is None:
            decided(0)
        try:
            return super().get_help(ctx)  # type: ignore[misc]
        except SystemExit:  # rich's console met the closed pipe (Console.on_broken_pipe): stdout is /dev/null now
            exit_reader_gone()
