"""recomputed(fn, *inputs): same outputs and gradients as fn, only the inputs kept for backward, autocast replayed."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from nsa_train.nsa.recompute import recomputed


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 64), nn.SiLU(), nn.Linear(64, 6))


def _run(mlp: nn.Sequential, x: torch.Tensor, *params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two outputs, one a view of the MLP's, as the layer's φ pair is."""
    names = [n for n, _ in mlp.named_parameters()]
    y = functional_call(mlp, dict(zip(names, params, strict=True)), (x,))
    return torch.sigmoid(y), y[..., :3]


def _grads(use_recompute: bool, autocast: bool, use_second: bool = True) -> list[torch.Tensor]:
    mlp = _mlp()
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
    w = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        args = (x, *mlp.parameters())
        a, b = recomputed(lambda *t: _run(mlp, *t), *args) if use_recompute else _run(mlp, *args)
        loss = (a.float() * w).sum() + (b.float().sum() if use_second else 0)
    loss.backward()
    return [a.detach().float(), x.grad, *(p.grad for p in mlp.parameters())]


def test_outputs_and_gradients_equal_plain_autograd():
    for use_second in (True, False):  # an output without gradient gets zeros, not an error
        plain, recomp = _grads(False, False, use_second), _grads(True, False, use_second)
        for p, r in zip(plain, recomp, strict=True):
            torch.testing.assert_close(r, p, atol=1e-6, rtol=1e-6)


def test_recompute_replays_the_callers_autocast():
    """Backward runs outside the autocast region; without replaying it the recompute would run in fp32 and its
    gradients would differ from bf16 autocast's by bf16 rounding."""
    plain, recomp = _grads(False, True), _grads(True, True)
    for p, r in zip(plain, recomp, strict=True):
        torch.testing.assert_close(r, p, atol=1e-6, rtol=1e-6)


def test_only_the_inputs_are_kept_for_backward():
    mlp = _mlp()
    x = torch.randn(4, 100, 16, requires_grad=True)
    args = (x, *mlp.parameters())

    def saved_bytes(use_recompute: bool) -> int:
        ptrs: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            ptrs[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = recomputed(lambda *t: _run(mlp, *t), *args) if use_recompute else _run(mlp, *args)
        del out
        return sum(ptrs.values())

    inputs = sum(t.untyped_storage().nbytes() for t in args)
    assert saved_bytes(True) == inputs
    assert saved_bytes(False) > inputs + 4 * 100 * 64 * 4  # plain autograd keeps the hidden layer, at least


def test_gradcheck_float64():
    mlp = _mlp().double()
    x = torch.randn(2, 3, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    params = tuple(p.detach().clone().requires_grad_(True) for p in mlp.parameters())
    assert torch.autograd.gradcheck(lambda *t: recomputed(lambda *u: _run(mlp, *u), *t), (x, *params))
