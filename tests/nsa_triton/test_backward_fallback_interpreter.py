"""A Triton backward kernel that cannot launch falls back to the fast path's gradients, counted, never a crash.

Review revBQ: on a 99 KiB card (RTX 3090/4090, L4, L40S) the selection dk/dv kernel at 256 dims needed 140,800 B
of shared memory, so the first loss.backward() raised out of resource while the forward had run. Here, under
the Triton interpreter, one backward kernel's launch raises Triton's own OutOfResources (the interpreter checks
no shared memory); the ops, the dispatch and the fallback are the real code. The gradients must be the fast
path's, each fallback counted as '<branch>_bwd.triton->fast', and the failing kernel tried once only.
"""

from __future__ import annotations

import nsa_triton_worker as worker
import pytest
import torch
from nsa_triton_inputs import make_block_indices, make_qkv

from nsa_train.nsa import dispatch

B, T, HQ, H, D = 1, 64, 4, 2, 16


def _fast_grads(op, args, do):
    qkv = [x.detach().requires_grad_() for x in args[:3]]
    out = getattr(dispatch, op)(*qkv, *args[3:], impl="fast")
    o = out[0] if isinstance(out, tuple) else out
    return torch.autograd.grad(o, qkv, do)


def _cases():
    q, k, v = (x.detach() for x in make_qkv(B, T, HQ, H, D, D, seed=7))
    idx = make_block_indices(B, T, H, 3, 16, seed=7)
    k_cmp, v_cmp = k[:, :7].contiguous(), v[:, :7].contiguous()  # NC = (T - 16) // 8 + 1 blocks of l=16, d=8
    gate = torch.rand(B, T, HQ, generator=torch.Generator().manual_seed(7))
    return {
        # the measured case: the default (auto on CUDA) selection path's dk/dv kernel
        "selection": ("selection_attention", (q, k, v, idx, 16), "_selection_kernels", "selection_bwd_dkdv_kernel"),
        "window": ("sliding_window_attention", (q, k, v, 24), "_attention_kernels", "attention_bwd_dq_kernel"),
        # the layer's compressed branch: dk/dv of the compressed keys fails after dq ran
        "compressed": (
            "gated_compressed_attention_and_selection",
            (q, k_cmp, v_cmp, 16, 8, 16, 4, gate),
            "_attention_kernels",
            "attention_bwd_dkdv_kernel",
        ),
    }


@pytest.mark.parametrize("branch", ["selection", "window", "compressed"])
def test_failed_backward_kernel_gives_the_fast_gradients_and_is_counted(interpreter, branch):
    op, args, module, kernel = _cases()[branch]
    do = torch.randn(B, T, HQ, D, generator=torch.Generator().manual_seed(8))
    steps, reasons = interpreter.submit(
        worker.steps_with_a_failing_backward_kernel, op, args, {}, module, kernel, do
    ).result(timeout=300)
    want = _fast_grads(op, args, do)
    (first, after_first, tried_first), (second, after_second, tried_second), (_, after_no_grad, _) = steps
    for step in (first, second):
        for name, got, w in zip(("dq", "dk", "dv"), step, want, strict=True):
            torch.testing.assert_close(got, w, atol=1e-6, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
    # step 1: the kernels' forward ran, their backward failed and was counted
    assert after_first == {f"{branch}_bwd.triton->fast": 1}, after_first
    assert "out of resource: shared memory" in reasons[f"{branch}_bwd.triton->fast"]
    # step 2: the same fallback, without trying the failing kernel again
    assert after_second == {f"{branch}_bwd.triton->fast": 2}, after_second
    assert tried_first == tried_second == 1
    # a forward without gradients runs the kernels' forward: nothing more counted
    assert after_no_grad == after_second


def test_failed_backward_under_activation_checkpointing(interpreter):
    """Non-reentrant checkpointing (the trainer's grad_checkpointing) recomputes a block's forward in backward
    and requires it to save what the first forward saved: the failure, remembered by the second block's
    backward, must not change the path of the first block's recomputed forward."""
    op, args, module, kernel = _cases()["selection"]
    do = torch.randn(B, T, HQ, D, generator=torch.Generator().manual_seed(9))
    grads, counts, tried = interpreter.submit(
        worker.checkpointed_blocks_with_a_failing_backward_kernel, op, args, module, kernel, do
    ).result(timeout=300)
    q, k, v = (x.detach().requires_grad_() for x in args[:3])
    o = q
    for _ in range(2):
        o = dispatch.selection_attention(o, k, v, *args[3:], impl="fast").tanh()
    want = torch.autograd.grad(o, (q, k, v), do)
    for name, got, w in zip(("dq", "dk", "dv"), grads, want, strict=True):
        torch.testing.assert_close(got, w, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
    assert counts == {"selection_bwd.triton->fast": 2} and tried == 1, (counts, tried)


def test_a_checkpointed_block_ending_in_a_triton_op_is_no_fallback(interpreter):
    """Activation checkpointing ends a recompute by raising its own exception from the op that saves the last
    tensor it needs: the dispatch caught it as a kernel failure, counted a fallback and ran the fast path inside
    the recompute (helper implBT met it with a block whose last op was the Triton selection)."""
    op, args, _, _ = _cases()["selection"]
    do = torch.randn(B, T, HQ, D, generator=torch.Generator().manual_seed(10))
    grads, counts = interpreter.submit(worker.checkpointed_block_ending_in, op, args, do).result(timeout=300)
    want = _fast_grads(op, args, do)
    for name, got, w in zip(("dq", "dk", "dv"), grads, want, strict=True):
        torch.testing.assert_close(got, w, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
    assert counts == {}, counts


def test_the_layer_names_a_branch_whose_backward_fell_back(interpreter):
    """run.json said `triton` for a layer whose selection backward fell back to the fast path at every step: it
    is written before the first backward, where the kernels compile. What the trainer records after the first step
    (layer.impl_name_ran) names the branch's forward kernels and its fast backward."""
    dims, nsa_kwargs = (32, 4, 2, 16), {"l": 8, "d": 4, "l_sel": 16, "n_sel": 3, "w": 10}
    x = torch.randn(1, 40, 32, generator=torch.Generator().manual_seed(3))
    planned, ran, raised = interpreter.submit(
        worker.layer_paths_with_a_failing_backward_kernel,
        dims,
        nsa_kwargs,
        x,
        "_selection_kernels",
        "selection_bwd_dkdv_kernel",
    ).result(timeout=300)
    assert planned == "triton"
    assert raised == {"selection_bwd.triton->fast": 1}, raised
    assert ran == "cmp=triton sel=triton,backward=fast win=triton"
