"""Selection-attention Triton kernels compiled on a real GPU: larger shapes, bf16, determinism, dispatch."""

from __future__ import annotations

import pytest
import torch
from nsa_triton_inputs import assert_close_scaled, make_block_indices, make_qkv

from nsa_train.nsa import fallbacks
from nsa_train.nsa.dispatch import selection_attention
from nsa_train.nsa.reference import selection_attention_reference
from nsa_train.nsa.triton import selection_attention_triton, triton_available

pytestmark = pytest.mark.gpu


def _forward_backward(fn, q, k, v, idx, block_size, do):
    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    o = fn(q, k, v, idx, block_size)
    return (o.detach(), *torch.autograd.grad(o, (q, k, v), do))


@pytest.mark.parametrize(
    ("dtype", "T", "HQ", "H", "D", "BS", "S", "atol"),
    [
        pytest.param(torch.float32, 1000, 8, 2, 64, 64, 8, 2e-5, id="fp32-T1000-gqa4"),
        pytest.param(torch.bfloat16, 4096, 16, 1, 64, 64, 16, 3e-2, id="bf16-T4096-gqa16"),
        pytest.param(torch.bfloat16, 2050, 8, 8, 128, 32, 6, 3e-2, id="bf16-T2050-gqa1-D128"),
    ],
)
def test_matches_reference_on_gpu(cuda, dtype, T, HQ, H, D, BS, S, atol):
    assert triton_available(cuda)[0]
    q, k, v = make_qkv(1, T, HQ, H, D, D, dtype=dtype, device=cuda, seed=T)
    idx = make_block_indices(1, T, H, S, BS, seed=T, device=cuda)
    do = torch.randn(1, T, HQ, D, device=cuda, dtype=dtype)
    got = _forward_backward(selection_attention_triton, q, k, v, idx, BS, do)
    # The reference computes in fp32 from the same (rounded) inputs.
    want = _forward_backward(selection_attention_reference, q.float(), k.float(), v.float(), idx, BS, do.float())
    assert all(g.dtype == dtype for g in got)
    assert_close_scaled(zip(("o", "dq", "dk", "dv"), got, want, strict=True), atol)


def test_backward_is_deterministic(cuda):
    q, k, v = make_qkv(1, 2048, 8, 2, 64, 64, dtype=torch.bfloat16, device=cuda, seed=1)
    idx = make_block_indices(1, 2048, 2, 16, 64, seed=1, device=cuda)
    do = torch.randn(1, 2048, 8, 64, device=cuda, dtype=torch.bfloat16)
    first = _forward_backward(selection_attention_triton, q, k, v, idx, 64, do)
    second = _forward_backward(selection_attention_triton, q, k, v, idx, 64, do)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_auto_dispatch_uses_triton_without_fallback(cuda):
    q, k, v = make_qkv(1, 512, 4, 1, 64, 64, dtype=torch.bfloat16, device=cuda, seed=2)
    idx = make_block_indices(1, 512, 1, 4, 64, seed=2, device=cuda)
    before = fallbacks.snapshot().get("selection.triton->fast", 0)
    o = selection_attention(q, k, v, idx, 64, impl="auto")
    assert fallbacks.snapshot().get("selection.triton->fast", 0) == before, fallbacks.reasons()
    torch.testing.assert_close(o, selection_attention_triton(q, k, v, idx, 64), atol=0, rtol=0)


@pytest.mark.parametrize(("matmul", "atol"), [("highest", 1e-4), ("high", 1e-2)], ids=["fp32", "tf32"])
def test_layer_on_gpu_matches_the_reference_layer(cuda, matmul, atol):
    """The NSA layer on CUDA with impl='auto' (Triton selection, gate after the kernel; fast window and compressed
    branches) against the reference layer with the same weights, fp32: output and gradients, no fallback. Also
    with TF32 matmuls (runtime.tf32, the trainer's default on CUDA), where both sides round GEMM operands to 10
    mantissa bits: a looser tolerance, the same check that nothing else differs."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(matmul)
    try:
        _layer_matches_reference(cuda, atol)
    finally:
        torch.set_float32_matmul_precision(before)


def _layer_matches_reference(cuda, atol):
    from nsa_train.config import NSAConfig
    from nsa_train.nsa import NSAAttention

    dims, nsa_kwargs = (256, 4, 2, 64), {"l": 32, "d": 16, "l_sel": 64, "n_sel": 4, "w": 128}
    torch.manual_seed(0)
    ref = NSAAttention(*dims, NSAConfig(impl="reference", **nsa_kwargs)).to(cuda)
    fast = NSAAttention(*dims, NSAConfig(impl="auto", **nsa_kwargs)).to(cuda)
    fast.load_state_dict(ref.state_dict())
    assert fast.impl_name == "cmp=fast sel=triton win=fast"  # auto: the kernels of AUTO_TRITON_OPS only
    x = torch.randn(1, 1024, 256, device=cuda)
    w = torch.randn(1, 1024, 256, device=cuda)
    before = fallbacks.snapshot().get("selection.triton->fast", 0)
    results = []
    for layer in (fast, ref):
        xi = x.clone().requires_grad_(True)
        y = layer(xi)
        (y * w).sum().backward()
        results.append((y.detach(), xi.grad, {n: p.grad for n, p in layer.named_parameters()}))
    assert fallbacks.snapshot().get("selection.triton->fast", 0) == before, fallbacks.reasons()
    (y_f, dx_f, g_f), (y_r, dx_r, g_r) = results
    assert_close_scaled([("y", y_f, y_r), ("dx", dx_f, dx_r), *((n, g_f[n], g_r[n]) for n in g_r)], atol)
