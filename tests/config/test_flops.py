"""The model FLOPs estimate (MFU's numerator) against what torch's FLOP counter measures, and the NSA key counts
against the branches' own masks."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nsa_train.config import load_config
from nsa_train.config.flops import attended_keys_per_token, nsa_keys_per_query, train_flops_per_token


def counted(cfg, vocab: int) -> dict[str, int]:
    """torch's count of one training step of the model of ``cfg`` on one sequence, per aten op. SDPA runs its math
    backend: the counter knows no CPU flash kernel, and the math one is bmm's it counts."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from nsa_train.model import build_model

    torch.manual_seed(0)
    model = build_model(cfg, vocab)
    x = torch.randint(0, vocab, (1, cfg.train.seq_len))
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(x, x).backward()
    return {str(op).split(".")[1]: n for op, n in counter.get_flop_counts()["Global"].items()}


def test_dense_matches_torchs_count():
    """Matmuls exactly; attention (SDPA's math backend: its bmm's) computes the full T x T and masks it, the
    estimate counts the (T + 1) / 2 keys a causal query sees, so torch's is 2T / (T + 1) times the estimate's."""
    T, vocab = 128, 257
    cfg = load_config(None, ["model.attention=dense", f"train.seq_len={T}"])
    ops = counted(cfg, vocab)
    sdpa = ops.pop("bmm", 0)
    assert sdpa > 0 and set(ops) == {"mm"}, ops
    m = cfg.model
    ours_attention = 3 * 2 * m.n_layers * attended_keys_per_token(cfg) * m.n_heads * 2 * m.resolved_head_dim * T
    ours = train_flops_per_token(cfg, vocab) * T
    assert ops["mm"] == pytest.approx(ours - ours_attention, rel=1e-9)
    assert sdpa == pytest.approx(ours_attention * 2 * T / (T + 1), rel=1e-9)


def test_nsa_matmuls_match_torchs_count():
    """The reference layer (plain autograd: no recomputation counted twice): every Linear and the compression
    MLP's conv against the estimate without attention; φ's blocks differ only at the sequence's end (NC =
    (T - l) // d + 1 against T / d)."""
    T, vocab = 256, 257
    cfg = load_config(None, ["nsa.impl=reference", f"train.seq_len={T}"])
    ops = counted(cfg, vocab)
    matmuls = sum(n for op, n in ops.items() if op in ("mm", "addmm", "convolution", "convolution_backward"))
    m = cfg.model
    ours_attention = 3 * 2 * m.n_layers * attended_keys_per_token(cfg) * m.n_heads * 2 * m.resolved_head_dim * T
    assert matmuls == pytest.approx(train_flops_per_token(cfg, vocab) * T - ours_attention, rel=0.005)


@pytest.mark.parametrize("T", [1, 40, 200])
def test_nsa_key_counts_follow_the_branches_masks(T):
    """Per query: compressed blocks visible by the reference's rule, the tokens <= t of the blocks select_blocks
    chooses (random scores), the window's keys."""
    from nsa_train.nsa.selection import select_blocks

    l, d, l_sel, n_sel, w = 16, 8, 16, 4, 24
    nc = max(0, (T - l) // d + 1)
    p = torch.rand(1, T, 2, max(nc, 1))[..., :nc]  # [B, T, HQ, NC]
    ids = select_blocks(p, 0, 1, l, d, l_sel, n_sel, T)[0, :, 0]  # [T, n_sel]
    for t in range(T):
        n_cmp, n_sel_tokens, n_win = nsa_keys_per_query(t, l, d, l_sel, n_sel, w)
        assert n_cmp == sum(1 for i in range(nc) if i * d + l - 1 <= t)
        chosen = [int(b) for b in ids[t] if b >= 0]
        assert n_sel_tokens == sum(1 for b in chosen for k in range(b * l_sel, (b + 1) * l_sel) if k <= t)
        assert n_win == sum(1 for k in range(T) if t - w < k <= t)


def test_the_125m_config_costs_what_the_docs_say():
    """docs/health.md quotes 8.5e8 FLOPs per token for configs/m7c-125m.yaml (the MFU floor's tokens/s)."""
    from pathlib import Path

    cfg = load_config(Path(__file__).parents[2] / "configs" / "m7c-125m.yaml")
    assert train_flops_per_token(cfg) == pytest.approx(8.5e8, rel=0.01)


@pytest.mark.parametrize("name", ["tiny-cpu", "m7c-125m", "m7c-125m-2gpu"])
@pytest.mark.parametrize(
    "overrides", [[], ["model.attention=dense"], ["model.dim=200", "model.head_dim=24", "model.mlp_ratio=2.7"]]
)
def test_the_parameter_estimate_is_the_models_count(name, overrides):
    """`nsa check` and `nsa launch` size the checkpoints' disk from the config alone (estimate_param_count), and the
    model is built from the same config; the gate MLP's width was written out in three places."""
    from pathlib import Path

    from nsa_train.config.flops import estimate_param_count
    from nsa_train.config.schema import TOKENIZER_VOCAB
    from nsa_train.model import build_model

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml", overrides)
    with torch.device("meta"):
        model = build_model(cfg, cfg.model.vocab_size or TOKENIZER_VOCAB[cfg.data.tokenizer])
    assert estimate_param_count(cfg) == sum(p.numel() for p in model.parameters())
