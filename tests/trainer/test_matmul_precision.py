"""runtime.tf32: fp32 matmuls on TF32 tensor cores on CUDA, full fp32 when turned off; the CPU untouched."""

from __future__ import annotations

import pytest
import torch

from nsa_train.config import load_config
from nsa_train.runtime.device import configure_matmul


@pytest.fixture
def restore_matmul_precision():
    before, conv = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    yield
    torch.set_float32_matmul_precision(before)
    torch.backends.cudnn.allow_tf32 = conv


def test_cuda_runs_take_tf32_unless_turned_off(restore_matmul_precision):
    # a torch.device object is all configure_matmul reads: no GPU needed to check the setting
    cuda = torch.device("cuda", 0)
    assert load_config(None, []).runtime.tf32 is True
    assert configure_matmul(load_config(None, []).runtime, cuda) == "high"
    assert configure_matmul(load_config(None, ["runtime.tf32=false"]).runtime, cuda) == "highest"
    # the compression MLP's conv1d too (review revBQ: cuDNN's TF32 stayed on in "full fp32" runs)
    assert torch.backends.cudnn.allow_tf32 is False
    configure_matmul(load_config(None, []).runtime, cuda)
    assert torch.backends.cudnn.allow_tf32 is True


def test_cpu_runs_are_left_alone(restore_matmul_precision):
    torch.set_float32_matmul_precision("medium")
    assert configure_matmul(load_config(None, ["runtime.tf32=false"]).runtime, torch.device("cpu")) == "medium"
    torch.set_float32_matmul_precision("highest")
    assert configure_matmul(load_config(None, []).runtime, torch.device("cpu")) == "highest"
