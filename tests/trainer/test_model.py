"""The LM with both attentions: shapes, causality, gates, init."""

from __future__ import annotations

import pytest
import torch

from nsa_train.config import load_config
from nsa_train.model import build_model, collect_gates

OVERRIDES = [
    "model.dim=32",
    "model.n_layers=2",
    "model.n_heads=2",
    "model.n_kv_heads=1",
    "train.seq_len=32",
    "nsa.w=16",
]


@pytest.mark.parametrize("attention", ["nsa", "dense"])
def test_forward_shapes_loss_and_causality(attention: str) -> None:
    cfg = load_config(None, [*OVERRIDES, f"model.attention={attention}"])
    torch.manual_seed(0)
    model = build_model(cfg, 257)
    x = torch.randint(0, 257, (2, 32))
    logits = model(x)
    assert logits.shape == (2, 32, 257)
    y = torch.randint(0, 257, (2, 32))
    loss = model(x, y)
    assert abs(loss.item() - torch.log(torch.tensor(257.0)).item()) < 0.5  # near-uniform at init
    x2 = x.clone()
    x2[:, 20:] = (x2[:, 20:] + 1) % 257  # change the future: the past's outputs must not move
    assert torch.allclose(model(x2)[:, :20], logits[:, :20], atol=1e-5)
    gates = collect_gates(model)
    if attention == "nsa":
        assert len(gates) == 2 and gates[0].shape == (2, 32, 2, 3)
    else:
        assert gates == []


def test_tied_embeddings_and_mlp_width() -> None:
    cfg = load_config(None, OVERRIDES)
    model = build_model(cfg, 257)
    assert model.head.weight is model.embed.weight
    assert model.blocks[0].mlp.up.out_features == cfg.model.mlp_hidden == 96
    assert load_config(None, ["model.dim=768"]).model.mlp_hidden == 2048  # 768 * 8/3 is a multiple of 32 already


def test_residual_projections_are_scaled() -> None:
    cfg = load_config(None, ["model.dim=256", "model.n_layers=8", "model.attention=dense"])
    model = build_model(cfg, 257)
    down = model.blocks[0].mlp.down.weight.std().item()
    up = model.blocks[0].mlp.up.weight.std().item()
    assert up == pytest.approx(0.02, rel=0.1)
    assert down == pytest.approx(0.02 / 4, rel=0.1)  # 1/sqrt(2*8)


def test_init_std_reaches_every_weight_and_biases_start_at_zero() -> None:
    """Review revBP: at model.init_std=0.005 the compression MLP's first layer (a Conv1d) kept PyTorch's
    Kaiming-uniform init (std 0.026) and a nonzero bias, and its position table a hard-coded 0.02."""
    cfg = load_config(None, ["model.dim=256", "model.n_heads=4", "model.n_kv_heads=2", "model.init_std=0.005"])
    torch.manual_seed(0)
    model = build_model(cfg, 257)
    residual = 0.005 / (2 * cfg.model.n_layers) ** 0.5
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            want = residual if name.rsplit(".", 2)[-2] in ("wo", "down") else 0.005
            assert p.std().item() == pytest.approx(want, rel=0.15), name
        elif name.endswith(".bias"):
            assert torch.count_nonzero(p) == 0, name


def test_dense_twin_is_causal_attention_with_the_shared_rope() -> None:
    """The dense baseline against the plain formula: RoPE (apply_rope_reference) on q and k, GQA by repeating
    the KV heads, masked softmax over the past, output projection."""
    from nsa_train.model.dense_attention import DenseAttention
    from nsa_train.nsa.rope import apply_rope_reference, rope_angles

    torch.manual_seed(0)
    B, T, dim, HQ, H, D = 2, 11, 32, 4, 2, 8
    attn = DenseAttention(dim, HQ, H, D, rope_base=500.0)
    x = torch.randn(B, T, dim)
    cos, sin = rope_angles(torch.arange(T), D, 500.0)
    q = apply_rope_reference(attn.q_proj(x).view(B, T, HQ, D), cos, sin)
    k = apply_rope_reference(attn.k_proj(x).view(B, T, H, D), cos, sin).repeat_interleave(HQ // H, dim=2)
    v = attn.v_proj(x).view(B, T, H, D).repeat_interleave(HQ // H, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / D**0.5
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    o = torch.einsum("bhts,bshd->bthd", scores.softmax(-1), v).reshape(B, T, HQ * D)
    torch.testing.assert_close(attn(x), attn.o_proj(o), rtol=0, atol=1e-5)
