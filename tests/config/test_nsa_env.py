"""The NSA_* variables: the list of those read is the code's, and any other one is said to do nothing."""

from __future__ import annotations

import re
from pathlib import Path

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
        "NSA_DDP_BUCKET_MB=50 is not read by this trainer (an earlier trainer's switch?); its setting is the config's "
        "runtime.ddp_bucket_mb (--set runtime.ddp_bucket_mb=...)",
        "NSA_TYPO_RUNS_DIR=x is not read by this trainer (an earlier trainer's switch?)",
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
