"""Every command an error suggests is in backticks: errors.on_host finds them so, and gives them the `--host` and
`--remote-dir` of the command whose host said the error. One written bare (`nsa halt 'r2'` in the name-in-use error
of `nsa launch`) went unchanged: typed as suggested, it looked for the run here, not on the host."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from nsa_tui.cli import app
from nsa_tui.errors import on_host

PACKAGE = Path(__file__).resolve().parents[2] / "nsa_tui"
VERBS = sorted(c.name or "" for c in app.registered_commands)
# `nsa VERB` as a command: what follows is an argument or option (a placeholder, a quote, `-`, a path) or nothing;
# a word after it is prose ("nsa attach needs a terminal")
COMMAND = re.compile(rf"\bnsa ({'|'.join(VERBS)})(?! [a-z])\b")
MESSAGE_CALLS = ("UserError", "fail")


def _text(node: ast.AST) -> str | None:
    """A string expression's text, each formatted value as `{}`; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        if left is not None or right is not None:
            return (left or "{}") + (right or "{}")
    return None


def _message_texts(tree: ast.AST) -> list[tuple[int, str]]:
    """The whole string expressions in the arguments of every UserError(...) and fail(...) call."""
    out = []
    for call in ast.walk(tree):
        func = getattr(call, "func", None)
        if not isinstance(call, ast.Call) or getattr(func, "id", getattr(func, "attr", None)) not in MESSAGE_CALLS:
            continue
        parts: set[int] = set()  # a piece of a longer string: its whole is checked instead
        for node in ast.walk(call):
            if isinstance(node, ast.JoinedStr):
                parts.update(id(v) for v in node.values)
            elif isinstance(node, ast.BinOp):
                parts.update((id(node.left), id(node.right)))
        for node in ast.walk(call):
            if id(node) not in parts and (text := _text(node)) is not None:
                out.append((node.lineno, text))
    return out


def bare_commands(source: str) -> list[str]:
    found = []
    for line, text in _message_texts(ast.parse(source)):
        for m in COMMAND.finditer(text):
            if text[: m.start()].count("`") % 2 == 0:  # an even number of backticks before it: outside them
                found.append(f"line {line}: ...{text[max(0, m.start() - 30) : m.end() + 30]}...")
    return found


def test_the_scan_finds_a_bare_command_and_passes_a_quoted_one():
    assert bare_commands('raise UserError(f"in use (stop it: nsa halt {name!r})")')
    assert bare_commands('raise UserError("see " + f"nsa status {run}")')
    assert not bare_commands('raise UserError(f"in use (stop it: `nsa halt {name}`)")')
    assert not bare_commands('raise UserError("nsa attach needs a terminal")')
    assert not bare_commands('print(f"nsa halt {name}")')  # not an error: on_host never sees it


def test_every_command_an_error_suggests_is_in_backticks():
    found = {
        str(path.relative_to(PACKAGE.parent)): bare
        for path in sorted(PACKAGE.rglob("*.py"))
        if (bare := bare_commands(path.read_text(encoding="utf-8")))
    }
    assert not found, f"commands outside backticks, which errors.on_host cannot point at the host: {found}"


def test_on_host_rewrites_a_backticked_command():
    said = on_host("stop it: `nsa halt r2`", "gpu", "my dir")
    assert said == "on gpu: stop it: `nsa halt r2 --host gpu --remote-dir 'my dir'`"


def test_on_host_puts_the_host_before_a_double_dash():
    """After `--` the options are RUNs: `nsa status -- -x --host gpu` looked for runs `-x`, `--host` and `gpu` here."""
    assert on_host("see `nsa status -- -x`", "gpu", None) == "on gpu: see `nsa status --host gpu -- -x`"
    said = on_host("see `nsa attach -- -x`", "gpu", "my dir")
    assert said == "on gpu: see `nsa attach --host gpu --remote-dir 'my dir' -- -x`"
    # a quoted ' -- ' is part of an argument, not the end of the options
    said = on_host("see `nsa halt 'a -- b' -- -x`", "gpu", None)
    assert said == "on gpu: see `nsa halt 'a -- b' --host gpu -- -x`"
    assert on_host("see `nsa status 'a -- b'`", "gpu", None) == "on gpu: see `nsa status 'a -- b' --host gpu`"
