"""NSAAttention's structure, checked directly: each branch's own K/V, the learned compression φ, compressed keys
rotated at their block's last token, sigmoid gates per branch, head and token.

The reference and fast layers share NSAAttention.forward (the projection split, φ, RoPE, the gate MLP), so
fast-vs-reference cannot see a change there: putting back shared K/V, mean pooling for φ or tanh gates passed
every layer test (review revBV). A branch is read alone by saturating the gate MLP's output: in fp32
sigmoid(+200) is exactly 1 and sigmoid(-200) exactly 0, so with an identity output projection the layer's output
is that branch's output.
"""

from __future__ import annotations

import copy

import pytest
import torch
from test_layer import make_layer

from nsa_train.nsa import NSAAttention
from nsa_train.nsa.reference import compressed_attention_reference
from nsa_train.nsa.rope import apply_rope_reference, rope_angles

BRANCHES = ("cmp", "sel", "win")  # the gates' order, last dim of last_gates
# wkv's row groups, each [H*D] rows, and the branch that reads each
KV_ROWS = {"k_cmp": "cmp", "v_cmp": "cmp", "k_sel": "sel", "v_sel": "sel", "k_win": "win", "v_win": "win"}
B, T, HQ, H, D, DIM = 1, 40, 4, 2, 8, 32  # HQ * D == DIM: the output projection can be the identity


def _layer(impl: str) -> NSAAttention:
    """make_layer's layer (l=8, d=4, l_sel=12, n_sel=4, w=10) with an identity output projection. At T=40 there
    are 4 selection blocks and n_sel=4, so every query selects all its blocks whatever the compressed scores:
    the selected branch reads only its own K/V."""
    layer = make_layer(impl, n_heads=HQ, n_kv_heads=H, head_dim=D, dim=DIM)
    with torch.no_grad():
        layer.wo.weight.copy_(torch.eye(DIM))
        layer.gate[2].weight.mul_(20.0)  # gates spread over (0, 1), different per branch, head and token
    return layer


def _x() -> torch.Tensor:
    return torch.randn(B, T, DIM, generator=torch.Generator().manual_seed(11))


@torch.no_grad()
def branch_output(layer: NSAAttention, x: torch.Tensor, branch: str) -> torch.Tensor:
    """One branch's output [B, T, HQ, D]: a copy of the layer whose gates are exactly 1 for it, 0 for the others."""
    alone = copy.deepcopy(layer)
    last = alone.gate[2]  # gate MLP output [.., HQ * 3], (head, branch) order
    last.weight.zero_()
    on = torch.tensor([b == branch for b in BRANCHES]).repeat(HQ)
    last.bias.copy_(torch.where(on, 200.0, -200.0))
    out = alone(x)
    assert torch.equal(alone.last_gates, on.view(HQ, 3).float().expand(B, T, HQ, 3))
    return out.view(B, T, HQ, D)


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_each_branch_reads_its_own_keys_and_values(impl):
    """Perturbing one row group of the K/V projection changes the branch that owns it and no other branch."""
    layer, x = _layer(impl), _x()
    base = {b: branch_output(layer, x, b) for b in BRANCHES}
    for i, (rows, owner) in enumerate(KV_ROWS.items()):
        moved = copy.deepcopy(layer)
        with torch.no_grad():
            moved.wkv.weight[i * H * D : (i + 1) * H * D] += 0.5
        for b in BRANCHES:
            got = branch_output(moved, x, b)
            if b == owner:
                assert (got - base[b]).abs().max() > 1e-3, f"perturbing {rows} left the {b} branch unchanged"
            else:
                assert torch.equal(got, base[b]), f"perturbing {rows} changed the {b} branch"


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_gates_are_a_sigmoid_of_the_gate_mlp_per_branch_head_and_token(impl):
    """last_gates = sigmoid(gate MLP(x)) in (0, 1), and the layer's output mixes the branches by them:
    o = g_cmp * o_cmp + g_sel * o_sel + g_win * o_win, each gate per token and head."""
    layer, x = _layer(impl), _x()
    out = layer(x).detach().view(B, T, HQ, D)
    gates = layer.last_gates
    with torch.no_grad():
        want = torch.sigmoid(layer.gate(x)).view(B, T, HQ, 3)
    torch.testing.assert_close(gates, want, atol=1e-6, rtol=1e-6)
    assert ((gates > 0) & (gates < 1)).all()
    assert gates.std(dim=(0, 1)).min() > 0.05  # gates that vary by token, per head and branch: a real test below
    mixed = sum(gates[..., i, None] * branch_output(layer, x, b) for i, b in enumerate(BRANCHES))
    torch.testing.assert_close(out, mixed, atol=1e-5, rtol=1e-5)


def _compressed_branch_by_hand(layer: NSAAttention, x: torch.Tensor, rotate_at: torch.Tensor) -> torch.Tensor:
    """The compressed branch written out: φ_k and φ_v over the raw projected keys and values, compressed keys
    rotated at positions ``rotate_at``, queries at their tokens, then compressed attention."""
    c = layer.cfg
    with torch.no_grad():
        k_raw, v_raw = (x @ layer.wkv.weight[i * H * D : (i + 1) * H * D].t() for i in (0, 1))
        k_cmp = layer.phi_k(k_raw.view(B, T, H, D), c.d)
        v_cmp = layer.phi_v(v_raw.view(B, T, H, D), c.d)
        k_cmp = apply_rope_reference(k_cmp, *rope_angles(rotate_at, D, layer.rope_base))
        q = apply_rope_reference(layer.wq(x).view(B, T, HQ, D), *rope_angles(torch.arange(T), D, layer.rope_base))
        return compressed_attention_reference(q, k_cmp, v_cmp, c.l, c.d)[0]


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_compressed_branch_is_the_learned_phi_with_keys_rotated_at_the_block_end(impl):
    """The compressed branch runs the layer's own φ (learned: changing its weights changes the branch, which mean
    pooling would not) and rotates compressed key i at its block's last token i*d + l - 1 (docs/nsa.md, step 3)."""
    layer, x = _layer(impl), _x()
    c = layer.cfg
    n_cmp = (T - c.l) // c.d + 1
    block_end = torch.arange(n_cmp) * c.d + c.l - 1
    got = branch_output(layer, x, "cmp")
    torch.testing.assert_close(got, _compressed_branch_by_hand(layer, x, block_end), atol=1e-5, rtol=1e-5)
    # rotated at the block's first token instead: another output, so the check above tells the two apart
    assert (got - _compressed_branch_by_hand(layer, x, block_end - c.l + 1)).abs().max() > 1e-3
    for phi in ("phi_k", "phi_v"):
        moved = copy.deepcopy(layer)
        with torch.no_grad():
            moved.get_submodule(phi).fc2.weight.mul_(-1.0)
        assert (branch_output(moved, x, "cmp") - got).abs().max() > 1e-3, f"{phi}'s weights changed nothing"
