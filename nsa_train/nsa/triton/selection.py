"""Selected-block attention on Triton: input checks, the reverse index, and the autograd Function.

The kernels live in ``_selection_kernels.py`` and are imported on first use only, so this
module (and the package) import fine without triton or CUDA.
"""

from __future__ import annotations

import functools
import math
from types import ModuleType

import torch

from nsa_train.nsa import fast
from nsa_train.nsa._common import check_block_indices, default_scale
from nsa_train.nsa.triton import backward_fallback
from nsa_train.nsa.triton._attention import next_pow2, on_device
from nsa_train.nsa.triton.availability import TritonUnavailableError, kernel_mode, load_kernels, triton_available
from nsa_train.nsa.triton.limits import DTYPES, head_dim_problem, selection_block_problem

KERNELS = "_selection_kernels"
_DKDV_ROWS = 64  # rows (queries x group heads) per dk/dv step
_DKDV_ROWS_WIDE = 16  # the same where rows are wide and the device's shared memory small (see dkdv_rows)
_WIDE_ROW_BYTES = 256  # a q/do tile row of 128 dims in 16 bits, 64 in fp32: 64 rows fit every card
_LARGE_SHARED_MEMORY = 200 * 1024  # H100/H200 (227 KiB a program): 64 wide rows fit


def check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_indices: torch.Tensor, block_size: int):
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        shapes = f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        raise ValueError(f"q, k, v must be 4-D [B, T, heads, dim]; got {shapes}")
    B, T, HQ, D = q.shape
    H = k.shape[2]
    if k.shape != (B, T, H, D) or v.shape[:3] != (B, T, H):
        shapes = f"{tuple(k.shape)}, {tuple(v.shape)}"
        raise ValueError(f"k must be [B, T, H, D] and v [B, T, H, Dv] for q {tuple(q.shape)}; got {shapes}")
    if HQ % H:
        raise ValueError(f"query heads ({HQ}) must be a multiple of key/value heads ({H})")
    check_block_indices(block_indices, B, T, H)
    if problem := selection_block_problem(block_size) or head_dim_problem(D, v.shape[3]):
        raise ValueError(problem)
    if q.dtype not in DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k, v must share one dtype among {DTYPES}; got {q.dtype}, {k.dtype}, {v.dtype}")
    devices = {q.device, k.device, v.device, block_indices.device}
    if len(devices) != 1:
        raise ValueError(f"q, k, v and block_indices must be on one device; got {sorted(map(str, devices))}")


def build_reverse_index(block_indices: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each (batch, KV head, block): the query positions that selected it and can see part of it.

    block_indices ``[B, T, H, S]`` -> (offsets ``[B*H*NB + 1]`` int32, tokens ``[B*T*H*S]`` int32),
    CSR style: the queries of list ``i = (b*H + h)*NB + j`` are ``tokens[offsets[i]:offsets[i+1]]``,
    ascending; unusable slots are sorted past the last list. One stable sort and a binary search,
    no host synchronisation; used by the dk/dv kernel instead of atomics.
    """
    B, T, H, S = block_indices.shape
    NB = math.ceil(T / block_size)
    if B * T * H * S >= 2**31:
        raise ValueError(f"block_indices {tuple(block_indices.shape)} has >= 2**31 entries; split the batch")
    dev = block_indices.device
    idx = block_indices.long()  # [B, T, H, S]
    t = torch.arange(T, device=dev).view(1, T, 1, 1)
    usable = (idx >= 0) & (idx * block_size <= t)  # [B, T, H, S]
    bh = torch.arange(B, device=dev).view(B, 1, 1, 1) * H + torch.arange(H, device=dev).view(1, 1, H, 1)
    list_id = torch.where(usable, bh * NB + idx, B * H * NB)  # [B, T, H, S]; B*H*NB = "unusable"
    list_id, order = torch.sort(list_id.flatten(), stable=True)  # stable: t stays ascending within a list
    offsets = torch.searchsorted(list_id, torch.arange(B * H * NB + 1, device=dev))
    tokens = t.expand(B, T, H, S).flatten()[order]
    return offsets.to(torch.int32), tokens.to(torch.int32).contiguous()


def unique_block_indices(block_indices: torch.Tensor) -> torch.Tensor:
    """[B, T, H, S] -> int32 [B, T, H, S] sorted per row with repeated ids replaced by -1.

    The reference counts a block listed twice once; the kernels would count it twice.
    """
    idx, _ = block_indices.to(torch.int32).sort(dim=-1)
    repeat = torch.zeros_like(idx, dtype=torch.bool)
    repeat[..., 1:] = idx[..., 1:] == idx[..., :-1]
    return idx.masked_fill(repeat, -1).contiguous()


def _launch_meta(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_indices: torch.Tensor, block_size: int):
    B, T, HQ, D = q.shape
    H, S, DV = k.shape[2], block_indices.shape[3], v.shape[3]
    G = HQ // H
    return {
        "H": H,
        "G": G,
        "D": D,
        "DV": DV,
        "BS": block_size,
        "BD": max(16, next_pow2(D)),
        "BDV": max(16, next_pow2(DV)),
        "IEEE": q.dtype == torch.float32,
    }, (B, T, H, S)


@functools.cache
def device_shared_memory(device: torch.device) -> int | None:
    """Shared memory a program may use on this CUDA device (bytes); None elsewhere (the interpreter)."""
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    return int(getattr(props, "shared_memory_per_block_optin", props.shared_memory_per_block))


def dkdv_rows(dtype: torch.dtype, BD: int, smem: int | None) -> int:
    """Rows (queries x group heads) per step of the dk/dv kernel. Its program keeps the block's k and v tiles
    and a step's q and do tiles in shared memory: with rows over 128 dims in 16 bits (or 64 in fp32) only a
    card with H100's 227 KiB fits 64 rows; elsewhere 16 (compiled for sm_89, 99 KiB a program: 8/2 heads of
    256 dims in bf16 needed 140,800 B with 64 rows, 103,168 with 32, 84,352 with 16; 3 or 1 pipeline stages
    changed it by 1.5 KiB). Unknown (None, the interpreter) counts as small, so the tests run the 16 rows."""
    wide = BD * torch.finfo(dtype).bits // 8 > _WIDE_ROW_BYTES
    return _DKDV_ROWS_WIDE if wide and (smem or 0) < _LARGE_SHARED_MEMORY else _DKDV_ROWS


def _forward(kernels: ModuleType, q, k, v, block_indices, block_size: int, scale: float):
    meta, (B, T, H, S) = _launch_meta(q, k, v, block_indices, block_size)
    o = torch.empty(*q.shape[:3], v.shape[3], dtype=q.dtype, device=q.device)  # [B, T, HQ, Dv]
    lse = torch.empty(q.shape[:3], dtype=torch.float32, device=q.device)  # [B, T, HQ]
    with on_device(q):
        kernels.selection_fwd_kernel[(T, B * H)](
            q, k, v, block_indices, o, lse, scale, T, S=S, BG=max(16, next_pow2(meta["G"])), **meta
        )
    return o, lse


def _backward(kernels: ModuleType, q, k, v, block_indices, o, lse, do, block_size: int, scale: float):
    meta, (B, T, H, S) = _launch_meta(q, k, v, block_indices, block_size)
    do = do.contiguous()
    delta = (o.float() * do.float()).sum(-1)  # [B, T, HQ]: rowsum(dO * O) of the softmax backward
    dq = torch.empty_like(q)
    with on_device(q):
        kernels.selection_bwd_dq_kernel[(T, B * H)](
            q, k, v, block_indices, do, lse, delta, dq, scale, T, S=S, BG=max(16, next_pow2(meta["G"])), **meta
        )

    NB = math.ceil(T / block_size)
    offsets, tokens = build_reverse_index(block_indices, block_size)
    dk = torch.empty_like(k)  # every token belongs to one block, so the kernel writes all of dk
    dv = torch.empty_like(v)
    GP = next_pow2(meta["G"])
    BQ = max(1, dkdv_rows(q.dtype, meta["BD"], device_shared_memory(q.device)) // GP)
    with on_device(q):
        kernels.selection_bwd_dkdv_kernel[(NB, B * H)](
            q, k, v, do, lse, delta, offsets, tokens, dk, dv, scale, T, NB, GP=GP, BQ=BQ, **meta
        )
    return dq, dk, dv


def _kernel_key(q, k, v, block_indices, block_size: int) -> tuple:
    """What the selection kernels compile for (backward_fallback remembers failures by it)."""
    meta, (_, _, _, S) = _launch_meta(q, k, v, block_indices, block_size)
    return backward_fallback.kernel_key(KERNELS, q, {**meta, "S": S})


class _SelectionAttentionFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, block_indices, block_size: int, scale: float):
        kernels = load_kernels(KERNELS)
        o, lse = _forward(kernels, q, k, v, block_indices, block_size, scale)
        ctx.save_for_backward(q, k, v, block_indices, o, lse)
        ctx.kernels = kernels  # backward runs in the same mode as forward
        ctx.block_size = block_size
        ctx.scale = scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, block_indices, o, lse = ctx.saved_tensors
        block_size, scale = ctx.block_size, ctx.scale

        def kernels():  # type: ignore[no-untyped-def]
            return _backward(ctx.kernels, q, k, v, block_indices, o, lse, do, block_size, scale)

        def fast_op(q, k, v):  # type: ignore[no-untyped-def]
            return fast.selection_attention_fast(q, k, v, block_indices, block_size, scale)

        # the kernels, or the fast path's gradients where they fail (counted, remembered by kernel sizes)
        key = _kernel_key(q, k, v, block_indices, block_size)
        dq, dk, dv = backward_fallback.gradients("selection", key, kernels, fast_op, (q, k, v), do)
        return dq, dk, dv, None, None, None


def selection_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_indices: torch.Tensor,
    block_size: int,
    scale: float | None = None,
) -> torch.Tensor:
    """NSA selected-block attention with Triton kernels (forward and backward).

    q ``[B, T, HQ, D]``, k ``[B, T, H, D]``, v ``[B, T, H, Dv]``, block_indices ``[B, T, H, S]``
    (block ids, -1 = unused; a repeated id counts once). A query at t attends to the
    tokens of its selected blocks that are <= t; a query with none visible gets 0.
    Returns ``[B, T, HQ, Dv]`` in q's dtype.

    Raises ``TritonUnavailableError`` (a RuntimeError) when the kernels cannot run for these
    tensors; the caller counts the fallback and uses the PyTorch path. A backward kernel that
    fails gives the fast path's gradients instead, counted (``backward_fallback``).
    """
    ok, reason = triton_available(q.device)
    if not ok:
        raise TritonUnavailableError(f"selection_attention_triton cannot run: {reason}")
    check_inputs(q, k, v, block_indices, block_size)
    scale = default_scale(scale, q.shape[-1])
    out_dtype = q.dtype
    if kernel_mode() == "interpreter" and q.dtype != torch.float32:
        # The interpreter's low-precision tl.dot is wrong; compute in fp32 and cast back.
        q, k, v = q.float(), k.float(), v.float()
    o = _SelectionAttentionFn.apply(
        q.contiguous(), k.contiguous(), v.contiguous(), unique_block_indices(block_indices), block_size, scale
    )
    return o.to(out_dtype)
