"""Recompute instead of keep: run a cheap function in forward without keeping its activations, rebuild them in
backward from its inputs.

The layer uses it for work that is cheap next to attention but whose activations are as long as the sequence
(the compression MLP's inputs, the gate MLP's hidden layer). torch.utils.checkpoint does the same, but its
first call imports TorchDynamo (~150 MB of resident memory, more than this saves at 8k tokens). A training
process pays that import anyway (torch.optim's add_param_group imports TorchDynamo); the layer on its own,
as in bench/attention.py, should not.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from nsa_train.nsa._common import vjp


class _RecomputeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, *inputs):  # type: ignore[override]
        # Function.forward runs without grad, so fn's intermediates are freed as soon as fn returns
        device = inputs[0].device.type
        ctx.fn = fn
        # backward runs outside the caller's autocast region: replay it, or the recompute's dtypes would differ
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.save_for_backward(*inputs)
        return fn(*inputs)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        device, enabled, dtype = ctx.autocast
        need = ctx.needs_input_grad[1:]
        inputs = [x.detach().requires_grad_(n) for x, n in zip(ctx.saved_tensors, need, strict=True)]
        with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
            outs = ctx.fn(*inputs)
        outs = [outs] if isinstance(outs, torch.Tensor) else list(outs)
        wanted = [x for x in inputs if x.requires_grad]
        got = iter(vjp(outs, wanted, list(grads)) if wanted else ())
        return (None, *(next(got) if x.requires_grad else None for x in inputs))


Outputs = torch.Tensor | tuple[torch.Tensor, ...]


def recomputed(fn: Callable[..., Outputs], *inputs: torch.Tensor) -> Outputs:
    """fn(*inputs), keeping only the inputs for backward (fn runs once more there).

    fn must compute from its arguments only: pass every tensor it needs a gradient for, parameters included
    (torch.func.functional_call runs a module on given tensors). Gradients of tensors it reads otherwise
    would be lost.
    """
    return _RecomputeFn.apply(fn, *inputs)
