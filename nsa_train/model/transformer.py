"""A modern decoder-only LM: RMSNorm, RoPE (inside attention), SwiGLU MLP, tied embeddings.

Attention is pluggable: Native Sparse Attention (``model.attention: nsa``) or the dense
causal-SDPA twin (``dense``); both take the same constructor arguments.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from nsa_train.config.schema import Config

# Output projections that write into the residual stream get init_std / sqrt(2 * n_layers),
# so the residual variance does not grow with depth.
RESIDUAL_PROJ_NAMES = ("o_proj", "out_proj", "wo", "down")


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=False)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


def make_attention(cfg: Config) -> nn.Module:
    m = cfg.model
    args = (m.dim, m.n_heads, m.n_kv_heads, m.resolved_head_dim, cfg.nsa)
    if m.attention == "dense":
        from nsa_train.model.dense_attention import DenseAttention

        return DenseAttention(*args, rope_base=m.rope_base)
    from nsa_train.nsa import NSAAttention

    return NSAAttention(*args, rope_base=m.rope_base)


class Block(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        m = cfg.model
        self.attn_norm = RMSNorm(m.dim, m.norm_eps)
        self.attn = make_attention(cfg)
        self.mlp_norm = RMSNorm(m.dim, m.norm_eps)
        self.mlp = SwiGLU(m.dim, m.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class LM(nn.Module):
    def __init__(self, cfg: Config, vocab_size: int) -> None:
        super().__init__()
        m = cfg.model
        self.vocab_size = vocab_size
        self.grad_checkpointing = cfg.train.grad_checkpointing
        self.embed = nn.Embedding(vocab_size, m.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(m.n_layers))
        self.norm = RMSNorm(m.dim, m.norm_eps)
        self.head = nn.Linear(m.dim, vocab_size, bias=False)
        if m.tie_embeddings:
            self.head.weight = self.embed.weight
        self._init_weights(m.init_std, m.n_layers)

    def _init_weights(self, std: float, n_layers: int) -> None:
        residual_std = std / math.sqrt(2 * n_layers)
        for name, mod in self.named_modules():
            if isinstance(mod, nn.Linear):
                leaf = name.rsplit(".", 1)[-1]
                nn.init.normal_(mod.weight, 0.0, residual_std if leaf in RESIDUAL_PROJ_NAMES else std)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Embedding):
                nn.init.normal_(mod.weight, 0.0, std)
            elif hasattr(mod, "init_weights"):  # parameters outside Linear layers (NSA's compression MLP)
                mod.init_weights(std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """idx [B, T] -> logits [B, T, V], or the mean cross-entropy when targets [B, T] are given."""
        x = self.embed(idx)  # [B, T, dim]
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False) if self.grad_checkpointing and self.training else block(x)
        return self.output(x, targets)

    def output(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """The last block's output [B, T, dim] -> logits [B, T, V], or the mean cross-entropy given targets."""
        logits = self.head(self.norm(x))  # [B, T, V]
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))

    def attention_layers(self) -> list[nn.Module]:
        return [b.attn for b in self.blocks]


def build_model(cfg: Config, vocab_size: int) -> LM:
    return LM(cfg, vocab_size)


def compile_model(model: LM) -> None:
    """torch.compile (train.compile) in place: each block on its own, then the final norm, head and loss.

    Not torch.compile(model): NSA attention stays eager inside a compiled block (``compile_eagerly``), and a
    graph break inside the loop over blocks makes Dynamo run the whole model eagerly. Compiled one by one, the
    blocks share one graph (their parameters are its inputs), and module names, so checkpoints, are unchanged.
    """
    for block in model.blocks:
        if getattr(block.attn, "compile_eagerly", False):
            block.attn.forward = torch.compiler.disable(block.attn.forward)  # type: ignore[method-assign]
        block.compile()
    model.output = torch.compile(model.output)  # type: ignore[method-assign]


def collect_gates(model: nn.Module) -> list[torch.Tensor]:
    """Detached gates [B, T, HQ, 3] of the last forward of every NSA layer ([] for dense)."""
    inner = getattr(model, "module", model)  # DDP wrapper
    gates = []
    for attn in inner.attention_layers():
        g = getattr(attn, "last_gates", None)
        if g is not None:
            gates.append(g)
    return gates
