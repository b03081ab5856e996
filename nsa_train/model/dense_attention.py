"""Dense causal attention with the same interface as NSAAttention: the comparison twin.

Same constructor signature, same q/k/v/o projections and GQA layout, so the two
models differ only in how attention selects keys. Uses SDPA (flash/efficient
kernels on GPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nsa_train.nsa.rope import apply_rope, rope_angles


class DenseAttention(nn.Module):
    impl_name = "dense-sdpa"

    def __init__(
        self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, cfg: object = None, rope_base: float = 10000.0
    ) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.rope_base = rope_base
        self.q_proj = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * head_dim, dim, bias=False)
        self.last_gates: torch.Tensor | None = None  # dense has no branch gates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        # the same RoPE as NSAAttention (one module, one convention), applied in [B, T, heads, D]
        cos, sin = rope_angles(torch.arange(T, device=x.device), self.head_dim, self.rope_base)
        q = apply_rope(self.q_proj(x).view(B, T, self.n_heads, self.head_dim), cos, sin)
        k = apply_rope(self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim), cos, sin)
        q, k = q.transpose(1, 2), k.transpose(1, 2)  # [B, HQ, T, D], [B, HKV, T, D]
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # [B, HKV, T, D]
        groups = self.n_heads // self.n_kv_heads
        if groups > 1:
            k = k.repeat_interleave(groups, dim=1)  # [B, HQ, T, D]
            v = v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, HQ, T, D]
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))
