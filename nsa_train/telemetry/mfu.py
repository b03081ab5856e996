"""Model FLOPs utilisation: how much of the accelerators' peak a run's tokens/s amounts to.

Shared by the trainer (its log line, run.json's ``peak_flops``) and the tools (status, watch, report and the
``throughput_low`` rule), so standard-library only. A seed report accepted 38 tokens/s from a 125M model on two
A100s as normal; that is 0.005% MFU, which no hardware excuses, where a bare tokens/s needs a floor only its
user knows.

MFU = tokens/s x model FLOPs per token (``nsa_train.config.flops``) / (peak FLOP/s per device x world size).
"""

from __future__ import annotations

import math
import re
from typing import Any

from nsa_train.telemetry import schema

# NVIDIA's datasheet peaks per GPU, dense (without 2:4 sparsity), in TFLOP/s: (name pattern, bf16, tf32, fp32).
# The first pattern that matches torch.cuda.get_device_name() wins, so variants come before their family. A card
# not listed has no MFU unless monitor.peak_tflops gives its peak.
PEAK_TFLOPS: tuple[tuple[str, float, float, float], ...] = (
    (r"H100.*NVL|H200.*NVL", 835.5, 417.5, 60.0),
    (r"H100.*PCIe", 756.5, 378.0, 51.2),
    (r"H100|H200|GH200", 989.4, 494.7, 66.9),  # SXM; GH200's GPU is an H100/H200 SXM
    (r"A100", 312.0, 156.0, 19.5),
    (r"L40S", 362.05, 183.0, 91.6),
    (r"\bL4\b", 121.0, 60.0, 30.3),
    (r"\bA10\b", 125.0, 62.5, 31.2),
    (r"RTX A6000", 154.8, 77.4, 38.7),
    (r"RTX 4090", 165.2, 82.6, 82.6),  # bf16 with fp32 accumulation, as torch runs it
    (r"RTX 3090", 71.0, 35.6, 35.6),
)


def table_peak_flops(device_name: str, precision: str, tf32: bool) -> float | None:
    """Peak FLOP/s of one device for the run's matmuls: bf16 autocast, else fp32 on TF32 tensor cores (when
    runtime.tf32 allows them) or on plain fp32 cores; None for a card not in the table (and for a CPU)."""
    for pattern, bf16, tf32_peak, fp32 in PEAK_TFLOPS:
        if re.search(pattern, device_name):
            tflops = bf16 if precision == "bf16" else tf32_peak if tf32 else fp32
            return tflops * 1e12
    return None


def peak_flops(gpu_name: str | None, precision: str, tf32: bool, peak_tflops: float | None) -> float | None:
    """One device's peak FLOP/s for a run's matmuls: monitor.peak_tflops when given, else the datasheet table for
    a known GPU (``gpu_name``); None for a CPU (``gpu_name`` None: no meaningful peak) and for an unknown card.
    One rule for the trainer's run.json and `nsa check`'s compute row."""
    if peak_tflops is not None:
        return peak_tflops * 1e12
    return table_peak_flops(gpu_name, precision, tf32) if gpu_name is not None else None


def _positive(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x <= 0:
        return None
    return float(x)


def mfu(toks_per_s: Any, flops_per_token: Any, peak_flops: Any, world_size: Any) -> float | None:
    """The fraction of peak (0.031 for 3.1%); None when any input is missing or not a positive number (a CPU run,
    an unknown card, a run.json from before these fields)."""
    toks, fpt, peak = _positive(toks_per_s), _positive(flops_per_token), _positive(peak_flops)
    world = world_size if isinstance(world_size, int) and not isinstance(world_size, bool) and world_size > 0 else None
    if toks is None or fpt is None or peak is None or world is None:
        return None
    return toks * fpt / (peak * world)


def run_mfu(run_info: dict[str, Any], toks_per_s: Any) -> float | None:
    """MFU of a tokens/s figure of the run whose run.json is ``run_info``."""
    flops, peak, world = (
        run_info.get(k) for k in (schema.RUN_FLOPS_PER_TOKEN, schema.RUN_PEAK_FLOPS, schema.RUN_WORLD_SIZE)
    )
    return mfu(toks_per_s, flops, peak, world)


def fmt_mfu(value: float | None) -> str:
    """3.1%, 0.048%: two significant digits below 1%, where the seed reports' runs were."""
    if value is None or not math.isfinite(value):
        return "-"
    pct = value * 100
    return f"{pct:.1f}%" if pct >= 1 else f"{pct:.2g}%"
