"""The dispatch with the Triton kernels able to run (the interpreter, on CPU): a caller's bad argument is one
error, raised before the kernels are tried, and no fallback (review revBV: it was counted as
'<branch>.triton->fast' with its message kept as the kernel's reason, then raised again by the fast path)."""

from __future__ import annotations

import nsa_triton_worker as worker
import torch
from nsa_triton_inputs import make_qkv


def test_a_callers_bad_argument_is_not_counted_as_a_kernel_fallback(interpreter):
    q, k, v = (x.detach() for x in make_qkv(1, 32, 2, 1, 16, 16, seed=0))
    ids = torch.zeros(1, 32, 1, 2, dtype=torch.long)
    kc, vc, gate = k[:, :7], v[:, :7], torch.rand(1, 32, 2)
    calls = [
        ("selection_attention", (q, k, v, ids.float(), 16)),
        ("selection_attention", (q, k, v, ids[:, :31], 16)),
        ("sliding_window_attention", (q, k, v, 0)),
        ("compressed_attention", (q, kc, vc, 8, 0)),
        ("gated_compressed_attention_and_selection", (q, kc, vc, 12, 8, 16, 3, gate)),
    ]
    paths, errors, added, reasons = interpreter.submit(worker.dispatch_results, calls).result(timeout=300)
    assert set(paths.values()) == {"triton"}  # every op would run its kernels here
    assert added == {} and reasons == {}
    assert errors == [
        ("ValueError", "block_indices must be an integer tensor, got torch.float32"),
        ("ValueError", "block_indices must be [B, T, H, S] = [1, 32, 1, S], got (1, 31, 1, 2)"),
        ("ValueError", "window_size must be an integer >= 1, got 0"),
        ("ValueError", "stride must be an integer >= 1, got 0"),
        ("ValueError", "l (12) and l_sel (16) must be multiples of the stride d (8), as NSAConfig requires"),
    ]


def test_a_bad_scale_is_refused_before_the_kernels_and_a_0d_tensor_runs_them(interpreter):
    """A string scale failed inside the selection kernel and was counted as 'selection.triton->fast' with the
    TypeError as the kernel's reason; NaN ran the kernels to NaN outputs. Now one ValueError before any path, on
    each op, and a 0-d tensor scale runs the kernels (no fallback) as the float it holds."""
    q, k, v = (x.detach() for x in make_qkv(1, 32, 2, 1, 16, 16, seed=0))
    ids = torch.zeros(1, 32, 1, 2, dtype=torch.long)
    kc, vc = k[:, :7], v[:, :7]
    ops = [
        ("selection_attention", (q, k, v, ids, 16)),
        ("sliding_window_attention", (q, k, v, 8)),
        ("compressed_attention", (q, kc, vc, 8, 4)),
    ]
    calls = [(op, (*args, scale)) for op, args in ops for scale in ("0.5", float("nan"), torch.tensor([0.5, 0.5]))]
    paths, errors, added, reasons = interpreter.submit(worker.dispatch_results, calls).result(timeout=300)
    assert set(paths.values()) == {"triton"}
    assert added == {} and reasons == {}
    rule = "scale must be None or a finite number > 0 (a Python real or a 0-d tensor that needs no gradient), got"
    said = [f"{rule} '0.5'", f"{rule} nan", f"{rule} a torch.float32 tensor of shape (2,)"]
    assert errors == [("ValueError", says) for _ in ops for says in said]

    good = [(op, (*args, scale)) for op, args in ops for scale in (torch.tensor(0.5), 0.5)]
    _, outputs, added, reasons = interpreter.submit(worker.dispatch_results, good).result(timeout=300)
    assert added == {} and reasons == {}
    for from_tensor, from_float in zip(outputs[::2], outputs[1::2], strict=True):
        torch.testing.assert_close(from_tensor, from_float, atol=0, rtol=0)
