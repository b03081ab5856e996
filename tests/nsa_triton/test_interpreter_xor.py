"""The interpreter workers' xor reduction by numpy (interpreter_xor.py): the values of the interpreter's own
element-by-element reduce, and what keeps the top-n kernel's interpreter tests quick (tl.sort's reductions never
run element by element in Python)."""

from __future__ import annotations

import functools

import nsa_triton_worker as worker
import pytest
import torch
from test_compressed_interpreter import _inputs


def _run(interpreter, *args):
    return interpreter.submit(*args).result(timeout=300)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int8])
def test_xor_sum_equals_the_interpreters_own(interpreter, dtype):
    info = torch.iinfo(dtype)
    x = torch.randint(info.min, info.max, (8, 16), dtype=dtype, generator=torch.Generator().manual_seed(0))
    both = _run(interpreter, worker.xor_sums_both_ways, x)
    assert len(both) == 3  # over axis 0, axis 1 and all
    for fast, slow in both:
        assert fast.dtype == slow.dtype == dtype and fast.equal(slow)
    assert both[0][0].equal(functools.reduce(torch.bitwise_xor, x.unbind(0)))


def test_the_kernels_top_n_runs_no_reduction_element_by_element(interpreter):
    """The fused top-n sorts (xor reductions, counted) and stays the top-n rule on its scores; the interpreter's
    generic reduce, a Python loop per element that took most of these tests' time, never runs."""
    q, k, v = _inputs(1, 64, 4, 2, 16, 16, 8, 4, seed=1)
    generic, xors, fused, from_scores = _run(interpreter, worker.block_ids_with_reduces_counted, q, k, v, 8, 4, 16, 3)
    assert xors > 0  # the top-n ran its sorts here
    assert generic == 0
    assert fused.shape == (1, 64, 2, 3) and fused.equal(from_scores)
