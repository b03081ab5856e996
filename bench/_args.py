"""argparse types for the bench scripts' numbers: a count, length or rate out of range is refused while parsing,
as one `error:` line and exit 2, before any work (not a traceback, nor a run that measures nothing)."""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type[int] | type[float], least: float, what: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not value >= least:  # `not >=` also refuses a float nan
        raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
    return value


def positive_int(text: str) -> int:
    return int(_number(text, int, 1, "at least 1"))


def nonnegative_int(text: str) -> int:
    return int(_number(text, int, 0, "0 or more"))


def positive_float(text: str) -> float:
    value = float(_number(text, float, 0, "above 0"))
    if value == 0 or math.isinf(value):  # an infinite rate, size or time limit measures nothing
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return value
