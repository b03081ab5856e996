"""Human-readable sizes and counts, shared by the trainer's messages and the tools' (standard library only)."""

from __future__ import annotations


def human_bytes(n: float, decimals: int = 1) -> str:
    """1536 -> '1.5 KiB', 3 * 2**30 -> '3.0 GiB' (binary units, as the telemetry's *_gb fields); ``decimals`` after
    the point from KiB on (whole bytes)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.{decimals}f} {unit}"
        n /= 1024
    return f"{n:.{decimals}f} GiB"  # unreachable: the loop returns at GiB


def human_count(n: float) -> str:
    """A parameter count at three significant digits in the unit that shows it: 1.20M, 74.9K, 512 (a small model's
    read 0.07M, and one under 5,000 parameters 0.00M)."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size * 0.9995:  # what rounds to 1000 of the unit below is 1.00 of this one
            value = n / size
            decimals = 2 if abs(value) < 9.995 else 1 if abs(value) < 99.95 else 0
            return f"{value:.{decimals}f}{unit}"
    return f"{n:.0f}"
