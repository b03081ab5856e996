"""Config: typed dataclasses, strict YAML loading, the lr schedule. Stdlib + PyYAML only."""

from nsa_train.config.loader import (
    apply_overrides,
    config_from_dict,
    config_hash,
    config_to_dict,
    default_config_path,
    dump_yaml,
    load_config,
    resolve_config_path,
)
from nsa_train.config.schedule import lr_at, phase_at
from nsa_train.config.schema import (
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    MonitorConfig,
    NSAConfig,
    RuntimeConfig,
    TrainConfig,
)

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "MonitorConfig",
    "NSAConfig",
    "RuntimeConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_hash",
    "config_to_dict",
    "default_config_path",
    "dump_yaml",
    "load_config",
    "lr_at",
    "phase_at",
    "resolve_config_path",
]
