"""The fused RoPE against its plain formula (outputs and gradients), and the property RoPE exists for."""

from __future__ import annotations

import pytest
import torch

from nsa_train.nsa.rope import apply_rope, apply_rope_reference, rope_angles


def _strided(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A non-contiguous [B, N, heads, D] view, like the keys sliced out of the layer's fused projection."""
    B, N, H, D = shape
    return torch.randn(B, N, 3, H, D, dtype=dtype)[:, :, 1]


def test_output_and_gradient_match_the_formula_on_strided_inputs():
    torch.manual_seed(0)
    cos, sin = rope_angles(torch.arange(37), 16, 10000.0)
    x = _strided((2, 37, 3, 16)).requires_grad_(True)
    do = torch.randn(2, 37, 3, 16).transpose(0, 1).contiguous().transpose(0, 1)  # a strided upstream gradient
    out, ref = apply_rope(x, cos, sin), apply_rope_reference(x, cos, sin)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    (g,) = torch.autograd.grad(out, x, do)
    (g_ref,) = torch.autograd.grad(ref, x, do)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-6)


def test_gradcheck_float64():
    cos, sin = rope_angles(torch.arange(5) * 1.5 + 0.25, 8, 100.0)  # fractional positions, like compressed keys
    x = _strided((1, 5, 2, 8), torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: apply_rope(t, cos, sin), (x,))


def test_bfloat16_in_bfloat16_out():
    cos, sin = rope_angles(torch.arange(12), 8, 10000.0)
    x = torch.randn(1, 12, 2, 8).bfloat16()
    out = apply_rope(x, cos, sin)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), apply_rope_reference(x, cos, sin).float())


@pytest.mark.parametrize("rotate", [apply_rope, apply_rope_reference])
def test_scores_depend_only_on_the_distance(rotate):
    """q at position p against k at p - delta scores the same for every p: RoPE's reason to exist."""
    torch.manual_seed(1)
    q, k = torch.randn(1, 1, 1, 16).expand(1, 6, 1, 16), torch.randn(1, 1, 1, 16).expand(1, 6, 1, 16)
    delta = 3
    cq, sq = rope_angles(torch.arange(6) + 10.0, 16, 10000.0)
    ck, sk = rope_angles(torch.arange(6) + 10.0 - delta, 16, 10000.0)
    scores = (rotate(q, cq, sq) * rotate(k, ck, sk)).sum(-1).flatten()
    torch.testing.assert_close(scores, scores[:1].expand(6), rtol=0, atol=1e-5)
    unrotated = (q * k).sum(-1).flatten()[0]
    assert not torch.isclose(scores[0], unrotated, atol=1e-3)  # the rotation did change the score
