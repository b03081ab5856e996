"""Triton helpers shared by the kernel modules: tile loads and stores, and dot with exact fp32 products.

Imported only by the kernel modules, so it is defined in the same Triton mode (compiler or interpreter) as
they are (see ``availability.load_kernels``).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def dot(a, b, IEEE: tl.constexpr):
    # fp32 operands: exact IEEE products (the default TF32 would loosen fp32 results).
    if IEEE:  # noqa: SIM108 (a compile-time branch; keep it a plain if for Triton)
        out = tl.dot(a, b, input_precision="ieee")
    else:
        out = tl.dot(a, b)
    return out


@triton.jit
def load_rows(ptr, rows, row_mask, cols, width):
    """Tile ``[R, C]`` of a row-major ``[*, width]`` tensor: rows ``rows`` [R], columns ``cols`` [C]; 0 outside."""
    mask = row_mask[:, None] & (cols[None, :] < width)
    return tl.load(ptr + rows[:, None] * width + cols[None, :], mask=mask, other=0.0)


@triton.jit
def store_rows(ptr, rows, row_mask, cols, width, tile):
    """Write ``tile`` [R, C] (cast to the tensor's dtype) where ``load_rows`` would read it."""
    mask = row_mask[:, None] & (cols[None, :] < width)
    tl.store(ptr + rows[:, None] * width + cols[None, :], tile.to(ptr.dtype.element_ty), mask=mask)
