"""Human-readable sizes, shared by the trainer's messages and the tools' (standard library only)."""

from __future__ import annotations


def human_bytes(n: float, decimals: int = 1) -> str:
    """1536 -> '1.5 KiB', 3 * 2**30 -> '3.0 GiB' (binary units, as the telemetry's *_gb fields); ``decimals`` after
    the point from KiB on (whole bytes)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.{decimals}f} {unit}"
        n /= 1024
    return f"{n:.{decimals}f} GiB"  # unreachable: the loop returns at GiB
