"""runtime.device auto on a machine whose NVIDIA GPUs this torch cannot use (a CPU-only wheel on a rented GPU box,
a driver older than torch's CUDA): refused, not trained on the CPU at a few hundred tokens/s."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nsa_train.config import load_config
from nsa_train.config.schema import ConfigError, RuntimeConfig
from nsa_train.runtime import device as devmod

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="torch can use a GPU here: nothing falls back")


@pytest.fixture
def gpu_box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A /dev with the nodes an NVIDIA driver makes for two GPUs (and its control nodes, which are no GPU)."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia1", "nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-modeset", "null"):
        (dev / name).touch()
    monkeypatch.setattr(devmod, "DEV_DIR", str(dev))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return dev


def test_auto_is_refused_where_gpus_are_that_torch_cannot_use(gpu_box: Path) -> None:
    assert devmod.nvidia_devices() == ["nvidia0", "nvidia1"]
    with pytest.raises(ConfigError) as e:
        devmod.resolve_device(RuntimeConfig(device="auto"), 0)
    said = str(e.value)
    assert said.startswith(
        f"runtime.device is auto and this machine has 2 NVIDIA GPUs ({gpu_box}/nvidia0, {gpu_box}/nvidia1), but "
        f"torch {torch.__version__} is a CPU-only build: install a CUDA build of torch"
    ), said
    assert said.endswith("or set runtime.device=cpu to train on the CPU on purpose")


@pytest.mark.parametrize("hidden", ["", "-1"])
def test_gpus_hidden_on_purpose_or_the_cpu_asked_for_train_on_the_cpu(
    gpu_box: Path, monkeypatch: pytest.MonkeyPatch, hidden: str
) -> None:
    assert devmod.resolve_device(RuntimeConfig(device="cpu"), 0).type == "cpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
    assert devmod.resolve_device(RuntimeConfig(device="auto"), 0).type == "cpu"


def test_a_machine_without_gpus_trains_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nvidiactl").touch()  # the driver's control node alone is no GPU
    monkeypatch.setattr(devmod, "DEV_DIR", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert devmod.unusable_gpus() is None
    assert devmod.resolve_device(RuntimeConfig(device="auto"), 0).type == "cpu"


def test_nsa_check_fails_its_device_row_there(gpu_box: Path) -> None:
    from nsa_train.selfcheck import resolve_target_device

    device, why = resolve_target_device(load_config(None, []), gpus=[])
    assert device is None and why == devmod.unusable_gpus() and "CPU-only build" in str(why)
    device, why = resolve_target_device(load_config(None, ["runtime.device=cpu"]), gpus=[])
    assert device is not None and device.type == "cpu" and why is None
