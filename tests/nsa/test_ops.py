"""The three NSA ops: fast vs reference, causality, reductions to dense attention, gradcheck."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nsa_train.nsa import (
    compressed_attention,
    compressed_attention_fast,
    compressed_attention_reference,
    fallbacks,
    fast_selection,
    fast_selection_masked,
    selection_attention,
    selection_attention_fast,
    selection_attention_reference,
    sliding_window_attention,
    sliding_window_attention_fast,
    sliding_window_attention_reference,
)

# (B, T, HQ, H, D): T not a multiple of any block size used below (4, 6, 8); GQA ratios 1, 2, 4, 16.
SHAPES = [(2, 37, 2, 2, 8), (1, 45, 4, 2, 8), (2, 29, 8, 2, 16), (1, 23, 16, 1, 8)]
TOL = {"atol": 1e-5, "rtol": 1e-5}


def qkv(B: int, T: int, HQ: int, H: int, D: int, dtype=torch.float32, n_keys: int | None = None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n = T if n_keys is None else n_keys
    q = torch.randn(B, T, HQ, D, generator=g, dtype=dtype)
    k = torch.randn(B, n, H, D, generator=g, dtype=dtype)
    v = torch.randn(B, n, H, D, generator=g, dtype=dtype)
    return q, k, v


def random_blocks(B: int, T: int, H: int, S: int, block_size: int, seed: int = 0) -> torch.Tensor:
    """Block ids in [-1, NB): includes unused slots, duplicates and blocks after the query (all must be handled)."""
    g = torch.Generator().manual_seed(seed)
    n_blocks = (T + block_size - 1) // block_size
    return torch.randint(-1, n_blocks, (B, T, H, S), generator=g)


def grads(fn, *inputs: torch.Tensor, seed: int = 1):
    xs = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*xs)
    o = out[0] if isinstance(out, tuple) else out
    w = torch.randn(o.shape, generator=torch.Generator().manual_seed(seed), dtype=o.dtype)
    loss = (o * w).sum()
    if isinstance(out, tuple):  # also backpropagate through p
        loss = loss + (out[1] * torch.randn(out[1].shape, dtype=o.dtype, generator=torch.Generator())).sum()
    loss.backward()
    return out, [x.grad for x in xs]


def assert_same(out_a, out_b, grads_a, grads_b, **tol) -> None:
    for a, b in zip(
        out_a if isinstance(out_a, tuple) else (out_a,), out_b if isinstance(out_b, tuple) else (out_b,), strict=False
    ):
        torch.testing.assert_close(a, b, **tol)
    for ga, gb in zip(grads_a, grads_b, strict=False):
        torch.testing.assert_close(ga, gb, **tol)


@pytest.mark.parametrize("shape", SHAPES)
def test_selection_fast_matches_reference(shape, tiles):
    B, T, _, H, _ = shape
    q, k, v = qkv(*shape)
    idx = random_blocks(B, T, H, 3, 6)
    ref = grads(lambda a, b, c: selection_attention_reference(a, b, c, idx, 6), q, k, v)
    fst = grads(lambda a, b, c: selection_attention_fast(a, b, c, idx, 6), q, k, v)
    assert_same(ref[0], fst[0], ref[1], fst[1], **TOL)


@pytest.mark.parametrize("key_scale", [0.1, 30.0])
def test_selection_online_softmax_with_far_apart_scores(key_scale, monkeypatch):
    """Tiny tiles and chunks, so a row's blocks arrive over many chunks, and keys whose scale grows along the
    sequence by up to key_scale**2: at 30 later blocks pass a row's running max by hundreds of units and force
    the forward's (lazy) rescaling, at 0.1 no rescaling after a row's first chunk. Output and gradients vs the
    reference, and finite."""
    monkeypatch.setattr(fast_selection, "TILE_ROWS", 12)
    monkeypatch.setattr(fast_selection, "SEG", 3)
    monkeypatch.setattr(fast_selection, "CHUNK_SEGS", 2)
    q, k, v = qkv(1, 48, 4, 2, 8)
    k = k * torch.linspace(1.0, key_scale, 48).square()[None, :, None, None]
    idx = random_blocks(1, 48, 2, 4, 6)
    ref = grads(lambda a, b, c: selection_attention_reference(a, b, c, idx, 6), q, k, v)
    with fast_selection_masked.route(False):  # the block-major route's online softmax
        fst = grads(lambda a, b, c: selection_attention_fast(a, b, c, idx, 6), q, k, v)
    assert torch.isfinite(fst[0]).all()
    assert_same(ref[0], fst[0], ref[1], fst[1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", [1, 5, 300])
def test_window_fast_matches_reference(shape, window, tiles, flash_path):
    q, k, v = qkv(*shape)
    ref = grads(lambda a, b, c: sliding_window_attention_reference(a, b, c, window), q, k, v)
    fst = grads(lambda a, b, c: sliding_window_attention_fast(a, b, c, window), q, k, v)
    assert_same(ref[0], fst[0], ref[1], fst[1], **TOL)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("l", "d"), [(8, 4), (4, 4), (6, 2)])
def test_compressed_fast_matches_reference(shape, l, d, tiles):
    T = shape[1]
    q, k, v = qkv(*shape, n_keys=(T - l) // d + 1)
    ref = grads(lambda a, b, c: compressed_attention_reference(a, b, c, l, d), q, k, v)
    fst = grads(lambda a, b, c: compressed_attention_fast(a, b, c, l, d), q, k, v)
    assert_same(ref[0], fst[0], ref[1], fst[1], **TOL)


def test_long_sequence_crosses_tiles():
    """T beyond the fast path's tile sizes, so tile boundaries are exercised."""
    q, k, v = qkv(1, 700, 4, 2, 8)
    idx = random_blocks(1, 700, 2, 4, 16)
    torch.testing.assert_close(
        selection_attention_fast(q, k, v, idx, 16), selection_attention_reference(q, k, v, idx, 16), **TOL
    )
    torch.testing.assert_close(
        sliding_window_attention_fast(q, k, v, 200), sliding_window_attention_reference(q, k, v, 200), **TOL
    )
    kc, vc = k[:, :174], v[:, :174]  # (700 - 8) // 4 + 1 compressed blocks
    for a, b in zip(
        compressed_attention_fast(q, kc, vc, 8, 4), compressed_attention_reference(q, kc, vc, 8, 4), strict=False
    ):
        torch.testing.assert_close(a, b, **TOL)


def test_bf16_smoke():
    q, k, v = qkv(1, 40, 4, 2, 16, dtype=torch.bfloat16)
    idx = random_blocks(1, 40, 2, 3, 8)
    pairs = [
        (selection_attention_fast(q, k, v, idx, 8), selection_attention_reference(q, k, v, idx, 8)),
        (sliding_window_attention_fast(q, k, v, 7), sliding_window_attention_reference(q, k, v, 7)),
        (
            compressed_attention_fast(q, k[:, :9], v[:, :9], 8, 4)[0],
            compressed_attention_reference(q, k[:, :9], v[:, :9], 8, 4)[0],
        ),
    ]
    for a, b in pairs:
        assert a.dtype == torch.bfloat16 and b.dtype == torch.bfloat16
        assert torch.isfinite(a.float()).all()
        torch.testing.assert_close(a.float(), b.float(), atol=2e-2, rtol=2e-2)


# --- reductions to dense causal attention -------------------------------------------------------------------


def dense_causal(q, k, v):
    G = q.shape[2] // k.shape[2]
    o = F.scaled_dot_product_attention(
        q.transpose(1, 2),
        k.repeat_interleave(G, 2).transpose(1, 2),
        v.repeat_interleave(G, 2).transpose(1, 2),
        is_causal=True,
    )
    return o.transpose(1, 2)


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_window_at_least_T_is_dense(impl):
    q, k, v = qkv(2, 33, 4, 2, 8)
    for w in (33, 100):
        torch.testing.assert_close(sliding_window_attention(q, k, v, w, impl=impl), dense_causal(q, k, v), **TOL)


def banded_attention(q, k, v, w: int) -> torch.Tensor:
    """Softmax attention of query t over exactly keys t-w+1 .. t (a band mask built here, not the ops'), in fp64."""
    T, G = q.shape[1], q.shape[2] // k.shape[2]
    kx, vx = (x.double().repeat_interleave(G, 2) for x in (k, v))
    scores = torch.einsum("bthd,bshd->bhts", q.double(), kx) / q.shape[-1] ** 0.5
    behind = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # query minus key
    band = (behind >= 0) & (behind < w)
    p = scores.masked_fill(~band, float("-inf")).softmax(-1)
    return torch.einsum("bhts,bshd->bthd", p, vx).to(q.dtype)


@pytest.mark.parametrize("impl", ["reference", "fast"])
@pytest.mark.parametrize("w", [1, 2, 7])
def test_window_is_exactly_the_last_w_keys(impl, w, tiles, flash_path):
    """Review revBV: the window's "last w keys, itself included" was held only by the paths agreeing with each
    other (w+1 keys on both passed); here against a band mask written in the test, at w < T, the gated branch
    too. w=1 is the query's own value."""
    from nsa_train.nsa import dispatch

    q, k, v = qkv(1, 23, 4, 2, 8)
    gate = torch.rand(1, 23, 4, generator=torch.Generator().manual_seed(9))
    want = banded_attention(q, k, v, w)
    torch.testing.assert_close(sliding_window_attention(q, k, v, w, impl=impl), want, **TOL)
    gated = dispatch.gated_sliding_window_attention(q, k, v, w, gate, impl=impl)
    torch.testing.assert_close(gated, gate[..., None] * want, **TOL)
    if w == 1:
        torch.testing.assert_close(want, v.repeat_interleave(2, 2), **TOL)


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_selecting_every_block_is_dense(impl):
    B, T, H, bs = 2, 35, 2, 8
    q, k, v = qkv(B, T, 4, H, 8)
    every = torch.arange(5).expand(B, T, H, 5)
    torch.testing.assert_close(selection_attention(q, k, v, every, bs, impl=impl), dense_causal(q, k, v), **TOL)


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_compression_identity_is_shifted_dense(impl):
    q, k, v = qkv(2, 21, 4, 2, 8)
    # l = d = 1, identity φ: block i is token i, visible iff i <= t, i.e. dense causal attention
    o, p = compressed_attention(q, k, v, 1, 1, impl=impl)
    torch.testing.assert_close(o, dense_causal(q, k, v), **TOL)
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 21, 4), **TOL)
    # l = 2, d = 1: block i ends at token i+1, so query t sees tokens 0..t-1 (shifted by one); query 0 sees none
    o2, _ = compressed_attention(q, k[:, :20], v[:, :20], 2, 1, impl=impl)
    shifted = dense_causal(q[:, 1:], k[:, :20], v[:, :20])
    torch.testing.assert_close(o2[:, 1:], shifted, **TOL)
    assert (o2[:, 0] == 0).all()


# --- causality ------------------------------------------------------------------------------------------------


def _check_causal(fn, q, k, v, t: int, key_cut: int) -> None:
    """Change q/k/v at positions > t (keys from key_cut on): outputs at <= t unchanged, their grads there zero."""
    q2, k2, v2 = q.clone(), k.clone(), v.clone()
    q2[:, t + 1 :] += 3.0
    k2[:, key_cut:] -= 2.0
    v2[:, key_cut:] *= -4.0
    a, b = fn(q, k, v), fn(q2, k2, v2)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1], atol=0, rtol=0)
    xs = [x.clone().requires_grad_(True) for x in (q, k, v)]
    fn(*xs)[:, t].sum().backward()
    assert (xs[0].grad[:, t + 1 :] == 0).all()
    assert (xs[1].grad[:, key_cut:] == 0).all() and (xs[2].grad[:, key_cut:] == 0).all()


@pytest.mark.parametrize("impl", ["reference", "fast"])
# 14 = 2*d + l - 2: the last query before compressed block 2 is whole (review revBE: a block visible one token early
# passed 0, 13 and 30); 15, 19, 23 = i*d + l - 1: the queries at which blocks 2, 3, 4 become visible
@pytest.mark.parametrize("t", [0, 13, 14, 15, 19, 23, 30])
def test_ops_are_causal(impl, t, tiles):
    B, T, H = 2, 31, 2
    q, k, v = qkv(B, T, 4, H, 8)
    idx = random_blocks(B, T, H, 3, 4)
    _check_causal(lambda a, b, c: selection_attention(a, b, c, idx, 4, impl=impl), q, k, v, t, t + 1)
    _check_causal(lambda a, b, c: sliding_window_attention(a, b, c, 6, impl=impl), q, k, v, t, t + 1)
    l, d = 8, 4
    # query t sees compressed block i iff i*d + l - 1 <= t: the blocks it cannot see start at the count of those
    # it can (review revBV: '(t - l) // d + 1' was one block short at every t where a block becomes visible)
    first_hidden = max(0, (t - l + 1) // d + 1)
    kc, vc = k[:, :6], v[:, :6]
    _check_causal(lambda a, b, c: compressed_attention(a, b, c, l, d, impl=impl)[0], q, kc, vc, t, first_hidden)


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_compressed_attention_is_causal_at_every_block_boundary(impl, tiles):
    """The perturbation check at t = i*d + l - 2 (the last query before block i is whole) and i*d + l - 1 (the
    first that sees it) for every block: a block visible one token early (i*d + l - 2 <= t, in both paths)
    failed test_ops_are_causal at its t = 14 only."""
    T, l, d = 31, 8, 4
    q, k, v = qkv(2, T, 4, 2, 8)
    n_cmp = (T - l) // d + 1
    kc, vc = k[:, :n_cmp], v[:, :n_cmp]
    for t in sorted({i * d + l - 1 - before for i in range(n_cmp) for before in (0, 1)}):
        first_hidden = max(0, (t - l + 1) // d + 1)  # the number of blocks whose last token i*d + l - 1 is <= t
        _check_causal(lambda a, b, c: compressed_attention(a, b, c, l, d, impl=impl)[0], q, kc, vc, t, first_hidden)


@pytest.mark.parametrize("impl", ["reference", "fast"])
@pytest.mark.parametrize(("l", "d"), [(8, 4), (5, 3), (6, 6)])
def test_compressed_block_i_is_visible_from_query_i_d_plus_l_minus_1_on(impl, l, d, tiles):
    """The visibility boundary itself, on p: compressed block i has exactly zero mass at every query before
    i*d + l - 1 and a positive one from there on."""
    T = 31
    q, k, v = qkv(2, T, 4, 2, 8)
    n_cmp = (T - l) // d + 1
    _, p = compressed_attention(q, k[:, :n_cmp], v[:, :n_cmp], l, d, impl=impl)
    for i in range(n_cmp):
        first = i * d + l - 1
        assert (p[:, :first, :, i] == 0).all(), f"block {i} is seen before query {first}"
        assert (p[:, first:, :, i] > 0).all(), f"block {i} is not seen from query {first} on"


@pytest.mark.parametrize("impl", ["reference", "fast"])
@pytest.mark.parametrize(("l", "d", "l_sel"), [(8, 4, 8), (6, 2, 6)])
def test_the_layers_compressed_op_sees_block_i_from_query_i_d_plus_l_minus_1_on(impl, l, d, l_sel, tiles):
    """The same boundary for the layer's compressed op, which returns no p: changing block i's key and value
    leaves its output and block choice bit-identical at every query before i*d + l - 1 and changes the output
    of that query."""
    from nsa_train.nsa.dispatch import gated_compressed_attention_and_selection

    T = 31
    q, k, v = qkv(2, T, 4, 2, 8)
    n_cmp = (T - l) // d + 1
    kc, vc = k[:, :n_cmp], v[:, :n_cmp]
    gate = torch.ones(2, T, 4)
    o, ids = gated_compressed_attention_and_selection(q, kc, vc, l, d, l_sel, 3, gate, impl)
    for i in range(n_cmp):
        first = i * d + l - 1
        kc2, vc2 = kc.clone(), vc.clone()
        kc2[:, i] -= 2.0
        vc2[:, i] *= -4.0
        o2, ids2 = gated_compressed_attention_and_selection(q, kc2, vc2, l, d, l_sel, 3, gate, impl)
        assert torch.equal(o2[:, :first], o[:, :first]) and torch.equal(ids2[:, :first], ids[:, :first]), i
        assert (o2[:, first] != o[:, first]).any(dim=-1).all(), f"block {i} is not seen by query {first}"


# --- gradcheck, edge cases, dispatch ---------------------------------------------------------------------------


def _gradcheck_all(impl: str) -> None:
    q, k, v = (x.requires_grad_(True) for x in qkv(1, 9, 2, 1, 4, dtype=torch.float64))
    idx = random_blocks(1, 9, 1, 2, 3)
    assert torch.autograd.gradcheck(lambda a, b, c: selection_attention(a, b, c, idx, 3, impl=impl), (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: sliding_window_attention(a, b, c, 4, impl=impl), (q, k, v))
    kc, vc = (x[:, :4].detach().requires_grad_(True) for x in (k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: compressed_attention(a, b, c, 4, 2, impl=impl), (q, kc, vc))


def test_gradcheck_float64_reference():
    _gradcheck_all("reference")


def test_gradcheck_float64_fast(tiles):
    _gradcheck_all("fast")


def test_gradcheck_float64_layer_branches(tiles, flash_path):
    """The layer's gated ops (not behind the public names) in float64: compressed branch with selection, gated
    selection and gated window, gate gradients included, on both backward paths."""
    from nsa_train.nsa.fast import (
        compressed_attention_and_selection_fast,
        gated_selection_fast,
        gated_sliding_window_fast,
    )

    q, k, v = (x.requires_grad_(True) for x in qkv(1, 20, 4, 2, 4, dtype=torch.float64))
    gate = torch.rand(1, 20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    kc, vc = (x[:, :9].detach().requires_grad_(True) for x in (k, v))
    cmp = lambda a, b, c, g: compressed_attention_and_selection_fast(a, b, c, 4, 2, 4, 3, gate=g)[0]  # noqa: E731
    assert torch.autograd.gradcheck(cmp, (q, kc, vc, gate))
    idx = random_blocks(1, 20, 2, 2, 4)
    assert torch.autograd.gradcheck(lambda a, b, c, g: gated_selection_fast(a, b, c, idx, 4, g), (q, k, v, gate))
    assert torch.autograd.gradcheck(lambda a, b, c, g: gated_sliding_window_fast(a, b, c, 5, g), (q, k, v, gate))


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_no_nan_when_nothing_is_visible(impl):
    q, k, v = (x.requires_grad_(True) for x in qkv(1, 10, 2, 1, 8))
    o, p = compressed_attention(q, k[:, :2], v[:, :2], 8, 4, impl=impl)  # queries 0..6 see no block
    assert (o[:, :7] == 0).all() and (p[:, :7] == 0).all() and torch.isfinite(o).all()
    empty = torch.full((1, 10, 1, 2), -1)  # no block selected at all
    o_sel = selection_attention(q, k, v, empty, 4, impl=impl)
    assert (o_sel == 0).all()
    (o.sum() + o_sel.sum()).backward()
    assert all(torch.isfinite(x.grad).all() for x in (q, k, v))


def test_triton_on_cpu_falls_back_counted():
    q, k, v = qkv(1, 16, 2, 1, 8)
    idx = random_blocks(1, 16, 1, 2, 4)
    before = fallbacks.snapshot().get("selection.triton->fast", 0)
    out = selection_attention(q, k, v, idx, 4, impl="triton")
    assert fallbacks.snapshot()["selection.triton->fast"] == before + 1
    torch.testing.assert_close(out, selection_attention_reference(q, k, v, idx, 4), **TOL)
    selection_attention(q, k, v, idx, 4, impl="auto")  # CPU auto = fast by design: not a fallback
    assert fallbacks.snapshot()["selection.triton->fast"] == before + 1


def test_window_and_compressed_triton_on_cpu_fall_back_counted_under_their_branch_names():
    q, k, v = qkv(1, 16, 2, 1, 8)
    before = fallbacks.snapshot()
    out = sliding_window_attention(q, k, v, 4, impl="triton")
    torch.testing.assert_close(out, sliding_window_attention_reference(q, k, v, 4), **TOL)
    kc, vc = k[:, :7], v[:, :7]  # 7 blocks of 4 with stride 2
    o, p = compressed_attention(q, kc, vc, 4, 2, impl="triton")
    want = compressed_attention_reference(q, kc, vc, 4, 2)
    torch.testing.assert_close(o, want[0], **TOL)
    torch.testing.assert_close(p, want[1], **TOL)
    after = fallbacks.snapshot()
    grew = {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)}
    assert grew == {"window.triton->fast": 1, "compressed.triton->fast": 1}
    sliding_window_attention(q, k, v, 4, impl="auto")  # CPU auto = fast by design: not a fallback
    assert fallbacks.snapshot() == after


# The fused compressed+selection op's sizes in the tests below: with n_sel = 3 every row took exactly the forced
# blocks {0, cur-1, cur} whatever the scores, so a broken block choice passed (review revBV). With l_sel = 4 and
# n_sel = 5, every query from t = 20 on chooses 2 of its cur-2 (>= 3) free blocks by score, in every shape.
FUSED = {"l": 8, "d": 4, "l_sel": 4, "n_sel": 5}


@pytest.mark.parametrize("shape", [*SHAPES, (1, 300, 4, 2, 8)], ids=str)
def test_layer_compressed_branch_matches_reference(shape, tiles, flash_path):
    """The layer's fused compressed branch (one softmax serving the output and the block choice) against its
    reference twin, the reference op plus select_blocks on the reference probabilities: outputs, block ids and
    gradients; with free choices that depend on the scores."""
    from nsa_train.nsa.fast import compressed_attention_and_selection_fast
    from nsa_train.nsa.reference import compressed_attention_and_selection_reference
    from nsa_train.nsa.selection import select_blocks

    _, T, _, H, _ = shape
    l, d, l_sel, n_sel = FUSED["l"], FUSED["d"], FUSED["l_sel"], FUSED["n_sel"]
    q, k, v = qkv(*shape, n_keys=(T - l) // d + 1)
    out_ref, grads_ref = grads(
        lambda a, b, c: compressed_attention_and_selection_reference(a, b, c, l, d, l_sel, n_sel)[0], q, k, v
    )
    out_fst, grads_fst = grads(
        lambda a, b, c: compressed_attention_and_selection_fast(a, b, c, l, d, l_sel, n_sel)[0], q, k, v
    )
    assert_same(out_ref, out_fst, grads_ref, grads_fst, **TOL)
    _, p = compressed_attention_reference(q, k, v, l, d)
    ids_ref = compressed_attention_and_selection_reference(q, k, v, l, d, l_sel, n_sel)[1]
    assert torch.equal(ids_ref, select_blocks(p, 0, H, l, d, l_sel, n_sel, T))  # the twin is that composition
    ids_fst = compressed_attention_and_selection_fast(q, k, v, l, d, l_sel, n_sel)[1]
    assert torch.equal(ids_fst, ids_ref)
    other_scores = compressed_attention_and_selection_reference(-q, k, v, l, d, l_sel, n_sel)[1]
    assert not torch.equal(other_scores, ids_ref)  # the ids depend on the scores: the check above can fail


def test_bf16_block_choice_is_the_fast_paths():
    """Review revBE: in bf16 the reference twin chose its blocks from probabilities rounded to bf16 (more ties) where
    the fast path (and the Triton importance kernel) choose from fp32 ones: 10 of 4096 rows differed here."""
    from nsa_train.nsa.fast import compressed_attention_and_selection_fast
    from nsa_train.nsa.reference import compressed_attention_and_selection_reference

    l, d, l_sel, n_sel, T = 16, 8, 16, 4, 1024
    q, k, v = (x.bfloat16() for x in qkv(2, T, 4, 2, 16, n_keys=(T - l) // d + 1))
    ids_ref = compressed_attention_and_selection_reference(q, k, v, l, d, l_sel, n_sel)[1]
    ids_fst = compressed_attention_and_selection_fast(q, k, v, l, d, l_sel, n_sel)[1]
    assert torch.equal(ids_ref, ids_fst), (ids_ref != ids_fst).any(-1).sum()


@pytest.mark.parametrize("shape", [*SHAPES, (1, 300, 4, 2, 8)], ids=str)
def test_gated_branches_match_gate_times_reference(shape, tiles, flash_path):
    """The layer's gated branches against their reference twins (gate * the reference op), gate gradients
    included, and the compressed branch's block ids; and each twin is gate * its reference op."""
    from nsa_train.nsa import reference as R
    from nsa_train.nsa.fast import (
        compressed_attention_and_selection_fast,
        gated_selection_fast,
        gated_sliding_window_fast,
    )

    B, T, HQ, _, _ = shape
    gate = torch.rand(B, T, HQ, generator=torch.Generator().manual_seed(5))
    q, k, v = qkv(*shape)
    ref = grads(lambda a, b, c, g: R.gated_sliding_window_reference(a, b, c, 6, g), q, k, v, gate)
    fst = grads(lambda a, b, c, g: gated_sliding_window_fast(a, b, c, 6, g), q, k, v, gate)
    assert_same(ref[0], fst[0], ref[1], fst[1], **TOL)
    assert torch.equal(ref[0], gate[..., None] * sliding_window_attention_reference(q, k, v, 6))
    l, d = FUSED["l"], FUSED["d"]
    kc, vc = k[:, : (T - l) // d + 1], v[:, : (T - l) // d + 1]
    ref = grads(
        lambda a, b, c, g: R.compressed_attention_and_selection_reference(a, b, c, **FUSED, gate=g)[0], q, kc, vc, gate
    )
    fst = grads(
        lambda a, b, c, g: compressed_attention_and_selection_fast(a, b, c, **FUSED, gate=g)[0], q, kc, vc, gate
    )
    assert_same(ref[0], fst[0], ref[1], fst[1], **TOL)
    assert torch.equal(ref[0], gate[..., None] * compressed_attention_reference(q, kc, vc, l, d)[0])
    ids_ref = R.compressed_attention_and_selection_reference(q, kc, vc, **FUSED, gate=gate)[1]
    assert torch.equal(compressed_attention_and_selection_fast(q, kc, vc, **FUSED, gate=gate)[1], ids_ref)
    idx = random_blocks(B, T, shape[3], 3, 6)
    ref = grads(lambda a, b, c, g: R.gated_selection_reference(a, b, c, idx, 6, g), q, k, v, gate)
    fst = grads(lambda a, b, c, g: gated_selection_fast(a, b, c, idx, 6, g), q, k, v, gate)
    assert_same(ref[0], fst[0], ref[1], fst[1], **TOL)
    assert torch.equal(ref[0], gate[..., None] * selection_attention_reference(q, k, v, idx, 6))


@pytest.mark.parametrize("impl", ["reference", "fast", "triton"])
def test_gated_selection_dispatch_matches_every_path(impl):
    """The layer's entry point for the selected branch: gate * selection on every path (triton on a CPU without
    the interpreter falls back to the gated fast op, counted), gate gradients included."""
    from nsa_train.nsa.dispatch import gated_selection_attention, resolve_impl

    q, k, v = qkv(1, 40, 4, 2, 8)
    gate = torch.rand(1, 40, 4, generator=torch.Generator().manual_seed(3))
    idx = random_blocks(1, 40, 2, 3, 8)
    ref = grads(lambda a, b, c, g: g[..., None] * selection_attention_reference(a, b, c, idx, 8), q, k, v, gate)
    before = fallbacks.snapshot().get("selection.triton->fast", 0)
    got = grads(lambda a, b, c, g: gated_selection_attention(a, b, c, idx, 8, g, impl=impl), q, k, v, gate)
    assert_same(ref[0], got[0], ref[1], got[1], **TOL)
    fell_back = impl == "triton" and resolve_impl(impl, q.device) == "fast"
    assert fallbacks.snapshot().get("selection.triton->fast", 0) == before + int(fell_back)


@pytest.mark.parametrize("flash", [True, False])
def test_window_backward_on_cpu_reuses_the_forward(monkeypatch, flash):
    """On CPU the window's backward starts from the saved output and log-sum-exp: no group is recomputed."""
    from nsa_train.nsa import fast

    if not flash:
        monkeypatch.setattr(fast, "_cpu_flash_route", lambda q, v: False)
    calls = []
    core = fast._window_core
    monkeypatch.setattr(fast, "_window_core", lambda *a: calls.append(1) or core(*a))
    q, k, v = qkv(1, 40, 4, 2, 8)
    gate = torch.rand(1, 40, 4, requires_grad=True)
    fast.gated_sliding_window_fast(q, k, v, 6, gate).sum().backward()
    assert (len(calls) == 0) if flash else (len(calls) > 0)


@pytest.mark.parametrize("flash", [True, False])
def test_compressed_backward_on_cpu_reuses_the_forward(monkeypatch, flash):
    """On CPU the compressed branch's backward runs the flash op's backward on the saved output and log-sum-exp:
    no tile's scores are recomputed (only the forward computes them)."""
    from nsa_train.nsa import fast

    if not flash:
        monkeypatch.setattr(fast, "_cpu_flash_route", lambda q, v: False)
    q, k, v = qkv(1, 40, 4, 2, 8, n_keys=9)
    gate = torch.rand(1, 40, 4, requires_grad=True)
    o, _ = fast.compressed_attention_and_selection_fast(q, k, v, 8, 4, 8, 3, gate=gate)
    calls = []
    scores = fast._cmp_scores
    monkeypatch.setattr(fast, "_cmp_scores", lambda *a: calls.append(1) or scores(*a))
    o.sum().backward()
    assert (len(calls) == 0) if flash else (len(calls) > 0)


def test_tile_sizes_are_the_cpus_on_cpu_and_large_but_bounded_on_cuda():
    from nsa_train.nsa import fast

    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # device objects only: no GPU needed
    assert fast.cmp_tile(cpu, 1, 8, 4095, 65536) == fast.CMP_TILE
    assert fast.window_group(cpu) == fast.WINDOW_GROUP
    # 64k tokens, 8 query heads: 8192 queries keep the fp32 scores [1, 2, 4*8192, 4095] at 1 GiB
    assert fast.cmp_tile(cuda, 1, 8, 4095, 65536) == 8192
    assert 4 * 8 * 8192 * 4095 <= fast.CUDA_CMP_TILE_BYTES < 4 * 8 * (8192 + fast.CMP_TILE) * 4095
    assert fast.cmp_tile(cuda, 1, 8, 511, 8192) == 8192  # all of 8k in one tile
    assert fast.cmp_tile(cuda, 8, 12, 127, 2049) == 2049  # a training batch: one tile of the whole sequence
    assert fast.cmp_tile(cuda, 64, 64, 1 << 20, 1 << 24) == fast.CMP_TILE  # never below the CPU's tile
    assert fast.window_group(cuda) == fast.CUDA_WINDOW_GROUP > fast.WINDOW_GROUP


def test_masked_selection_route_is_for_short_sequences_only():
    """The bounds bench/selection_short.py measured: the tiny default's shape (batch 8, 256 tokens, 4 query
    heads, 4 blocks of 16) and up to 4M scores take one masked SDPA; longer sequences, or selections covering
    under a quarter of the keys, the block-major route (memory O(T), no T x T mask)."""
    use = fast_selection_masked.use_masked_selection
    assert use(8, 256, 4, 4, 16) and use(16, 256, 4, 4, 16) and use(1, 23, 16, 3, 6)
    assert not use(8, 384, 4, 4, 16)  # 4.5M scores
    assert not use(1, 2048, 8, 16, 64)  # the paper's blocks at 2k tokens
    assert not use(1, 32768, 8, 16, 64)
    assert not use(1, 256, 4, 1, 16)  # 16 keys per selected one
    with fast_selection_masked.route(False):
        assert not use(8, 256, 4, 4, 16)
    with fast_selection_masked.route(True):
        assert use(1, 32768, 8, 16, 64)
    assert use(8, 256, 4, 4, 16)  # the route is the shape's again


@pytest.mark.parametrize("dv", [4, 12])
def test_values_of_another_width_than_keys(dv):
    """v [B, T, H, Dv] with Dv != D, as the API allows: on CPU the window and compressed branches then leave
    PyTorch's flash op (which refuses it) for their recompute path, and agree with the reference."""
    from nsa_train.nsa import fast

    q, k, _ = qkv(2, 29, 4, 2, 8)
    v = torch.randn(2, 29, 2, dv, generator=torch.Generator().manual_seed(3))
    ref = grads(lambda a, b, c: sliding_window_attention_reference(a, b, c, 6), q, k, v)
    got = grads(lambda a, b, c: sliding_window_attention_fast(a, b, c, 6), q, k, v)
    assert got[0].shape == (2, 29, 4, dv)
    assert_same(ref[0], got[0], ref[1], got[1], **TOL)

    kc, vc = k[:, :6], v[:, :6]  # 6 compressed blocks (l=8, d=4 cover 29 tokens)
    gate = torch.rand(2, 29, 4)
    ref = grads(lambda a, b, c, g: compressed_attention_reference(a, b, c, 8, 4)[0] * g[..., None], q, kc, vc, gate)
    got = grads(
        lambda a, b, c, g: fast.compressed_attention_and_selection_fast(a, b, c, 8, 4, 8, 3, gate=g)[0], q, kc, vc, gate
    )
    assert_same(ref[0], got[0], ref[1], got[1], **TOL)


@pytest.mark.parametrize("op", [compressed_attention_reference, compressed_attention_fast, compressed_attention])
def test_no_compressed_block_yet_is_zero_with_zero_gradients(op):
    """T < l: no block exists. o = 0 and p is empty, and o is still a function of the inputs: backward gives
    zero gradients (it raised 'does not require grad' before)."""
    q = torch.randn(1, 5, 4, 8, requires_grad=True)
    k, v = torch.randn(1, 0, 2, 8, requires_grad=True), torch.randn(1, 0, 2, 6, requires_grad=True)
    o, p = op(q, k, v, 8, 4)
    assert o.shape == (1, 5, 4, 6) and p.shape == (1, 5, 4, 0) and not o.any()
    o.sum().backward()
    assert q.grad is not None and not q.grad.any() and k.grad.shape == k.shape and v.grad.shape == v.shape


@pytest.mark.parametrize(("l", "d", "l_sel"), [(8, 4, 6), (6, 4, 8), (8, 3, 6)])
def test_block_sizes_that_are_not_whole_strides_are_refused(l, d, l_sel):
    from nsa_train.nsa.selection import selection_block_scores

    with pytest.raises(ValueError, match="multiples of the stride d"):
        selection_block_scores(torch.rand(1, 4, 2, 5), l, d, l_sel, 4)


@pytest.mark.parametrize("impl", ["reference", "fast"])
@pytest.mark.parametrize(("l", "d"), [(0, 4), (4, -2), (-3, 2), (4, 0), (4.0, 2)])
def test_bad_compressed_block_sizes_are_one_error_on_every_path(impl, l, d):
    """They ran: a stride of -2 gave the reference an output and the fast path zeros, 0 divided by zero on one."""
    q, kc, vc = torch.randn(1, 20, 4, 8), torch.randn(1, 3, 2, 8), torch.randn(1, 3, 2, 8)
    with pytest.raises(ValueError, match=r"(block_length|stride) must be an integer >= 1, got"):
        compressed_attention(q, kc, vc, l, d, impl=impl)


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_bad_selection_block_sizes_and_float_ids_are_one_error_on_every_path(impl):
    q, k, v = torch.randn(1, 20, 4, 8), torch.randn(1, 20, 2, 8), torch.randn(1, 20, 2, 8)
    ids = torch.zeros(1, 20, 2, 2, dtype=torch.long)
    for size in (0, -4):
        with pytest.raises(ValueError, match=f"block_size must be an integer >= 1, got {size}"):
            selection_attention(q, k, v, ids, size, impl=impl)
    with pytest.raises(ValueError, match="block_indices must be an integer tensor, got torch.float32"):
        selection_attention(q, k, v, ids.float(), 4, impl=impl)


@pytest.mark.parametrize("n_sel", [2, 1, 0, 3.0, True])
def test_n_sel_below_the_forced_blocks_is_one_error_on_every_path(n_sel):
    """Review revBV: only NSAConfig refused n_sel < 3; select_blocks (exported) with n_sel 2 returned [0, cur-1]
    for every query, dropping the query's own block (the forced blocks tie, ties go to the lower id). Refused by
    select_blocks and by the layer's compressed op on every path."""
    from nsa_train.nsa import dispatch
    from nsa_train.nsa.fast import compressed_attention_and_selection_fast
    from nsa_train.nsa.reference import compressed_attention_and_selection_reference
    from nsa_train.nsa.selection import select_blocks
    from nsa_train.nsa.triton.compressed import compressed_attention_and_selection_triton

    q, kc, vc = torch.randn(1, 20, 4, 8), torch.randn(1, 4, 2, 8), torch.randn(1, 4, 2, 8)
    gate = torch.rand(1, 20, 4)
    calls = [
        lambda: select_blocks(torch.rand(1, 64, 1, 16), 0, 1, 4, 4, 4, n_sel, 64),
        lambda: compressed_attention_and_selection_reference(q, kc, vc, 8, 4, 16, n_sel),
        lambda: compressed_attention_and_selection_fast(q, kc, vc, 8, 4, 16, n_sel),
        lambda: compressed_attention_and_selection_triton(q, kc, vc, 8, 4, 16, n_sel),
        *(
            lambda impl=impl: dispatch.gated_compressed_attention_and_selection(q, kc, vc, 8, 4, 16, n_sel, gate, impl)
            for impl in ("reference", "fast", "triton")
        ),
    ]
    says = rf"n_sel must be an integer >= 3 \(block 0 and the 2 local blocks are always selected\), got {n_sel!r}"
    for call in calls:
        with pytest.raises(ValueError, match=says):
            call()


@pytest.mark.parametrize("window_size", [4.5, 30.5, 0, True])
def test_a_window_size_that_is_no_positive_integer_is_one_error_on_every_path(window_size):
    """Review revBV: a window of 4.5 ran on the reference as a window of 5 and raised a TypeError from pad() on
    the fast path; 30.5 (>= T) ran as 31 on the fast path."""
    from nsa_train.nsa import dispatch
    from nsa_train.nsa import reference as R
    from nsa_train.nsa.fast import gated_sliding_window_fast
    from nsa_train.nsa.triton.window import sliding_window_attention_triton

    q, k, v = qkv(1, 20, 4, 2, 8)
    gate = torch.rand(1, 20, 4)
    calls = [
        lambda: sliding_window_attention_reference(q, k, v, window_size),
        lambda: sliding_window_attention_fast(q, k, v, window_size),
        lambda: sliding_window_attention_triton(q, k, v, window_size),
        lambda: R.gated_sliding_window_reference(q, k, v, window_size, gate),
        lambda: gated_sliding_window_fast(q, k, v, window_size, gate),
        *(
            lambda impl=impl: dispatch.gated_sliding_window_attention(q, k, v, window_size, gate, impl)
            for impl in ("reference", "fast", "triton")
        ),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=rf"window_size must be an integer >= 1, got {window_size!r}"):
            call()


def bad_calls() -> dict[str, tuple[object, str]]:
    """A caller's mistakes on the public ops and the layer's gated ones: name -> (call(impl), the error it gets)."""
    from nsa_train.nsa import dispatch

    q, k, v = qkv(1, 16, 4, 2, 8)
    ids, kc, vc = torch.zeros(1, 16, 2, 2, dtype=torch.long), k[:, :3], v[:, :3]
    gate = torch.rand(1, 16, 4)
    return {
        "float-ids": (
            lambda impl: selection_attention(q, k, v, ids.float(), 4, impl=impl),
            "block_indices must be an integer tensor, got torch.float32",
        ),
        "ids-of-another-T": (
            lambda impl: selection_attention(q, k, v, ids[:, :15], 4, impl=impl),
            r"block_indices must be \[B, T, H, S\] = \[1, 16, 2, S\], got \(1, 15, 2, 2\)",
        ),
        "block-size-0": (
            lambda impl: selection_attention(q, k, v, ids, 0, impl=impl),
            "block_size must be an integer >= 1, got 0",
        ),
        "keys-of-another-T": (
            lambda impl: sliding_window_attention(q, k[:, :15], v[:, :15], 4, impl=impl),
            "k/v length 15 differs from q length 16",
        ),
        "window-0": (
            lambda impl: sliding_window_attention(q, k, v, 0, impl=impl),
            "window_size must be an integer >= 1, got 0",
        ),
        "stride-0": (lambda impl: compressed_attention(q, kc, vc, 4, 0, impl=impl), "stride must be an integer >= 1"),
        "3-query-heads-for-2-kv-heads": (
            lambda impl: compressed_attention(q[:, :, :3], kc, vc, 4, 2, impl=impl),
            r"query heads \(3\) must be a multiple of key/value heads \(2\)",
        ),
        "gated-selection-float-ids": (
            lambda impl: dispatch.gated_selection_attention(q, k, v, ids.float(), 4, gate, impl=impl),
            "block_indices must be an integer tensor",
        ),
        "gate-of-another-shape": (
            lambda impl: dispatch.gated_sliding_window_attention(q, k, v, 4, gate[..., :1], impl=impl),
            r"gate must be \[B, T, HQ\] = \[1, 16, 4\], got \(1, 16, 1\)",
        ),
        "l-not-whole-strides": (
            lambda impl: dispatch.gated_compressed_attention_and_selection(q, kc, vc, 6, 4, 8, 3, gate, impl=impl),
            r"l \(6\) and l_sel \(8\) must be multiples of the stride d \(4\)",
        ),
        "n_sel-0": (
            lambda impl: dispatch.gated_compressed_attention_and_selection(q, kc, vc, 4, 2, 4, 0, gate, impl=impl),
            r"n_sel must be an integer >= 3 \(block 0 and the 2 local blocks are always selected\), got 0",
        ),
        "window-4.5": (
            lambda impl: sliding_window_attention(q, k, v, 4.5, impl=impl),
            "window_size must be an integer >= 1, got 4.5",
        ),
        **{
            f"{op.__name__}-scale-{name}": (lambda impl, op=op, args=args, scale=scale: op(*args, scale, impl), says)
            for op, args in (
                (selection_attention, (q, k, v, ids, 4)),
                (sliding_window_attention, (q, k, v, 4)),
                (compressed_attention, (q, kc, vc, 4, 2)),
            )
            for name, (scale, says) in BAD_SCALES.items()
        },
    }


SCALE_RULE = r"scale must be None or a finite number > 0 \(a Python real or a 0-d tensor that needs no gradient\), got"
# A softmax scale that is no finite positive number: float() took a string and a one-element tensor, NaN and inf
# gave NaN outputs, and on the Triton path a string failed in the kernel and was counted as a kernel fallback
BAD_SCALES = {
    "str": ("0.5", f"{SCALE_RULE} '0.5'"),
    "nan": (float("nan"), f"{SCALE_RULE} nan"),
    "inf": (float("inf"), f"{SCALE_RULE} inf"),
    "0": (0, f"{SCALE_RULE} 0.0"),
    "negative": (-0.5, f"{SCALE_RULE} -0.5"),
    "bool": (True, f"{SCALE_RULE} True"),
    "2-elements": (torch.tensor([0.5, 0.5]), rf"{SCALE_RULE} a torch.float32 tensor of shape \(2,\)"),
    "1-element-1-d": (torch.tensor([0.5]), rf"{SCALE_RULE} a torch.float32 tensor of shape \(1,\)"),
    "0-d-requires-grad": (torch.tensor(0.5, requires_grad=True), f"{SCALE_RULE} a tensor that requires grad"),
    "0-d-nan": (torch.tensor(float("nan")), f"{SCALE_RULE} nan"),
}


@pytest.mark.parametrize("impl", ["triton", "auto", "fast", "reference"])
@pytest.mark.parametrize("case", list(bad_calls()))
def test_a_callers_bad_argument_is_one_error_on_every_path_and_no_fallback(case, impl):
    """Review revBV: impl='triton' counted a caller's bad argument as a Triton fallback (and kept its message as
    the kernel's reason) before the fast path raised it. The dispatch checks the arguments before it picks a
    path: the same error on every path, nothing counted. (tests/nsa_triton/test_dispatch_interpreter.py: the
    same with the kernels able to run.)"""
    call, says = bad_calls()[case]
    counts, reasons = fallbacks.snapshot(), fallbacks.reasons()
    with pytest.raises(ValueError, match=says):
        call(impl)
    assert fallbacks.snapshot() == counts and fallbacks.reasons() == reasons


def test_the_gated_ops_run_their_reference_twins_under_that_name():
    """impl='reference' on the gated branch ops ran the fast path under that name (then was refused, as they had no
    reference path): each now runs its twin in nsa_train.nsa.reference, and counts no fallback."""
    from nsa_train.nsa import dispatch
    from nsa_train.nsa import reference as R

    q, k, v = qkv(1, 40, 4, 2, 8)
    gate = torch.rand(1, 40, 4, generator=torch.Generator().manual_seed(4))
    before = fallbacks.snapshot()
    got = dispatch.gated_sliding_window_attention(q, k, v, 8, gate, impl="reference")
    assert torch.equal(got, R.gated_sliding_window_reference(q, k, v, 8, gate))
    kc, vc = k[:, :9], v[:, :9]
    o, ids = dispatch.gated_compressed_attention_and_selection(q, kc, vc, 8, 4, 8, 3, gate, impl="reference")
    o_ref, ids_ref = R.compressed_attention_and_selection_reference(q, kc, vc, 8, 4, 8, 3, gate=gate)
    assert torch.equal(o, o_ref) and torch.equal(ids, ids_ref)
    assert fallbacks.snapshot() == before


@pytest.mark.parametrize("bad", list(BAD_SCALES))
def test_each_paths_own_op_refuses_a_bad_scale(bad):
    """Called directly (not through the dispatch), the reference and fast ops refuse a bad scale the same way."""
    from nsa_train.nsa import reference as R
    from nsa_train.nsa.fast import compressed_attention_and_selection_fast

    scale, says = BAD_SCALES[bad]
    q, k, v = qkv(1, 16, 4, 2, 8)
    ids, kc, vc = torch.zeros(1, 16, 2, 2, dtype=torch.long), k[:, :3], v[:, :3]
    calls = [
        lambda: selection_attention_reference(q, k, v, ids, 4, scale),
        lambda: selection_attention_fast(q, k, v, ids, 4, scale),
        lambda: sliding_window_attention_reference(q, k, v, 4, scale),
        lambda: sliding_window_attention_fast(q, k, v, 4, scale),
        lambda: compressed_attention_reference(q, kc, vc, 4, 2, scale),
        lambda: compressed_attention_fast(q, kc, vc, 4, 2, scale),
        lambda: R.compressed_attention_and_selection_reference(q, kc, vc, 4, 2, 4, 3, scale),
        lambda: compressed_attention_and_selection_fast(q, kc, vc, 4, 2, 4, 3, scale),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=says):
            call()


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_a_scale_may_be_any_real_number_or_a_0d_tensor(impl):
    """An int, a Fraction (any numbers.Real) and a 0-d tensor of a float or an integer dtype are the float they
    hold, under autocast too (its cast of the floating inputs took a 0-d tensor scale along: 0.1 became bf16's
    0.10009765625, outputs moved by 1.6e-2)."""
    from fractions import Fraction

    q, k, v = qkv(1, 16, 4, 2, 8)
    q = q * 10  # large scores, so a scale off by bf16's rounding moves the outputs
    ids, kc, vc = random_blocks(1, 16, 2, 2, 4), k[:, :7], v[:, :7]
    ops = [
        (selection_attention, (q, k, v, ids, 4)),
        (sliding_window_attention, (q, k, v, 4)),
        (compressed_attention, (q, kc, vc, 4, 2)),
    ]
    for op, args in ops:
        want = op(*args, 2.0, impl)
        for scale in (2, Fraction(4, 2), torch.tensor(2.0), torch.tensor(2), torch.tensor(2.0, dtype=torch.float64)):
            torch.testing.assert_close(op(*args, scale, impl), want, atol=0, rtol=0)
        assert not torch.equal(op(*args, None, impl)[0], want[0])  # the scale is used: the default differs
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.testing.assert_close(op(*args, torch.tensor(0.1), impl), op(*args, 0.1, impl), atol=0, rtol=0)
