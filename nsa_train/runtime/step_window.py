"""The steps since the last progress record: the sums that record's means are taken over (docs/telemetry.md,
`progress`). No torch import: the loss sum is whatever 0-d tensor the loop gives it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepWindow:
    loss_sum: Any  # a 0-d tensor on the device: summed there, read once per record (no host sync per step)
    fetch_s: float = 0.0  # waiting for the data stream
    steps: int = 0
    paused_s: float = 0.0  # eval and checkpoint time inside the window: not the steps' (toks_per_s)
    t_start: float = field(default_factory=time.perf_counter)

    def add(self, step_loss: Any) -> None:
        self.loss_sum += step_loss
        self.steps += 1

    def seconds(self) -> float:
        """The steps' wall time: since the window opened, less its pauses."""
        return max(time.perf_counter() - self.t_start - self.paused_s, 1e-9)

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.fetch_s, self.steps, self.paused_s, self.t_start = 0.0, 0, 0.0, time.perf_counter()
