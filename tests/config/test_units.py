"""Sizes in messages: binary units, as the telemetry's *_gb fields."""

from __future__ import annotations

import pytest

from nsa_train.telemetry.units import human_bytes


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
