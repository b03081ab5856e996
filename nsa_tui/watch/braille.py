"""Braille dot grids: each terminal cell holds 2x4 dots, so a 60x10 cell chart has 120x40
dots. Pure numpy; the chart renderer paints boolean dot grids and packs them into cells."""

from __future__ import annotations

import numpy as np

BRAILLE_BASE = 0x2800
# Bit of the dot at (row 0..3, column 0..1) inside a cell, per the Unicode braille block.
_WEIGHTS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int64)
CHARS = [chr(BRAILLE_BASE + b) if b else " " for b in range(256)]


def pack(grid: np.ndarray) -> np.ndarray:
    """[4*h, 2*w] booleans (row 0 at the top) -> [h, w] braille bit patterns 0..255."""
    dy, dx = grid.shape
    h, w = dy // 4, dx // 2
    cells = grid[: h * 4, : w * 2].reshape(h, 4, w, 2)
    return np.einsum("aybx,yx->ab", cells.astype(np.int64), _WEIGHTS)


def column_strokes(top: np.ndarray, bot: np.ndarray, dots_y: int) -> np.ndarray:
    """[dots_y, ncols] grid with, in every column c, the dots top[c]..bot[c] set (-1: none)."""
    rows = np.arange(dots_y)[:, None]
    return (rows >= top[None, :]) & (rows <= bot[None, :]) & (top[None, :] >= 0)


def row_text(bits_row: np.ndarray) -> str:
    return "".join([CHARS[b] for b in bits_row.tolist()])
