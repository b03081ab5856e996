"""The health panel's lines cut to its width and rows (nsa_tui/watch/layout.py): no app needed."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from nsa_tui.watch.layout import fitted, more_lines


def test_the_more_line_keeps_the_counts_before_the_command():
    assert more_lines(3, 1, 0, "nsa status runs/r", 80) == ["+3 more alerts (1 critical): nsa status runs/r"]
    assert more_lines(1, 0, 2, "nsa status runs/r", 80) == ["+1 more alert, 2 start warnings: nsa status runs/r"]
    assert more_lines(0, 0, 1, "", 80) == ["+1 more start warning"]  # no command known: none said
    # narrower: the short count, then the bare count, then the command on a row of its own, then the count alone
    assert more_lines(3, 1, 0, "nsa status runs/r", 35) == ["+3 more (1 CRIT): nsa status runs/r"]
    assert more_lines(3, 1, 0, "nsa status runs/r", 30) == ["+3 (1 CRIT): nsa status runs/r"]
    assert more_lines(3, 0, 0, "nsa status runs/r", 22) == ["+3: nsa status runs/r"]
    assert more_lines(3, 1, 0, "nsa status runs/r", 18, rows=2) == ["+3 more (1 CRIT)", "nsa status runs/r"]
    assert more_lines(3, 1, 0, "nsa status runs/r", 18) == ["+3 more (1 CRIT)"]
    assert more_lines(3, 1, 0, "nsa status runs/r", 12) == ["+3 (1 CRIT)"]
    assert more_lines(3, 1, 0, "nsa status runs/r", 10) == ["+3"]  # the line is red where one is critical


LONG_NAME = "nsa status tiny-cpu-20261207-101010"  # a launch's default name: 24 characters
A_PATH = "nsa status /home/someone/experiments/nsa/runs/tiny-cpu-20261207-101010"
HOST = "nsa status --host gpu-box /home/someone/runs/tiny-cpu-20261207-101010"


@pytest.mark.parametrize("cmd", [LONG_NAME, A_PATH, HOST])
@pytest.mark.parametrize("rows", [1, 2])
def test_the_more_line_never_names_another_run(cmd, rows):
    """At 80 columns the panel said `+3 more alerts: nsa status`, dropping the run: that command opens the newest run,
    which said `health OK` of a critical one. The command is said whole or not at all, and the count always."""
    for width in range(6, 100):
        for alerts, critical, warnings in ((3, 1, 0), (12, 0, 0), (1, 0, 2), (0, 0, 3)):
            lines = more_lines(alerts, critical, warnings, cmd, width, rows)
            assert lines and len(lines) <= rows and all(cell_len(line) <= width for line in lines), (width, lines)
            # "+1 more alert, 2 start warnings" or the total, "+3 ..."
            assert lines[0].startswith((f"+{alerts or warnings} more", f"+{alerts + warnings}")), (width, lines)
            said = [line for line in lines if "nsa status" in line]
            assert all(line.endswith(cmd) for line in said), (width, lines)
            if cell_len(cmd) <= width and rows == 2:
                assert said, (width, lines)  # where it fits a row of its own, the command is said


def test_fitted_wraps_at_words_and_marks_a_cut():
    assert fitted("one two three", 20, 2) == ["one two three"]
    assert fitted("one two three four", 9, 3) == ["one two", "three", "four"]
    assert fitted("one two three four", 9, 2) == ["one two", "three…"]
    assert fitted("", 9, 1) == [""]
