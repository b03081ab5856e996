"""The `?` screen: every key and what it does."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

TITLE = "[b]nsa watch[/b] — keys (also in the command palette, ctrl+p)"
# (keys, what they do): each text is wrapped under its own column (one text with its wraps laid out by hand broke
# where the box was narrower than the line: `with`, `the pane` stranded at the left margin)
KEYS: tuple[tuple[str, str], ...] = (
    ("q, ctrl+c", "quit"),
    ("h", "halt the run (asks first; same as `nsa halt`)"),
    ("d", "stack dump of every rank (same as `nsa dump`)"),
    ("s", "smoothing: off / 10 / 50 / 200-point moving average of the loss (its chart's title says which: ma10)"),
    ("l", "log-scale y axes"),
    ("x", "x axis: step / time / tokens"),
    ("c", "compare: overlay the loss curves of all open runs"),
    ("tab, →, ←", "next / previous run (or click a run's name)"),
    ("r", "re-read every file from scratch"),
    (
        "e",
        "every event of the run (evals, checkpoints, phases with their warnings, errors), wrapped; also a click on "
        "the pane",
    ),
    ("?", "this help (escape closes)"),
    ("ctrl+p", "command palette: every action by name"),
)


def help_body() -> Group:
    """The title, then a key column and a description column that wraps within itself."""
    table = Table.grid(padding=(0, 3, 0, 0))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(ratio=1, overflow="fold")
    for keys, what in KEYS:
        table.add_row(keys, what)
    return Group(Text.from_markup(TITLE), Text(""), table)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar = [("escape,q,question_mark", "app.pop_screen", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 76; max-width: 100%; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(help_body())
