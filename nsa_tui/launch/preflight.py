"""Checks before anything starts: each failure is one line the user can act on."""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nsa_train.config import Config
from nsa_train.telemetry import schema
from nsa_tui.errors import UserError
from nsa_tui.launch import runstate, tmux

BYTES_PER_PARAM = 4 + 8  # fp32 weights + Adam's two fp32 moments
DISK_SLACK = 1.2  # optimizer extras, metadata, logs
TOKENIZER_VOCAB = {"byte": 256, "gpt2": 50257}


def estimate_param_count(cfg: Config) -> int:
    """A rough count from the config alone (no model is built): embeddings, the
    attention projections of three NSA branches, the gate, the SwiGLU MLP, norms."""
    m = cfg.model
    vocab = m.vocab_size or TOKENIZER_VOCAB.get(cfg.data.tokenizer, 50257)
    hd = m.resolved_head_dim
    q_o = 2 * m.dim * m.n_heads * hd
    branches = 3 if m.attention == "nsa" else 1
    kv = branches * 2 * m.dim * m.n_kv_heads * hd
    compress = 2 * (cfg.nsa.l * hd) * hd if m.attention == "nsa" else 0
    gate = m.dim * 3 * m.n_heads if m.attention == "nsa" else 0
    hidden = 32 * math.ceil(m.dim * m.mlp_ratio / 32)
    mlp = 3 * m.dim * hidden
    per_layer = q_o + kv + compress + gate + mlp + 2 * m.dim
    embed = vocab * m.dim * (1 if m.tie_embeddings else 2)
    return embed + m.n_layers * per_layer + m.dim


def checkpoint_disk_bytes(cfg: Config) -> int:
    """Disk for keep_last periodic checkpoints + the best one + one being written."""
    per_ckpt = estimate_param_count(cfg) * BYTES_PER_PARAM
    return int(per_ckpt * (cfg.train.keep_last + 2) * DISK_SLACK)


def _existing_ancestor(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_run_dir_writable(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run dir {run_dir} exists and is not a directory")
    base = _existing_ancestor(run_dir)
    if not base.is_dir():
        raise UserError(f"cannot create run dir {run_dir}: {base} is not a directory")
    # Try it: permission bits do not tell the whole story (root, read-only mounts, /proc).
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".nsa-write-test-"):
            pass
    except OSError as e:
        raise UserError(f"run dir {run_dir} is not writable ({base}: {e.strerror or e})") from None


def check_disk(run_dir: Path, cfg: Config) -> str:
    need = checkpoint_disk_bytes(cfg)
    free = shutil.disk_usage(_existing_ancestor(run_dir)).free
    gib = 2**30
    if need > free:
        raise UserError(
            f"not enough disk for checkpoints under {run_dir}: about {need / gib:.2f} GiB needed "
            f"(~{estimate_param_count(cfg) / 1e6:.1f}M params x 12 bytes x (keep_last {cfg.train.keep_last} + 2)), "
            f"{free / gib:.2f} GiB free"
        )
    return f"disk: ~{need / gib:.2f} GiB for checkpoints, {free / gib:.1f} GiB free"


def live_window_s(cfg: Config) -> float:
    """A heartbeat newer than this means a trainer may still be writing (liveness
    records come every monitor.liveness_every_s)."""
    return max(120.0, 3 * cfg.monitor.liveness_every_s)


@dataclass
class Occupancy:
    """Why the run dir or session is taken (empty: free)."""

    session_live: bool = False
    heartbeat_age_s: float | None = None  # set when a heartbeat is recent and has no end record
    previous_run: bool = False  # traces of an earlier launch, not live

    @property
    def live(self) -> bool:
        return self.session_live or self.heartbeat_age_s is not None


def occupancy(run_dir: Path, session: str, cfg: Config) -> Occupancy:
    occ = Occupancy(session_live=tmux.has_session(session))
    if run_dir.is_dir():
        hb = runstate.heartbeat_state(run_dir)
        exited = runstate.read_exit_status(run_dir) is not None
        if not hb.ended and not exited and hb.recent(live_window_s(cfg)):
            assert hb.newest_mtime is not None
            occ.heartbeat_age_s = time.time() - hb.newest_mtime
        occ.previous_run = runstate.holds_a_run(run_dir)
    return occ


@dataclass
class Preflight:
    notes: list[str] = field(default_factory=list)  # things the user should know, not failures


def run_preflight(run_dir: Path, cfg: Config) -> Preflight:
    """tmux present, run dir writable, enough disk; notes a stale .HALT."""
    tmux.tmux_binary()
    check_run_dir_writable(run_dir)
    report = Preflight()
    report.notes.append(check_disk(run_dir, cfg))
    if (run_dir / schema.HALT_FILE).exists():
        report.notes.append(
            f"stale {schema.HALT_FILE} in {run_dir} (left by an earlier `nsa halt`): removed at launch so the "
            "new run does not stop at once"
        )
    return report
