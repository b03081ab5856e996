"""Device, precision, fp32 matmul precision and CPU threads from the runtime config."""

from __future__ import annotations

import contextlib
import os
import re

import torch

from nsa_train.config.schema import ConfigError, RuntimeConfig


def resolve_device(rt: RuntimeConfig, local_rank: int) -> torch.device:
    if rt.device == "auto" and (unusable := unusable_gpus()) is not None:
        raise ConfigError(unusable)
    if rt.device == "cpu" or (rt.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("runtime.device: 'cuda' requested but no CUDA device is available (use auto or cpu)")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


DEV_DIR = "/dev"  # where the driver's device nodes are (tests point it elsewhere)


def nvidia_devices() -> list[str]:
    """The NVIDIA GPU device nodes of this machine (/dev/nvidia0, ...): there when the driver is loaded and the GPUs
    are given to this container, whatever torch can do with them."""
    try:
        names = os.listdir(DEV_DIR)
    except OSError:
        return []
    return sorted((n for n in names if re.fullmatch(r"nvidia\d+", n)), key=lambda n: int(n[6:]))


def unusable_gpus() -> str | None:
    """Why runtime.device auto must not fall back to the CPU here: the machine has NVIDIA GPUs that this torch cannot
    use (a CPU-only wheel, a driver older than its CUDA). A rented GPU box then trained on its CPU at a few hundred
    tokens/s, and the tools could only call that slow. None when there are no such GPUs, when torch can use them, or
    when CUDA_VISIBLE_DEVICES hides them on purpose (empty, or -1)."""
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and (not hidden.strip() or hidden.strip().startswith("-")):
        return None
    nodes = nvidia_devices()
    if not nodes or torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        why = f"torch {torch.__version__} is a CPU-only build: install a CUDA build of torch"
    else:
        try:
            torch.cuda.init()
            said = "it finds no usable device"
        except Exception as e:  # torch's own words on why CUDA did not start are the point
            said = " ".join(str(e).split())[:200] or type(e).__name__
        why = f"torch {torch.__version__} (CUDA {torch.version.cuda}) cannot use them ({said}): check the driver"
    shown = ", ".join(os.path.join(DEV_DIR, n) for n in nodes[:4]) + (", ..." if len(nodes) > 4 else "")
    gpus = f"{len(nodes)} NVIDIA GPU{'s' if len(nodes) > 1 else ''} ({shown})"
    return (
        f"runtime.device is auto and this machine has {gpus}, but {why}; or set runtime.device=cpu to train on the "
        "CPU on purpose"
    )


def resolve_precision(rt: RuntimeConfig, device: torch.device) -> str:
    """'bf16' or 'fp32'. auto: bf16 autocast on GPU, fp32 on CPU (bf16 is ~3x slower on CPUs)."""
    if rt.precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return rt.precision


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def configure_threads(rt: RuntimeConfig, device: torch.device) -> int:
    """Intra-op threads: the config's value, else on CPU the cores split evenly among local ranks."""
    if rt.threads is not None:
        torch.set_num_threads(rt.threads)
    elif device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if local_world > 1:
            # N processes on N cores each grabbing all cores oversubscribe the CPU badly
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return torch.get_num_threads()


def configure_matmul(rt: RuntimeConfig, device: torch.device) -> str:
    """fp32 matmul precision on CUDA from runtime.tf32 ('high': TF32 tensor cores, 'highest': full fp32), and
    cuDNN's convolutions alike (the compression MLP's first layer is a conv1d, which the matmul precision does not
    govern: it stayed TF32 in the "full fp32" runs); the CPU is left as it is. Returns the precision in effect."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high" if rt.tf32 else "highest")
        torch.backends.cudnn.allow_tf32 = rt.tf32
    return torch.get_float32_matmul_precision()


def gpu_memory_gb(device: torch.device) -> tuple[float | None, float | None]:
    """(peak allocated since the previous call, reserved) in GiB; (None, None) on CPU.

    The peak, not what is allocated now: a progress record is written between steps, when the activations are
    freed (an H200 run of the 125M config had 1.5 GiB allocated there and 21.1 GiB reserved), and it is the
    peak inside forward and backward that runs out of memory.
    """
    if device.type != "cuda":
        return None, None
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return peak, torch.cuda.memory_reserved(device) / 2**30


def rss_gb() -> float:
    """Resident set size of this process in GiB (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30


def device_name(device: torch.device) -> str:
    """The accelerator's product name ('NVIDIA H100 80GB HBM3'), what MFU's peak table matches; 'cpu' on CPU."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def peak_flops(device: torch.device, precision: str, rt: RuntimeConfig, peak_tflops: float | None) -> float | None:
    """One device's peak FLOP/s for this run's matmuls (nsa_train.telemetry.mfu.peak_flops)."""
    from nsa_train.telemetry.mfu import peak_flops as resolve

    return resolve(device_name(device) if device.type == "cuda" else None, precision, rt.tf32, peak_tflops)
