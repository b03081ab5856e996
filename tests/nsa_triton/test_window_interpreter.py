"""Sliding-window attention on Triton vs the reference, on CPU under the Triton interpreter: outputs and
dq/dk/dv over GQA ratios 1/2/4/16, batch > 1, T not a multiple of the tiles, windows of 1 key, of a few keys,
across several key tiles, and as long as the sequence (dense causal attention)."""

from __future__ import annotations

import nsa_triton_worker as worker
import pytest
import torch
from nsa_triton_inputs import make_qkv

from nsa_train.nsa.reference import sliding_window_attention_reference


def _reference(q, k, v, w, scale, do):
    q, k, v = (x.detach().float().requires_grad_() for x in (q, k, v))
    o = sliding_window_attention_reference(q, k, v, w, scale)
    return (o.detach(), *torch.autograd.grad(o, (q, k, v), do.float()))


@pytest.mark.parametrize(
    ("B", "T", "HQ", "H", "D", "DV", "w", "split"),
    [
        pytest.param(1, 64, 1, 1, 16, 16, 1, 1, id="gqa1-w1-itself-only"),
        pytest.param(2, 150, 4, 2, 16, 16, 5, 1, id="gqa2-batch2-w5"),
        pytest.param(1, 256, 8, 2, 32, 16, 100, 1, id="gqa4-w100-across-key-tiles"),
        pytest.param(1, 90, 16, 1, 16, 16, 64, 1, id="gqa16-w64"),
        pytest.param(1, 77, 4, 1, 24, 24, 77, 1, id="w=T-dense-causal"),
        pytest.param(1, 40, 2, 2, 16, 16, 1000, 1, id="w>T"),
        pytest.param(1, 256, 4, 2, 16, 16, 100, 4, id="dkdv-in-4-query-chunks"),
        pytest.param(1, 100, 12, 2, 16, 16, 30, 1, id="gqa6-padded-heads-as-the-125M-config"),
    ],
)
def test_matches_reference(interpreter, B, T, HQ, H, D, DV, w, split):
    q, k, v = make_qkv(B, T, HQ, H, D, DV, seed=T + w)
    do = torch.randn(B, T, HQ, DV, generator=torch.Generator().manual_seed(1))
    got = interpreter.submit(worker.window_forward_backward, q, k, v, w, None, do, split).result(timeout=300)
    want = _reference(q, k, v, w, None, do)
    for name, g, r in zip(("o", "dq", "dk", "dv"), got, want, strict=True):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


def test_bf16_custom_scale(interpreter):
    q, k, v = make_qkv(1, 96, 4, 2, 16, 16, dtype=torch.bfloat16, seed=4)
    do = torch.randn(1, 96, 4, 16, generator=torch.Generator().manual_seed(2)).bfloat16()
    got = interpreter.submit(worker.window_forward_backward, q, k, v, 20, 0.3, do).result(timeout=300)
    assert all(g.dtype == torch.bfloat16 for g in got)
    for g, r in zip(got, _reference(q, k, v, 20, 0.3, do), strict=True):
        torch.testing.assert_close(g.float(), r, atol=2e-2, rtol=2e-2)
