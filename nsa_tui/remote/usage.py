"""A host's nsa refusing its command line (click's usage error) as said here: `error: on HOST: ...`.

The usual cause is an nsa there older than this one (an option added since, such as `--reshard`): its raw
`Usage: ... No such option` box read as if the nsa here lacked the option.
"""

from __future__ import annotations

BOX_SIDE = "│"  # rich's panel around click's message (typer with rich); plain click writes `Error: ...`
OLDER_HINT = (
    "the nsa there may be older than this one: update it there (`git pull` and `pip install -e .` in its checkout, "
    "or --remote-dir a newer checkout)"
)


def usage_error(stderr: str) -> str | None:
    """Click's message in a host nsa's stderr (`No such option: --reshard`); None when it is no usage error (our own
    `error: ...` lines say it themselves)."""
    lines = stderr.splitlines()
    if not any(ln.startswith("Usage: ") for ln in lines):
        return None
    boxed = [
        ln.strip()[1:-1].strip() for ln in lines if ln.strip().startswith(BOX_SIDE) and ln.strip().endswith(BOX_SIDE)
    ]
    said = " ".join(x for x in boxed if x)
    if not said:
        said = next((ln[len("Error: ") :].strip() for ln in lines if ln.startswith("Error: ")), "")
    return said or None


def usage_error_line(said: str, host: str) -> str:
    """The one line for a host nsa's usage error."""
    return f"error: on {host}: {said}; {OLDER_HINT}\n"
