"""The `?` screen: every key and what it does."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """[b]nsa watch[/b] — keys (also in the command palette, ctrl+p)

  q, ctrl+c   quit
  h           halt the run (asks first; same as `nsa halt`)
  d           stack dump of every rank (same as `nsa dump`)
  s           smoothing: off / 10 / 50 / 200-point moving average
              of the loss (its chart's title says which: ma10)
  l           log-scale y axes
  x           x axis: step / time / tokens
  c           compare: overlay the loss curves of all open runs
  tab, →, ←   next / previous run (or click a run's name)
  r           re-read every file from scratch
  e           every event of the run (evals, checkpoints, phases with
              their warnings, errors), wrapped; also a click on the pane
  ?           this help (escape closes)
  ctrl+p      command palette: every action by name
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar = [("escape,q,question_mark", "app.pop_screen", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 72; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(HELP)
