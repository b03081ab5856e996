"""The compressed branch's Triton kernels compiled on a real GPU: longer sequences, bf16, the block choice,
determinism, and the NSA layer with impl='triton' against the reference layer."""

from __future__ import annotations

import pytest
import torch
from nsa_triton_inputs import assert_close_scaled

from nsa_train.nsa import fallbacks
from nsa_train.nsa.reference import compressed_attention_reference
from nsa_train.nsa.selection import select_blocks
from nsa_train.nsa.triton import compressed_attention_and_selection_triton, compressed_attention_triton

pytestmark = pytest.mark.gpu


def _inputs(T, HQ, H, D, l, d, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    NC = (T - l) // d + 1
    shapes = [(1, T, HQ, D), (1, NC, H, D), (1, NC, H, D)]  # q [B, T, HQ, D], k/v [B, NC, H, D]
    return [torch.randn(s, generator=g).to(device=device, dtype=dtype) for s in shapes]


def _forward_backward(fn, q, k, v, l, d, do):
    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    o, _ = fn(q, k, v, l, d)
    return (o.detach(), *torch.autograd.grad(o, (q, k, v), do))


@pytest.mark.parametrize(
    ("dtype", "T", "HQ", "H", "l", "d", "atol"),
    [
        pytest.param(torch.float32, 2000, 8, 2, 32, 16, 2e-5, id="fp32-T2000-gqa4"),
        pytest.param(torch.bfloat16, 4096, 16, 1, 32, 16, 3e-2, id="bf16-T4096-gqa16"),
        pytest.param(torch.bfloat16, 3000, 4, 4, 16, 8, 3e-2, id="bf16-T3000-gqa1"),
    ],
)
def test_attention_matches_reference_on_gpu(cuda, dtype, T, HQ, H, l, d, atol):
    q, k, v = _inputs(T, HQ, H, 64, l, d, dtype, cuda, seed=T)
    do = torch.randn(1, T, HQ, 64, device=cuda, dtype=dtype)
    got = _forward_backward(compressed_attention_triton, q, k, v, l, d, do)
    want = _forward_backward(compressed_attention_reference, q.float(), k.float(), v.float(), l, d, do.float())
    assert all(g.dtype == dtype for g in got)
    assert_close_scaled(zip(("o", "dq", "dk", "dv"), got, want, strict=True), atol)


def test_block_choice_matches_reference_on_gpu(cuda):
    """fp32, the paper's blocks at 4k tokens: the same blocks as the reference's probabilities give, except
    where two blocks' scores are within fp32 rounding of each other."""
    T, HQ, H, l, d, l_sel, n_sel = 4096, 8, 2, 32, 16, 64, 16
    q, k, v = _inputs(T, HQ, H, 64, l, d, torch.float32, cuda, seed=7)
    with torch.no_grad():
        o, ids = compressed_attention_and_selection_triton(q, k, v, l, d, l_sel, n_sel)
        o_ref, p = compressed_attention_reference(q, k, v, l, d)
        want = select_blocks(p, 0, H, l, d, l_sel, n_sel, T)
    same_rows = (ids == want).all(-1).float().mean().item()
    assert same_rows > 0.999, f"only {same_rows:.4%} of rows chose the reference's blocks"
    torch.testing.assert_close(o, o_ref, atol=2e-5, rtol=1e-5)


def test_blocks_picked_in_the_kernel_equal_the_top_n_of_its_scores_on_gpu(cuda):
    """bf16, the paper's blocks at 8k tokens (128 selection blocks: 8 key tiles merged per query): the kernel's
    running top-n equals select_top_blocks on the same kernel's scores, exactly (the compiled tl.sort, not the
    interpreter's)."""
    from nsa_train.nsa.selection import select_top_blocks
    from nsa_train.nsa.triton._attention import NO_WINDOW, AttentionFn
    from nsa_train.nsa.triton.availability import load_kernels
    from nsa_train.nsa.triton.compressed import block_ids, block_scores

    T, HQ, H, l, d, l_sel, n_sel = 8192, 8, 2, 32, 16, 64, 16
    q, k, v = _inputs(T, HQ, H, 64, l, d, torch.bfloat16, cuda, seed=5)
    kernels, scale = load_kernels("_attention_kernels"), 64**-0.5
    with torch.no_grad():
        _, lse = AttentionFn.apply(q, k, v, l, d, NO_WINDOW, scale, None)
        fused = block_ids(kernels, q, k, lse, l, d, l_sel, n_sel, scale)
        want = select_top_blocks(block_scores(kernels, q, k, lse, l, d, l_sel, scale, 0, T), 0, l_sel, n_sel)
    assert torch.equal(fused, want)


def test_backward_is_deterministic(cuda):
    q, k, v = _inputs(2048, 8, 2, 64, 32, 16, torch.bfloat16, cuda, seed=1)
    do = torch.randn(1, 2048, 8, 64, device=cuda, dtype=torch.bfloat16)
    first = _forward_backward(compressed_attention_triton, q, k, v, 32, 16, do)
    second = _forward_backward(compressed_attention_triton, q, k, v, 32, 16, do)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_layer_with_triton_impl_matches_the_reference_layer(cuda):
    """impl='triton' on CUDA: the kernels of all three branches, no fallback, fp32 (full precision matmuls):
    output, input and parameter gradients against the reference layer."""
    from nsa_train.config import NSAConfig
    from nsa_train.nsa import NSAAttention

    before_precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        dims, nsa_kwargs = (256, 4, 2, 64), {"l": 32, "d": 16, "l_sel": 64, "n_sel": 4, "w": 128}
        torch.manual_seed(0)
        ref = NSAAttention(*dims, NSAConfig(impl="reference", **nsa_kwargs)).to(cuda)
        tri = NSAAttention(*dims, NSAConfig(impl="triton", **nsa_kwargs)).to(cuda)
        tri.load_state_dict(ref.state_dict())
        x = torch.randn(1, 1024, 256, device=cuda)
        w = torch.randn(1, 1024, 256, device=cuda)
        before = fallbacks.snapshot()
        results = []
        for layer in (tri, ref):
            xi = x.clone().requires_grad_(True)
            y = layer(xi)
            (y * w).sum().backward()
            results.append((y.detach(), xi.grad, {n: p.grad for n, p in layer.named_parameters()}))
        assert fallbacks.snapshot() == before, fallbacks.reasons()
    finally:
        torch.set_float32_matmul_precision(before_precision)
    (y_t, dx_t, g_t), (y_r, dx_r, g_r) = results
    assert_close_scaled([("y", y_t, y_r), ("dx", dx_t, dx_r), *((n, g_t[n], g_r[n]) for n in g_r)], 1e-4)
