"""A checkpoint's AdamW state loads under this run's hyper-parameters (nsa_train.runtime.optimizer_state)."""

from __future__ import annotations

import torch
from torch import nn

from nsa_train.runtime.optimizer_state import load_optimizer_state


def _state_of_one_step(fused: bool | None) -> dict:
    torch.manual_seed(0)
    m = nn.Linear(4, 4)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95), fused=fused)
    m(torch.randn(2, 4)).sum().backward()
    opt.step()
    return opt.state_dict()


def test_a_cpu_runs_state_resumed_fused_elsewhere_puts_step_on_the_parameters_device() -> None:
    """Review revBQ: a CPU run (unfused AdamW) resumed on a GPU (fused) kept each `step` on the CPU, where the fused
    kernel reads it through a device pointer: load_state_dict placed it by the saved groups' flags, and this run's
    were applied after the load. ('meta' stands in for the GPU: a device other than the CPU.)"""
    saved = _state_of_one_step(fused=None)
    m = nn.Linear(4, 4, device="meta")
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.5, betas=(0.8, 0.5), fused=True)
    load_optimizer_state(opt, saved)
    [group] = opt.param_groups
    assert group["fused"] is True and group["weight_decay"] == 0.5 and tuple(group["betas"]) == (0.8, 0.5)
    for p, st in opt.state.items():
        assert st["step"].device == p.device and st["step"].dtype == torch.float32
        assert st["exp_avg"].device == p.device
    assert saved["param_groups"][0]["weight_decay"] == 0.1  # the checkpoint's dict is left as it was


def test_the_moments_and_step_counts_are_the_checkpoints() -> None:
    saved = _state_of_one_step(fused=None)
    m = nn.Linear(4, 4)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.0, fused=None)
    load_optimizer_state(opt, saved)
    for i, st in enumerate(opt.state.values()):
        assert float(st["step"]) == 1.0
        torch.testing.assert_close(st["exp_avg"], saved["state"][i]["exp_avg"], rtol=0, atol=0)
    assert opt.param_groups[0]["weight_decay"] == 0.0
