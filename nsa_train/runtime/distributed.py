"""torchrun DDP setup and the few collectives the loop needs.

Without torchrun (no WORLD_SIZE or WORLD_SIZE=1) everything degrades to local no-ops,
so the same loop runs single-process.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from nsa_train.config.schema import RuntimeConfig


@dataclass
class DistInfo:
    rank: int
    local_rank: int
    world_size: int

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist_info() -> DistInfo:
    """Rank and world size as torchrun sets them (0/1 when not under torchrun)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", "0")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
    )


def resolve_backend(rt: RuntimeConfig, device: torch.device) -> str:
    if rt.backend != "auto":
        return rt.backend
    return "nccl" if device.type == "cuda" else "gloo"


def init_process_group(info: DistInfo, backend: str, timeout_s: float = 1800.0) -> None:
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))


def destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_max(values: list[float], device: torch.device) -> list[float]:
    """Element-wise max over ranks (flags: any rank set -> all ranks see it)."""
    if not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def all_gather_object(obj: Any) -> list[Any]:
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def wrap_ddp(model: nn.Module, info: DistInfo, device: torch.device, rt: RuntimeConfig) -> nn.Module:
    """DDP with the config's bucket size and optional bf16 gradient compression."""
    if not info.enabled:
        return model
    ddp = nn.parallel.DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        bucket_cap_mb=rt.ddp_bucket_mb,
    )
    if rt.ddp_compress == "bf16":
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

        ddp.register_comm_hook(state=None, hook=default_hooks.bf16_compress_hook)
    return ddp


# what gloo says when the rank at the other end of a collective went away (its process ended or was killed)
_PEER_GONE = re.compile(r"Connection (?:closed|reset) by peer(?: \[[^\]]*\]:\d+)?")


def peer_lost(e: BaseException) -> str | None:
    """The one line for a collective that failed because another rank stopped first, else None. Its traceback
    says nothing of the cause (the other rank's error, or torchrun's report when it was killed, does), and the
    library's own text names a C++ source line and asks to check the remote worker's logs."""
    if not isinstance(e, RuntimeError):  # gloo raises RuntimeError (DistBackendError is one)
        return None
    found = _PEER_GONE.search(str(e))
    if found is None:
        return None
    return (
        f"lost the connection to another rank ({found.group(0)}): that rank stopped first, and its own error (or "
        "torchrun's report, when it was killed) says why"
    )
