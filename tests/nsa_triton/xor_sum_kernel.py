"""A kernel of tl.xor_sum over each axis of a 2-d tensor, for test_interpreter_xor.py (imports triton: load it in a
worker only, once its Triton mode is set)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _xor_sum_kernel(x_ptr, rows_ptr, cols_ptr, all_ptr, M: tl.constexpr, N: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :])
    tl.store(rows_ptr + tl.arange(0, N), tl.xor_sum(x, 0))
    tl.store(cols_ptr + tl.arange(0, M), tl.xor_sum(x, 1))
    tl.store(all_ptr, tl.xor_sum(x))


def xor_sums(x: torch.Tensor) -> list[torch.Tensor]:
    """[x's xor over axis 0, over axis 1, over all] (M and N powers of 2)."""
    M, N = x.shape
    out = [x.new_zeros(N), x.new_zeros(M), x.new_zeros(1)]
    _xor_sum_kernel[(1,)](x.contiguous(), *out, M, N)
    return out
