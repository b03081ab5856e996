"""A command line's options as click will read them, read without click: for the checks made where click's own parse
is not at hand, before it (an option given twice) or after it failed (a usage error under --json). The word after an
option that takes a value is that value, never an option itself: `--host --json` gives --host the value `--json`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple


class Given(NamedTuple):
    option: Any  # the click Option (Typer's own vendored click's)
    name: str  # its longest name, as said in a message (--config, not -c)
    value: str | None  # None for a flag


def given_options(cmd: Any, args: Sequence[str]) -> list[Given]:
    """Each option ``args`` give ``cmd``, in order, before a ``--`` (after it every word is an argument); words that
    name no option of ``cmd`` are left to click."""
    # Typer's own (vendored) click classes: an option is told by its param_type_name
    options = [p for p in cmd.params if p.param_type_name == "option"]
    by_name = {o: p for p in options for o in (*p.opts, *p.secondary_opts)}
    given: list[Given] = []
    i = 0
    while i < len(args) and args[i] != "--":
        name, eq, value = args[i].partition("=")
        p = by_name.get(name)
        if p is not None and p.is_flag:
            given.append(Given(p, max(p.opts, key=len), None))
        elif p is not None:
            if not eq:  # its value is the next word, whatever it looks like (click takes it so)
                value, i = (args[i + 1] if i + 1 < len(args) else ""), i + 1
            given.append(Given(p, max(p.opts, key=len), value))
        i += 1
    return given
