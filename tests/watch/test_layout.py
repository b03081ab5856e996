"""The health panel's lines cut to its width and rows (nsa_tui/watch/layout.py): no app needed."""

from __future__ import annotations

from nsa_tui.watch.layout import fitted, more_line


def test_the_more_line_keeps_the_counts_before_the_command():
    assert more_line(3, 1, 0, "nsa status runs/r", 80) == "+3 more alerts (1 critical): nsa status runs/r"
    assert more_line(1, 0, 2, "nsa status runs/r", 80) == "+1 more alert, 2 start warnings: nsa status runs/r"
    assert more_line(0, 0, 1, "", 80) == "+1 more start warning: nsa status"
    # narrower: the short count, then the plain command, then the count alone
    assert more_line(3, 1, 0, "nsa status runs/r", 35) == "+3 more (1 CRIT): nsa status runs/r"
    assert more_line(3, 1, 0, "nsa status --host gpu runs/a-long-name", 40) == "+3 more alerts (1 critical): nsa status"
    assert more_line(3, 1, 0, "nsa status runs/r", 10) == "+3 more (1 CRIT)"


def test_fitted_wraps_at_words_and_marks_a_cut():
    assert fitted("one two three", 20, 2) == ["one two three"]
    assert fitted("one two three four", 9, 3) == ["one two", "three", "four"]
    assert fitted("one two three four", 9, 2) == ["one two", "three…"]
    assert fitted("", 9, 1) == [""]
