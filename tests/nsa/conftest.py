"""Fixtures of the NSA tests."""

from __future__ import annotations

import pytest

from nsa_train.nsa import fast, fast_selection, fast_selection_masked


@pytest.fixture(params=["default-tiles", "tiny-tiles", "masked-selection"])
def tiles(request, monkeypatch):
    """Run a test with the fast path's real tile sizes and with tiny ones, so tile boundaries fall inside
    the small test shapes (the tiled code paths are where off-by-one errors hide), and with the selection
    branch as one masked SDPA call, the route the fast path takes for short sequences. The first two keep
    selection on its block-major route at every test size."""
    if request.param == "tiny-tiles":
        monkeypatch.setattr(fast, "WINDOW_TILE", 4)
        monkeypatch.setattr(fast, "WINDOW_GROUP", 10)
        monkeypatch.setattr(fast, "CMP_TILE", 7)
        monkeypatch.setattr(fast_selection, "TILE_ROWS", 12)
        monkeypatch.setattr(fast_selection, "SEG", 3)
        monkeypatch.setattr(fast_selection, "CHUNK_SEGS", 2)
    with fast_selection_masked.route(request.param == "masked-selection"):
        yield request.param


@pytest.fixture(params=["cpu-flash-saved", "recompute"])
def flash_path(request, monkeypatch):
    """The window and compressed branches both ways: on CPU their backward runs the flash op's backward on the
    saved output and log-sum-exp; on other devices they recompute (forced here on CPU, so that path is tested
    too)."""
    if request.param == "recompute":
        monkeypatch.setattr(fast, "_cpu_flash_route", lambda q, v: False)
    return request.param
