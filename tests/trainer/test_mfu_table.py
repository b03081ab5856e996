"""MFU's denominator: which datasheet peak a device name gets, and the fraction's arithmetic."""

from __future__ import annotations

import pytest

from nsa_train.telemetry.mfu import fmt_mfu, mfu, run_mfu, table_peak_flops


@pytest.mark.parametrize(
    ("name", "precision", "tf32", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", "bf16", True, 989.4),
        ("NVIDIA H100 PCIe", "bf16", True, 756.5),
        ("NVIDIA H100 NVL", "bf16", True, 835.5),
        ("NVIDIA H200", "bf16", True, 989.4),
        ("NVIDIA GH200 480GB", "fp32", True, 494.7),
        ("NVIDIA A100-SXM4-80GB", "bf16", True, 312.0),
        ("NVIDIA A100 80GB PCIe", "fp32", True, 156.0),
        ("NVIDIA A100-PCIE-40GB", "fp32", False, 19.5),
        ("NVIDIA L4", "bf16", True, 121.0),
        ("NVIDIA L40S", "bf16", True, 362.05),
        ("NVIDIA A10", "bf16", True, 125.0),
        ("NVIDIA GeForce RTX 4090", "bf16", True, 165.2),
    ],
)
def test_known_cards(name, precision, tf32, tflops):
    assert table_peak_flops(name, precision, tf32) == pytest.approx(tflops * 1e12)


@pytest.mark.parametrize("name", ["cpu", "NVIDIA L40", "NVIDIA A10G", "Tesla V100-SXM2-16GB", "AMD Instinct MI300X"])
def test_cards_not_in_the_table_have_no_peak(name):
    """No guess: a wrong peak would give a wrong verdict (monitor.peak_tflops gives one)."""
    assert table_peak_flops(name, "bf16", True) is None


def test_mfu_arithmetic_and_missing_inputs():
    assert mfu(1000.0, 1e9, 1e14, 2) == pytest.approx(1000 * 1e9 / 2e14)
    for args in [(None, 1e9, 1e14, 1), (1000.0, None, 1e14, 1), (1000.0, 1e9, None, 1), (1000.0, 1e9, 1e14, 0)]:
        assert mfu(*args) is None
    assert mfu(float("nan"), 1e9, 1e14, 1) is None and mfu(1000.0, 1e9, 1e14, True) is None
    info = {"flops_per_token": 1e9, "peak_flops": 1e14, "world_size": 4}
    assert run_mfu(info, 2000) == pytest.approx(2000 * 1e9 / 4e14)
    assert run_mfu({}, 2000) is None


def test_fmt_mfu():
    assert fmt_mfu(0.0312) == "3.1%"
    assert fmt_mfu(0.00052) == "0.052%"
    assert fmt_mfu(None) == "-" and fmt_mfu(float("nan")) == "-"
