"""`nsa watch --help` (and every command's help): Rich markup must not swallow text in brackets."""

from __future__ import annotations

import typer
from fixtures.cli import invoke
from rich.text import Text

from nsa_tui.cli import app


def test_watch_help_shows_the_interval_default(monkeypatch):
    """`--interval`'s help ended in "[default: 1.0]", which Rich took for a markup tag: the default vanished."""
    monkeypatch.setenv("COLUMNS", "250")
    res = invoke("watch", "--help")
    assert res.exit_code == 0
    line = next(x for x in res.stdout.splitlines() if "--interval" in x)
    assert "Seconds between remote reads (--host only). [default: 1.0]" in line, line


def test_no_help_text_is_lost_to_rich_markup():
    """Every help string of every command reads the same once Rich has parsed it as markup (a bracket meant as
    text is escaped, `\\[`)."""
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        for text in texts:
            assert Text.from_markup(text).plain == text.replace("\\[", "["), (name, text)
