"""Short human formats for numbers, durations, ages, exit statuses and a pending halt: one place for the dashboard,
`nsa status`, `nsa runs` and `nsa report`, so that a duration reads the same in each."""

from __future__ import annotations

import math


def num(x: float | None, digits: int = 3, keep_zeros: bool = False) -> str:
    """Compact number: 0.000123 -> 1.23e-4, 1234567 -> 1.23M, 4.5678 -> 4.57.
    ``keep_zeros``: 1.998 -> 2.00 rather than 2 (a loss reads as a measurement, not a count)."""
    if x is None:
        return "—"
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    # the unit goes by the value as shown: 999.6 rounds to 1000 at 3 digits, so it is 1k (not "1e+03"), and 999,600
    # is 1M (not "1e+03k")
    r = float(f"{x:.{digits}g}")
    a = abs(r)
    if a == 0:
        return "0"
    form = f"#.{digits}g" if keep_zeros else f".{digits}g"
    if a >= 1e3:
        for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if a >= div:
                v = x / div
                shown = format(v, form)
                if abs(float(shown)) >= 10**digits:  # more whole units than digits (the largest unit): all of them
                    shown = f"{v:.0f}"
                return shown.rstrip(".") + suf
    if a < 1e-2:
        m, e = f"{x:.{digits - 1}e}".split("e")
        return f"{m}e{int(e)}"
    if a >= 10**digits:  # more whole digits than asked, below the first unit: all of them (123, not 1.2e+02)
        return f"{x:.0f}"
    return format(x, form).rstrip(".")  # keep_zeros: 999.4 is "999", not "999."


def duration(seconds: float | None, *, seconds_below: int = 60, hours_below: int = 86400, missing: str = "—") -> str:
    """3725 -> '1h02m', 59.9 -> '59s', 90061 -> '1d01h': whole seconds down (an age of 599.9 s is not yet the
    10m00s a rule fires at; round a total first where that reads better). Plain seconds below
    ``seconds_below`` (`nsa status` keeps them to 120 s), hours and minutes below ``hours_below`` (it keeps them to
    two days), days and hours from there."""
    if seconds is None or not math.isfinite(seconds):
        return missing
    s = int(max(0.0, seconds))
    if s < seconds_below:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < hours_below:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def clip(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, an ellipsis marking a cut."""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…" if width > 0 else ""


def clip_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut in its middle: runs' names differ at their end (the default
    `tiny-cpu-20261207-160850` by its time), so a tab cut at its end read the same for every run."""
    if len(text) <= width or width < 4:
        return clip(text, width)
    head = (width - 1) // 3
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def clip_words(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut after a whole word with an ellipsis: a cut mid-word
    ("... .jsonl files a") read as the message itself."""
    if len(text) <= width:
        return text
    head = text[: max(0, width - 1)]
    word_end = head.rfind(" ")
    if word_end > width // 2:  # one very long word (a path) is cut inside it rather than dropped whole
        head = head[:word_end]
    return head.rstrip(" ,;:") + "…"


def exit_status_said(code: int) -> str:
    """An exit status with what it means when it is a signal's: ``138 (killed by signal SIGUSR1)``. 128+N is how
    the launcher (as a shell) records a process that signal N ended, a negative one how Python's wait says it; the
    trainer stops on SIGTERM, SIGINT and SIGHUP with a checkpoint (exit 128+N too), so those read "stopped"."""
    import signal

    number = code - 128 if code > 128 else -code if code < 0 else None
    if number is None:
        return str(code)
    try:
        sig = signal.Signals(number)
    except ValueError:
        return str(code)
    how = "stopped" if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) else "killed"
    return f"{code} ({how} by signal {sig.name})"


def halt_requested(ts: float | None, now: float | None = None) -> str:
    """A pending halt as every tool says it: 'halt requested 14:02', with its age when ``now`` is given
    ('halt requested 14:02, 4m10s ago'); the time is the .HALT file's (local clock), when known."""
    import time

    if ts is None:
        return "halt requested"
    said = f"halt requested {time.strftime('%H:%M', time.localtime(ts))}"
    return said if now is None else f"{said}, {duration(now - ts, seconds_below=120)} ago"
