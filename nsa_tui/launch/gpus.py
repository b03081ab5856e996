"""How many GPUs this machine shows us, without importing torch."""

from __future__ import annotations

import os
import shutil
import subprocess


def visible_gpu_count(env: dict[str, str] | None = None) -> int:
    """CUDA_VISIBLE_DEVICES wins when set (an empty value or -1 hides every GPU);
    otherwise count the lines of ``nvidia-smi -L``; 0 when there is no driver."""
    env = os.environ if env is None else env
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        devices = [d.strip() for d in cvd.split(",") if d.strip()]
        # CUDA stops at the first invalid entry; "-1" is the common way to hide all.
        count = 0
        for d in devices:
            if d.startswith("-"):
                break
            count += 1
        return count
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        res = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if res.returncode != 0:
        return 0
    return sum(1 for line in res.stdout.splitlines() if line.startswith("GPU "))


def default_nproc(device: str, env: dict[str, str] | None = None) -> int:
    """One process per visible GPU, or 1 on CPU (runtime.device 'cpu' forces CPU)."""
    if device == "cpu":
        return 1
    return max(1, visible_gpu_count(env))
