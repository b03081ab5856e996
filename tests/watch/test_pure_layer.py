"""Only the dashboard's screens and widgets may import Textual: everything else in nsa_tui (the data, the health
engine, the formatting and layout the widgets draw) is the pure layer, unit-tested without an app and loaded by
`nsa status` and `nsa runs`, which must start fast. No part of nsa_tui imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEXTUAL_LAYER = ("nsa_tui.watch.app", "nsa_tui.watch.widgets", "nsa_tui.watch.screens")
# importing these runs something: the CLI's entry point
NOT_IMPORTED = ("nsa_tui.__main__",)


def pure_modules() -> list[str]:
    names = []
    for path in sorted((REPO / "nsa_tui").rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        in_textual_layer = any(name == m or name.startswith(m + ".") for m in TEXTUAL_LAYER)
        if not in_textual_layer and name not in NOT_IMPORTED:
            names.append(name)
    return names


def test_the_pure_layer_imports_neither_textual_nor_torch():
    modules = pure_modules()
    assert "nsa_tui.watch.layout" in modules and "nsa_tui.watch.events" in modules
    # one process, the modules in turn: the first that brings a forbidden package in is named
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    bad = [m for m in ('textual', 'torch') if m in sys.modules]\n"
        "    if bad:\n"
        "        sys.exit(f'{name} imports {bad}')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
