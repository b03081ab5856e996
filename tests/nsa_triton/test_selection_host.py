"""Host-side pieces of the Triton path (no kernels): input checks, de-duplication, reverse index, fallback."""

from __future__ import annotations

import nsa_triton_worker as worker
import pytest
import torch
from nsa_triton_inputs import make_block_indices

from nsa_train.nsa.triton import build_reverse_index
from nsa_train.nsa.triton.selection import check_inputs, unique_block_indices


def test_unique_block_indices_blanks_repeats():
    idx = torch.tensor([[[[3, 1, 3, -1, 1, 0]]]])
    assert unique_block_indices(idx).tolist() == [[[[-1, 0, 1, -1, 3, -1]]]]  # sorted; the second 1 and 3 blanked


def test_reverse_index_lists_each_visible_selection_once():
    B, T, H, S, BS = 2, 70, 2, 3, 16
    idx = unique_block_indices(make_block_indices(B, T, H, S, BS, seed=11))
    offsets, tokens = build_reverse_index(idx, BS)
    n_blocks = -(-T // BS)
    assert offsets.shape == (B * H * n_blocks + 1,) and offsets.dtype == tokens.dtype == torch.int32
    for b in range(B):
        for h in range(H):
            for j in range(n_blocks):
                lst = (b * H + h) * n_blocks + j
                got = tokens[offsets[lst] : offsets[lst + 1]].tolist()
                want = [t for t in range(T) if j in idx[b, t, h].tolist() and j * BS <= t]
                assert got == want, (b, h, j)


@pytest.mark.parametrize(
    ("shapes", "block_size", "message"),
    [
        (((1, 8, 3, 16), (1, 8, 2, 16), (1, 8, 2, 16), (1, 8, 2, 1)), 16, "multiple of key/value heads"),
        (((1, 8, 2, 16), (1, 8, 2, 16), (1, 8, 2, 16), (1, 8, 2, 1)), 24, "power of two >= 16"),
        (((1, 8, 2, 16), (1, 8, 2, 16), (1, 8, 2, 16), (1, 8, 1, 1)), 16, "block_indices must be"),
        (((1, 8, 2, 16), (1, 9, 2, 16), (1, 8, 2, 16), (1, 8, 2, 1)), 16, "k must be"),
    ],
)
def test_bad_inputs_are_value_errors(shapes, block_size, message):
    q, k, v, idx = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=message):
        check_inputs(q, k, v, idx.long(), block_size)


def test_cpu_machine_without_interpreter_reports_and_raises(plain_cpu_worker):
    report = plain_cpu_worker.submit(worker.fallback_report).result(timeout=120)
    assert report["triton_imported_by_package"] is False, "importing nsa_train.nsa.triton must not import triton"
    ok, reason = report["without_triton"]
    assert not ok and reason.startswith("triton is not importable (ModuleNotFoundError")
    ok, reason = report["cpu_only"]
    assert not ok and reason.startswith("no CUDA device")
    kind, is_runtime_error, message = report["call_error"]
    assert kind == "TritonUnavailableError" and is_runtime_error
    assert message == f"selection_attention_triton cannot run: {reason}"
    ok, reason = report["late_interpret"]
    assert not ok and "set after triton was imported" in reason
    assert report["late_interpret_mode"] == "cuda"
