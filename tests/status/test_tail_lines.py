"""Splitting a byte window into complete lines, one at a time (whole files for a report) or as a list (bounded
tails), against the rule written plainly: split at newlines, drop a cut first line and the unfinished last one."""

from __future__ import annotations

import random

import pytest

from nsa_tui.runs.tail import iter_complete_lines, split_complete_lines


@pytest.mark.parametrize("from_middle", [False, True])
def test_complete_lines_are_the_plain_rules(from_middle):
    rng = random.Random(7)
    windows = [b"", b"\n", b"a", b"a\n", b"a\nb", b"a\nb\n", b"\n\n", b"x\n\ny\n", b"abc\ndef\nghi"]
    windows += [bytes(rng.choice(b"ab\n") for _ in range(rng.randint(0, 14))) for _ in range(3000)]
    for data in windows:
        want = data.split(b"\n")[1 if from_middle else 0 : -1]
        assert list(iter_complete_lines(data, from_middle=from_middle)) == want, data
        assert split_complete_lines(data, from_middle=from_middle) == want, data


def test_a_window_cut_mid_line_drops_its_first_and_partial_last_line():
    assert list(iter_complete_lines(b"t of a line\nwhole\npartia", from_middle=True)) == [b"whole"]
    assert list(iter_complete_lines(b"first\nwhole\npartia", from_middle=False)) == [b"first", b"whole"]
