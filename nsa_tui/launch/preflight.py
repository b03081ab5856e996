"""Checks before anything starts: each failure is one line the user can act on."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nsa_train.config import Config, ConfigError
from nsa_train.runtime.preflight import micro_batch_size
from nsa_train.telemetry import schema
from nsa_train.telemetry.holds import earlier_run
from nsa_tui.check_cheap import FAIL, WARN, cheap_checks
from nsa_tui.errors import UserError
from nsa_tui.launch import runstate, tmux
from nsa_tui.launch.gpus import visible_gpu_count

if TYPE_CHECKING:
    from nsa_tui.launch.dump import RankProcess


def live_window_s(cfg: Config) -> float:
    """A heartbeat newer than this means a trainer may still be writing (liveness
    records come every monitor.liveness_every_s)."""
    return max(120.0, 3 * cfg.monitor.liveness_every_s)


@dataclass
class Occupancy:
    """Why the run dir or session is taken (empty: free)."""

    session_live: bool = False
    session: str | None = None  # the live one: this launch's, or the one the run dir's launch.json records
    # the run directory this launch's session runs when it is another (renamed while it trains: `mv runs/a runs/b`)
    session_runs: Path | None = None
    socket: str | None = None  # its server (tmux.recorded_socket)
    heartbeat_age_s: float | None = None  # set when a heartbeat is recent and has no end record
    previous_run: bool = False  # an earlier run a fresh start would write over (telemetry.holds), not live

    @property
    def live(self) -> bool:
        return self.session_live or self.heartbeat_age_s is not None


def occupancy(run_dir: Path, session: str, cfg: Config, resume: bool = False) -> Occupancy:
    """What stands in the way of a launch into run_dir/session; a resume reuses its earlier run dir by design
    (but never a live one), so its traces do not count then."""
    occ = Occupancy()
    if tmux.has_session(session):
        occ.session_live, occ.session = True, session
        runs = tmux.session_run_dir(session)
        if runs is not None and not runstate.same_dir(runs, run_dir):
            occ.session_runs = runs
    launch = runstate.read_launch_json(run_dir)
    recorded = launch.get("tmux_session") if launch and launch.get("host") == socket.gethostname() else None
    # launched_here: a copy of a live run (`cp -r`) records the session of the run it was copied from
    if not occ.session_live and isinstance(recorded, str) and recorded and runstate.launched_here(run_dir, launch):
        # the run dir's own session, wherever it was started (another $NSA_TMUX_SOCKET, an older name mapping)
        server = tmux.recorded_socket(launch)
        if (recorded, server) != (session, None) and tmux.has_session(recorded, server):
            occ.session_live, occ.session, occ.socket = True, recorded, server
    if run_dir.is_dir():
        hb = runstate.heartbeat_state(run_dir)
        exited = runstate.read_exit_status(run_dir) is not None
        if not hb.ended and not exited and hb.recent(live_window_s(cfg)) and not rank0_not_here(run_dir):
            assert hb.newest_mtime is not None
            occ.heartbeat_age_s = time.time() - hb.newest_mtime
        occ.previous_run = not resume and bool(earlier_run(run_dir))
    return occ


def running_now(run_dir: Path, cfg: Config) -> list[str]:
    """What of a run in ``run_dir`` runs now, as short phrases ([] for nothing): its tmux session (launch.json's) and
    its ranks' live processes, else a recent heartbeat with no end record (a rank elsewhere), which `nsa launch`
    refuses as a live run (claim). `nsa check` says it instead of "holds an earlier run"."""
    if not run_dir.is_dir():
        return []
    from nsa_tui.launch.dump import rank_processes

    ranks = rank_processes(run_dir)
    if said := live_processes(run_dir, ranks):
        return said
    hb = runstate.heartbeat_state(run_dir)
    exited = runstate.read_exit_status(run_dir) is not None
    if not hb.ended and not exited and hb.recent(live_window_s(cfg)) and not rank0_not_here(run_dir, ranks):
        assert hb.newest_mtime is not None
        return [f"heartbeat {time.time() - hb.newest_mtime:.0f}s ago, no end record"]
    return []


def live_processes(run_dir: Path, ranks: list[RankProcess] | None = None) -> list[str]:
    """The run's tmux session (launch.json's, launched here) and its ranks' live processes, as short phrases ([] for
    none; ``ranks``: rank_processes, when read already). No config needed: the refusal of a resume says it too."""
    from nsa_tui.launch.dump import rank_processes
    from nsa_tui.launch.halt import session_alive

    said = []
    launch = runstate.read_launch_json(run_dir)
    session = launch.get("tmux_session") if launch else None
    here = isinstance(session, str) and session and runstate.launched_here(run_dir, launch)
    if here and session_alive(run_dir, launch):
        said.append(f"tmux session {session}")
    ranks = rank_processes(run_dir) if ranks is None else ranks
    return said + [f"rank {p.rank} pid {p.pid}" for p in ranks if p.problem is None]


def rank0_not_here(run_dir: Path, ranks: list[RankProcess] | None = None) -> bool:
    """Rank 0 of the run ran on this machine and its pid is not this directory's trainer (``ranks``: rank_processes,
    when read already): a recent heartbeat without an end record is then no live run here. Its process gone: a run
    that died (a full disk cut its end record, and kept the launcher from writing exit_status), where `--resume`, the
    remedy its error names, was refused as "holds a live run" for minutes. Its pid another directory's trainer: a
    `cp -r` copy of a live run, whose fresh heartbeat it copied."""
    from nsa_tui.launch.dump import rank_processes

    if runstate.run_host(run_dir) != socket.gethostname():
        return False  # rank 0 elsewhere (a later node's launch): its pid means nothing here
    rank0 = next((p for p in (rank_processes(run_dir) if ranks is None else ranks) if p.rank == 0), None)
    return rank0 is not None and (rank0.gone or rank0.other)


@dataclass
class Preflight:
    notes: list[str] = field(default_factory=list)  # things the user should know, not failures


def check_gpus(device: str, nproc: int, env: dict[str, str] | None = None) -> None:
    """Every rank torchrun starts needs its device here: refuse before tmux starts, not as a
    trainer error seconds later."""
    if device == "cpu":
        return
    gpus = visible_gpu_count(env)
    if device == "cuda" and gpus == 0:
        raise UserError(
            "runtime.device is 'cuda' but no GPU is visible here (CUDA_VISIBLE_DEVICES, nvidia-smi -L): "
            "launch it on the GPU host (--host HOST), or --set runtime.device=cpu"
        )
    if gpus and nproc > gpus:
        raise UserError(
            f"--nproc {nproc} but {gpus} GPU{'s' if gpus > 1 else ''} visible here: each rank needs its own GPU "
            f"(--nproc {gpus}, or CUDA_VISIBLE_DEVICES)"
        )


def run_preflight(
    run_dir: Path,
    cfg: Config,
    nproc: int = 1,
    env: dict[str, str] | None = None,
    nnodes: int = 1,
    resume: bool = False,
) -> Preflight:
    """tmux present, a GPU for every rank, a batch that splits over the ranks, then the cheap part of `nsa check` (run
    dir writable, disk for the checkpoints and a local source's Arrow copy, local data path, train.init_from's
    checkpoint but on a ``resume``, tokenizer files); notes a stale .HALT. First failure raises."""
    tmux.tmux_binary()
    check_gpus(cfg.runtime.device, nproc, env)
    try:  # the trainer's first check: told before a session starts, whose failure would mark the run crashed
        micro_batch_size(cfg, nproc * nnodes)
    except ConfigError as e:
        raise UserError(f"{e} (--nproc {nproc} x {nnodes} node(s))") from None
    report = Preflight()
    for row in cheap_checks(cfg, run_dir, resume=resume):
        if row.status == FAIL:
            raise UserError(f"{row.name}: {row.reason}")
        if row.status == WARN or row.name == "disk":
            report.notes.append(f"{row.name}: {row.reason}")
    if (run_dir / schema.HALT_FILE).exists():
        report.notes.append(
            # its writer is unknown: `nsa halt` or a `touch` by hand look the same
            f"stale {schema.HALT_FILE} in {run_dir} (written before this launch: by `nsa halt` or by hand): the "
            "launch removes it (a dry run leaves it), so the new run does not stop at once"
        )
    return report
