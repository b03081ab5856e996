"""The compressed branch on Triton: input checks, launches, and the autograd Function.

Two entry points with the PyTorch paths' signatures:
- ``compressed_attention_triton``: fla-org's op, ``(o, p)``; o from the kernels, p (which the op must return,
  [B, T, HQ, NC]) computed in PyTorch, so this one is for cross-checks, not speed.
- ``compressed_attention_and_selection_triton``: what the NSA layer runs, ``(o, block_indices)``: o from the
  kernels, block ids from the importance kernel's Eq. 9 scores (query tiles of bounded size) and the shared
  top-n rule of ``nsa_train.nsa.selection``; the probabilities are never held.
The kernels live in ``_compressed_kernels.py`` and are imported on first use only.
"""

from __future__ import annotations

import contextlib
from types import ModuleType

import torch

from nsa_train.nsa._common import check_qkv, default_scale
from nsa_train.nsa.reference import compressed_attention_reference
from nsa_train.nsa.selection import n_scored_blocks, select_top_blocks
from nsa_train.nsa.triton.availability import TritonUnavailableError, kernel_mode, load_kernels, triton_available

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_MAX_HEAD_DIM = 256
BQ = 16  # queries per program (x G heads = rows of a tile)
BN = 64  # compressed blocks per key tile of the attention kernels
MAX_ROWS = 256  # BQ * GP above this would not fit a program's registers: GQA ratios up to 16
SCORES_BYTES = 256 << 20  # the fp32 Eq. 9 scores of one query tile of the importance kernel at most


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_length: int, stride: int) -> None:
    check_qkv(q, k, v, same_length=False)
    if block_length < 1 or stride < 1:
        raise ValueError(f"block_length and stride must be >= 1, got {block_length}, {stride}")
    if max(q.shape[-1], v.shape[-1]) > _MAX_HEAD_DIM:
        raise ValueError(f"head dim must be <= {_MAX_HEAD_DIM}; got D={q.shape[-1]}, Dv={v.shape[-1]}")
    if q.dtype not in _DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k, v must share one dtype among {_DTYPES}; got {q.dtype}, {k.dtype}, {v.dtype}")
    if len({q.device, k.device, v.device}) != 1:
        raise ValueError("q, k_cmp and v_cmp must be on one device")
    if BQ * _next_pow2(q.shape[2] // k.shape[2]) > MAX_ROWS:
        raise TritonUnavailableError(f"GQA ratio {q.shape[2] // k.shape[2]} is above the kernels' 16")


def _meta(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor | None = None) -> dict[str, int | bool]:
    """The kernels' compile-time arguments; the attention kernels' value width and key tile only with v."""
    H, D = k.shape[2], q.shape[3]
    G = q.shape[2] // H
    meta: dict[str, int | bool] = {
        "H": H,
        "G": G,
        "D": D,
        "GP": _next_pow2(G),
        "BQ": BQ,
        "BD": max(16, _next_pow2(D)),
        "IEEE": q.dtype == torch.float32,
    }
    if v is not None:
        meta.update(DV=v.shape[3], BN=BN, BDV=max(16, _next_pow2(v.shape[3])))
    return meta


def _on_device(x: torch.Tensor) -> contextlib.AbstractContextManager:
    # Triton launches on the current CUDA device; make it the tensors' one.
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _grid(n: int, per: int, B: int, H: int) -> tuple[int, int]:
    return (-(-n // per), B * H)


class _CompressedAttentionFn(torch.autograd.Function):
    """(o [B, T, HQ, Dv], lse [B, T, HQ] fp32) of attention over compressed blocks; lse is not differentiable."""

    @staticmethod
    def forward(ctx, q, k, v, l, d, scale):  # type: ignore[override]
        kernels = load_kernels("_compressed_kernels")
        B, T, HQ, _ = q.shape
        NC, H = k.shape[1], k.shape[2]
        o = q.new_empty(B, T, HQ, v.shape[3])
        lse = torch.empty(B, T, HQ, dtype=torch.float32, device=q.device)
        with _on_device(q):
            kernels.compressed_fwd_kernel[_grid(T, BQ, B, H)](q, k, v, o, lse, scale, T, NC, l, d, **_meta(q, k, v))
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.kernels, ctx.args = kernels, (l, d, scale)
        ctx.mark_non_differentiable(lse)
        return o, lse

    @staticmethod
    def backward(ctx, do, _):  # type: ignore[override]
        q, k, v, o, lse = ctx.saved_tensors
        l, d, scale = ctx.args
        B, T = q.shape[:2]
        NC, H = k.shape[1], k.shape[2]
        do = do.contiguous()
        delta = (o.float() * do.float()).sum(-1)  # [B, T, HQ]: rowsum(dO * O) of the softmax backward
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        meta = _meta(q, k, v)
        with _on_device(q):
            ctx.kernels.compressed_bwd_dq_kernel[_grid(T, BQ, B, H)](
                q, k, v, do, lse, delta, dq, scale, T, NC, l, d, **meta
            )
            if NC:
                ctx.kernels.compressed_bwd_dkdv_kernel[_grid(NC, BN, B, H)](
                    q, k, v, do, lse, delta, dk, dv, scale, T, NC, l, d, **meta
                )
        return dq, dk, dv, None, None, None


def _prepare(
    q: torch.Tensor, k_cmp: torch.Tensor, v_cmp: torch.Tensor, block_length: int, stride: int, scale: float | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    ok, reason = triton_available(q.device)
    if not ok:
        raise TritonUnavailableError(f"the compressed-attention kernels cannot run: {reason}")
    _check(q, k_cmp, v_cmp, block_length, stride)
    scale = default_scale(scale, q.shape[-1])
    if kernel_mode() == "interpreter" and q.dtype != torch.float32:
        # The interpreter's low-precision tl.dot is wrong; compute in fp32 and cast back.
        q, k_cmp, v_cmp = q.float(), k_cmp.float(), v_cmp.float()
    return q.contiguous(), k_cmp.contiguous(), v_cmp.contiguous(), scale


def compressed_attention_triton(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    block_length: int,
    stride: int,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [B, T, HQ, D], k_cmp/v_cmp [B, NC, H, D] -> (o [B, T, HQ, Dv] from the kernels, p [B, T, HQ, NC]).

    p is part of this op's contract, so it is computed in full, by the reference (with its gradients); the layer
    uses ``compressed_attention_and_selection_triton``, which never holds it.
    """
    dtype = q.dtype
    q_, k_, v_, scale = _prepare(q, k_cmp, v_cmp, block_length, stride, scale)
    o, _ = _CompressedAttentionFn.apply(q_, k_, v_, block_length, stride, scale)
    _, p = compressed_attention_reference(q, k_cmp, v_cmp, block_length, stride, scale)  # [B, T, HQ, NC]
    return o.to(dtype), p.to(dtype)


def compressed_attention_and_selection_triton(
    q: torch.Tensor,
    k_cmp: torch.Tensor,
    v_cmp: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    n_sel: int,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's compressed branch on Triton: (o [B, T, HQ, Dv], block_indices [B, T, H, n_sel]).

    Same choice as the PyTorch paths (Eq. 8-11: group-summed probabilities, mapped to selection blocks, the
    initial and 2 local blocks forced, ties to the lower id), up to fp32 rounding of the scores.
    """
    r, back = l_sel // d, l // d - 1
    if l % d or l_sel % d or r & (r - 1) or r > 16 or back > r:
        raise TritonUnavailableError(
            f"the importance kernel needs l and l_sel multiples of d, l_sel/d a power of two <= 16 and "
            f"l <= l_sel + d; got l={l}, d={d}, l_sel={l_sel}"
        )
    dtype = q.dtype
    q_, k_, v_, scale = _prepare(q, k_cmp, v_cmp, l, d, scale)
    o, lse = _CompressedAttentionFn.apply(q_, k_, v_, l, d, scale)
    ids = _select(load_kernels("_compressed_kernels"), q_.detach(), k_.detach(), lse, l, d, l_sel, n_sel, scale)
    return o.to(dtype), ids


@torch.no_grad()
def _select(
    kernels: ModuleType,
    q: torch.Tensor,
    k: torch.Tensor,
    lse: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    n_sel: int,
    scale: float,
) -> torch.Tensor:
    """Block ids [B, T, H, n_sel] from the importance kernel's scores, a query tile of bounded size at a time."""
    B, T = q.shape[:2]
    per_query = 4 * B * k.shape[2] * max(1, -(-T // l_sel))  # bytes of one query's fp32 scores
    tile = max(BQ, SCORES_BYTES // per_query // BQ * BQ)
    ids = []
    for t0 in range(0, T, tile):
        t1 = min(T, t0 + tile)
        scores = block_scores(kernels, q, k, lse, l, d, l_sel, scale, t0, t1)
        ids.append(select_top_blocks(scores, t0, l_sel, n_sel))
    return torch.cat(ids, 1)


@torch.no_grad()
def block_scores(
    kernels: ModuleType,
    q: torch.Tensor,
    k: torch.Tensor,
    lse: torch.Tensor,
    l: int,
    d: int,
    l_sel: int,
    scale: float,
    t0: int,
    t1: int,
) -> torch.Tensor:
    """Eq. 9-10 scores [B, t1-t0, H, NS] of queries t0 .. t1-1 (NS: up to the last one's own block) from the
    importance kernel: q [B, T, HQ, D], k [B, NC, H, D] contiguous, lse [B, T, HQ] of the forward."""
    B, T = q.shape[:2]
    NC, H = k.shape[1], k.shape[2]
    ns = n_scored_blocks(t0, t1 - t0, l_sel, T)
    scores = torch.zeros(B, t1 - t0, H, ns, dtype=torch.float32, device=q.device)
    if NC:
        with _on_device(q):
            kernels.compressed_importance_kernel[_grid(t1 - t0, BQ, B, H)](
                q, k, lse, scores, scale, T, t0, t1, NC, ns, l, d, l // d - 1, R=l_sel // d, **_meta(q, k)
            )
    return scores
