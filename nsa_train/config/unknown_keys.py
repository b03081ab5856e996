"""Every key a config gives that no section knows, said at once, each with the key it most likely means.

A config migrated from the old trainer met its unknown keys one per run (`train.out_dir`, fix, run again,
`runtime.gradient_checkpointing`, ...), each with only the section's list of known keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any

# The old trainer's names (its configs in the field reports) and what stands for each here, by the key's own name
# in whatever section it is given: a config carried over finds its way in one run
LEGACY_KEYS: dict[str, str] = {
    "out_dir": "the old trainer's out_dir: the run directory is no config key here, give it as "
    "`nsa launch --run-dir DIR` or `--name NAME`, or the trainer's --run-dir",
    "gradient_checkpointing": "the old trainer's name: did you mean 'train.grad_checkpointing'?",
    "use_flash": "the old trainer's use_flash: the attention kernels are nsa.impl, whose default auto picks the "
    "fastest on the device",
}
CUTOFF = 0.6  # difflib's default: 'stpes' finds 'steps', 'lr_warmup' finds nothing rather than a wrong key


@dataclasses.dataclass(frozen=True)
class UnknownKey:
    key: str  # dotted, as the user wrote it
    hint: str | None  # what it likely means; None when nothing is close
    known: tuple[str, ...]  # the keys of its section


def _hint(name: str, known: list[str], prefix: str) -> str | None:
    if name in LEGACY_KEYS:
        return LEGACY_KEYS[name]
    close = difflib.get_close_matches(name, known, n=1, cutoff=CUTOFF)
    return f"did you mean '{prefix}{close[0]}'?" if close else None


def find_unknown(cls: type, data: Any, prefix: str = "") -> list[UnknownKey]:
    """The keys of mapping ``data`` that dataclass ``cls`` has no field for, its sections' too, in the order given.
    A section that is not a mapping is left to the type check that follows."""
    if not isinstance(data, dict):
        return []
    hints = typing.get_type_hints(cls)
    known = sorted(f.name for f in dataclasses.fields(cls))
    dotted = f"{prefix}." if prefix else ""
    found: list[UnknownKey] = []
    for k, v in data.items():
        name = str(k)
        if name not in hints:
            found.append(UnknownKey(f"{dotted}{name}", _hint(name, known, dotted), tuple(known)))
        elif dataclasses.is_dataclass(hints[name]):
            found += find_unknown(hints[name], v, f"{dotted}{name}")
    return found


def unknown_keys_message(found: list[UnknownKey]) -> str:
    """One line for all of them: each key with its hint, then the known keys of each section concerned."""
    if len(found) == 1:  # the wording every reader of one unknown key has matched since the first version
        (u,) = found
        hint = f"{u.hint}{' ' if u.hint.endswith('?') else '; '}" if u.hint else ""
        return f"unknown key '{u.key}' ({hint}known: {', '.join(u.known)})"
    keys = ", ".join(f"'{u.key}'" + (f" ({u.hint})" if u.hint else "") for u in found)
    sections: dict[str, tuple[str, ...]] = {}
    for u in found:
        sections.setdefault(u.key.rpartition(".")[0] or "top level", u.known)
    known = "; ".join(f"known in {s}: {', '.join(names)}" for s, names in sections.items())
    return f"{len(found)} unknown keys: {keys}; {known}"
