"""Shared helpers of the NSA attention ops: argument checks, scale, compute dtype, safe softmax."""

from __future__ import annotations

import math
import numbers

import torch

# The fast compressed and selection ops keep scores in base-2 units (q scaled by scale * LOG2E) and take exp2:
# PyTorch's CPU exp2 is ~4x faster than exp, a large share of their non-GEMM time. Same probabilities.
LOG2E = math.log2(math.e)


def check_qkv(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, same_length: bool = True
) -> tuple[int, int, int, int, int]:
    """Validate fla-layout shapes; returns (B, T, HQ, H, G) with G = HQ // H query heads per KV head.

    same_length=False for compressed keys, whose length NC differs from T.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"q, k, v must be 4-D [B, T, heads, dim]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    B, T, HQ, D = q.shape
    if k.shape[0] != B or v.shape[0] != B or k.shape[2] != v.shape[2] or k.shape[3] != D or k.shape[1] != v.shape[1]:
        raise ValueError(f"incompatible shapes q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if same_length and k.shape[1] != T:
        raise ValueError(f"k/v length {k.shape[1]} differs from q length {T}")
    H = k.shape[2]
    if HQ % H != 0:
        raise ValueError(f"query heads ({HQ}) must be a multiple of key/value heads ({H})")
    return B, T, HQ, H, HQ // H


def check_sizes(**sizes: int) -> None:
    """Block lengths, strides, block sizes and counts: positive integers. A 0 divided by zero on one path, a
    negative one gave the reference and fast paths silently different outputs."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_block_indices(block_indices: torch.Tensor, B: int, T: int, H: int) -> None:
    """block_indices [B, T, H, S] of an integer dtype (float ids were taken as they came)."""
    if block_indices.dim() != 4 or block_indices.shape[:3] != (B, T, H):
        raise ValueError(f"block_indices must be [B, T, H, S] = [{B}, {T}, {H}, S], got {tuple(block_indices.shape)}")
    if block_indices.dtype.is_floating_point or block_indices.dtype.is_complex or block_indices.dtype == torch.bool:
        raise ValueError(f"block_indices must be an integer tensor, got {block_indices.dtype}")


_SCALE_RULE = "scale must be None or a finite number > 0 (a Python real or a 0-d tensor that needs no gradient)"


def check_scale(scale: object) -> float | None:
    """The softmax scale as a float, None for the default. None, a Python real number or a 0-d real tensor that
    needs no gradient (it is read as a constant: a gradient would be lost), finite and > 0. float() took the
    string '2.0' and one-element tensors as they came, NaN and inf gave NaN outputs, and on the Triton path a
    string failed inside the kernel and was counted as a kernel fallback; a scale <= 0 weights the least similar
    keys most (or all alike), a slip rather than attention."""
    if scale is None:
        return None
    if isinstance(scale, torch.Tensor):
        if scale.dim() != 0 or scale.dtype.is_complex or scale.dtype == torch.bool:
            raise ValueError(f"{_SCALE_RULE}, got a {scale.dtype} tensor of shape {tuple(scale.shape)}")
        if scale.requires_grad:
            raise ValueError(f"{_SCALE_RULE}, got a tensor that requires grad (it would get no gradient)")
        value = float(scale.item())
    elif isinstance(scale, numbers.Real) and not isinstance(scale, bool):
        value = float(scale)
    else:
        raise ValueError(f"{_SCALE_RULE}, got {scale!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{_SCALE_RULE}, got {value!r}")
    return value


def default_scale(scale: object, head_dim: int) -> float:
    """check_scale's float, or 1/sqrt(head_dim) for None."""
    value = check_scale(scale)
    return 1.0 / math.sqrt(head_dim) if value is None else value


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Low-precision inputs are computed in fp32; fp32/fp64 stay as they are (fp64 for gradcheck)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim restricted to ``mask``; rows with no visible entry give all zeros (no NaN).

    Multiplying by the mask (instead of filling -inf and fixing NaNs afterwards) keeps gradients finite.
    """
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    m = filled.amax(dim=-1, keepdim=True).detach()
    e = torch.exp(filled - m) * mask
    denom = e.sum(dim=-1, keepdim=True)
    return e / denom.clamp_min(torch.finfo(scores.dtype).tiny)


def vjp(
    outputs: list[torch.Tensor], inputs: list[torch.Tensor], grads: list[torch.Tensor | None]
) -> tuple[torch.Tensor | None, ...]:
    """torch.autograd.grad(outputs, inputs, grads) (None for an unused input), for backward functions that
    rebuild a graph. Σ(o·g) has gradient exactly g at each o, so differentiating it gives the same vector-Jacobian
    product; passing grads as grad_outputs instead makes autograd import sympy for its shape check (torch
    2.13), ~34 MB of resident memory for the rest of the process. Outputs without a graph or a gradient add
    nothing."""
    with torch.enable_grad():
        terms = [(o * g).sum() for o, g in zip(outputs, grads, strict=True) if o.requires_grad and g is not None]
        total = sum(terms[1:], terms[0]) if terms else None
    if total is None:
        return (None,) * len(inputs)
    return torch.autograd.grad(total, inputs, allow_unused=True)
