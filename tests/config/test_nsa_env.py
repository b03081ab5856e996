"""The NSA_* variables: the list of those read is the code's, and any other one is said to do nothing."""

from __future__ import annotations

import re
from pathlib import Path

from nsa_train.config import config_to_dict, load_config
from nsa_train.config.loader import flatten
from nsa_train.runtime.preflight import LEGACY_NSA_ENV, NSA_ENV_READ, unread_nsa_env

REPO = Path(__file__).resolve().parents[2]


def test_the_names_read_are_the_codes_own():
    """A variable read by the code but missing from NSA_ENV_READ would be warned about as unread."""
    found = set()
    for package in ("nsa_train", "nsa_tui"):
        for path in (REPO / package).rglob("*.py"):
            if path.name == "preflight.py" and path.parent.name == "runtime":
                continue  # the lists themselves
            found |= set(re.findall(r"[\"'](NSA_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8")))
    assert found - set(LEGACY_NSA_ENV) == set(NSA_ENV_READ)


def test_unread_variables_are_named_with_the_config_key_that_holds_their_setting():
    env = {"NSA_RUNS_DIR": "runs", "NSA_DDP_BUCKET_MB": "50", "NSA_TYPO_RUNS_DIR": "x", "PATH": "/bin"}
    assert unread_nsa_env(env) == [
        "NSA_DDP_BUCKET_MB=50 is an earlier trainer's switch, not read by this one: its setting is the config's "
        "runtime.ddp_bucket_mb (--set runtime.ddp_bucket_mb=...)",
        "NSA_TYPO_RUNS_DIR=x is not read by nsa or its trainer (a typo, or an earlier trainer's switch?)",
    ]


def test_every_earlier_switch_is_said_with_what_holds_its_setting_now():
    """NSA_DDP_DISABLE_GC=1 (seed 001: "Gradient checkpointing off") and NSA_PREFILL_BATCHED=1 (seed 002:
    "CRITICAL") got "an earlier trainer's switch?" and nothing else: whether the run had what they switched was
    left open. Each now names the config key that holds its setting (a real key), or what nsa does instead."""
    keys = flatten(config_to_dict(load_config(None)))
    said = dict(zip(sorted(LEGACY_NSA_ENV), unread_nsa_env(dict.fromkeys(LEGACY_NSA_ENV, "1")), strict=True))
    for name, line in said.items():
        assert line.startswith(f"{name}=1 is an earlier trainer's switch, not read by this one: "), line
        assert "?" not in line, line
        named = re.findall(r"config's ([a-z_.]+)", line)
        assert named or name == "NSA_PREFILL_BATCHED", line
        assert all(key in keys for key in named), (line, named)
    assert "config's train.grad_checkpointing, false (off) by default" in said["NSA_DDP_DISABLE_GC"]
    assert "its NSA attention always runs batched" in said["NSA_PREFILL_BATCHED"]


def test_an_unread_variable_of_the_configs_runtime_env_is_named_as_its():
    said = unread_nsa_env({"NSA_DDP_COMPRESS": "bf16", "NSA_API_KEY": "sk-x"}, source="runtime.env.")
    assert said == [
        "runtime.env.NSA_API_KEY (its value not shown: the name looks like a credential) is not read by nsa or its "
        "trainer",
        "runtime.env.NSA_DDP_COMPRESS=bf16 is an earlier trainer's switch, not read by this one: its setting is the "
        "config's runtime.ddp_compress (--set runtime.ddp_compress=...)",
    ]


def test_an_unread_credential_is_named_without_its_value():
    """`NSA_API_KEY=...` was echoed whole, by nsa launch onto the terminal and CI logs, and by the trainer into its
    heartbeat's start warnings, which `nsa status` shows."""
    said = unread_nsa_env({"NSA_API_KEY": "sk-very-secret", "NSA_HUB_TOKEN": "hf_abc"})
    assert said == [
        f"{name} (its value not shown: the name looks like a credential) is not read by nsa or its trainer, and nsa "
        "launch does not pass it on"
        for name in ("NSA_API_KEY", "NSA_HUB_TOKEN")
    ]
    assert not any("sk-very-secret" in s or "hf_abc" in s for s in said)
