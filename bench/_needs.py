"""Bench scripts run in the project's venv; started by another interpreter they say so in one line."""

from __future__ import annotations

import importlib.util
import sys


def needs(*modules: str) -> None:
    """Exit with one clear line if a top-level module cannot be imported (instead of an ImportError traceback)."""
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise SystemExit(
                f"error: {name} cannot be imported by {sys.executable}; "
                f"run it with the project's venv: .venv/bin/python {sys.argv[0]} (README: Set up)"
            )
