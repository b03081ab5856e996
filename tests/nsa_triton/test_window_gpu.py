"""Sliding-window attention on Triton compiled on a real GPU: the paper's window at longer sequences, bf16,
determinism."""

from __future__ import annotations

import pytest
import torch
from nsa_triton_inputs import assert_close_scaled, make_qkv

from nsa_train.nsa.fast import sliding_window_attention_fast
from nsa_train.nsa.triton import sliding_window_attention_triton

pytestmark = pytest.mark.gpu


def _forward_backward(fn, q, k, v, w, do):
    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    o = fn(q, k, v, w)
    return (o.detach(), *torch.autograd.grad(o, (q, k, v), do))


@pytest.mark.parametrize(
    ("dtype", "T", "HQ", "H", "w", "atol"),
    [
        pytest.param(torch.float32, 2000, 8, 2, 512, 2e-5, id="fp32-T2000-gqa4-w512"),
        pytest.param(torch.bfloat16, 8192, 16, 1, 512, 3e-2, id="bf16-T8192-gqa16-w512"),
        pytest.param(torch.bfloat16, 3000, 4, 4, 100, 3e-2, id="bf16-T3000-gqa1-w100"),
    ],
)
def test_matches_the_fast_path_on_gpu(cuda, dtype, T, HQ, H, w, atol):
    """Against the fast path in fp32 (itself tested against the reference; the reference's T x T mask would
    not fit these lengths)."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        q, k, v = make_qkv(1, T, HQ, H, 64, 64, dtype=dtype, device=cuda, seed=T)
        do = torch.randn(1, T, HQ, 64, device=cuda, dtype=dtype)
        got = _forward_backward(sliding_window_attention_triton, q, k, v, w, do)
        want = _forward_backward(sliding_window_attention_fast, q.float(), k.float(), v.float(), w, do.float())
    finally:
        torch.set_float32_matmul_precision(before)
    assert all(g.dtype == dtype for g in got)
    assert_close_scaled(zip(("o", "dq", "dk", "dv"), got, want, strict=True), atol)


def test_backward_is_deterministic(cuda):
    q, k, v = make_qkv(1, 4096, 8, 2, 64, 64, dtype=torch.bfloat16, device=cuda, seed=3)
    do = torch.randn(1, 4096, 8, 64, device=cuda, dtype=torch.bfloat16)
    first = _forward_backward(sliding_window_attention_triton, q, k, v, 512, do)
    second = _forward_backward(sliding_window_attention_triton, q, k, v, 512, do)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
