"""Gate statistics on crafted gates."""

from __future__ import annotations

import math

import pytest
import torch

from nsa_train.telemetry.gates import GateAccumulator


def gates_of(shares: list[float], rows: int = 6) -> torch.Tensor:
    return torch.tensor(shares).expand(1, rows, 2, 3).clone()  # [B, T, HQ, 3]


def test_uniform_gates_have_max_entropy_and_no_collapse() -> None:
    acc = GateAccumulator()
    acc.add([gates_of([0.5, 0.5, 0.5]), gates_of([0.2, 0.2, 0.2])])
    s = acc.read()
    assert s["gate_entropy_mean"] == pytest.approx(math.log(3), rel=1e-5)
    assert s["gate_entropy_min"] == pytest.approx(math.log(3), rel=1e-5)
    assert s["gate_max_mean"] == pytest.approx(1 / 3, rel=1e-5)
    assert s["gate_collapse_frac"] == 0.0
    assert s["gate_branch_shares"] == pytest.approx([1 / 3] * 3, rel=1e-5)


def test_one_collapsed_layer_shows_in_min_and_fraction() -> None:
    acc = GateAccumulator()
    healthy, collapsed = gates_of([0.5, 0.5, 0.5]), gates_of([1e-4, 1e-4, 0.99])
    acc.add([healthy, collapsed])
    s = acc.read()
    p = torch.tensor([1e-4, 1e-4, 0.99])
    p = p / p.sum()
    h = float(-(p * p.log()).sum())
    assert h < 0.1
    assert s["gate_entropy_min"] == pytest.approx(h, rel=1e-4)
    assert s["gate_entropy_mean"] == pytest.approx((math.log(3) + h) / 2, rel=1e-4)
    assert s["gate_collapse_frac"] == pytest.approx(0.5)
    assert s["gate_branch_shares"][2] == pytest.approx((1 / 3 + float(p[2])) / 2, rel=1e-5)


def test_accumulates_across_steps_and_resets_on_read() -> None:
    acc = GateAccumulator()
    acc.add([gates_of([0.5, 0.5, 0.5])])
    acc.add([gates_of([1e-4, 1e-4, 0.99])])
    assert acc.read()["gate_collapse_frac"] == pytest.approx(0.5)
    assert acc.read()["gate_entropy_mean"] is None  # nothing since the last read


def test_dense_model_gives_nulls() -> None:
    acc = GateAccumulator()
    acc.add([])
    assert all(v is None for v in acc.read().values())


@pytest.mark.gpu
def test_adding_a_steps_gates_does_not_wait_for_the_gpu() -> None:
    """Review revBQ: each layer's row count was torch.tensor(n, device=cuda), a copy from the host that waits for
    the GPU, once per NSA layer per micro-step (its docstring says no host sync)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    gates = [torch.rand(2, 64, 4, 3, device="cuda") for _ in range(3)]
    acc = GateAccumulator()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        acc.add(gates)
    finally:
        torch.cuda.set_sync_debug_mode("default")
