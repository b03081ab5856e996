"""What the Triton kernels accept, as plain checks on sizes: one wording for the wrappers (which refuse a call
with it) and for the layer (which names the path each branch really runs: ``NSAAttention.branch_impls``, what
run.json records as attention_impl, so a branch whose sizes the kernels refuse is named ``fast``, not ``triton``).
"""

from __future__ import annotations

import torch

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
MAX_HEAD_DIM = 256
MAX_GQA = 16  # query heads per KV head the attention and importance kernels take (their rows per program)


def _pow2(n: int) -> bool:
    return n > 0 and not n & (n - 1)


def selection_block_problem(block_size: int) -> str | None:
    """The selection kernels load a block as one tile, which tl.dot wants a power of two >= 16."""
    if block_size < 16 or not _pow2(block_size):
        return f"block_size must be a power of two >= 16 for the Triton kernels; got {block_size}"
    return None


def importance_problem(l: int, d: int, l_sel: int) -> str | None:
    """The importance kernel maps compressed blocks onto selection blocks with a fixed overlap pattern."""
    r, back = l_sel // d, l // d - 1
    if l % d or l_sel % d or not _pow2(r) or r > 16 or back > r:
        return (
            f"the importance kernel needs l and l_sel multiples of d, l_sel/d a power of two <= 16 and "
            f"l <= l_sel + d; got l={l}, d={d}, l_sel={l_sel}"
        )
    return None


def head_dim_problem(head_dim: int, v_head_dim: int) -> str | None:
    if max(head_dim, v_head_dim) > MAX_HEAD_DIM:
        return f"head dim must be <= {MAX_HEAD_DIM}; got D={head_dim}, Dv={v_head_dim}"
    return None


def gqa_problem(n_heads: int, n_kv_heads: int) -> str | None:
    """For the attention kernels (compressed and window branches) and the importance kernel."""
    if n_heads // n_kv_heads > MAX_GQA:
        return f"GQA ratio {n_heads // n_kv_heads} is above the kernels' {MAX_GQA}"
    return None


def dtype_problem(dtype: torch.dtype) -> str | None:
    if dtype not in DTYPES:
        return f"the kernels compute in one of {DTYPES}; got {dtype}"
    return None


def branch_problems(
    n_heads: int, n_kv_heads: int, head_dim: int, l: int, d: int, l_sel: int, dtype: torch.dtype
) -> dict[str, str | None]:
    """Why each NSA branch's kernels would refuse a layer of these sizes (None: they take it), by branch
    ('cmp', 'sel', 'win'). The dtype is what the branch computes in (autocast's, under autocast)."""
    shared = dtype_problem(dtype) or head_dim_problem(head_dim, head_dim)
    attention = shared or gqa_problem(n_heads, n_kv_heads)
    return {
        "cmp": attention or importance_problem(l, d, l_sel),
        "sel": shared or selection_block_problem(l_sel),
        "win": attention,
    }
