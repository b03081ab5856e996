"""GPU memory in progress records: the peak inside the steps since the previous record, not the level between."""

from __future__ import annotations

import pytest
import torch

from nsa_train.runtime.device import gpu_memory_gb


@pytest.fixture
def cuda() -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch.device("cuda")


@pytest.mark.gpu
def test_gpu_memory_is_the_peak_since_the_previous_reading(cuda):
    gpu_memory_gb(cuda)  # start a window
    held = torch.empty(256 * 2**20, dtype=torch.uint8, device=cuda)  # 0.25 GiB for the whole test
    transient = torch.empty(2**30, dtype=torch.uint8, device=cuda)  # 1 GiB, freed before the reading
    del transient
    peak, reserved = gpu_memory_gb(cuda)
    assert peak >= 1.25 and reserved >= 1.25
    peak, _ = gpu_memory_gb(cuda)  # a new window: only what is held now
    assert 0.25 <= peak < 1.0
    del held


def test_cpu_has_no_gpu_memory():
    assert gpu_memory_gb(torch.device("cpu")) == (None, None)
