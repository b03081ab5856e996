"""Attention over keys with a position rule on Triton, shared by the compressed and sliding-window branches:
input checks, compile-time arguments, launches, and the autograd Function.

Key i sits at position i*d + l - 1 and a query at t sees it iff t - w < i*d + l - 1 <= t (compressed blocks:
l, d the block length and stride, w = NO_WINDOW; sliding window: l = d = 1, w the window). The kernels live in
``_attention_kernels.py`` and are imported on first use only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import torch

from nsa_train.nsa._common import check_qkv, default_scale
from nsa_train.nsa.triton import backward_fallback
from nsa_train.nsa.triton.availability import TritonUnavailableError, kernel_mode, load_kernels, triton_available
from nsa_train.nsa.triton.limits import DTYPES, MAX_GQA, gqa_problem, head_dim_problem

KERNELS = "_attention_kernels"
NO_WINDOW = 1 << 30  # w for "no lower bound" (the compressed branch); still fits int32 after adding positions
ROWS = 64  # rows (queries x the group's heads) per tile of the attention kernels
IMPORTANCE_BQ = 16  # queries per tile of the importance kernel: its group-summed [BQ, BN] tile feeds tl.dot
TOPK_WIDTH = 16  # n_sel up to this is picked inside the importance kernel: its 16 selection blocks per key tile
BN = 64  # keys per key tile
MAX_ROWS = 256  # IMPORTANCE_BQ * GP above this would not fit a program's registers: GQA ratios up to 16
assert IMPORTANCE_BQ * MAX_GQA <= MAX_ROWS  # limits.MAX_GQA, which the wrappers and the layer check
MAX_SPLIT = 16  # query chunks of the dk/dv kernel at most
MIN_CHUNK_TILES = 8  # query tiles per chunk at least
SPLIT_OVERRIDE: int | None = None  # tests: force the number of query chunks (the interpreter has no SM count)


def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def query_tile(G: int) -> int:
    """Queries per tile of the attention kernels: ROWS rows whatever the GQA ratio (16 queries x 4 heads, 4 x 16,
    64 x 1). A fixed row count keeps shared memory bounded: with 16 queries of 16 heads of 128 dims, the dk/dv
    kernel needed 164 KiB, more than an A100 gives a program (compiled for sm_80 in the tests)."""
    return max(1, ROWS // next_pow2(G))


def meta(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor | None = None) -> dict[str, int | bool]:
    """The kernels' compile-time arguments: the attention kernels' (with v: value width, key tile, ROWS rows a
    tile), else the importance kernel's (IMPORTANCE_BQ queries a tile)."""
    H, D = k.shape[2], q.shape[3]
    G = q.shape[2] // H
    out: dict[str, int | bool] = {
        "H": H,
        "G": G,
        "D": D,
        "GP": next_pow2(G),
        "BQ": IMPORTANCE_BQ if v is None else query_tile(G),
        "BD": max(16, next_pow2(D)),
        "IEEE": q.dtype == torch.float32,
    }
    if v is not None:
        out.update(DV=v.shape[3], BN=BN, BDV=max(16, next_pow2(v.shape[3])))
    return out


def launch_options(dtype: torch.dtype, D: int) -> dict[str, int]:
    """Software-pipelining depth of the attention and importance kernels: Triton's default 3 stages for 16-bit
    tiles up to 128 dims; fewer where the stages' key/value buffers would not fit a program's shared memory
    (fp32 tiles take twice the bytes: 3 stages of fp32 [64, 128] tiles needed 213 KiB, over an A100's 163;
    the compile test checks every kernel against sm_80's and sm_89's limits)."""
    if dtype == torch.float32:
        return {"num_stages": 1}
    return {"num_stages": 3 if D <= 128 else 1}


def on_device(x: torch.Tensor) -> contextlib.AbstractContextManager:
    # Triton launches on the current CUDA device; make it the tensors' one.
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def grid(n: int, per: int, B: int, H: int) -> tuple[int, int]:
    return (-(-n // per), B * H)


def prepare(
    what: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Checked, contiguous q/k/v (fp32 in the interpreter) and the scale; TritonUnavailableError (the caller
    counts a fallback) when the kernels cannot run here or for this GQA ratio, ValueError for bad inputs."""
    ok, reason = triton_available(q.device)
    if not ok:
        raise TritonUnavailableError(f"the {what} kernels cannot run: {reason}")
    check_qkv(q, k, v, same_length=False)
    if problem := head_dim_problem(q.shape[-1], v.shape[-1]):
        raise ValueError(problem)
    if q.dtype not in DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k, v must share one dtype among {DTYPES}; got {q.dtype}, {k.dtype}, {v.dtype}")
    if len({q.device, k.device, v.device}) != 1:
        raise ValueError("q, k and v must be on one device")
    if problem := gqa_problem(q.shape[2], k.shape[2]):  # IMPORTANCE_BQ * GP rows would pass MAX_ROWS
        raise TritonUnavailableError(problem)
    scale = default_scale(scale, q.shape[-1])
    if kernel_mode() == "interpreter" and q.dtype != torch.float32:
        # The interpreter's low-precision tl.dot is wrong; compute in fp32 and cast back.
        q, k, v = q.float(), k.float(), v.float()
    return q.contiguous(), k.contiguous(), v.contiguous(), scale


def dkdv_split(programs: int, T: int, BQ: int, device: torch.device) -> int:
    """Query chunks for the dk/dv kernel: 1 when its (key tile, batch x KV head) programs already number four
    per SM (the window: many key tiles, each walking ~w queries); else enough chunks to reach that, each of at
    least MIN_CHUNK_TILES query tiles, at most MAX_SPLIT (the compressed branch: few key tiles, each walking
    nearly all T queries)."""
    if SPLIT_OVERRIDE is not None:
        return SPLIT_OVERRIDE
    if device.type != "cuda":
        return 1
    target = 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return max(1, min(-(-target // max(programs, 1)), -(-T // BQ) // MIN_CHUNK_TILES, MAX_SPLIT))


class Fallback(NamedTuple):
    """The branch a call of AttentionFn serves ('compressed', 'window': the name its fallbacks are counted
    under) and the branch's fast twin, o = op(q, k, v), whose gradients the backward gives if its kernels fail."""

    branch: str
    op: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def kernel_key(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple:
    """What the attention kernels compile for (backward_fallback remembers failures by it)."""
    return backward_fallback.kernel_key(KERNELS, q, meta(q, k, v))


def _backward_kernels(kernels, q, k, v, o, lse, do, l: int, d: int, w: int, scale: float):
    """dq, dk, dv: delta = rowsum(do·o), then the dq kernel and the dk/dv kernel."""
    B, T = q.shape[:2]
    NK, H = k.shape[1], k.shape[2]
    do = do.contiguous()
    delta = (o.float() * do.float()).sum(-1)  # [B, T, HQ]: rowsum(dO * O) of the softmax backward
    dq = torch.empty_like(q)
    m = meta(q, k, v)
    BQ = int(m["BQ"])
    key_tiles = grid(NK, BN, B, H)
    split = dkdv_split(key_tiles[0] * key_tiles[1], T, BQ, q.device)
    t_chunk = -(-T // (split * BQ)) * BQ  # a multiple of BQ
    # one fp32 slice per chunk, summed below in a fixed order: deterministic, unlike atomics
    dk = torch.empty_like(k) if split == 1 else k.new_empty(split, *k.shape, dtype=torch.float32)
    dv = torch.empty_like(v) if split == 1 else v.new_empty(split, *v.shape, dtype=torch.float32)
    with on_device(q):
        kernels.attention_bwd_dq_kernel[grid(T, BQ, B, H)](
            q, k, v, do, lse, delta, dq, scale, T, NK, l, d, w, **m, **launch_options(q.dtype, q.shape[3])
        )
        if NK:
            args = (q, k, v, do, lse, delta, dk, dv, scale, T, NK, l, d, w, t_chunk)
            kernels.attention_bwd_dkdv_kernel[(*key_tiles, split)](*args, **m, **launch_options(q.dtype, q.shape[3]))
    if split > 1:
        dk, dv = dk.sum(0).to(k.dtype), dv.sum(0).to(v.dtype)
    return dq, dk, dv


class AttentionFn(torch.autograd.Function):
    """(o [B, T, HQ, Dv], lse [B, T, HQ] fp32) of q [B, T, HQ, D] over k/v [B, NK, H, D|Dv] under the position
    rule (l, d, w); lse is not differentiable. Saves q, k, v, o, lse; backward: the kernels (deterministic: no
    atomics), or, if they fail (a GPU without the shared memory they need), the gradients of ``fallback``'s
    fast op, counted (backward_fallback); with fallback None the error propagates."""

    @staticmethod
    def forward(ctx, q, k, v, l, d, w, scale, fallback: Fallback | None):  # type: ignore[override]
        kernels = load_kernels(KERNELS)
        B, T, HQ, _ = q.shape
        NK, H = k.shape[1], k.shape[2]
        o = q.new_empty(B, T, HQ, v.shape[3])
        lse = torch.empty(B, T, HQ, dtype=torch.float32, device=q.device)
        m = meta(q, k, v)
        with on_device(q):
            kernels.attention_fwd_kernel[grid(T, m["BQ"], B, H)](
                q, k, v, o, lse, scale, T, NK, l, d, w, **m, **launch_options(q.dtype, q.shape[3])
            )
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.kernels, ctx.args, ctx.fallback = kernels, (l, d, w, scale), fallback
        ctx.mark_non_differentiable(lse)
        return o, lse

    @staticmethod
    def backward(ctx, do, _):  # type: ignore[override]
        q, k, v, o, lse = ctx.saved_tensors

        def kernels():  # type: ignore[no-untyped-def]
            return _backward_kernels(ctx.kernels, q, k, v, o, lse, do, *ctx.args)

        if ctx.fallback is None:  # a caller without a fast twin (the importance kernel's lse, benches)
            return *kernels(), None, None, None, None, None
        # the kernels, or the fast path's gradients where they fail (counted, remembered by kernel sizes)
        branch, op = ctx.fallback
        dq, dk, dv = backward_fallback.gradients(branch, kernel_key(q, k, v), kernels, op, (q, k, v), do)
        return dq, dk, dv, None, None, None, None, None
