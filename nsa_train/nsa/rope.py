"""Rotary position embedding (half-split convention) at arbitrary, possibly fractional, positions.

``apply_rope`` is one autograd function that writes the rotated halves straight into its output (forward) or
input gradient (backward): the plain formula (``apply_rope_reference``, the test oracle) makes six
intermediate tensors and a concatenation each way, which at long T are fresh allocations whose page faults
cost more than the arithmetic. The rotation is orthogonal, so backward is the same rotation by -angle and
nothing but cos/sin is saved.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def rope_angles(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """positions [N] -> (cos, sin) [N, head_dim // 2] in float32."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    ang = positions.float()[:, None] * inv_freq[None, :]
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, N, heads, D] (any strides) rotated by (cos, sin) [N, D/2]; returns a contiguous tensor of x's dtype.
    Computed in float32 (float64 stays float64)."""
    if torch.compiler.is_compiling():  # the dense model under train.compile: Dynamo cannot trace the writes into
        return apply_rope_reference(x, cos, sin)  # views below, and Inductor fuses the plain formula anyway
    cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    return _RopeFn.apply(x.to(cdt), cos.to(cdt), sin.to(cdt)).to(x.dtype)


def apply_rope_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The plain formula apply_rope computes, same signature: the readable twin for tests."""
    xf = x if x.dtype == torch.float64 else x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    c, s = cos.to(xf.dtype)[None, :, None, :], sin.to(xf.dtype)[None, :, None, :]
    return torch.cat((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).to(x.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, sign: float) -> torch.Tensor:
    """[x1 c - sign x2 s, x2 c + sign x1 s] for x = [x1, x2] [B, N, heads, D]: two passes per half, one buffer."""
    x1, x2 = x.chunk(2, dim=-1)
    c, s = cos[None, :, None, :], sin[None, :, None, :]  # [1, N, 1, D/2]
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    o1, o2 = out.chunk(2, dim=-1)
    torch.mul(x1, c, out=o1).addcmul_(x2, s, value=-sign)
    torch.mul(x2, c, out=o2).addcmul_(x1, s, value=sign)
    return out


class _RopeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos, sin):  # type: ignore[override]
        ctx.save_for_backward(cos, sin)
        return _rotate(x, cos, sin, 1.0)

    @staticmethod
    @once_differentiable
    def backward(ctx, do):  # type: ignore[override]
        cos, sin = ctx.saved_tensors
        return _rotate(do, cos, sin, -1.0), None, None
