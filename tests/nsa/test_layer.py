"""NSAAttention and block selection: fast vs reference layer, layer causality, Eq. 9-11 selection rules."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.func import functional_call

from nsa_train.config import NSAConfig
from nsa_train.nsa import NSAAttention, select_blocks
from nsa_train.nsa.selection import selection_block_scores

CFG = {"l": 8, "d": 4, "l_sel": 12, "n_sel": 4, "w": 10}


def make_layer(impl: str, n_heads: int = 4, n_kv_heads: int = 2, head_dim: int = 8, dim: int = 32) -> NSAAttention:
    torch.manual_seed(0)
    layer = NSAAttention(dim, n_heads, n_kv_heads, head_dim, NSAConfig(impl=impl, **CFG))
    with torch.no_grad():  # non-zero gate weights so every branch matters in the comparison
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return layer


@pytest.mark.parametrize(("n_heads", "n_kv_heads"), [(2, 2), (4, 2), (4, 1), (16, 1)])
@pytest.mark.parametrize("T", [53, 7])
def test_layer_fast_matches_reference(n_heads, n_kv_heads, T, tiles):
    ref, fst = make_layer("reference", n_heads, n_kv_heads), make_layer("fast", n_heads, n_kv_heads)
    assert ref.impl_name == "reference" and fst.impl_name == "fast"
    x = torch.randn(2, T, 32, generator=torch.Generator().manual_seed(3))
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    outs = [m(xi) for m, xi in zip((ref, fst), xs, strict=False)]
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    w = torch.randn_like(outs[0])
    for o in outs:
        (o * w).sum().backward()
    torch.testing.assert_close(xs[0].grad, xs[1].grad, atol=1e-5, rtol=1e-5)
    for (name, p_ref), p_fst in zip(ref.named_parameters(), fst.parameters(), strict=False):
        torch.testing.assert_close(p_ref.grad, p_fst.grad, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
    torch.testing.assert_close(ref.last_gates, fst.last_gates)
    assert ref.last_gates.shape == (2, T, n_heads, 3) and not ref.last_gates.requires_grad


def test_layer_in_bfloat16_follows_float32():
    """A bf16 layer (bf16 weights and input, as a bf16 run has) runs the fast ops in bf16 in and out: its output and
    input gradient stay within bf16 rounding of the fp32 layer's, and every parameter gets a finite gradient."""
    x = torch.randn(1, 53, 32, generator=torch.Generator().manual_seed(6))
    w = torch.randn(1, 53, 32, generator=torch.Generator().manual_seed(7))
    outs, grads = [], []
    for dtype in (torch.float32, torch.bfloat16):
        layer = make_layer("fast").to(dtype)
        xi = x.to(dtype, copy=True).requires_grad_(True)
        y = layer(xi)
        assert y.dtype == dtype
        (y.float() * w).sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())
        outs.append(y.float())
        grads.append(xi.grad.float())
    torch.testing.assert_close(outs[1], outs[0], atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(grads[1], grads[0], atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("impl", ["reference", "fast", "triton"])
def test_layer_under_bf16_autocast_follows_float32(impl):
    """How a bf16 run trains: fp32 weights under bf16 autocast. The ops take autocast's dtype (a fast path that
    met autocast's bf16 products with its fp32 running maxima failed in a scatter: every bf16 run, and on a GPU
    every fallback from Triton). Output in bf16, fp32 gradients for the fp32 weights, within bf16 rounding of an
    fp32 pass. 'triton' without a GPU or the interpreter is the counted fallback to fast."""
    x = torch.randn(1, 53, 32, generator=torch.Generator().manual_seed(6))
    w = torch.randn(1, 53, 32, generator=torch.Generator().manual_seed(7))
    outs, grads = [], []
    for autocast in (False, True):
        layer = make_layer(impl)
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = layer(xi)
        assert y.dtype == (torch.bfloat16 if autocast else torch.float32)
        (y.float() * w).sum().backward()
        for p in layer.parameters():
            assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
        outs.append(y.float())
        grads.append(xi.grad)
    torch.testing.assert_close(outs[1], outs[0], atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(grads[1], grads[0], atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_layer_is_causal(impl, tiles):
    """Outputs at <= t unchanged by tokens after t, also at every t = i*d + l - 2, the last query before
    compressed block i is whole (a block visible one token early, i*d + l - 2 <= t, failed this test at its t = 30
    only); the input gradient of output t is zero after t."""
    layer = make_layer(impl)
    T, l, d = 45, CFG["l"], CFG["d"]
    x = torch.randn(2, T, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        y = layer(x)
        for t in sorted({0, 11, 30} | {i * d + l - 2 for i in range((T - l) // d + 1)}):
            x2 = x.clone()
            x2[:, t + 1 :] = torch.randn_like(x2[:, t + 1 :]) * 3
            torch.testing.assert_close(layer(x2)[:, : t + 1], y[:, : t + 1], atol=0, rtol=0, msg=f"t = {t}")
    for t in (0, 11, 30):
        xg = x.clone().requires_grad_(True)
        layer(xg)[:, t].sum().backward()
        assert (xg.grad[:, t + 1 :] == 0).all()
        assert xg.grad[:, : t + 1].abs().sum() > 0


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_layer_gradcheck_float64(impl, tiles):
    """The whole layer in float64 against finite differences, w.r.t. the input and every parameter: covers what the
    op-level gradchecks cannot (projection split, RoPE, φ and gate MLPs, their recompute in backward). fast_mode
    checks random projections of the Jacobian, which keeps it under a second; a 1% error in one parameter's
    gradient fails it (checked by hand)."""
    layer = make_layer(impl).double()
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in layer.parameters())
    x = torch.randn(2, 29, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(8), requires_grad=True)

    def run(x: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return functional_call(layer, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(run, (x, *params), fast_mode=True)


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_layer_first_tokens_finite(impl):
    layer = make_layer(impl)
    x = torch.randn(1, 5, 32, requires_grad=True)  # shorter than one compression block
    y = layer(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()


def test_layer_forward_backward_imports_nothing():
    """The layer's forward and backward must not import modules (a trainer's optimizer may, not the layer):
    torch.autograd.grad with grad_outputs imports sympy (torch 2.13),
    ~34 MB of resident memory for the rest of the process, which the layer's backward used to pay twice (the
    recompute and the window branch's tiling). A fresh interpreter, since this one may have imported it already;
    both window backward paths (flash op on CPU, recompute elsewhere)."""
    code = """
import sys, torch
from nsa_train.config import NSAConfig
from nsa_train.nsa import NSAAttention, fast
layer = NSAAttention(32, 4, 2, 8, NSAConfig(impl="fast", l=8, d=4, l_sel=12, n_sel=4, w=10))
before = set(sys.modules)
layer(torch.randn(2, 45, 32, requires_grad=True)).sum().backward()
fast._cpu_flash_route = lambda q, v: False
layer(torch.randn(2, 45, 32, requires_grad=True)).sum().backward()
print(sorted(set(sys.modules) - before))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("l", "d", "l_sel"), [(8, 4, 12), (12, 4, 8), (4, 4, 8), (16, 4, 4), (32, 16, 64)])
@pytest.mark.parametrize("cropped", [False, True], ids=["all-blocks", "first-blocks-only"])
def test_eq9_overlap_scores_match_brute_force(l, d, l_sel, cropped):
    T = 150
    nc, ns = (T - l) // d + 1, (T + l_sel - 1) // l_sel
    ns -= 2 if cropped else 0  # the fast path scores only the blocks a query chunk can choose
    p = torch.rand(1, 3, 2, nc)
    got = selection_block_scores(p, l, d, l_sel, ns)
    want = torch.zeros(1, 3, 2, ns)
    for j in range(ns):
        for i in range(nc):
            # compressed block i weighs its overlap with selection block j in units of d
            overlap = min(i * d + l, (j + 1) * l_sel) - max(i * d, j * l_sel)
            want[..., j] += p[..., i] * (max(0, overlap) // d)
    torch.testing.assert_close(got, want)
    # the paper's printed double sum, its indices 1-based (selection block j + 1, compressed block c + 1)
    r, m = l_sel // d, l // d
    paper = torch.zeros(1, 3, 2, ns)
    for j in range(ns):
        for mm in range(r):
            for n in range(m):
                c = r * (j + 1) - mm - n - 1
                if 0 <= c < nc:
                    paper[..., j] += p[..., c]
    torch.testing.assert_close(got, paper)


def test_eq9_weighs_a_block_by_its_overlap():
    """Review revBE: each overlapping compressed block was counted once, where the paper's double sum counts it once
    per stride chunk it shares with the selection block. l=32, d=16, l_sel=64: blocks 3..7 reach into selection
    block 1 with 16, 32, 32, 32 and 16 tokens."""
    p = torch.zeros(1, 1, 1, 9)
    p[..., 3], p[..., 4] = 1.0, 10.0
    assert selection_block_scores(p, 32, 16, 64, 2)[0, 0, 0].tolist() == [1.0 * 1, 1.0 * 1 + 10.0 * 2]


def _p_for(scores_per_head: dict[int, dict[int, float]], T: int, HQ: int, nc: int) -> torch.Tensor:
    p = torch.zeros(1, T, HQ, nc)
    for h, blocks in scores_per_head.items():
        for i, s in blocks.items():
            p[0, :, h, i] = s
    return p


def test_group_shares_summed_selection():
    # l = d = l_sel = 4: compressed block i is selection block i. Query 63 (block 15), n_sel = 4: 0, 14, 15 forced
    # and one free slot. Head 0 prefers block 5 (0.6), head 1 block 7 (0.5); head 0 also gives block 7 0.3,
    # so the group's summed score picks 7 (0.8 > 0.6) for both heads of group 0; group 1 (heads 2, 3) picks 3.
    p = _p_for({0: {5: 0.6, 7: 0.3}, 1: {7: 0.5}, 2: {3: 0.9}, 3: {9: 0.2}}, 64, 4, 16)
    ids = select_blocks(p, 0, 2, 4, 4, 4, 4, 64)
    assert ids.shape == (1, 64, 2, 4)
    assert ids[0, 63, 0].tolist() == [0, 7, 14, 15]
    assert ids[0, 63, 1].tolist() == [0, 3, 14, 15]


def test_forced_blocks_and_no_future_blocks():
    # all importance on block 9: still the initial block and the two local blocks are taken
    p = _p_for({0: {9: 1.0}}, 64, 1, 16)
    ids = select_blocks(p, 0, 1, 4, 4, 4, 4, 64)
    assert ids[0, 63, 0].tolist() == [0, 9, 14, 15]
    for t in range(64):
        row = ids[0, t, 0]
        cur = t // 4
        chosen = set(row[row >= 0].tolist())
        assert {0, cur, max(cur - 1, 0)} <= chosen and max(chosen) <= cur
        assert len(chosen) == min(4, cur + 1) and (row == -1).sum() == 4 - len(chosen)


def test_ties_go_to_lower_block_ids_deterministically():
    p = torch.full((1, 64, 2, 16), 0.25)  # every block scores the same
    a = select_blocks(p, 0, 1, 4, 4, 4, 5, 64)
    b = select_blocks(p.clone(), 0, 1, 4, 4, 4, 5, 64)
    assert torch.equal(a, b)
    assert a[0, 63, 0].tolist() == [0, 1, 2, 14, 15]
    assert a[0, 5, 0].tolist() == [0, 1, -1, -1, -1]


def test_chunked_selection_equals_whole():
    # the fast path selects per query tile with an offset t0; it must equal selecting the whole sequence at once
    p = torch.rand(2, 40, 4, 9)
    whole = select_blocks(p, 0, 2, 8, 4, 12, 4, 40)
    parts = torch.cat([select_blocks(p[:, a : a + 15], a, 2, 8, 4, 12, 4, 40) for a in range(0, 40, 15)], 1)
    assert torch.equal(whole, parts)


@pytest.mark.parametrize("T", [53, 64, 100])
def test_compression_mlp_in_bf16_follows_float32(T):
    """oneDNN's bf16 conv1d on CPUs with AMX (torch 2.13) gave wrong outputs at some lengths (an error of 2.8 on
    outputs of 3.0 at T=53): φ in bf16, as weights or under autocast, stays within bf16 rounding of fp32."""
    from nsa_train.nsa import CompressionMLP

    torch.manual_seed(0)
    phi = CompressionMLP(8, 16)
    with torch.no_grad():
        phi.pos.normal_(0, 0.5)
    x = torch.randn(2, T, 2, 16)
    want = phi(x, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = phi(x, 4)
    in_bf16 = phi.to(torch.bfloat16)(x.bfloat16(), 4)
    for got in (under_autocast, in_bf16):
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got.float(), want, atol=3e-2, rtol=3e-2)


def test_compression_mlp_is_an_mlp_over_each_block():
    """φ(block i) = fc2(gelu(W1 · flatten(x[i*d : i*d+l] + pos) + b1)), written out block by block."""
    from nsa_train.nsa import CompressionMLP

    torch.manual_seed(0)
    l, d, D = 6, 2, 4
    phi = CompressionMLP(l, D)
    x = torch.randn(2, 17, 3, D)  # T = 17: the last tokens fit no whole block
    got = phi(x, d)
    n_cmp = (17 - l) // d + 1
    assert got.shape == (2, n_cmp, 3, D)
    w_flat = phi.fc1.weight.permute(0, 2, 1).reshape(phi.fc1.out_channels, l * D)  # [hidden, l*D], index j*D + c
    for i in range(n_cmp):
        block = (x[:, i * d : i * d + l] + phi.pos[None, :, None, :]).permute(0, 2, 1, 3).reshape(2, 3, l * D)
        want = phi.fc2(torch.nn.functional.gelu(block @ w_flat.t() + phi.fc1.bias))
        torch.testing.assert_close(got[:, i], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: NSAAttention(32, 4, 0, 8, NSAConfig()), "n_kv_heads must be an integer >= 1, got 0"),
        (lambda: NSAAttention(32, 0, 1, 8, NSAConfig()), "n_heads must be an integer >= 1, got 0"),
        (lambda: NSAAttention(32, 4, 2, 0, NSAConfig()), "head_dim must be an integer >= 1, got 0"),
        (lambda: NSAConfig(l=16.0), r"nsa.l: must be an integer, got 16.0"),
        (lambda: NSAConfig(w=64.5), r"nsa.w: must be an integer, got 64.5"),
        (lambda: NSAConfig(n_sel=True), r"nsa.n_sel: must be an integer, got True"),
    ],
)
def test_a_layer_or_config_built_in_python_with_bad_sizes_is_one_error(build, says):
    """A KV head count of 0 divided by zero; n_heads or head_dim 0 built a layer of empty tensors; NSAConfig(l=16.0)
    failed later inside torch (the YAML loader checks types, a config built in Python did not)."""
    with pytest.raises(ValueError, match=says):  # ConfigError is one
        build()


@pytest.mark.parametrize("dv", [16, 8])  # Dv == D: the CPU flash backward; Dv != D: the recompute (the GPU's)
@pytest.mark.parametrize("branch", ["compressed", "window"])
def test_fast_gated_branches_compute_the_same_under_autocast(branch, dv):
    """Review revBQ: under bf16 autocast (a GPU run's default) the compressed branch's fast op computed its forward
    scores in bf16 (autocast cast its GEMMs down) and recomputed them in fp32 in backward from the bf16 forward's
    log-sum-exp: other probabilities, dq off by 1e-1 against 4e-3. The fast ops compute in fp32 whatever autocast
    says, as _run runs every other op: the same bf16 inputs give the same outputs and gradients either way."""
    from nsa_train.nsa import dispatch

    gen = torch.Generator().manual_seed(3)
    B, T, HQ, H, D = 1, 96, 4, 2, 16

    def bf16(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * 2).bfloat16()

    gate = torch.rand(B, T, HQ, generator=gen).bfloat16()
    do = torch.randn(B, T, HQ, dv, generator=gen)
    n = T if branch == "window" else (T - 8) // 4 + 1
    inputs = (bf16(B, T, HQ, D), bf16(B, n, H, D), bf16(B, n, H, dv))

    def run(autocast: bool) -> list[torch.Tensor]:
        xs = [t.detach().clone().requires_grad_() for t in inputs]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            if branch == "window":
                o = dispatch.gated_sliding_window_attention(*xs, 24, gate, impl="fast")
            else:
                o, _ = dispatch.gated_compressed_attention_and_selection(*xs, 8, 4, 8, 3, gate, impl="fast")
        o.float().backward(do)
        return [o.float(), *(x.grad.float() for x in xs)]

    for got, want in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


def test_the_paths_a_step_ran_follow_its_fallbacks():
    """A Triton branch whose forward fell back ran fast; one whose backward alone fell back ran its forward kernels
    and the fast gradients; a branch planned fast stays fast whatever was counted for it."""
    from nsa_train.nsa.layer import BACKWARD_FAST, paths_name, paths_ran

    planned = {"cmp": "triton", "sel": "triton", "win": "fast"}
    assert paths_ran(planned, set()) == planned
    ran = paths_ran(planned, {"compressed.triton->fast", "selection_bwd.triton->fast", "window.triton->fast"})
    assert ran == {"cmp": "fast", "sel": BACKWARD_FAST, "win": "fast"}
    assert paths_name(ran) == "cmp=fast sel=triton,backward=fast win=fast"
    every = {"cmp": "triton", "sel": "triton", "win": "triton"}
    bwd = {"compressed_bwd.triton->fast", "selection_bwd.triton->fast", "window_bwd.triton->fast"}
    assert paths_name(paths_ran(every, bwd)) == "triton,backward=fast"
