"""The compressed branch's Triton kernels vs the reference, on CPU under the Triton interpreter.

Attention over compressed blocks (output, dq, dk, dv) over GQA ratios 1/2/4/16, T not a multiple of the stride,
batch > 1, rows that see no block, several key tiles, no block at all; the importance kernel's Eq. 9-10 scores
against ``selection_block_scores`` of the reference probabilities for every overlap pattern it accepts (blocks
reaching back 0..R, R = l_sel / d of 1, 2, 4; across key tiles; a query range that starts inside the sequence);
the block ids the kernel picks itself against the top-n rule on its scores (ties, no block, n_sel 1) and those
of the layer's fused op against ``select_blocks``; and the configurations it refuses.
"""

from __future__ import annotations

import nsa_triton_worker as worker
import pytest
import torch

from nsa_train.config import NSAConfig
from nsa_train.nsa import NSAAttention
from nsa_train.nsa.reference import compressed_attention_reference
from nsa_train.nsa.selection import select_blocks, selection_block_scores


def _run(interpreter, *args):
    return interpreter.submit(*args).result(timeout=300)


def _inputs(B, T, HQ, H, D, DV, l, d, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    NC = max(0, (T - l) // d + 1)
    q = torch.randn(B, T, HQ, D, generator=g)  # [B, T, HQ, D]
    k = torch.randn(B, NC, H, D, generator=g)  # [B, NC, H, D]
    v = torch.randn(B, NC, H, DV, generator=g)  # [B, NC, H, Dv]
    return [x.to(dtype) for x in (q, k, v)]


def _reference(q, k, v, l, d, do):
    q, k, v = (x.detach().float().requires_grad_() for x in (q, k, v))
    o, p = compressed_attention_reference(q, k, v, l, d)
    if not o.requires_grad:  # no compressed block at all: the reference's output is a constant 0
        return (o, p, torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v))
    return (o.detach(), p.detach(), *torch.autograd.grad(o, (q, k, v), do.float(), allow_unused=True))


@pytest.mark.parametrize(
    ("B", "T", "HQ", "H", "D", "DV", "l", "d", "split"),
    [
        pytest.param(1, 64, 1, 1, 16, 16, 8, 4, 1, id="gqa1"),
        pytest.param(2, 150, 4, 2, 16, 16, 8, 4, 1, id="gqa2-T150-batch2"),
        pytest.param(1, 77, 8, 2, 32, 16, 16, 8, 1, id="gqa4-T77-Dv16"),
        pytest.param(1, 90, 16, 1, 16, 16, 4, 4, 1, id="gqa16-l=d"),
        pytest.param(1, 100, 4, 1, 24, 24, 32, 16, 1, id="D24-first-31-see-nothing"),
        pytest.param(1, 256, 2, 1, 16, 16, 4, 2, 1, id="127-blocks-two-key-tiles"),
        pytest.param(1, 20, 2, 1, 16, 16, 32, 16, 1, id="no-block-at-all"),
        pytest.param(1, 256, 2, 1, 16, 16, 4, 2, 3, id="dkdv-in-3-query-chunks"),
        pytest.param(1, 100, 12, 2, 16, 16, 8, 4, 1, id="gqa6-padded-heads-as-the-125M-config"),
        pytest.param(2, 150, 4, 2, 16, 16, 8, 4, 16, id="dkdv-in-more-chunks-than-query-tiles"),
    ],
)
def test_attention_matches_reference(interpreter, B, T, HQ, H, D, DV, l, d, split):
    q, k, v = _inputs(B, T, HQ, H, D, DV, l, d, seed=T)
    do = torch.randn(B, T, HQ, DV, generator=torch.Generator().manual_seed(1))
    got = _run(interpreter, worker.compressed_forward_backward, q, k, v, l, d, None, do, split)
    want = _reference(q, k, v, l, d, do)
    o = got[0]
    assert o.shape == (B, T, HQ, DV) and o.dtype == torch.float32 and torch.isfinite(o).all()
    assert torch.all(o[:, : min(T, l - 1)] == 0), "a query that sees no compressed block must get exactly 0"
    for name, g, w in zip(("o", "p", "dq", "dk", "dv"), got, want, strict=True):
        w = torch.zeros_like(g) if w is None else w
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


def test_bf16_inputs_return_bf16(interpreter):
    q, k, v = _inputs(1, 64, 4, 2, 16, 16, 8, 4, seed=3, dtype=torch.bfloat16)
    do = torch.randn(1, 64, 4, 16, generator=torch.Generator().manual_seed(2)).bfloat16()
    got = _run(interpreter, worker.compressed_forward_backward, q, k, v, 8, 4, None, do, 2)
    assert all(x.dtype == torch.bfloat16 for x in got)
    want = _reference(q, k, v, 8, 4, do)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.float(), w, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize(
    ("T", "l", "d", "l_sel"),
    [
        pytest.param(160, 8, 4, 16, id="R4-back1"),
        pytest.param(160, 16, 4, 16, id="R4-back3"),
        pytest.param(160, 4, 4, 16, id="R4-back0"),
        pytest.param(256, 8, 4, 8, id="R2-back1-two-key-tiles"),
        pytest.param(256, 16, 8, 8, id="R1-back1-two-key-tiles"),
        pytest.param(256, 8, 8, 8, id="R1-back0"),
        pytest.param(256, 4, 2, 8, id="R4-back1-two-key-tiles"),
        pytest.param(256, 32, 16, 64, id="paper-ratios"),
    ],
)
@pytest.mark.parametrize(("t0", "t1"), [(0, None), (48, 200)], ids=["all", "t48-200"])
def test_block_scores_match_eq9_of_the_reference(interpreter, T, l, d, l_sel, t0, t1):
    B, HQ, H, D = 2, 8, 2, 16
    t1 = T if t1 is None else min(t1, T)
    q, k, v = _inputs(B, T, HQ, H, D, D, l, d, seed=l_sel + l)
    got = _run(interpreter, worker.compressed_block_scores, q, k, v, l, d, l_sel, t0, t1)
    _, p = compressed_attention_reference(q, k, v, l, d)  # [B, T, HQ, NC]
    p_group = p[:, t0:t1].view(B, t1 - t0, H, HQ // H, -1).sum(3)
    ns = min(-(-T // l_sel), (t1 - 1) // l_sel + 1)
    want = selection_block_scores(p_group, l, d, l_sel, ns)
    assert got.shape == want.shape == (B, t1 - t0, H, ns)
    assert want.abs().sum() > 0
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("B", "T", "l", "d", "l_sel", "n_sel", "HQ"),
    [
        # batch 2 once (the cheapest case): the interpreter's time grows with B, and the kernels' batch indexing
        # is the same for every shape
        (1, 256, 8, 4, 16, 6, 8),
        (1, 200, 32, 16, 64, 3, 8),
        (2, 96, 4, 2, 8, 5, 8),
        (1, 160, 8, 4, 16, 5, 12),
        (1, 256, 4, 2, 8, 20, 8),
    ],
    ids=["gqa4", "paper-blocks", "R4-two-key-tiles-batch2", "gqa6-as-the-125M-config", "n_sel-20-from-scores"],
)
def test_fused_branch_picks_the_reference_blocks(interpreter, B, T, l, d, l_sel, n_sel, HQ):
    H, D = 2, 16
    q, k, v = _inputs(B, T, HQ, H, D, D, l, d, seed=T)
    o, ids = _run(interpreter, worker.compressed_and_selection, q, k, v, l, d, l_sel, n_sel)
    o_ref, p = compressed_attention_reference(q, k, v, l, d)
    want = select_blocks(p, 0, H, l, d, l_sel, n_sel, T)
    assert ids.shape == (B, T, H, n_sel)
    assert torch.equal(ids, want)
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("B", "T", "HQ", "H", "l", "d", "l_sel", "n_sel", "keys"),
    [
        pytest.param(2, 96, 4, 2, 16, 4, 16, 7, "equal", id="ties-everywhere-R4-back3-fewer-blocks-than-n_sel"),
        pytest.param(1, 100, 2, 1, 32, 16, 16, 1, "random", id="n_sel-1-R1-back1"),
        pytest.param(1, 20, 4, 1, 32, 16, 64, 16, "random", id="no-compressed-block"),
        # 256 selection blocks, 16 key tiles merged per query; the key of a -inf score times NS passes 2^31
        # (an int32 product wrapped)
        pytest.param(1, 256, 1, 1, 2, 1, 1, 16, "random", id="256-blocks-many-merges-int64-keys"),
    ],
)
def test_blocks_picked_in_the_kernel_are_the_top_n_rule_on_its_scores(
    interpreter, B, T, HQ, H, l, d, l_sel, n_sel, keys
):
    """The importance kernel's running top-n (merged per key tile, then the zero-score blocks up to each query's
    own) equals select_top_blocks on the same kernel's scores, exactly: forced blocks, hidden future blocks,
    ties to the lower id (equal keys make every block's probability equal), unused slots -1."""
    q, k, v = _inputs(B, T, HQ, H, 16, 16, l, d, seed=T + n_sel)
    if keys == "equal":
        k = torch.zeros_like(k)
    fused, from_scores = _run(interpreter, worker.compressed_block_ids_both_ways, q, k, v, l, d, l_sel, n_sel)
    assert fused.shape == (B, T, H, n_sel) and fused.dtype == torch.int64
    assert torch.equal(fused, from_scores)


@pytest.mark.parametrize(("l", "d", "l_sel"), [(32, 4, 8), (8, 4, 12), (4, 1, 32)], ids=["back>R", "R=3", "R=32"])
def test_unsupported_overlap_is_refused_with_the_reason(interpreter, l, d, l_sel):
    q, k, v = _inputs(1, 64, 2, 1, 16, 16, l, d)
    name, message = _run(interpreter, worker.compressed_and_selection, q, k, v, l, d, l_sel, 3)
    assert name == "TritonUnavailableError"
    assert f"l={l}, d={d}, l_sel={l_sel}" in message


def test_layer_counts_the_fallback_of_an_unsupported_config_and_stays_correct(interpreter):
    """impl='triton' with l > l_sel + d (64 > 16 + 16): the compressed branch falls back to the fast path,
    counted, and the layer still matches the reference layer."""
    dims, nsa_kwargs = (32, 4, 2, 16), {"l": 64, "d": 16, "l_sel": 16, "n_sel": 3, "w": 10}
    torch.manual_seed(0)
    ref = NSAAttention(*dims, NSAConfig(impl="reference", **nsa_kwargs))
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x = torch.randn(1, 96, 32, generator=torch.Generator().manual_seed(3))
    w = torch.randn(1, 96, 32, generator=torch.Generator().manual_seed(4))
    y, dx, _, name, counts = _run(interpreter, worker.layer_forward_backward, ref.state_dict(), dims, nsa_kwargs, x, w)
    assert set(counts) == {"compressed.triton->fast"}, counts  # selection and window ran their kernels
    assert name == "cmp=fast sel=triton win=triton"  # what run.json records: it said "triton"
    xr = x.clone().requires_grad_(True)
    yr = ref(xr)
    (yr * w).sum().backward()
    torch.testing.assert_close(y, yr.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx, xr.grad, atol=1e-5, rtol=1e-5)
