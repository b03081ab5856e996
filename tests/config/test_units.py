"""Sizes in messages: binary units, as the telemetry's *_gb fields; parameter counts at three significant digits."""

from __future__ import annotations

import pytest

from nsa_train.telemetry.units import human_bytes, human_count


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (25 * 2**20, "25.0 MiB"),
        (3 * 2**30, "3.0 GiB"),
        (2**42, "4096.0 GiB"),
    ],
)
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_human_bytes_to_more_decimals():
    assert [human_bytes(n, 2) for n in (1000, 1536, 5_330_000, 2.34 * 2**30)] == [
        "1000 B",
        "1.50 KiB",
        "5.08 MiB",
        "2.34 GiB",
    ]


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (512, "512"),
        (999.6, "1.00K"),  # what rounds to 1000 of a unit is 1.00 of the next, not 1000K
        (74_312, "74.3K"),  # a small model's disk row said 0.07M params, a model under 5,000 parameters 0.00M
        (999_600, "1.00M"),
        (1_199_616, "1.20M"),
        (142_000_000, "142M"),
        (1.3e9, "1.30B"),
    ],
)
def test_human_count(n, text):
    assert human_count(n) == text
