"""A host nsa's usage error (click's, boxed by rich under typer or plain) read back as its one message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nsa_tui.remote.usage import usage_error

PLAIN_CLICK = """
import click

@click.command()
@click.option("--name")
def launch(name):
    pass

launch(prog_name="nsa launch")
"""
TYPER = """
import typer

app = typer.Typer()

@app.command()
def launch(name: str = typer.Option(None, "--name")) -> None:
    pass

@app.command()
def status() -> None:
    pass

app(prog_name="nsa")
"""


@pytest.mark.parametrize("program", [PLAIN_CLICK, TYPER], ids=["click", "typer"])
def test_the_message_of_a_real_usage_error(program):
    args = ["launch"] if program is TYPER else []
    res = subprocess.run(
        [sys.executable, "-c", program, *args, "--reshard"], capture_output=True, text=True, env={"COLUMNS": "50"}
    )
    assert res.returncode == 2, res.stderr
    said = usage_error(res.stderr)  # click's wording differs by version: `No such option '--reshard'.`
    assert said is not None and said.startswith("No such option") and "--reshard" in said, res.stderr
    assert "\n" not in said and "Usage" not in said and "│" not in said


def test_our_own_error_lines_are_no_usage_error():
    assert (
        usage_error("error: --remote-dir is empty: give the directory on the host, or leave the option out\n") is None
    )
