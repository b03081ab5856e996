"""Config: typed dataclasses, strict YAML loading, the lr schedule. Stdlib + PyYAML only.

Names are resolved lazily (PEP 562) so that `nsa status`, which needs only the lr
schedule, does not pay for importing the loader and PyYAML on every call.
"""

from __future__ import annotations

from nsa_train._lazy import lazy_exports

_EXPORTS = {
    "apply_overrides": "loader",
    "config_from_dict": "loader",
    "config_hash": "loader",
    "config_to_dict": "loader",
    "default_config_path": "loader",
    "dump_yaml": "loader",
    "load_config": "loader",
    "resolve_config_path": "loader",
    "check_resume_config": "resume",
    "config_changes": "resume",
    "data_change": "resume",
    "ignored_on_resume": "resume",
    "missing_config_message": "resume",
    "pinned_values": "resume",
    "resume_conflicts": "resume",
    "resume_notes": "resume",
    "schedule_change": "resume",
    "val_set_change": "resume",
    "train_flops_per_token": "flops",
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


__getattr__ = lazy_exports(__name__, globals(), _EXPORTS)


def __dir__() -> list[str]:
    return __all__
