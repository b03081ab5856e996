"""Selection-attention Triton kernels vs the reference, on CPU under the Triton interpreter.

The kernels run in the ``interpreter`` worker process (see conftest.py); the reference runs here.
Forward output and dq/dk/dv at fp32 tolerances over GQA ratios 1/2/4/16, T not a multiple of the
block size, batch > 1, -1 slots, future blocks, the current (partially future) block, and rows
with nothing selected.
"""

from __future__ import annotations

import nsa_triton_worker as worker
import pytest
import torch
import torch.nn.functional as F
from nsa_triton_inputs import make_block_indices, make_qkv

from nsa_train.nsa.reference import selection_attention_reference

CASES = [
    # B, T, HQ, H, D, DV, block_size, S
    pytest.param(1, 64, 1, 1, 16, 16, 16, 2, id="gqa1-T64"),
    pytest.param(2, 50, 4, 2, 16, 16, 16, 3, id="gqa2-T50-batch2"),
    pytest.param(1, 77, 8, 2, 32, 16, 16, 4, id="gqa4-T77-Dv16"),
    pytest.param(1, 90, 4, 1, 24, 24, 32, 2, id="gqa4-T90-D24-bs32"),
    pytest.param(1, 40, 16, 1, 16, 16, 16, 3, id="gqa16-T40"),
    # rows of 128 fp32 dims: the dk/dv kernel's 16-row steps (selection.dkdv_rows), which cards under H100's
    # shared memory run at head dims over 128 in 16 bits or over 64 in fp32
    pytest.param(1, 70, 4, 2, 80, 80, 16, 3, id="gqa2-T70-D80-wide-rows"),
]


def _reference_with_grads(q, k, v, idx, block_size, scale, do):
    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    o = selection_attention_reference(q, k, v, idx, block_size, scale)
    return (o.detach(), *torch.autograd.grad(o, (q, k, v), do))


def _run(interpreter, *args):
    return interpreter.submit(*args).result(timeout=120)


@pytest.mark.parametrize(("B", "T", "HQ", "H", "D", "DV", "BS", "S"), CASES)
def test_matches_reference_forward_and_backward(interpreter, B, T, HQ, H, D, DV, BS, S):
    q, k, v = make_qkv(B, T, HQ, H, D, DV, seed=T)
    idx = make_block_indices(B, T, H, S, BS, seed=T)
    do = torch.randn(B, T, HQ, DV, generator=torch.Generator().manual_seed(1))

    *got, mode = _run(interpreter, worker.selection_forward_backward, q, k, v, idx, BS, None, do)
    want = _reference_with_grads(q, k, v, idx, BS, None, do)
    assert mode == "interpreter"
    assert got[0].shape == (B, T, HQ, DV) and got[0].dtype == torch.float32
    assert torch.all(got[0][:, T // 3] == 0), "a query with nothing selected must get exactly 0"
    for name, g, w in zip(("o", "dq", "dk", "dv"), got, want, strict=True):
        atol = 2e-6 if name == "o" else 1e-5
        torch.testing.assert_close(g, w, atol=atol, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


def test_custom_scale_and_repeated_ids_count_once(interpreter):
    B, T, HQ, H, D, BS = 1, 48, 2, 1, 16, 16
    q, k, v = make_qkv(B, T, HQ, H, D, D, seed=3)
    current = (torch.arange(T) // BS).view(1, T, 1)
    # [B, T, H, 4]: the current block twice, block 0 (also the current one for t < 16), an unused slot
    idx = torch.stack([current, torch.zeros_like(current), current, torch.full_like(current, -1)], -1)
    do = torch.randn(B, T, HQ, D, generator=torch.Generator().manual_seed(2))
    *got, _ = _run(interpreter, worker.selection_forward_backward, q, k, v, idx, BS, 0.3, do)
    want = _reference_with_grads(q, k, v, idx, BS, 0.3, do)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_selecting_every_block_is_dense_causal_attention(interpreter):
    B, T, HQ, H, D, BS = 1, 40, 4, 2, 16, 16
    q, k, v = make_qkv(B, T, HQ, H, D, D, seed=5)
    n_blocks = -(-T // BS)
    idx = torch.arange(n_blocks).expand(B, T, H, n_blocks)
    o = _run(interpreter, worker.selection_forward, q.detach(), k.detach(), v.detach(), idx, BS)
    G = HQ // H
    dense = F.scaled_dot_product_attention(
        q.transpose(1, 2),
        k.repeat_interleave(G, 2).transpose(1, 2),
        v.repeat_interleave(G, 2).transpose(1, 2),
        is_causal=True,
    ).transpose(1, 2)  # [B, T, HQ, D]
    torch.testing.assert_close(o, dense.detach(), atol=2e-6, rtol=1e-5)


def test_causal_by_perturbation(interpreter):
    """Changing q/k/v after position t leaves outputs <= t bit-identical; d o[t] / d inputs[>t] is zero."""
    B, T, HQ, H, D, BS, t = 1, 48, 2, 1, 16, 16, 20
    q, k, v = (x.detach() for x in make_qkv(B, T, HQ, H, D, D, seed=7))
    idx = make_block_indices(B, T, H, 3, BS, seed=7)
    q2, k2, v2 = (x.clone() for x in (q, k, v))
    for x in (q2, k2, v2):
        x[:, t + 1 :] += 10.0
    do = torch.zeros(B, T, HQ, D)
    do[:, t] = 1.0  # the gradient of sum(o[t])
    o, dq, dk, dv, _ = _run(interpreter, worker.selection_forward_backward, q, k, v, idx, BS, None, do)
    o2 = _run(interpreter, worker.selection_forward, q2, k2, v2, idx, BS)
    assert torch.equal(o[:, : t + 1], o2[:, : t + 1])
    assert not torch.equal(o[:, t + 1 :], o2[:, t + 1 :])  # the perturbation did reach the later outputs
    for grad in (dq, dk, dv):
        assert torch.all(grad[:, t + 1 :] == 0)
    assert dk[:, : t + 1].abs().sum() > 0


def test_bf16_inputs_compute_in_fp32_and_return_bf16(interpreter):
    B, T, HQ, H, D, BS = 1, 32, 2, 1, 16, 16
    q, k, v = (x.detach() for x in make_qkv(B, T, HQ, H, D, D, dtype=torch.bfloat16, seed=9))
    idx = make_block_indices(B, T, H, 2, BS, seed=9)
    do = torch.randn(B, T, HQ, D, generator=torch.Generator().manual_seed(3)).bfloat16()
    o, dq, dk, dv, _ = _run(interpreter, worker.selection_forward_backward, q, k, v, idx, BS, None, do)
    assert o.dtype == dq.dtype == dk.dtype == dv.dtype == torch.bfloat16
    want = _reference_with_grads(q, k, v, idx, BS, None, do)
    for g, w in zip((o, dq, dk, dv), want, strict=True):
        torch.testing.assert_close(g.float(), w.float(), atol=2e-2, rtol=2e-2)


def test_layer_on_the_triton_path_matches_the_reference_layer(interpreter):
    """The NSA layer with impl='triton' (the kernels of all three branches, gates applied after them) against
    the reference layer with the same weights: output, input and parameter gradients, and no fallback counted."""
    from nsa_train.config import NSAConfig
    from nsa_train.nsa import NSAAttention

    dims, nsa_kwargs = (32, 4, 2, 16), {"l": 8, "d": 4, "l_sel": 16, "n_sel": 3, "w": 10}
    torch.manual_seed(0)
    ref = NSAAttention(*dims, NSAConfig(impl="reference", **nsa_kwargs))
    with torch.no_grad():  # non-zero gate weights so every branch matters
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x = torch.randn(2, 40, 32, generator=torch.Generator().manual_seed(3))
    w = torch.randn(2, 40, 32, generator=torch.Generator().manual_seed(4))
    y, dx, grads, impl_name, counts = _run(
        interpreter, worker.layer_forward_backward, ref.state_dict(), dims, nsa_kwargs, x, w
    )
    assert impl_name == "triton"
    assert counts == {}, counts
    xr = x.clone().requires_grad_(True)
    yr = ref(xr)
    (yr * w).sum().backward()
    torch.testing.assert_close(y, yr.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx, xr.grad, atol=1e-5, rtol=1e-5)
    for name, p in ref.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


def test_layer_on_the_triton_path_is_causal(interpreter):
    """Changing the input after t leaves the outputs up to t bitwise unchanged, and output t's input gradient is
    zero after t, with all three branches on their kernels."""
    from nsa_train.config import NSAConfig
    from nsa_train.nsa import NSAAttention

    dims, nsa_kwargs = (32, 4, 2, 16), {"l": 8, "d": 4, "l_sel": 16, "n_sel": 3, "w": 10}
    torch.manual_seed(1)
    state = NSAAttention(*dims, NSAConfig(impl="reference", **nsa_kwargs)).state_dict()
    # batch 1: causality is per sequence, and the interpreter's time grows with the batch (batch 2: the layer test)
    x = torch.randn(1, 45, 32, generator=torch.Generator().manual_seed(4))
    results = _run(interpreter, worker.layer_causality, state, dims, nsa_kwargs, x, [0, 11, 30])
    assert results == [(True, True, True)] * 3, results
