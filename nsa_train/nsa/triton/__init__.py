"""Triton kernels for NSA attention (CUDA; or CPU under ``TRITON_INTERPRET=1`` for tests).

Importing this package never imports triton and never fails without CUDA: the kernels load
on first call. Check ``triton_available(q.device)`` first; a call that cannot run raises
``TritonUnavailableError`` (a RuntimeError) with the reason, and the caller counts the
fallback (``nsa_train.nsa.fallbacks.count``) and uses the PyTorch path. A backward kernel that
fails (at the first ``loss.backward()``) falls back inside the autograd functions: ``backward_fallback``.
"""

from nsa_train.nsa.triton.availability import TritonUnavailableError, kernel_mode, triton_available
from nsa_train.nsa.triton.compressed import compressed_attention_and_selection_triton, compressed_attention_triton
from nsa_train.nsa.triton.selection import build_reverse_index, selection_attention_triton
from nsa_train.nsa.triton.window import sliding_window_attention_triton

__all__ = [
    "TritonUnavailableError",
    "build_reverse_index",
    "compressed_attention_and_selection_triton",
    "compressed_attention_triton",
    "kernel_mode",
    "selection_attention_triton",
    "sliding_window_attention_triton",
    "triton_available",
]
