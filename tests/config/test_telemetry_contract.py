"""The telemetry contract of this version, recorded: a change that v1 readers would misread cannot slip in unversioned.

The tools read a newer file as their own version (docs/telemetry.md), which is only safe when a version keeps every
name and value it shares with the previous one. `SCHEMA_VERSION` is bumped by hand, so this test holds the contract
constants of nsa_train/telemetry/schema.py as released (telemetry_contract.json) and names each difference:
- a removal, a rename or a changed value (a field dropped from a record, a renamed file, a new collapse threshold):
  bump SCHEMA_VERSION, say what changed in docs/telemetry.md, then record the new contract;
- an addition (a new field at the end of a record, a new constant): readers of this version pass over it; record it.
Record with `python tests/config/test_telemetry_contract.py --write`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from nsa_train.telemetry import schema

LOCK = Path(__file__).with_name("telemetry_contract.json")


def contract() -> dict[str, Any]:
    """Every public constant of the schema module, as JSON values (tuples as lists)."""
    found = {}
    for name, value in vars(schema).items():
        if name.isupper() and isinstance(value, str | int | float | tuple | dict):
            found[name] = json.loads(json.dumps(value))
    return dict(sorted(found.items()))


def differences(recorded: dict[str, Any], now: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(breaking, additive) differences between a recorded contract and today's."""
    breaking, additive = [], []
    for name, old in recorded.items():
        if name not in now:
            breaking.append(f"{name} removed")
        elif now[name] == old:
            continue
        elif isinstance(old, list) and isinstance(now[name], list) and now[name][: len(old)] == old:
            additive.append(f"{name} gained {now[name][len(old) :]}")
        elif (
            isinstance(old, dict) and isinstance(now[name], dict) and all(now[name].get(k) == v for k, v in old.items())
        ):
            additive.append(f"{name} gained {sorted(set(now[name]) - set(old))}")
        else:
            breaking.append(f"{name}: {old!r} -> {now[name]!r}")
    additive += [f"{name} added" for name in now if name not in recorded]
    return breaking, additive


def test_the_recorded_contract_is_of_this_version():
    recorded = json.loads(LOCK.read_text())
    assert recorded["SCHEMA_VERSION"] == schema.SCHEMA_VERSION, (
        f"SCHEMA_VERSION is {schema.SCHEMA_VERSION}, the recorded contract is of v{recorded['SCHEMA_VERSION']}: "
        "record this version's with `python tests/config/test_telemetry_contract.py --write`"
    )


def test_the_schema_keeps_every_name_and_value_of_its_version():
    recorded = json.loads(LOCK.read_text())
    if recorded["SCHEMA_VERSION"] != schema.SCHEMA_VERSION:
        return  # a bumped version may change anything: the test above asks for its record
    breaking, additive = differences(recorded, contract())
    assert not breaking, (
        f"telemetry v{schema.SCHEMA_VERSION} changed in a way its readers would misread: {breaking}. "
        "Bump SCHEMA_VERSION and FORMAT_NAME, say what changed in docs/telemetry.md, then record it (--write)"
    )
    assert not additive, f"telemetry additions not recorded: {additive}; record them (--write)"


def test_differences_tell_an_addition_from_a_breaking_change():
    old = {"A": ["x", "y"], "B": "run.json", "C": {"p": ["q"]}, "D": 0.1}
    assert differences(old, {**old, "A": ["x", "y", "z"], "E": 1}) == ([], ["A gained ['z']", "E added"])
    assert differences(old, {**old, "C": {"p": ["q"], "r": []}}) == ([], ["C gained ['r']"])
    breaking, _ = differences(old, {"A": ["y", "x"], "B": "run.jsonl", "C": {"p": []}})
    assert breaking == [
        "A: ['x', 'y'] -> ['y', 'x']",
        "B: 'run.json' -> 'run.jsonl'",
        "C: {'p': ['q']} -> {'p': []}",
        "D removed",
    ]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/config/test_telemetry_contract.py --write  (records today's contract)")
    LOCK.write_text(json.dumps(contract(), indent=1) + "\n")
    print(f"recorded telemetry v{schema.SCHEMA_VERSION}'s contract in {LOCK}")
