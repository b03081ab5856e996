"""What of this shell's environment `nsa launch --host` takes to the host, and what it says about the rest.

sshd drops the client's variables, so a launch on a host sees none of this shell's: a local launch reads CONFIG,
CUDA_VISIBLE_DEVICES and warns of unread NSA_* variables, and the seed reports' runs went days on the wrong config
or GPU because a --host launch did none of that without a word.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from nsa_train.config.loader import CONFIG_ENV
from nsa_train.runtime.preflight import unread_nsa_env
from nsa_tui.errors import UserError

# which GPUs the run takes: set here for this launch, meant for the host's (as `CUDA_VISIBLE_DEVICES=1 nsa launch`
# is here); an empty value hides them all, so it travels too
GPU_ENV = "CUDA_VISIBLE_DEVICES"


def check_host_config(
    config: str | None,
    resume: bool,
    host: str,
    environ: Mapping[str, str] | None = None,
    command: str = "launch",
) -> None:
    """Refuse a CONFIG set here without --config: its path is this machine's, the host's nsa would not see it, and
    `nsa COMMAND --host` (launch, check) would go on the host's default config (or, resumed, the run's own
    config.yaml) without a word."""
    env = os.environ if environ is None else environ
    value = env.get(CONFIG_ENV, "")
    if config is not None or not value.strip():  # `CONFIG=` sets an exported one aside, as it does here
        return
    instead = "the run's own config.yaml" if resume else "the host's default config"
    raise UserError(
        f"{CONFIG_ENV}={value} is set here, and `nsa {command} --host` does not send it (a config path is the host's): "
        f"pass `--config {shlex.quote(value)}` to use it on {host}, or unset {CONFIG_ENV} for {instead}"
    )


def host_env(host: str, environ: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(``K=V`` items for the host's `nsa launch`, the lines to say here first): CUDA_VISIBLE_DEVICES goes along
    and is said; an NSA_* variable no nsa reads gets the warning a local launch gives it."""
    env = os.environ if environ is None else environ
    send, said = [], []
    if (gpus := env.get(GPU_ENV)) is not None:
        send.append(f"{GPU_ENV}={gpus}")
        numbered = f"GPUs as {host} numbers them"
        said.append(f"note: {GPU_ENV}={gpus} is set here: the host's `nsa launch` gets it ({numbered})")
    said += [f"warning: {w}" for w in unread_nsa_env(env)]
    return send, said
