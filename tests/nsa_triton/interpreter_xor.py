"""tl.xor_sum in the Triton interpreter by numpy, installed in the interpreter workers (conftest.py).

tl.sort is a bitonic network whose every compare-and-swap calls tl.xor_sum, a tl.reduce with a custom combine
function, and the interpreter runs such a reduce one element at a time in Python (ReduceOps.generic_reduce): the
importance kernel's running top-n (TOPK, a tl.sort per merge) spent most of its interpreter time there. The
interpreter already evaluates sum, min, max, argmin and argmax with numpy; this adds xor the same way.
np.bitwise_xor.reduce is exact on integers in any order, so the kernels compute what they did, bit for bit;
test_interpreter_xor.py compares it with the interpreter's own reduce.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def install() -> None:
    """Route the interpreter's xor reductions to numpy (idempotent). Call after TRITON_INTERPRET is set."""
    import triton.language as tl
    from triton.runtime import interpreter

    reduce_ops = interpreter.ReduceOps
    if getattr(reduce_ops.apply_impl, "numpy_xor", False):
        return
    generic = reduce_ops.apply_impl

    def apply_impl(self: Any, input: tuple) -> Any:
        if self.combine_fn is tl.standard._xor_combine:
            data = input[0].handle.data
            return self.to_tensor(np.bitwise_xor.reduce(data, axis=self.axis, keepdims=self.keep_dims), input[0].dtype)
        return generic(self, input)

    apply_impl.numpy_xor = True  # type: ignore[attr-defined]
    apply_impl.generic = generic  # type: ignore[attr-defined]  # the interpreter's own, for the test to compare
    reduce_ops.apply_impl = apply_impl
