"""Train an NSA language model: ``python -m nsa_train.train --config PATH [--set K=V ...] [--run-dir DIR] [--resume]``.

Runs single-process or under torchrun (DDP). Read top to bottom: boot -> config ->
data -> model -> compile -> train loop -> end. Every stage writes telemetry v1
(nsa_train/telemetry/schema.py, docs/telemetry.md) into the run directory so the
``nsa`` tools can tell where a run is, even when it is stuck before the first step.

The boot record is written before torch is imported (importing torch can take many
seconds on a cold disk); stdout is line-buffered so `console.log` is never behind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsa_train.config import (
    ConfigError,
    config_to_dict,
    dump_yaml,
    load_config,
    lr_at,
    phase_at,
    resume_notes,
    train_flops_per_token,
)
from nsa_train.config.loader import FROM_CONFIG_ENV, config_from_env
from nsa_train.runtime.console import ResilientConsole
from nsa_train.runtime.control import StoppedAtStart, StopRequests, launch_time
from nsa_train.runtime.preflight import apply_runtime_env
from nsa_train.runtime.resumable import (
    foreign_checkpoint,
    newer_checkpoint_note,
    no_latest_pointer,
    nothing_to_do,
    other_run,
    run_id_of,
    undigested_order_note,
    unrecorded_run_note,
    world_size_mismatch,
)
from nsa_train.runtime.run_dir_moves import FollowedRunDir, RunDirLost
from nsa_train.runtime.rundir import sign_held_locks
from nsa_train.runtime.start import StartRefused, claim_run_dir
from nsa_train.runtime.step_window import StepWindow
from nsa_train.runtime.thread_errors import leave_kept_errors_to_owners
from nsa_train.telemetry import schema
from nsa_train.telemetry.disk import DiskFullError
from nsa_train.telemetry.mfu import mfu
from nsa_train.telemetry.units import human_bytes, human_count
from nsa_train.telemetry.writer import HeartbeatWriter

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USER_ERROR = 2  # bad config, data or checkpoint: one message, no traceback
EXIT_NAN = 3

# Test hook: "STEP:SECONDS" sleeps inside that step (stall detection and SIGUSR1 tests).
SLOW_STEP_ENV = "NSA_TEST_SLOW_STEP"


class UserFacingError(Exception):
    """Raised for mistakes the user can fix; printed as one line, no traceback."""


class _Once(argparse.Action):
    """A one-value option given twice with different values is a usage error: argparse keeps the last without a word
    (`--config a.yaml --config b.yaml` trained b)."""

    def __call__(self, parser: argparse.ArgumentParser, ns: argparse.Namespace, value: Any, opt: str | None = None):
        if isinstance(value, str) and not value.strip():  # `--config "$CFG"` with CFG unset: not the default
            parser.error(f"{opt} is empty: give a value, or leave the option out for the default")
        before = getattr(ns, self.dest, None)
        if before is not None and before != value:
            parser.error(f"{opt} given twice ({before}, {value}): only one would be used; give it once")
        setattr(ns, self.dest, value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m nsa_train.train", description="Train an NSA language model.")
    p.add_argument(
        "--config",
        action=_Once,
        help="YAML config (default: $CONFIG, else the run directory's config.yaml on --resume, "
        "else configs/tiny-cpu.yaml)",
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override")
    p.add_argument(
        "--run-dir",
        action=_Once,
        help="run directory (default: <runs root>/<config file stem>-<YYYYMMDD-HHMMSS>, the runs root being "
        "$NSA_RUNS_DIR, else ./runs; required with more than one rank)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    p.add_argument(
        "--reshard",
        action="store_true",
        help="with --resume: continue a checkpoint written by another number of ranks (the same global batch; the "
        "data continues from the ranks' frontier, the documents read again are counted; docs/data.md)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="start afresh in a run directory that holds an earlier run's results (its logs get this run's rows "
        "appended; train.keep_last prunes its checkpoints); without it such a directory is refused",
    )
    args = p.parse_args(argv)
    from nsa_train.config.loader import repeated_set

    if said := repeated_set(args.overrides):  # a usage mistake, as a one-value option given twice is
        p.error(said)
    if args.reshard and not args.resume:
        p.error("--reshard goes with --resume: it continues a checkpoint on another number of ranks")
    return args


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    _keep_console_safe()
    t_boot = time.time()
    args = parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))

    try:
        config_path, run_dir = claim_run_dir(args, rank, world_size)
    except StartRefused as e:
        _say_refusal(e, rank, world_size)
        return EXIT_USER_ERROR
    # the stop handlers before the boot record: a stop from then on (a tmux session killed at once) is this attempt's.
    # Noted until the try below, and raised there: raised here, it would escape the end record's `finally`
    stop = StopRequests(run_dir, rank == 0)
    stop.starting = False
    stop.install_signal_handlers()
    try:
        hb, where = _write_boot(run_dir, rank, world_size)
    except StartRefused as e:
        _say_refusal(e, rank, world_size)
        return EXIT_USER_ERROR
    if rank == 0:
        print(f"[boot] run dir {run_dir} | world size {world_size} | pid {os.getpid()}")

    end = _Ending()
    try:
        # before torch's import and the config: a stop in the start's first seconds (a tmux session killed at once)
        # ended without an end record, or with a KeyboardInterrupt traceback read as a crash
        stop.starting = True
        if stop.signal_name is not None:  # one came before this try
            raise StoppedAtStart(stop.signal_name)
        hb.write(schema.KIND_PHASE, 0, phase=schema.PHASE_CONFIG, config_path=str(config_path) if config_path else None)
        cfg = load_config(config_path, args.overrides)
        hb.liveness_every_s = cfg.monitor.liveness_every_s
        end.trainer = Trainer(cfg, args, where, hb, t_boot, config_path, stop)
        end.reason, end.status = end.trainer.run()
        end.step = end.trainer.step
    except BaseException as e:
        end.failed(e, hb, rank)
    finally:
        end.write(hb, stop, args.resume, rank)
    if (shared_error := end.shared_error()) is not None:
        say_once_for_all_ranks(shared_error, rank, world_size)
    return end.status


def _keep_console_safe() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    # a console whose reader died (the launch wrapper killed) must not end the run: runtime/console.py
    sys.stdout, sys.stderr = ResilientConsole(sys.stdout), ResilientConsole(sys.stderr)  # type: ignore[assignment]
    leave_kept_errors_to_owners()  # TensorBoard's writer thread: its failure is the run's one line, not a traceback
    # `nsa dump` (SIGUSR1) must never kill the trainer: its default action does, until the stack dumper takes the
    # signal over at the start of the run (Trainer.run); a dump asked for before then is not written
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)


def _say_refusal(e: StartRefused, rank: int, world_size: int) -> None:
    if e.each_rank:
        print(f"error: {e}", file=sys.stderr)
    else:
        say_once_for_all_ranks(str(e), rank, world_size)


def _write_boot(run_dir: Path, rank: int, world_size: int) -> tuple[HeartbeatWriter, FollowedRunDir]:
    """The boot record and a first liveness: the tools see the process from here on, before torch is imported. The
    run directory is followed from here (a rename later is where it writes to)."""
    try:
        where = FollowedRunDir(run_dir)
        sign_held_locks()
        hb = HeartbeatWriter(run_dir, rank)
        hb.write(
            schema.KIND_BOOT,
            0,
            argv=sys.argv,
            host=socket.gethostname(),
            python=sys.version.split()[0],
            world_size=world_size,
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            run_dir=str(run_dir.resolve()),
            **{schema.BOOT_LAUNCH_TS: launch_time()},
        )
        hb.liveness(0, force=True)
    except DiskFullError as e:  # nothing of this run is written yet: the one line is all there is
        raise StartRefused(str(e), each_rank=True) from None
    except OSError as e:  # a run directory we may not write to (permissions, a read-only mount)
        raise StartRefused(f"cannot write the run directory {run_dir}: {e.strerror or e}", each_rank=True) from None
    return hb, where


@dataclass
class _Ending:
    """How this process ends: what its end record says (the tools judge the run by it), written however the run
    stopped, and the error every rank met that rank 0 said (or another rank, should rank 0 not get to it)."""

    trainer: Trainer | None = None
    reason: str = schema.END_ERROR
    status: int = EXIT_ERROR
    step: int = 0
    said_by_rank_0: str | None = None

    def failed(self, e: BaseException, hb: HeartbeatWriter, rank: int) -> None:
        """What ``e``, raised on the way or in the loop, ends the run as; the error record and its one line."""
        self.step = self.trainer.step if self.trainer else 0
        if isinstance(e, StoppedAtStart):  # a stop before the first batch: nothing trained to finish or save
            self.reason, self.status = schema.END_SIGNAL, 128 + int(getattr(signal, e.signal_name))
            if rank == 0:
                print(f"[stop] {e}")
        elif isinstance(e, (ConfigError, UserFacingError)) or getattr(e, "every_rank", False):
            self.reason, self.status = schema.END_ERROR, EXIT_USER_ERROR
            # the same mistake on every rank (the config, the corpus): one message (rank 0's), every heartbeat has
            # the record
            _report_error(hb, self.step, str(e), rank, quiet=rank != 0)
            if rank != 0:
                self.said_by_rank_0 = " ".join(str(e).split())
        elif _is_user_error(e):
            self.reason, self.status = schema.END_ERROR, EXIT_USER_ERROR
            # said by every rank that meets it: a rank's own shard or a node's own disk may fail on that rank alone
            # (the same error on two ranks is said twice, "error (rank 1): ..." the second)
            _report_error(hb, self.step, str(e), rank)
        elif (lost := _peer_lost(e)) is not None:
            self.reason, self.status = schema.END_ERROR, EXIT_ERROR
            _report_error(hb, self.step, lost, rank)  # no traceback: it would only show where this rank waited
        else:
            self.reason, self.status = schema.END_ERROR, EXIT_ERROR
            import traceback

            traceback.print_exc()
            _report_error(hb, self.step, f"{type(e).__name__}: {e}", rank, quiet=True)

    def write(self, hb: HeartbeatWriter, stop: StopRequests, resume: bool, rank: int) -> None:
        """Release the run, then its last liveness and the end record, always last."""
        stop.starting = False  # a signal while it shuts down is a flag (a second one kills): the end record comes
        if self.trainer is not None:
            self.trainer.shutdown(self.reason)
        else:
            stop.restore_signal_handlers()
        hb.liveness(self.step, force=True, best_effort=True)
        # a resume refused before its checkpoint loaded changed nothing of the run: the tools keep its verdict
        refused = resume and self.status == EXIT_USER_ERROR and not (self.trainer is not None and self.trainer.resumed)
        extra: dict[str, Any] = {schema.RESUME_REFUSED: True} if refused else {}
        if self.trainer is not None and (loop_s := self.trainer.loop_seconds()) is not None:
            extra[schema.END_TRAIN_TIME] = round(loop_s, 3)
        if self.trainer is not None and self.trainer.halt_overtaken:
            extra[schema.END_HALT_REQUESTED] = True
        unwritten = hb.write_or_say_why(
            schema.KIND_END, self.step, reason=self.reason, exit_status=self.status, **extra
        )
        hb.close()
        ended = f"{self.reason} at step {self.step} (exit status {self.status})"
        if unwritten is not None:  # said by every rank: the tools find that rank's end record missing, and quote why
            # not an `error:` line: the tools would read it as the rank's error, the cause of its end
            print(f"{schema.console_end_prefix(rank)}{ended}{schema.CONSOLE_END_UNWRITTEN}{unwritten}")
        elif rank == 0:
            print(f"{schema.console_end_prefix(0)}{ended}")

    def shared_error(self) -> str | None:
        return self.said_by_rank_0 or (self.trainer.shared_error if self.trainer else None)


RANK0_GRACE_S = 10.0


def say_once_for_all_ranks(message: str, rank: int, world_size: int) -> None:
    """An error every rank met, said once: by rank 0 at once, by another rank only if it is still alive after
    RANK0_GRACE_S. torchrun stops all ranks as soon as one exits with an error, so a quiet rank that exited first
    could stop rank 0 before it printed: the run failed with no message anywhere (seen under load). Normally
    torchrun ends this rank during the wait, when rank 0 has said it and exited; a rank 0 that never gets there
    (it failed otherwise, or waits on this rank in a collective) leaves the message to this rank."""
    if rank == 0 or world_size <= 1:
        print(f"{schema.console_error_prefix(0)}{message}", file=sys.stderr)
        return
    time.sleep(RANK0_GRACE_S)
    print(f"{schema.console_error_prefix(rank)}{message}", file=sys.stderr)


def _is_user_error(e: BaseException) -> bool:
    from nsa_train.data import DataError
    from nsa_train.runtime.checkpoint import CheckpointError
    from nsa_train.telemetry.writer import TensorBoardFailed

    return isinstance(e, (DataError, CheckpointError, DiskFullError, TensorBoardFailed))


def _peer_lost(e: BaseException) -> str | None:
    if "torch.distributed" not in sys.modules:  # no process group: no peer to lose (and no torch to import here)
        return None
    from nsa_train.runtime.distributed import peer_lost

    return peer_lost(e)


def _report_error(hb: HeartbeatWriter, step: int, message: str, rank: int, quiet: bool = False) -> None:
    one_line = " ".join(message.split())
    hb.write(schema.KIND_ERROR, step, message=one_line, best_effort=True)  # the error may be a full disk
    if not quiet:
        print(f"{schema.console_error_prefix(rank)}{one_line}", file=sys.stderr)


class Trainer:
    """State of one training process; ``run`` is the whole life of the run after the config loaded."""

    def __init__(
        self,
        cfg: Any,
        args: argparse.Namespace,
        where: FollowedRunDir,
        hb: HeartbeatWriter,
        t_boot: float,
        config_path: Path | None,
        stop: StopRequests,
    ) -> None:
        self.cfg, self.args, self.hb = cfg, args, hb
        # where the run directory is: followed at each phase and step (_follow_run_dir), so a rename goes on there
        self.where, self.run_dir = where, where.path
        self.stop = stop  # its signal handlers installed by main, before this process imported torch
        self.shared_error: str | None = None  # an error all ranks met, which rank 0 said (main: say_once_for_all_ranks)
        self.fallback_reasons_said: dict[str, str] = {}  # fallback counter -> its first cause, once in a record
        self.t_boot, self.config_path = t_boot, config_path
        self.step = 0  # optimizer steps completed
        self.tokens_seen = 0
        self.best_val: float | None = None
        self.best_step: int | None = None
        self.last_val: float | None = None
        self.stream = None
        self.metrics = None
        self.watchdog = None
        self.dumper = None
        self.dist_ready = False
        self.train_wall_s = 0.0
        self.t_train: float | None = None  # perf_counter at the loop's start: a loop that raises has run too
        self.tokens_this_process = 0
        self.last_saved_step = -1
        self.replay_reported = 0  # documents of a resumed stream's replay last reported (_first_batch_wait)
        self.resumed = False  # --resume: the checkpoint has loaded (until then this process owns no results)
        # a .HALT was there when a signal stopped the run (it came after the step's check): the end record says so,
        # or `nsa status` said "no halt was requested" of a run `nsa halt` was waiting on
        self.halt_overtaken = False
        self.config_warnings: list[str] = []
        self._run_json: dict[str, Any] | None = None
        self.resume_warnings: list[str] = []  # said at the train phase, with the other start warnings
        self.data_warnings: list[str] = []  # the data's (a plan of many epochs), said there too
        self.dropped_pointers: list[str] = []  # a fresh start's: an earlier run's, removed with run.json's new id
        self.data_summary: dict[str, Any] | None = None  # run.json's data_summary (rank 0)
        self.resharded: dict[str, Any] | None = None  # rank 0's: what a --reshard did (run.json)
        self.csv_rows_before: dict[str, int] | None = None  # rank 0's: training.csv/val.csv rows of earlier runs
        self.run_id = uuid.uuid4().hex  # a fresh start's (rank 0's is written); a --resume keeps the run's (_resume)
        # train.init_from: the weights read before the data phase (until the model takes them), and run.json's record
        # of where they came from (a --resume takes it from its checkpoint)
        self.init_weights: dict[str, Any] | None = None
        self.init_from: dict[str, Any] | None = None
        self.disk_refusal: str | None = None  # rank 0's: no room on disk for this run (_measure_disk)

    # ------------------------------------------------------------------ run
    def run(self) -> tuple[str, int]:
        """The start's phases in order, then the loop. Each phase's record is written as it begins: a start stuck
        in one shows it as its last record."""
        # SIGUSR1 dumps from the start: a start that seems to hang (data, model, compile) is when `nsa dump` is
        # wanted most, and before this the signal's default action killed the trainer
        self._start_watchdog()
        phases = (
            self._configure,
            self._join_ranks,
            self._read_init_from,
            self._load_data,
            self._build_model,
            self._compile,
            self._open_training,
        )
        try:
            for phase in phases:
                self._follow_run_dir()  # a phase writes by path (config.yaml, run.json, the metrics files)
                phase()
            return self._loop()
        except Exception:
            # a write that failed as the run directory went (deleted, or renamed between two looks): said as that
            self._follow_run_dir()
            raise

    def _follow_run_dir(self) -> bool:
        """Whether the run directory was renamed since the last look (one readlink): then everything of this process
        writes where it went from now on, and it is said once (the console, a `moved` record). RunDirLost when it
        was deleted or cannot be followed (runtime/run_dir_moves.py)."""
        new = self.where.follow()
        if new is None:
            return False
        was, self.run_dir = Path(os.path.abspath(self.run_dir)), new
        self.hb.moved_to(new)
        self.stop.moved_to(new)
        if self.dumper is not None:
            self.dumper.moved_to(new)
        if self.metrics is not None:
            self.metrics.moved_to(new)
        self.hb.write(schema.KIND_MOVED, self.step, **{schema.MOVED_FROM: str(was), schema.MOVED_TO: str(new)})
        if self.hb.rank == 0:
            print(f"[moved] run directory {was} is now {new}: training goes on there")
        return True

    def _configure(self) -> None:
        """torch, the device and its precision, and what the start warns about: the config phase's `done` record."""
        cfg = self.cfg
        # runtime.env before torch loads (OpenMP, CUDA's allocator and NCCL read it): names set here mean the
        # process was not started by `nsa launch`, which sets them
        env_set, env_warnings = apply_runtime_env(cfg.runtime.env, os.environ)

        # ---- heavy imports happen here, after the boot and config records
        import torch

        from nsa_train.runtime import device as devmod
        from nsa_train.runtime import distributed as distmod
        from nsa_train.runtime.preflight import micro_batch_size, preflight_warnings, unread_nsa_env

        self.torch, self.devmod, self.distmod = torch, devmod, distmod
        self.info = distmod.env_dist_info()
        self.device = devmod.resolve_device(cfg.runtime, self.info.local_rank)
        self.precision = devmod.resolve_precision(cfg.runtime, self.device)
        self.micro_batch = micro_batch_size(cfg, self.info.world_size)
        warnings = env_warnings + unread_nsa_env(os.environ) + preflight_warnings(cfg, self.device.type, self.precision)
        if self.info.is_main:  # rank 0 saves the checkpoints: its disk, told to every rank once they have joined
            warnings += self._measure_disk()
        self.threads = devmod.configure_threads(cfg.runtime, self.device)
        devmod.configure_matmul(cfg.runtime, self.device)
        if cfg.train.init_from is not None and not self.args.resume:
            self._resolve_init_from()  # before config.yaml is saved: it names the file, which a replay loads again
        if self.info.is_main:
            if not self.args.resume:  # a resume records its config once the checkpoint has accepted it (_build_model)
                self._save_config()
            source = f"{FROM_CONFIG_ENV}; " if config_from_env(self.args.config) else ""
            print(f"[config] {self.config_path or '<embedded default>'} ({source}resolved, saved as config.yaml):")
            print(dump_yaml(cfg).rstrip())
            if env_set:
                print(f"[env] runtime.env set by the trainer: {', '.join(env_set)}")
            for w in warnings:
                print(f"warning: {w}", file=sys.stderr)
        self.hb.write(
            schema.KIND_PHASE,
            0,
            phase=schema.PHASE_CONFIG,
            done=True,
            total_steps=cfg.train.steps,  # this attempt's: a resume may change it, run.json follows later
            device=str(self.device),
            precision=self.precision,
            threads=self.threads,
            micro_batch=self.micro_batch,
            warnings=warnings,
            warmup_steps=cfg.train.warmup_steps,  # this attempt's too: the lr charts mark where each one's ends
        )
        self.config_warnings = list(warnings)  # with the train phase's, in run.json's start_warnings

    def _join_ranks(self) -> None:
        """The settings DDP and compile need checked, then the process group (a no-op for one process)."""
        from nsa_train.runtime.preflight import check_compile_toolchain, check_ddp_settings

        cfg = self.cfg
        backend = self.distmod.resolve_backend(cfg.runtime, self.device)
        check_ddp_settings(cfg, backend, self.info.world_size, self.device.type)
        check_compile_toolchain(cfg, self.device.type)
        self.distmod.init_process_group(self.info, backend)
        self.dist_ready = True
        self._check_checkpoint_dir()
        self._check_disk()

    def _resolve_init_from(self) -> None:
        """train.init_from as the checkpoint file it names (a run directory's `latest`, a pointer's target): the run
        records that file, so its config.yaml replays the same weights after the source run saved newer ones."""
        from nsa_train.runtime import checkpoint as ck
        from nsa_train.runtime import init_from

        assert self.cfg.train.init_from is not None
        try:
            self.cfg.train.init_from = str(init_from.resolve(self.cfg.train.init_from))
        except ck.CheckpointError as e:  # every rank meets the same file: said once
            raise UserFacingError(init_from.keyed(str(e))) from None

    def _read_init_from(self) -> None:
        """train.init_from on a fresh start: the checkpoint resolved, loaded (its checksums read) and checked against
        this config before the data phase, so a wrong one costs seconds; the model takes its weights once built.
        Every rank reads it, as a --resume does: each starts from the same weights whatever DDP's wrap then does. A
        --resume continues the run's own checkpoint: the key, kept in its config.yaml, is not read again."""
        value = self.cfg.train.init_from
        if value is None or self.args.resume:
            return
        from nsa_train.runtime import checkpoint as ck
        from nsa_train.runtime import init_from

        path = Path(value)  # the file _resolve_init_from found
        try:
            state = ck.load_checkpoint(path)
        except ck.CheckpointError as e:  # every rank meets the same file: said once
            said = init_from.keyed(str(e))
            # a damaged one in a run's checkpoints/: the others there, each a file init_from takes
            in_run = path.parent.name == schema.CHECKPOINT_DIR
            if others := [p for p in ck.write_order(path.parent) if p != path] if in_run else []:
                said += (
                    f". {path.parent} also holds {', '.join(p.name for p in others[-3:])}: give one as {init_from.KEY}"
                )
            raise UserFacingError(said) from None
        if (problem := init_from.source_problem(state.get("config"), self.cfg, path)) is not None:
            raise UserFacingError(problem)
        self.init_weights, self.init_from = state["model"], init_from.init_record(path, state)  # not its optimizer
        if self.info.is_main:  # said with the start warnings of the train phase, as a resume's are
            # the whole path: its file name alone reads as one of this run's own checkpoints
            self.resume_warnings += self._checkpoint_notes(state, path, "this run's steps", data=False, name=str(path))
            self.resume_warnings += init_from.source_notes(state, self.cfg, path)

    def _load_init_weights(self) -> None:
        """The model takes train.init_from's weights, strictly: a missing, unexpected or mis-shaped tensor (a
        checkpoint whose config did not say) is refused by name."""
        from nsa_train.runtime import checkpoint as ck
        from nsa_train.runtime.init_from import KEY
        from nsa_train.telemetry.init_from_said import init_from_said

        assert self.init_weights is not None and self.init_from is not None
        path = Path(self.init_from[schema.INIT_FROM_PATH])
        try:
            ck.load_model_state(self.model, self.init_weights, path)
        except ck.CheckpointError as e:
            raise UserFacingError(f"{KEY}: {e}") from None
        self.init_weights = None
        if self.info.is_main:
            print(
                f"[init] {init_from_said(self.init_from)}: its weights only; the optimizer, the lr schedule and the "
                "data order start afresh at step 0"
            )

    def _load_data(self) -> None:
        """The data phase: the tokenizer, this rank's training stream and its share of the held-out batches."""
        cfg = self.cfg
        self.hb.write(
            schema.KIND_PHASE, 0, phase=schema.PHASE_DATA, source=cfg.data.source, tokenizer=cfg.data.tokenizer
        )
        from nsa_train.data import TrainStream, build_tokenizer, val_batches

        t0 = time.time()
        self.tokenizer = build_tokenizer(cfg.data)
        self.vocab = cfg.model.vocab_size or self.tokenizer.vocab_size
        if self.vocab < self.tokenizer.vocab_size:
            raise UserFacingError(
                f"model.vocab_size {self.vocab} is smaller than the tokenizer's ({self.tokenizer.vocab_size})"
            )
        w = self.info.world_size
        self.stream = TrainStream(cfg, self.tokenizer, self.info.rank, w, self.micro_batch)
        self.stream.on_first_batch_wait = self._first_batch_wait
        self.stream.on_empty_epoch = self._empty_epoch
        # eval_batches counts whole batches, split like training's: the held-out windows scored are the same
        # whatever grad_accum and the number of ranks, so runs of one config compare
        n_val = cfg.train.eval_batches * cfg.train.grad_accum
        is_main = self.info.is_main
        self.val = val_batches(
            cfg,
            self.tokenizer,
            self.micro_batch,
            n_val,
            self.info.rank,
            w,
            cfg.train.grad_accum,
            on_source=self._summarise_data if is_main else None,
        )
        if is_main:
            from nsa_train.data.stream import held_out_said
            from nsa_train.data.summary import data_warnings
            from nsa_train.telemetry.data_said import data_said

            scored = len(self.val) * self.micro_batch * w  # sequences: micro-batches per rank are not batches
            source = data_said(self.data_summary) or getattr(self.stream, "description", cfg.data.source)
            print(
                f"[data] {source} | tokenizer {self.tokenizer.name} "
                f"(vocab {self.tokenizer.vocab_size}) | {held_out_said(cfg, scored)} | {time.time() - t0:.1f}s"
            )
            # said with the train phase's warnings
            self.data_warnings += data_warnings(self.data_summary, cfg.train.steps, w)

    def _summarise_data(self, source: Any) -> None:
        """How much data the run trains on (run.json's data_summary, the [data] line): from the validation set's
        opening of the source, so nothing is opened again for it."""
        from nsa_train.data.summary import data_summary

        self.data_summary = data_summary(self.cfg, source, self.tokenizer.name)

    def _replan_data(self) -> None:
        """A resume at another tokens per step (train.batch_size changed): the data summary, counted before the
        checkpoint was read, planned every step at this attempt's size; the run's plan is what it trained, then the
        rest at it. Said on the console (the [data] line had the other), kept in run.json, warned of anew."""
        from nsa_train.data.summary import data_warnings, replanned
        from nsa_train.telemetry.data_said import data_counts_said

        t, s = self.cfg.train, self.data_summary
        planned = self.tokens_seen + (t.steps - self.step) * t.batch_size * t.seq_len
        if s is None or planned == s[schema.DATA_PLANNED_TOKENS]:
            return
        self.data_summary = replanned(s, planned)
        # data_warnings is all that fills them (the data phase): judged again on the run's plan
        self.data_warnings = data_warnings(self.data_summary, t.steps, self.info.world_size)
        print(
            f"[data] {self.tokens_seen:,} tokens trained to step {self.step}, then {t.batch_size * t.seq_len:,} a step "
            f"to step {t.steps:,}: {data_counts_said(self.data_summary)}"
        )

    def _build_model(self) -> None:
        """The model phase: the model and its optimizer, a --resume's checkpoint loaded into them, run.json."""
        cfg, is_main = self.cfg, self.info.is_main
        self.hb.write(schema.KIND_PHASE, 0, phase=schema.PHASE_MODEL, attention=cfg.model.attention)
        from nsa_train.model import build_model

        self.torch.manual_seed(cfg.train.seed)
        self.model = build_model(cfg, self.vocab).to(self.device)
        self.param_count = sum(p.numel() for p in self.model.parameters())
        # MFU's numerator and denominator (nsa_train.telemetry.mfu): the tools judge tokens/s by them
        self.flops_per_token = train_flops_per_token(cfg, self.vocab)
        self.peak_flops = self.devmod.peak_flops(self.device, self.precision, cfg.runtime, cfg.monitor.peak_tflops)
        self.attention_impl = str(getattr(self.model.blocks[0].attn, "impl_name", cfg.model.attention))
        self.optimizer = self._make_optimizer()
        if self.init_weights is not None:
            self._load_init_weights()
        if self.args.resume:
            self._resume()
            if is_main:
                self._keep_init_from()
                # against the run's config.yaml, before it is replaced
                self.resume_warnings += resume_notes(
                    self.run_dir / schema.CONFIG_YAML, cfg, self.step, self.args.overrides
                )
                # only now: a resume the checkpoint refuses (another seq_len, model, ...) must not replace the
                # run's config, which the next plain `--resume` reads
                self._save_config()
        if is_main:
            print(
                f"[model] {human_count(self.param_count)} params | attention {self.attention_impl} | "
                f"{self.device} {self.precision} | threads {self.threads} | micro batch {self.micro_batch} x "
                f"accum {cfg.train.grad_accum} x world {self.info.world_size} = {cfg.train.batch_size} seqs/step"
            )
            if not self.args.resume:
                # with run.json's new id, not later: a start that died in between left `latest` naming the earlier
                # run's checkpoint, and its plain --resume met "belongs to another run". A start refused before
                # this (its config, data or model) writes nothing of the earlier run away
                self.dropped_pointers = self._drop_earlier_pointers()
            self._write_run_json()

    def _compile(self) -> None:
        """The compile phase: torch.compile (lazy: it compiles during the first steps), then the DDP wrap."""
        cfg = self.cfg
        self.hb.write(schema.KIND_PHASE, 0, phase=schema.PHASE_COMPILE, enabled=cfg.train.compile)
        if cfg.train.compile:
            from nsa_train.model import compile_model

            compile_model(self.model)  # in place, compiled lazily on the first step (and again for eval's shapes)
        self.train_model = self.distmod.wrap_ddp(self.model, self.info, self.device, cfg.runtime)

    def _open_training(self) -> None:
        """The train phase's record with the start's warnings (kept in run.json too), the metrics files opened (a
        resume's cut back to its checkpoint's step), and the watchdog told to expect steps."""
        stale = self.stop.remove_stale_halt()
        train_warnings = self._train_warnings(stale)
        self.hb.write(
            schema.KIND_PHASE,
            self.step,
            phase=schema.PHASE_TRAIN,
            start_step=self.step,
            warnings=train_warnings,
            **{schema.STALE_HALT_REMOVED: stale},
        )
        if self.info.is_main:
            # kept where no heartbeat tail can lose them: a long run's phase records leave status's window
            said = [*self.config_warnings, *(w for w in train_warnings if w not in self.config_warnings)]
            self._write_run_json(start_warnings=said)
            self._open_metrics()
        assert self.watchdog is not None
        self.watchdog.watch_steps(self.cfg.monitor.stall_s, self.step)

    def _train_warnings(self, stale_halt_removed: bool) -> list[str]:
        """The train phase's warnings, each also printed: the resume's, a stale .HALT removed (on the rank that
        removed it), an earlier run's checkpoint pointers dropped."""
        is_main = self.info.is_main
        train_warnings = [*self.data_warnings, *self.resume_warnings]
        if is_main:
            for msg in train_warnings:
                print(f"warning: {msg}", file=sys.stderr)
        if stale_halt_removed:
            msg = f"removed a stale {schema.HALT_FILE} left in the run directory (it would have stopped this run)"
            train_warnings.append(msg)
            print(f"warning: {msg}", file=sys.stderr)
        if dropped := self.dropped_pointers:
            msg = (
                f"removed the earlier run's checkpoint pointers ({', '.join(dropped)}): until this run saves its "
                "own, `nsa sample` and --resume would have loaded the earlier run's weights (its checkpoint files "
                "stay until train.keep_last prunes them)"
            )
            train_warnings.append(msg)
            print(f"warning: {msg}", file=sys.stderr)
        return train_warnings

    def _open_metrics(self) -> None:
        """Rank 0's training.csv, val.csv, train.log (and TensorBoard)."""
        from nsa_train.telemetry.writer import MetricsLog, data_rows, truncate_csv_after

        run_dir = self.run_dir
        if self.args.resume:
            for name in (schema.TRAINING_CSV, schema.VAL_CSV):
                truncate_csv_after(run_dir / name, self.step, keep_rows=(self.csv_rows_before or {}).get(name, 0))
        else:
            # the rows an earlier run left (a fresh start over it appends): a resume of this run cuts back its
            # own rows only (by step it cut the earlier run's after the checkpoint's step, and kept its others)
            self.csv_rows_before = {name: data_rows(run_dir / name) for name in (schema.TRAINING_CSV, schema.VAL_CSV)}
        self.metrics = MetricsLog(
            run_dir, self.cfg.runtime.tensorboard, first_step=self.step + 1, tb_parent=self.where.stable
        )

    def _drop_earlier_pointers(self) -> list[str]:
        """A fresh start (--force) over an earlier run: its `latest` and `best` name that run's checkpoints, which
        `nsa sample`, the report's best mark and a --resume of this run would take for this run's."""
        from nsa_train.runtime import checkpoint as ck

        dropped = []
        for pointer in (schema.LATEST_POINTER, schema.BEST_POINTER):
            path = ck.checkpoint_dir(self.run_dir) / pointer
            if path.is_file():
                path.unlink()
                dropped.append(f"{schema.CHECKPOINT_DIR}/{pointer}")
        return dropped

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> tuple[str, int]:
        torch, t = self.torch, self.cfg.train
        from nsa_train.model import collect_gates
        from nsa_train.nsa import fallbacks
        from nsa_train.telemetry.gates import GateAccumulator

        device = self.device
        params = [p for p in self.model.parameters() if p.requires_grad]
        gates = GateAccumulator()
        autocast = self.devmod.autocast_context(device, self.precision)
        slow_step, slow_s = _parse_slow_step(os.environ.get(SLOW_STEP_ENV))
        tokens_per_step = t.batch_size * t.seq_len
        max_norm = t.grad_clip if t.grad_clip > 0 else math.inf

        window = StepWindow(torch.zeros((), device=device))  # the steps since the last progress record
        fallbacks_before = fallbacks.snapshot()  # a resume's restored counts: the first step's are those above them
        t_train = self.t_train = time.perf_counter()
        self.watchdog.beat(self.step)
        reason = schema.END_COMPLETED
        grad_norm = prev_grad_norm = torch.zeros((), device=device)
        prev_lr = 0.0

        while self.step < t.steps:
            step = self.step + 1  # 1-based number of the step being taken
            lr = lr_at(step, lr=t.lr, min_lr=t.min_lr, warmup_steps=t.warmup_steps, total_steps=t.steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            step_loss = torch.zeros((), device=device)
            step_gates = GateAccumulator()  # the window's once the step updates the weights (a NaN step's are NaN)
            for micro in range(t.grad_accum):
                tf = time.perf_counter()
                x, y = next(self.stream)  # [micro_batch, seq_len] each
                # from the first batch on, a signal is a flag the ranks agree on: they stop after one step, saved
                self.stop.starting = False
                window.fetch_s += time.perf_counter() - tf
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                last_micro = micro == t.grad_accum - 1
                sync = nullcontext() if last_micro or not self.info.enabled else self.train_model.no_sync()
                with sync, autocast:
                    loss = self.train_model(x, y) / t.grad_accum
                loss.backward()
                step_loss += loss.detach()
                step_gates.add(collect_gates(self.train_model))
            if step == slow_step:
                time.sleep(slow_s)
            # the true global norm, before clipping and before zero_grad (grads are already all-reduced)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            halt, signalled, nan = self._agree_on_stop(step_loss, grad_norm)
            if nan:  # self.step stays at the last step that updated the weights (summary: steps_completed)
                if window.steps:  # the steps that led here are the ones worth seeing: logged, not dropped
                    # (their window's time and fetch time take in the failed step too; its gate statistics not)
                    self._log_progress(window, gates, step - 1, prev_lr, prev_grad_norm)
                self._say_nonfinite(step, step_loss, grad_norm)
                reason = schema.END_NAN
                break
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            gates.merge(step_gates)
            prev_lr, prev_grad_norm = lr, grad_norm
            self.step = step
            self.tokens_seen += tokens_per_step
            self.tokens_this_process += tokens_per_step
            window.add(step_loss)
            self.watchdog.beat(step)
            # every rank's first step at once (then every liveness_every_s): the dashboard's ranks line read "r1 s0"
            # for the first 30 s of a DDP run, a training rank taken for a stuck one
            first_step = self.tokens_this_process == tokens_per_step
            self.hb.liveness(step, force=first_step)
            if first_step and self.info.is_main:
                self._record_attention_ran(step, fallbacks_before)

            if (halt or signalled) and step == t.steps:
                # a stop on the last step: the run is complete; finish it as such (final eval, best pointer)
                # rather than stop short of what no resume could then make up (a resume at train.steps has nothing
                # to do). A signal's sender may not wait for the evaluation: the checkpoint is saved first
                if signalled:
                    self._save(step, pointers=(schema.LATEST_POINTER,))
                halt = signalled = False
                self.stop.remove_halt()
            if step % t.log_every == 0 or step == t.steps or halt or signalled:
                self._log_progress(window, gates, step, lr, grad_norm)

            eval_due = (t.eval_every and step % t.eval_every == 0) or step == t.steps
            if halt or signalled:
                reason = self._stop_after(step, halt, signalled, bool(eval_due))
                break

            t_pause = time.perf_counter()
            self._evaluate_and_save(step, bool(eval_due))
            # out of the window's time, whichever step of the window it fell on (restarting the window's clock
            # here would leave the steps before it divided by the time after it)
            window.paused_s += time.perf_counter() - t_pause
        self.train_wall_s = time.perf_counter() - t_train
        if reason == schema.END_COMPLETED and self.stop.halt_requested():
            # asked during the final evaluation or checkpoint: the run is complete, and a .HALT left behind would
            # stop the next run started here by hand (nsa launch removes a stale one; a bare resume need not)
            self.stop.remove_halt()
            print(f"[stop] {schema.HALT_FILE} came after the last step: the run completed; removed it")
        return reason, self._exit_status(reason)

    def _agree_on_stop(self, step_loss: Any, grad_norm: Any) -> tuple[bool, bool, bool]:
        """(halt, signalled, non-finite) as any rank saw them: all-reduced, so every rank stops after the same step
        (a rank that stopped alone would leave the others waiting in a collective). One host sync per step."""
        torch, device = self.torch, self.device
        nonfinite = (~torch.isfinite(step_loss) | ~torch.isfinite(grad_norm)).float()
        try:
            self._follow_run_dir()  # before the step's writes; each rank follows its own (its heartbeat, its dumps)
        except RunDirLost:
            pass  # agreed on below: every rank stops after this step (one stopping alone leaves the others waiting)
        flags = torch.stack(
            [
                torch.tensor(float(self.stop.halt_requested()), device=device),
                torch.tensor(float(self.stop.signalled), device=device),
                nonfinite,
                torch.tensor(float(self.where.lost is not None), device=device),
            ]
        )
        if self.info.enabled:
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        halt, signalled, nan, lost = (bool(v) for v in flags.tolist())
        if lost:
            raise RunDirLost(self.where.lost or "another rank found the run directory deleted: the run stops here")
        return halt, signalled, nan

    def _say_nonfinite(self, step: int, step_loss: Any, grad_norm: Any) -> None:
        """The error record of a non-finite step, on every rank; its line said by rank 0."""
        said = f"loss {step_loss.item():.4g}, grad norm {grad_norm.item():.4g}"
        msg = f"non-finite loss or gradient norm at step {step} (this rank: {said}); stopping without an update"
        self.hb.write(schema.KIND_ERROR, step, message=msg)
        if self.info.is_main:
            print(f"error: {msg}", file=sys.stderr)
        else:  # every rank saw it (all-reduced): rank 0 said it (main's end: say_once_for_all_ranks)
            self.shared_error = msg

    def _stop_after(self, step: int, halt: bool, signalled: bool, eval_due: bool) -> str:
        """A halt or signal after ``step``: its checkpoint (and on a halt the step's due evaluation); the end reason."""
        if self.info.is_main:
            why = f"{schema.HALT_FILE} found" if halt else f"signal {self.stop.signal_name or '(other rank)'}"
            print(f"[stop] {why}: stopping after step {step}")
        stop_pointers = [schema.LATEST_POINTER]
        # the step's evaluation is part of it (a halt waits for the step): skipped, val.csv kept a hole no
        # resume fills, and the best checkpoint was chosen without it. Not on a signal: its sender (tmux
        # kill-session, a scheduler's preemption) may not wait that long
        if halt and not signalled and eval_due and self._evaluate_is_best(step):
            stop_pointers.append(schema.BEST_POINTER)
        self._save(step, pointers=tuple(stop_pointers))
        self.halt_overtaken = signalled and not halt and self.stop.halt_requested()
        self.stop.remove_halt()
        return schema.END_HALT if halt else schema.END_SIGNAL

    def _evaluate_and_save(self, step: int, eval_due: bool) -> None:
        """The step's evaluation when due, and its checkpoint when due or when the evaluation is the best yet."""
        t = self.cfg.train
        pointers: list[str] = []
        if eval_due and self._evaluate_is_best(step):
            pointers.append(schema.BEST_POINTER)
        if (t.save_every and step % t.save_every == 0) or step == t.steps or pointers:
            self._save(step, pointers=(schema.LATEST_POINTER, *pointers))

    def _log_progress(self, window: StepWindow, gates: Any, at: int, lr: float, grad_norm: Any) -> None:
        """The progress record (and CSV row, train.log line) of the window's steps, at step ``at``; a collective
        under DDP (the mean loss): every rank calls it at the same step. The window starts over."""
        from nsa_train.nsa import fallbacks

        torch, t = self.torch, self.cfg.train
        window_s = window.seconds()
        mean_loss = (window.loss_sum / window.steps).reshape(1)
        if self.info.enabled:
            torch.distributed.all_reduce(mean_loss)
            mean_loss /= self.info.world_size
        stats = gates.read()
        if self.info.is_main:
            alloc, reserved = self.devmod.gpu_memory_gb(self.device)
            metrics = {
                "loss": mean_loss.item(),
                "lr": lr,
                "toks_per_s": window.steps * t.batch_size * t.seq_len / window_s,
                "grad_norm": grad_norm.item(),
                "tokens_seen": self.tokens_seen,
                "dt_step_s": window_s / window.steps,
                "dt_fetch_s": window.fetch_s / window.steps,
                "gpu_mem_alloc_gb": alloc,
                "gpu_mem_reserved_gb": reserved,
                "rss_gb": self.devmod.rss_gb(),
                **stats,
                "fallbacks": fallbacks.snapshot(),
            }
            # why a path fell back, once per counter (its first cause): in the record and on the console
            new = {k: v for k, v in fallbacks.reasons().items() if k not in self.fallback_reasons_said}
            for name, why in sorted(new.items()):
                print(f"warning: the NSA {name} path fell back (counted in fallbacks): {why}", file=sys.stderr)
            self.fallback_reasons_said.update(new)
            extra = {"fallback_reasons": new} if new else {}
            rec = self.hb.write(schema.KIND_PROGRESS, at, **metrics, **extra)
            self.metrics.progress(
                at,
                metrics,
                rec["ts"],
                mfu=mfu(metrics["toks_per_s"], self.flops_per_token, self.peak_flops, self.info.world_size),
                warmup=phase_at(at, warmup_steps=t.warmup_steps, total_steps=t.steps) == "warmup",
            )
        window.reset()

    def _exit_status(self, reason: str) -> int:
        if reason == schema.END_NAN:
            return EXIT_NAN
        if reason == schema.END_SIGNAL:
            return 128 + self.stop.exit_signal if self.stop.exit_signal else EXIT_OK
        return EXIT_OK

    # ------------------------------------------------------------------ pieces
    def _make_optimizer(self) -> Any:
        torch, t = self.torch, self.cfg.train
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            # weight decay on matrices only (NSA's compression position tables are 2-D: decayed), not on norms,
            # biases, or the (tied) embedding
            (decay if p.dim() >= 2 and not name.startswith("embed.") else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        fused = self.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=t.lr, betas=(t.beta1, t.beta2), fused=fused or None)

    def _evaluate_is_best(self, step: int) -> bool:
        """Evaluate at ``step``; True when its val loss is the run's best so far (noted: the save moves `best`)."""
        val_loss = self._evaluate(step)
        if self.best_val is None or val_loss < self.best_val:
            self.best_val, self.best_step = val_loss, step
            return True
        return False

    def _evaluate(self, step: int) -> float:
        torch = self.torch
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)  # [sum of losses, batches]
        with torch.no_grad(), self.devmod.autocast_context(self.device, self.precision):
            for x, y in self.val:
                total[0] += self.model(x.to(self.device), y.to(self.device)).double()
                total[1] += 1
                self.watchdog.touch()
        self.model.train()
        if self.info.enabled:
            torch.distributed.all_reduce(total)
        val_loss = (total[0] / total[1].clamp_min(1)).item()
        val_ppl = math.exp(min(val_loss, 700.0))
        self.last_val = val_loss
        self.hb.write(schema.KIND_EVAL, step, val_loss=val_loss, val_ppl=val_ppl)
        if self.info.is_main:
            self.metrics.eval(step, val_loss, val_ppl)
        return val_loss

    def _checkpoint_state(self) -> dict[str, Any]:
        from nsa_train.nsa import fallbacks
        from nsa_train.nsa.maths_version import NSA_MATHS
        from nsa_train.runtime.checkpoint import capture_rng, to_plain

        data_states = self.distmod.all_gather_object(to_plain(self.stream.state_dict()))
        rng_states = self.distmod.all_gather_object(capture_rng())
        return {
            "format": schema.FORMAT_NAME,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "best_val": self.best_val,
            "best_step": self.best_step,
            "last_val": self.last_val,
            "schedule": {"kind": "warmup_cosine", "next_step": self.step + 1},  # lr is a pure function of step
            "data": data_states,  # one per rank
            "rng": rng_states,  # one per rank
            # rank 0's fallback counters (what its progress records report): a resume continues them, so they
            # stay cumulative over the run and never seem to go down (the tools' fallbacks_rising compares them)
            "fallbacks": fallbacks.snapshot(),
            "world_size": self.info.world_size,
            "config": config_to_dict(self.cfg),
            # whose checkpoint it is: a --resume refuses another run's (copied in), whatever the directory is named
            schema.CKPT_RUN_ID: self.run_id,
            schema.CKPT_RUN_NAME: self.run_dir.resolve().name,
            schema.CKPT_INIT_FROM: self.init_from,  # run.json's record, which a resume rewrites from this
            schema.CKPT_NSA_MATHS: NSA_MATHS,  # a resume by code of other maths says so
            "csv_rows_before": self.csv_rows_before,  # {table: the rows of earlier runs before this one's}
        }

    def _first_batch_wait(self, waited_s: float, replayed: int, target: int) -> None:
        """Every 30 s without a first batch: say so. A resumed stream re-reads its documents up to the saved
        position (a hub stream cannot seek): a phase record with how far it got tells the tools the start is
        moving (not stuck), and the watchdog is told too (it would report a stall)."""
        if replayed > self.replay_reported:  # only when it moved: a record says "still going"
            self.replay_reported = replayed
            self.watchdog.touch()
            self.hb.write(schema.KIND_PHASE, self.step, phase=schema.PHASE_DATA, replayed=replayed, replay_of=target)
        if self.info.is_main:
            how = f": replaying the stream to the saved position, document {replayed:,} of {target:,}"
            print(f"[data] {waited_s:.0f}s waiting for the first batch{how if replayed else ''}")

    def _empty_epoch(self, epoch: int, why: str, count: int) -> None:
        """This rank passed over an epoch whose share held nothing it trains on (the data thread calls it): said
        the first time only, as a corpus of few distinct documents meets it again and again."""
        if count == 1:
            print(
                f"[data] rank {self.info.rank}: epoch {epoch} of {self.cfg.data.source_description} deals this rank "
                f"nothing to train on, {why}; it goes on with epoch {epoch + 1} (said once: a few distinct documents "
                "among skipped ones land on one rank at times, and each rank counts its own epochs)"
            )

    def _save(self, step: int, pointers: tuple[str, ...]) -> None:
        from nsa_train.runtime import checkpoint as ck

        if step == self.last_saved_step:
            if self.info.is_main:  # already written at this step: only move the pointers
                ckpt_dir = ck.checkpoint_dir(self.run_dir)
                for p in pointers:
                    ck.write_pointer(ckpt_dir, p, ck.checkpoint_file_name(step))
            return
        t0 = time.perf_counter()
        self.watchdog.touch()
        state = self._checkpoint_state()  # collective: every rank takes part
        if self.info.is_main:
            ckpt_dir = ck.checkpoint_dir(self.run_dir)
            try:
                path = ck.save_checkpoint(ckpt_dir, step, state, pointers)
            except ck.CheckpointError:
                if not self._follow_run_dir():  # renamed while it saved: saved again where it went
                    raise
                ckpt_dir = ck.checkpoint_dir(self.run_dir)
                path = ck.save_checkpoint(ckpt_dir, step, state, pointers)
            ck.prune(ckpt_dir, self.cfg.train.keep_last)
            secs = time.perf_counter() - t0
            # the file's size and the room left beside it: the tools' disk_low rule warns before a save cannot fit
            size, free_gb = path.stat().st_size, shutil.disk_usage(ckpt_dir).free / 2**30
            self.hb.write(
                schema.KIND_CHECKPOINT,
                step,
                path=str(path.absolute()),  # the contract says absolute: --run-dir may be relative to the cwd
                seconds=secs,
                pointers=list(pointers),
                bytes=size,
                disk_free_gb=free_gb,
            )
            self.metrics.line(f"checkpoint step {step} -> {path} ({secs:.2f}s)")
            if free_gb * 2**30 < 2 * size:
                print(
                    f"warning: {human_bytes(free_gb * 2**30)} left on the disk of {ckpt_dir}, a checkpoint takes "
                    f"{human_bytes(size)}: free space or lower train.keep_last before the next save",
                    file=sys.stderr,
                )
        self.last_saved_step = step
        self.watchdog.touch()

    def _check_checkpoint_dir(self) -> None:
        """A checkpoint directory rank 0 (the rank that saves) cannot write fails the run now, not at its first save
        train.save_every steps later; after the process group is up, so every rank hears it and stops alike (a rank
        already waiting at the rendezvous cannot be stopped by a signal, and torchrun SIGKILLs it 30 s later)."""
        from nsa_train.runtime.checkpoint import CheckpointError, check_writable, checkpoint_dir

        problem = None
        if self.info.is_main:
            try:
                check_writable(checkpoint_dir(self.run_dir))
            except CheckpointError as e:
                problem = str(e)
        if self.distmod.all_reduce_max([1.0 if problem else 0.0], self.device)[0] > 0:
            raise CheckpointError(problem or "rank 0 cannot write the checkpoint directory (its error says why)")

    def _measure_disk(self) -> list[str]:
        """`nsa launch`'s disk estimate (checkpoints, a local source's Arrow copy) against this machine's free space,
        before anything large is written: a start warning when tight; not enough is refused by _check_disk, once the
        ranks have joined. A trainer started by hand otherwise met a full disk later, in whatever wrote then."""
        from nsa_train.config.flops import estimate_param_count
        from nsa_train.runtime.disk_room import FAIL, WARN, disk_room

        room = disk_room(self.cfg, self.run_dir, estimate_param_count(self.cfg))
        if room.status == FAIL:
            self.disk_refusal = f"disk: {room.reason}; refused before anything large was written"
        return [f"disk: {room.reason}"] if room.status == WARN else []

    def _check_disk(self) -> None:
        """Rank 0's _measure_disk refusal, on every rank alike (as _check_checkpoint_dir's)."""
        said = self.disk_refusal
        if self.distmod.all_reduce_max([1.0 if said else 0.0], self.device)[0] > 0:
            raise UserFacingError(said or "rank 0's disk has no room for this run (its error says how much)")

    def _resume(self) -> None:
        from nsa_train.nsa import fallbacks
        from nsa_train.runtime import checkpoint as ck
        from nsa_train.runtime.optimizer_state import load_optimizer_state

        ckpt_dir = ck.checkpoint_dir(self.run_dir)
        if self.info.is_main:
            ck.remove_stale_temps(ckpt_dir)
        path = ck.read_pointer(ckpt_dir, schema.LATEST_POINTER)
        if path is None:
            raise UserFacingError(no_latest_pointer(ckpt_dir))
        try:
            state = ck.load_checkpoint(path)
        except ck.CheckpointError as e:  # damaged or not a checkpoint: the others here may be whole
            hint = ck.other_checkpoints_hint(ckpt_dir, but=path, run_id=run_id_of(self.run_dir))
            raise ck.CheckpointError(f"--resume: {e}{hint}") from None
        own, saved_id = run_id_of(self.run_dir), state.get(schema.CKPT_RUN_ID)
        if other_run(own, saved_id):  # copied in from another run (same shape or not), or an earlier run's here
            raise UserFacingError(
                foreign_checkpoint(path, saved_id, state.get(schema.CKPT_RUN_NAME), self.run_dir, own)
            )
        # the run's id: run.json's; the checkpoint's for a run.json from before ids; else made now
        self.run_id = own or (saved_id if isinstance(saved_id, str) and saved_id else self.run_id)
        if not isinstance(saved_id, str) and self.info.is_main:
            self.resume_warnings.append(unrecorded_run_note(path))
        if self.info.is_main:
            self.resume_warnings += self._checkpoint_notes(state, path, "the resumed steps")
        if int(state["step"]) >= self.cfg.train.steps:  # before anything is loaded: this process did nothing
            raise UserFacingError(nothing_to_do(path, int(state["step"]), self.cfg.train.steps))
        saved_world = state.get("world_size")
        resharding = saved_world != self.info.world_size
        if resharding and not self.args.reshard:
            raise UserFacingError(world_size_mismatch(path, saved_world, self.info.world_size))
        ck.load_model_state(self.model, state["model"], path)
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.stream.weights_from = path  # what a refusal of its data position names as a new run's weights
        if resharding:
            self._reshard(state, path)
        else:
            self.stream.load_state_dict(state["data"][self.info.rank])
            ck.restore_rng(state["rng"][self.info.rank])
            if self.args.reshard and self.info.is_main:  # harmless: `nsa launch --resume --reshard` on the same box
                print(f"[reshard] {path.name} was written by {self._ranks(saved_world)}, as many as this run has: it "
                      "continues exactly, nothing to reshard")  # fmt: skip
        self.step = self.last_saved_step = int(state["step"])
        self.tokens_seen = int(state["tokens_seen"])
        if self.info.is_main:
            self._replan_data()
        self.best_val, self.best_step = state.get("best_val"), state.get("best_step")
        if self.info.is_main:
            fallbacks.restore(state.get("fallbacks") or {})  # absent from checkpoints older than the field
        self.last_val = state.get("last_val")  # the summary's final_val_loss if this attempt stops before an eval
        self.csv_rows_before = state.get("csv_rows_before")  # absent from checkpoints older than the field
        init = state.get(schema.CKPT_INIT_FROM)  # absent from checkpoints older than the field
        self.init_from = init if isinstance(init, dict) else None
        self.resumed = True
        if self.info.is_main:
            print(f"[resume] {path} at step {self.step} ({self.tokens_seen} tokens seen)")
            if newer := ck.written_after(ckpt_dir, path):
                # not taken in its place: the pointer is the save's last act, and a file it does not name is one
                # whose save did not finish as far as this trainer knows; said (with the start warnings, so status
                # shows it), so the steps since are not lost without a word
                self.resume_warnings.append(newer_checkpoint_note(newer[-1], ckpt_dir, self.step))

    def _checkpoint_notes(
        self, state: dict[str, Any], path: Path, doing: str, data: bool = True, name: str | None = None
    ) -> list[str]:
        """Start warnings for what the checkpoint ``state`` was made with that this code does otherwise: NSA maths
        of another version (the run goes on, not as it would have), and (``data``) data positions saved before
        they recorded their holdout and epoch order's digest (resumed unchecked)."""
        from nsa_train.nsa.maths_version import checkpoint_maths, maths_note

        notes = []
        if self.cfg.model.attention == "nsa":
            maths = maths_note(name or path.name, checkpoint_maths(state, schema.CKPT_NSA_MATHS), doing)
            notes += [maths] if maths else []
        positions = state.get("data") if data and self.cfg.data.source != "hf" else None
        if isinstance(positions, list) and any(isinstance(d, dict) and not d.get("order_digest") for d in positions):
            notes.append(undigested_order_note(path))
        return notes

    @staticmethod
    def _ranks(n: Any) -> str:
        return f"{n} rank{'' if n == 1 else 's'}"

    def _reshard(self, state: dict[str, Any], path: Path) -> None:
        """--reshard: the data continues from the saved ranks' frontier (nsa_train/data/reshard.py), and each rank's
        RNG is seeded from train.seed, the step and its rank (the saved states are per old rank)."""
        from nsa_train.runtime import checkpoint as ck

        data = state.get("data")
        if not isinstance(data, list) or not data:
            raise ck.CheckpointError(f"--reshard: {path} holds no data positions to continue")
        step, old, new = int(state["step"]), len(data), self.info.world_size
        plan = self.stream.reshard(data)
        ck.reseed_rng(self.cfg.train.seed, step, self.info.rank)
        if self.info.is_main:
            documents, tokens = self.stream.reread(plan)
            self.resharded = {
                "from_world_size": old,
                "step": step,
                "epoch": plan.epoch,
                "document": plan.first,
                "documents_per_epoch": plan.n_docs,
                "reread_documents": documents,
                "reread_tokens": tokens,
            }
            again = f"{documents} document{'' if documents == 1 else 's'} ({tokens:,} tokens)"
            # the order deals the documents training skips too: the [data] line's training documents are fewer
            s = self.data_summary or {}
            skipped = (s.get(schema.DATA_HELD_OUT_COPIES) or 0) + (s.get(schema.DATA_EMPTY_DOCUMENTS) or 0)
            among = f", the {skipped} not trained on among them" if skipped else ""
            print(
                f"[reshard] {self._ranks(old)} -> {new}: the data continues from position {plan.first} of epoch "
                f"{plan.epoch}'s shuffled order (of {plan.n_docs} documents dealt per epoch{among}); {again} read by "
                "some ranks "
                f"before the checkpoint are read again; each rank's RNG is seeded from train.seed "
                f"{self.cfg.train.seed}, step {step} and its rank"
            )
            # with the start warnings too, so that nsa status and the watch say it for the whole attempt
            self.resume_warnings.append(
                f"resharded from {self._ranks(old)} to {new}: {again} read before the checkpoint are read again "
                "(docs/data.md)"
            )

    def _keep_init_from(self) -> None:
        """A resume reads no train.init_from (it continues the run's own checkpoint): the config.yaml it rewrites
        keeps the run's own value (its saved config's, else the file the checkpoint records), not a --set one that
        was never loaded."""
        from nsa_train.config.resume import load_saved_config

        saved = load_saved_config(self.run_dir / schema.CONFIG_YAML)
        if saved is not None:
            self.cfg.train.init_from = saved.train.init_from
        else:
            self.cfg.train.init_from = self.init_from[schema.INIT_FROM_PATH] if self.init_from else None

    def _save_config(self) -> None:
        _atomic_write_text(self.run_dir / schema.CONFIG_YAML, dump_yaml(self.cfg))

    def _record_attention_ran(self, step: int, before: dict[str, int]) -> None:
        """run.json once this attempt's first step ran (rank 0): the attention paths as it ran them, a Triton
        backward that fell back named (its kernels compile at the first backward, after run.json was written), and
        the fallbacks it raised with their causes. Later fallbacks are the progress records' `fallbacks`."""
        from nsa_train.nsa import fallbacks

        raised = {k for k, n in fallbacks.snapshot().items() if n > before.get(k, 0)}
        causes = fallbacks.reasons()
        attn = self.model.blocks[0].attn
        ran = attn.impl_name_ran(raised) if hasattr(attn, "impl_name_ran") else self.attention_impl
        if ran != self.attention_impl:
            print(f"[train] attention as step {step} ran it: {ran} (was {self.attention_impl}; run.json)")
        self.attention_impl = ran  # summary.json's too
        if self._run_json is not None:
            self._run_json[schema.RUN_ATTENTION_IMPL] = ran
            self._run_json[schema.RUN_ATTENTION_FALLBACKS] = {k: causes.get(k, "") for k in sorted(raised)}
            _atomic_write_text(self.run_dir / schema.RUN_JSON, json.dumps(self._run_json, indent=2) + "\n", step)

    def _write_run_json(self, start_warnings: list[str] | None = None) -> None:
        """run.json, written at the model phase; again with the start's warnings once the train phase said them."""
        if start_warnings is not None and self._run_json is not None:
            self._run_json[schema.RUN_START_WARNINGS] = start_warnings
            _atomic_write_text(self.run_dir / schema.RUN_JSON, json.dumps(self._run_json, indent=2) + "\n")
            return
        from nsa_train.data.sources import data_listing

        t = self.cfg.train
        run = {
            schema.RUN_VERSION: schema.SCHEMA_VERSION,
            schema.RUN_FORMAT: schema.FORMAT_NAME,
            schema.RUN_NAME: self.run_dir.resolve().name,
            schema.RUN_ID: self.run_id,
            schema.RUN_CONFIG: config_to_dict(self.cfg),
            schema.RUN_ARGV: sys.argv,
            schema.RUN_WORLD_SIZE: self.info.world_size,
            schema.RUN_GIT_SHA: git_sha(),
            schema.RUN_HOST: socket.gethostname(),
            schema.RUN_START_TIME: self.t_boot,
            schema.RUN_PARAM_COUNT: self.param_count,
            schema.RUN_TOKENS_PER_STEP: t.batch_size * t.seq_len,
            schema.RUN_TOTAL_STEPS: t.steps,
            schema.RUN_ATTENTION_IMPL: self.attention_impl,
            schema.RUN_DEVICE_NAME: self.devmod.device_name(self.device),
            schema.RUN_PRECISION: self.precision,
            schema.RUN_FLOPS_PER_TOKEN: self.flops_per_token,
            schema.RUN_PEAK_FLOPS: self.peak_flops,
            schema.RUN_CONFIG_PATH: str(self.config_path) if self.config_path else None,
            schema.RUN_RESUMED_FROM_STEP: self.step if self.args.resume else None,
            # a --reshard's start: the ranks that wrote the checkpoint, where the data continues, what is read again
            schema.RUN_RESHARDED: self.resharded,
            # train.init_from's weights (the file, its run, its step); null for random initial weights
            schema.RUN_INIT_FROM: self.init_from,
            # the local files this start reads (names, sizes, samples): a later --resume compares them before it writes
            # anything (nsa_train.config.resume.data_change); the checkpoint's fingerprint is checked again later
            schema.RUN_DATA_LISTING: data_listing(self.cfg.data),
            # how much data (files, documents, bytes, tokens and planned epochs where exact): nsa status and report
            schema.RUN_DATA_SUMMARY: self.data_summary,
            # what this start warned about (its config and train phase records' `warnings`), filled in at the train
            # phase: the tools' `at start` lines when those records are out of the heartbeat tail they read
            schema.RUN_START_WARNINGS: [],
            # unknown until the first step's backward ran (_record_attention_ran)
            schema.RUN_ATTENTION_FALLBACKS: None,
        }
        self._run_json = run
        _atomic_write_text(self.run_dir / schema.RUN_JSON, json.dumps(run, indent=2) + "\n")

    def _start_watchdog(self) -> None:
        from nsa_train.runtime.watchdog import StackDumper, Watchdog

        rank = self.hb.rank  # before torch and the process group: what the environment says
        self.dumper = StackDumper(self.run_dir, rank)

        def on_stall(step: int, seconds: float, dump: Path) -> None:
            # best effort: on a full disk the main loop's next write stops the run; this thread would only die
            self.hb.write(schema.KIND_STALL, step, seconds_since_progress=seconds, dump=str(dump), best_effort=True)
            print(
                f"warning: rank {rank} stalled: step {step} unchanged for {seconds:.0f}s; stacks in {dump}",
                file=sys.stderr,
            )

        self.watchdog = Watchdog(self.dumper, math.inf, on_stall)  # stall checks from the first step (watch_steps)
        self.watchdog.start()

    def loop_seconds(self) -> float | None:
        """The seconds this process spent in its training loop (until now, for a loop that raised); None when the
        loop never started."""
        if not self.train_wall_s and self.t_train is not None:  # the loop raised: its time until now
            self.train_wall_s = time.perf_counter() - self.t_train
        return self.train_wall_s if self.t_train is not None else None

    def _write_summary_where_it_is(self, reason: str) -> None:
        self._follow_run_dir()  # renamed after the last step's look: written where it went
        self._write_summary(reason)

    def _write_summary(self, reason: str) -> None:
        self.loop_seconds()
        summary = {
            schema.SUMMARY_VERSION: schema.SCHEMA_VERSION,
            schema.SUMMARY_RUN: self.run_dir.resolve().name,
            schema.SUMMARY_END_REASON: reason,
            schema.SUMMARY_STEPS_COMPLETED: self.step,
            schema.SUMMARY_TOTAL_STEPS: self.cfg.train.steps,
            schema.SUMMARY_TOKENS_SEEN: self.tokens_seen,
            schema.SUMMARY_FINAL_VAL_LOSS: self.last_val,
            schema.SUMMARY_FINAL_VAL_PPL: math.exp(min(self.last_val, 700.0)) if self.last_val is not None else None,
            schema.SUMMARY_BEST_VAL_LOSS: self.best_val,
            schema.SUMMARY_BEST_VAL_PPL: math.exp(min(self.best_val, 700.0)) if self.best_val is not None else None,
            schema.SUMMARY_BEST_STEP: self.best_step,
            schema.SUMMARY_WALL_TIME_S: time.time() - self.t_boot,
            # when this attempt began and ended (Unix seconds): tools tell this attempt's summary from an earlier
            # one's by it when the end record is missing (a copy of the run without its heartbeat)
            schema.SUMMARY_STARTED_AT: self.t_boot,
            schema.SUMMARY_ENDED_AT: time.time(),
            schema.SUMMARY_TRAIN_TIME_S: self.train_wall_s,
            # none before a first step: 0 read as a measured rate (`0 mean` in `nsa runs`)
            schema.SUMMARY_MEAN_TOKS_PER_S: self.tokens_this_process / self.train_wall_s
            if self.train_wall_s > 0 and self.tokens_this_process
            else None,
            schema.SUMMARY_PARAM_COUNT: getattr(self, "param_count", None),
            schema.SUMMARY_ATTENTION_IMPL: getattr(self, "attention_impl", None),
            # no health alerts here: the verdict depends on when and with which rules one asks (docs/telemetry.md)
        }
        _atomic_write_text(self.run_dir / schema.SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")

    def shutdown(self, reason: str) -> None:
        """Release everything; safe after a failure at any stage (each piece on its own, so the
        `end` record is still written when one of them fails)."""
        steps = []
        if self.watchdog is not None:
            steps.append(("watchdog", self.watchdog.stop))
        if self.dumper is not None:
            steps.append(("stack dumper", self.dumper.close))
        if self.stream is not None:
            steps.append(("data stream", self.stream.close))
        # a refused resume (another seq_len, world size, model) did no work: the summary of the attempt that
        # did stays (its end record still says why this one stopped). A new run that failed on its way to the
        # first step (device, data, model) gets one: the tools read its end and wall time there
        # none in a deleted run directory: the run's error said so (runtime/run_dir_moves.py)
        if self.info_is_main() and (self.resumed or not self.args.resume) and self.where.lost is None:
            steps.append((schema.SUMMARY_JSON, lambda: self._write_summary_where_it_is(reason)))
        if self.metrics is not None:
            steps.append(("metrics files", self.metrics.close))
        if self.stop is not None:
            steps.append(("signal handlers", self.stop.restore_signal_handlers))
        if self.dist_ready:
            steps.append(("process group", self.distmod.destroy_process_group))
        for what, fn in steps:
            try:
                fn()
            except Exception as e:
                print(f"warning: shutdown: {what}: {type(e).__name__}: {e}", file=sys.stderr)

    def info_is_main(self) -> bool:
        return hasattr(self, "info") and self.info.is_main


def _atomic_write_text(path: Path, text: str, step: int = 0) -> None:
    """A run file (config.yaml, run.json, summary.json) replaced whole; a full disk is the run's one-line stop (at
    ``step``), any other failure (permissions, a read-only mount) one line too, not a traceback."""
    from nsa_train.telemetry.atomic import write_text_atomic
    from nsa_train.telemetry.writer import full_disk_stops_run

    try:
        with full_disk_stops_run(path, step):
            write_text_atomic(path, text)
    except DiskFullError:
        raise
    except OSError as e:
        raise UserFacingError(f"cannot write {path}: {e.strerror or e}") from None


def _parse_slow_step(value: str | None) -> tuple[int, float]:
    if not value:
        return -1, 0.0
    step, seconds = value.split(":", 1)
    return int(step), float(seconds)


if __name__ == "__main__":
    sys.exit(main())
