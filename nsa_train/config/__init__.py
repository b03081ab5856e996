"""Config: typed dataclasses, strict YAML loading, the lr schedule. Stdlib + PyYAML only.

Names are resolved lazily (PEP 562) so that `nsa status`, which needs only the lr
schedule, does not pay for importing the loader and PyYAML on every call.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "apply_overrides": "loader",
    "config_from_dict": "loader",
    "config_hash": "loader",
    "config_to_dict": "loader",
    "default_config_path": "loader",
    "dump_yaml": "loader",
    "load_config": "loader",
    "resolve_config_path": "loader",
    "lr_at": "schedule",
    "phase_at": "schedule",
    "Config": "schema",
    "ConfigError": "schema",
    "DataConfig": "schema",
    "ModelConfig": "schema",
    "MonitorConfig": "schema",
    "NSAConfig": "schema",
    "RuntimeConfig": "schema",
    "TrainConfig": "schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nsa_train.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nsa_train.config.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
