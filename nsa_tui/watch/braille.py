"""A braille dot canvas: each terminal cell holds 2x4 dots, so a 60x10 cell chart has
120x40 dots. Pure Python; the chart renderer paints series onto it."""

from __future__ import annotations

# Dot bit for (column 0..1, row 0..3) inside a cell, per the Unicode braille block.
_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
BRAILLE_BASE = 0x2800


class BrailleCanvas:
    def __init__(self, width_cells: int, height_cells: int) -> None:
        self.w = max(1, width_cells)
        self.h = max(1, height_cells)
        self.bits = [[0] * self.w for _ in range(self.h)]
        self.color: list[list[str | None]] = [[None] * self.w for _ in range(self.h)]

    @property
    def dots_x(self) -> int:
        return self.w * 2

    @property
    def dots_y(self) -> int:
        return self.h * 4

    def set(self, x: int, y: int, color: str | None = None) -> None:
        """Dot (x, y) with y=0 at the TOP; out-of-range dots are ignored."""
        if 0 <= x < self.dots_x and 0 <= y < self.dots_y:
            cx, cy = x >> 1, y >> 2
            self.bits[cy][cx] |= _BITS[x & 1][y & 3]
            if color is not None:
                self.color[cy][cx] = color

    def vline(self, x: int, y0: int, y1: int, color: str | None = None) -> None:
        if y0 > y1:
            y0, y1 = y1, y0
        for y in range(max(0, y0), min(self.dots_y - 1, y1) + 1):
            self.set(x, y, color)

    def rows(self) -> list[list[tuple[str, str | None]]]:
        """Per row, per cell: (character, color); blank cells are spaces."""
        return [
            [(chr(BRAILLE_BASE + b) if b else " ", c) for b, c in zip(brow, crow, strict=True)]
            for brow, crow in zip(self.bits, self.color, strict=True)
        ]
