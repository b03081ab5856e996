"""A checkpoint's AdamW state into this run's optimizer, under this run's hyper-parameters."""

from __future__ import annotations

from typing import Any


def load_optimizer_state(optimizer: Any, saved: dict[str, Any]) -> None:
    """The checkpoint's moments and step counts, under ``optimizer``'s own hyper-parameters (this config's
    weight_decay, betas; this device's fused flag). load_state_dict takes each group's hyper-parameters from the
    saved groups: a resume's new train.weight_decay or beta2, which config.yaml and the resume's warnings say the
    run goes on with, was silently not used. They go into the saved groups before the load, not after it, because
    the load places each parameter's `step` by the fused/capturable flag it reads there: a CPU run's unfused state
    resumed fused on a GPU kept its step on the CPU, where the fused kernel reads it through a device pointer.
    (lr is set before every step anyway.)"""
    own = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    groups = [{**g, **o} for g, o in zip(saved["param_groups"], own, strict=True)]
    optimizer.load_state_dict({**saved, "param_groups": groups})
