"""What fits where on the dashboard: widths, row counts and the lines cut to them (pure: no Textual, so each is
unit-tested without an app; the widgets under watch/widgets/ only draw what these compute)."""

from __future__ import annotations

import textwrap

from rich.cells import cell_len


def progress_bar(frac: float, width: int) -> str:
    frac = min(1.0, max(0.0, frac))
    full = int(frac * width)
    eighths = int((frac * width - full) * 8)
    # no partial cell on a whole-cell boundary: a blank one would read as a gap in the bar
    part = "▏▎▍▌▋▊▉"[eighths - 1] if eighths and full < width else ""
    return ("█" * full + part).ljust(width, "░")[:width]


def fit_fields(fields: list[str], width: int) -> str:
    """The leading fields that fit in ``width`` whole: a value cut short reads as another value ("col 0" for
    "col 0.04"). A first field that alone is too wide is cut with an ellipsis, which says so."""
    out = ""
    for f in fields:
        if cell_len(out) + cell_len(f) > width:
            break
        out += f
    if not out and fields and width > 0:
        out = fields[0][: width - 1] + "…"
    return out


def name_cap(names: list[str], width: int, marks: list[str] | None = None, frame: int | None = None) -> int:
    """The longest a tab's name may be for every tab to fit in ``width`` (short names stay whole, the long ones
    share what is left): one long name must not push the other runs, or the active one, off the line. ``marks``:
    what follows each name (its health, verdict.run_mark), kept whole before any name is cut. ``frame``: the cells
    each name takes besides its mark and the gap after it (default: a tab's number and padding, " 3: ")."""
    frames = [len(f" {i + 1}: ") if frame is None else frame for i in range(len(names))]
    fixed = sum(f + 1 for f in frames) - 1  # the gaps between
    fixed += sum(len(m) + 1 for m in marks or [] if m)
    longest = max((len(n) for n in names), default=0)
    for cap in range(longest, 1, -1):
        if fixed + sum(min(len(n), cap) for n in names) <= width:
            return cap
    return 1 if longest else 0


def split_rows(height: int, n_events: int, n_logs: int) -> tuple[int, int]:
    """(event rows, log rows): the newest events keep at least half the pane when they have that many, the
    log tail fills the rest, and no row stays blank while either has lines left to show."""
    ev = min(n_events, height - min(n_logs, height // 2))
    return ev, min(n_logs, height - ev)


def more_lines(
    alerts: int, critical: int, warnings: int, status_cmd: str, width: int, rows: int = 1, pending: int = 0
) -> list[str]:
    """The health panel's last line(s) when some do not fit, "+3 more alerts (1 critical): nsa status RUN", or as much
    of it as ``width`` holds: the count, shorter and shorter, before the command; then, where ``rows`` allows, the
    command on a row of its own; else the count alone. Never a command cut short: a bare `nsa status` opens the
    newest run, not this one (it said "health OK" of a critical run). ``pending``: pending rules hidden."""
    what = []
    if alerts:
        what.append(f"{alerts} more alert{'s' * (alerts != 1)}" + (f" ({critical} critical)" if critical else ""))
    if pending:
        what.append(f"{pending}{'' if alerts else ' more'} pending")
    if warnings:
        more = "" if alerts or pending else " more"
        what.append(f"{warnings}{more} start warning{'s' * (warnings != 1)}")
    n = alerts + pending + warnings
    crit = f" ({critical} CRIT)" if critical else ""
    # the longest first; the bare count keeps no word of what is hidden, but the line is red when critical
    counts = ["+" + ", ".join(what), f"+{n} more{crit}", f"+{n}{crit}", f"+{n}"]
    counts = list(dict.fromkeys(counts))  # "+3" twice without a critical one
    if status_cmd:
        for count in counts:
            if cell_len(line := f"{count}: {status_cmd}") <= width:
                return [line]
    count = next((c for c in counts if cell_len(c) <= width), counts[-1][:width])
    if status_cmd and rows >= 2 and cell_len(status_cmd) <= width:
        return [count, status_cmd]
    return [count]


def fitted(text: str, width: int, lines: int) -> list[str]:
    """``text`` wrapped at words into at most ``lines`` rows of ``width``, the last cut with … when it goes on
    (the health panel lays its lines out itself: Textual would wrap them past its height, where they are lost)."""
    rows = textwrap.wrap(text, width) or [""]
    if len(rows) > lines:
        rows = rows[:lines]
        rows[-1] = rows[-1][: width - 1] + "…"
    return rows
