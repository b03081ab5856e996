"""The host's side of a `--host` command: it ends when the caller's connection does.

ssh -T gives the command on the host no terminal, so nothing signals it when the caller goes (ctrl-c, a killed
`nsa`, a dropped link): `nsa halt --host` interrupted here left the host's `nsa halt` waiting its whole --wait for
nobody. The caller keeps ssh's stdin open for as long as it waits and sets END_WITH_STDIN_ENV; the host's nsa takes
that stdin for itself (its own stdin and its children's become /dev/null, as before) and, when it closes, interrupts
itself as ctrl-c would there. A host's nsa from before this ignores the variable and runs to its end, as it did.
"""

from __future__ import annotations

import os
import signal
import threading

END_WITH_STDIN_ENV = "NSA_END_WITH_STDIN"


def end_with_stdin() -> None:
    """When END_WITH_STDIN_ENV is set (by the caller's `nsa`), watch stdin and interrupt this process at its end."""
    if os.environ.pop(END_WITH_STDIN_ENV, None) != "1":  # popped: a tmux server or trainer started here must not see it
        return
    try:
        link = os.dup(0)  # not inheritable: only this process holds the caller's end open
        null = os.open(os.devnull, os.O_RDONLY)
    except OSError:  # no stdin at all: nothing to watch
        return
    os.dup2(null, 0)
    os.close(null)
    threading.Thread(target=_watch, args=(link,), name="nsa-caller-link", daemon=True).start()


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 4096):  # the caller writes nothing: any bytes are ignored, b"" is the end
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGINT)  # KeyboardInterrupt in the main thread, as ctrl-c on the host
