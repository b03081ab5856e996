"""The progress record's window (nsa_train/runtime/step_window.py): its means are over the steps since the last
record, and its time leaves out the evaluations and checkpoints inside it (docs/telemetry.md, toks_per_s)."""

from __future__ import annotations

import time

import torch

from nsa_train.runtime.step_window import StepWindow


def test_the_window_sums_its_steps_and_leaves_its_pauses_out_of_its_time():
    window = StepWindow(torch.zeros(()))
    window.add(torch.tensor(2.0))
    window.add(torch.tensor(4.0))
    assert window.steps == 2 and window.loss_sum.item() == 6.0
    time.sleep(0.05)
    window.paused_s += 10.0  # an evaluation longer than the steps themselves: never a negative time
    assert window.seconds() == 1e-9
    window.paused_s = 0.0
    assert window.seconds() >= 0.05

    loss_sum = window.loss_sum
    window.reset()
    assert window.loss_sum is loss_sum and loss_sum.item() == 0.0  # zeroed in place, on its device
    assert (window.steps, window.fetch_s, window.paused_s) == (0, 0.0, 0.0) and window.seconds() < 0.05
