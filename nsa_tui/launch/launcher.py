"""`nsa launch` on this machine: plan (config, names, command), check, start in tmux.

The order matters: everything that can fail on the user's input (config, names,
rendezvous, tmux, disk, an occupied run) fails before a directory is created or a
process is started.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nsa_train
from nsa_train.config import (
    Config,
    ConfigError,
    check_resume_config,
    config_changes,
    config_hash,
    data_change,
    load_config,
    missing_config_message,
    resolve_config_path,
    resume_notes,
)
from nsa_train.config.loader import CONFIG_ENV, DEFAULT_CONFIG_NAME, FROM_CONFIG_ENV, config_from_env, repeated_set
from nsa_train.runtime.checkpoint import (  # torch-free at import
    TORCH_FILE_MAGIC,
    CheckpointError,
    other_checkpoints_hint,
    verify_archive,
    written_after,
)
from nsa_train.runtime.control import LAUNCH_TIME_ENV
from nsa_train.runtime.preflight import preflight_warnings, unread_nsa_env

# torch-free at import: one wording with the trainer
from nsa_train.runtime.resumable import foreign_latest, nothing_to_do, run_id_of
from nsa_train.telemetry import schema
from nsa_train.telemetry.atomic import write_text_atomic
from nsa_train.telemetry.holds import earlier_run, has_checkpoint, holds_run, resume_advice
from nsa_train.telemetry.pointers import read_pointer
from nsa_train.telemetry.readback import checkpoint_world_size
from nsa_tui import launched
from nsa_tui.check_cheap import unusable_run_dir
from nsa_tui.errors import USAGE_EXIT, UserError
from nsa_tui.launch import preflight, runstate, tmux
from nsa_tui.launch.command import SECRET_PATTERN, Rendezvous, TrainerCommand, shell_string, trainer_env
from nsa_tui.launch.gpus import default_nproc, visible_gpu_count
from nsa_tui.launch.runner import trainer_base_env
from nsa_tui.rundir import known_elsewhere, name_max, runs_root

LAUNCH_JSON_VERSION = 1
# after --force kills a session: time for its wrapper to end. torchrun gives its ranks 30 s after the hang-up to
# finish their step and save, then SIGKILLs them; the wrapper then records the exit. Past this, the launch refuses.
KILL_WAIT_S = 90.0


@dataclass
class LaunchRequest:
    config: str | None = None
    name: str | None = None
    run_dir: str | None = None
    nproc: int | None = None
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    overrides: list[str] = field(default_factory=list)
    force: bool = False
    resume: bool = False  # continue the run dir's latest checkpoint (reusing the dir is the point)
    reshard: bool = False  # with resume: on another number of ranks than wrote the checkpoint (the trainer's --reshard)


@dataclass
class LaunchPlan:
    name: str
    run_dir: Path  # absolute
    session: str
    config_path: Path | None  # absolute; None: the built-in defaults
    cfg: Config
    command: TrainerCommand
    env: dict[str, str]
    env_sources: dict[str, list[str]]
    cwd: Path
    notes: list[str] = field(default_factory=list)  # what the user should know before it starts (not errors)
    config_from_env: bool = False  # config_path came from $CONFIG (no --config): said where the plan is printed
    launched_at: float = field(default_factory=time.time)  # launch.json's ts, and the trainer's NSA_LAUNCH_TIME

    @property
    def argv(self) -> list[str]:
        return self.command.argv()

    def stamp(self, now: float) -> None:
        """The launch time, set once the way is clear (an old session killed by --force has written its `end`):
        an `end` or a `.HALT` before it belongs to an earlier attempt."""
        self.launched_at = now
        self.env[LAUNCH_TIME_ENV] = f"{now:.6f}"
        self.env_sources["nsa"] = sorted({*self.env_sources.get("nsa", []), LAUNCH_TIME_ENV})

    def runner_argv(self) -> list[str]:
        # -P: the wrapper too is the installed one, not an nsa_tui in the directory the launch ran from
        return [sys.executable, "-P", "-m", "nsa_tui.launch.runner", str(self.run_dir)]


def default_run_name(config: str | None, now: float | None = None) -> str:
    # no config file: the dataclass defaults, which are the default config's run (also on another host)
    stem = Path(config or DEFAULT_CONFIG_NAME).stem
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"


def start_warnings(cfg: Config, environ: dict[str, str] | None) -> list[str]:
    """The trainer's start warnings for this config on this machine's device (the data directory's skipped files
    are preflight's `data path` row)."""
    device = cfg.runtime.device
    on_gpu = device == "cuda" or (device == "auto" and visible_gpu_count(environ) > 0)
    precision = cfg.runtime.precision if cfg.runtime.precision != "auto" else ("bf16" if on_gpu else "fp32")
    return preflight_warnings(cfg, "cuda" if on_gpu else "cpu", precision, data_files=False)


def check_request(req: LaunchRequest) -> None:
    """Mistakes in the options themselves, here or before a launch goes to --host: an empty value would
    otherwise mean the default (`--run-dir ''` the current directory, `--config ''` the default config)."""
    for flag, value in (("--config", req.config), ("--name", req.name), ("--run-dir", req.run_dir)):
        if value is not None and not value.strip():
            raise UserError(f"{flag} is empty: give a value, or leave the option out for the default", USAGE_EXIT)
    if said := repeated_set(req.overrides):
        raise UserError(said, USAGE_EXIT)
    if req.resume and req.run_dir is None and req.name is None:
        raise UserError("--resume needs the run to continue: --name NAME or --run-dir DIR", USAGE_EXIT)
    if req.reshard and not req.resume:
        raise UserError(
            "--reshard goes with --resume: it continues a checkpoint on another number of ranks", USAGE_EXIT
        )
    # out-of-range counts and options that do not fit together are usage mistakes (exit 2), as Typer's own
    # range checks are; said here, before a config is read or a launch goes to --host
    if req.nproc is not None and req.nproc < 1:
        raise UserError(f"--nproc must be >= 1, got {req.nproc}", USAGE_EXIT)
    Rendezvous(req.nnodes, req.node_rank, req.rdzv_endpoint).validate()


def validate_run_name(name: str, parent: Path | None = None) -> str:
    """A run name is one directory name: anything else (spaces, quotes, `$`) is kept literally. Its UTF-8 bytes fit
    the file system's NAME_MAX under ``parent`` (the runs root by default): a longer one was a traceback in every
    command that looked at it."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or "\n" in name:
        raise UserError(f"invalid run name {name!r}: it must be one directory name (no '/', not '.' or '..')")
    size, most = len(os.fsencode(name)), name_max(runs_root() if parent is None else parent)
    if size > most:
        short = name[:40] + ("..." if len(name) > 40 else "")
        raise UserError(
            f"invalid run name {short!r}: it is {size} bytes in UTF-8, and a directory name here is at most {most} "
            "(NAME_MAX)"
        )
    return name


def load_validated_config(config: str | None, overrides: list[str]) -> tuple[Path | None, Config]:
    try:
        path = resolve_config_path(config)
        cfg = load_config(path, overrides)
    except ConfigError as e:
        raise UserError(str(e)) from None
    return (path.absolute() if path is not None else None), cfg


def latest_checkpoint_name(run_dir: Path) -> str:
    """The file name `latest` holds, whether or not that file is here ("" when it holds none)."""
    return read_pointer(run_dir / schema.CHECKPOINT_DIR, schema.LATEST_POINTER).name or ""


def check_latest_usable(run_dir: Path) -> None:
    """Refuse a resume whose latest pointer names no checkpoint file the trainer could load, before anything
    starts: that attempt would fail at once and mark the run it meant to continue as crashed. A missing, empty or
    foreign file, and a damaged one (the CRCs torch.save stored: one read of the file, ~0.4 s per GiB cached,
    which a dry run was the place to learn), and another run's (its run id, read without torch: the trainer's
    refusal); what needs torch (shapes, the data position) the trainer checks."""
    ckpt_dir = run_dir / schema.CHECKPOINT_DIR
    pointer = read_pointer(ckpt_dir, schema.LATEST_POINTER)
    target = ckpt_dir / (pointer.name or "")
    why = None
    if pointer.name is None:  # unreadable, or not one file name
        why = pointer.problem or f"{pointer.file} names no checkpoint file"
    else:
        try:
            with open(target, "rb") as fh:
                head = fh.read(len(TORCH_FILE_MAGIC[0]))
        except OSError as e:
            why = f"its latest checkpoint {target} cannot be read ({e.strerror or e})"
        else:
            if not head:
                why = f"its latest checkpoint {target} is an empty file"
            elif head != TORCH_FILE_MAGIC[0]:
                why = f"its latest checkpoint {target} is not a file torch.save wrote"
            else:
                try:
                    verify_archive(target)
                except CheckpointError as e:
                    why = str(e)
    if why is None:
        if (foreign := foreign_latest(run_dir, target)) is not None:
            raise UserError(foreign)
        return
    hint = other_checkpoints_hint(ckpt_dir, but=target, run_id=run_id_of(run_dir))
    raise UserError(f"--resume: {run_dir}: {why}{hint}")


def resume_elsewhere_hint(name: str, dirs: list[Path]) -> str:
    """The runs called ``name`` in other directories, each with the exact command that resumes it, and whether it
    is running now (its tmux session, its ranks' processes): a live run is not one to resume; "" for none."""
    if not dirs:
        return ""
    live = {d: preflight.live_processes(d) for d in dirs}
    commands = " or ".join(f"`{shlex.join(['nsa', 'launch', '--run-dir', str(d), '--resume'])}`" for d in dirs)
    if len(dirs) == 1:
        if said := live[dirs[0]]:
            return (
                f"; nsa launch started a run {name!r} in {dirs[0]}; it is running now ({', '.join(said)}): "
                f"`nsa watch {shlex.quote(str(dirs[0]))}`, and once it stops, {commands}"
            )
        return f"; nsa launch started a run {name!r} in {dirs[0]}: to resume it, {commands}"
    said = "; ".join(f"{d} (running now: {', '.join(live[d])})" if live[d] else str(d) for d in dirs)
    return f"; nsa launch started {len(dirs)} runs {name!r}: {said}; to resume one, {commands}"


def check_resume_has_work(run_dir: Path, total_steps: int) -> None:
    """Refuse a resume whose latest checkpoint already reached train.steps before anything starts: the trainer
    would stop with 'nothing to do', and that failed attempt would mark a finished run as crashed."""
    latest = latest_checkpoint_name(run_dir)
    step = schema.checkpoint_step(latest)
    if step is not None and step >= total_steps:
        raise UserError(nothing_to_do(run_dir / schema.CHECKPOINT_DIR / latest, step, total_steps))


def plan_launch(req: LaunchRequest, environ: dict[str, str] | None = None) -> LaunchPlan:
    check_request(req)
    config = req.config
    resume_said: list[str] = []  # what a resume changes that is allowed but worth saying (resume_notes)
    resume_warned: list[str] = []  # ... and what it changes that the user may not have meant
    if req.resume:
        if req.run_dir is None:  # a name over NAME_MAX said as such, not as a traceback of the look below
            validate_run_name(req.name)  # type: ignore[arg-type]
        target = Path(req.run_dir) if req.run_dir is not None else runs_root() / req.name  # type: ignore[operator]
        if why := unusable_run_dir(target):
            raise UserError(f"--resume: {why}")
        if not target.is_dir():  # "has no checkpoint to continue" would send the user looking for checkpoints
            where = target.absolute()
            if target.exists():
                raise UserError(f"--resume: {where} is a file, not a run directory")
            # a name launched from another directory: name it and its command, never resume there unasked
            # `--run-dir runs/x --resume` from the wrong directory is the same mistake as `--name x --resume`
            name = req.name if req.run_dir is None else where.name
            hint = resume_elsewhere_hint(name, known_elsewhere(name))  # type: ignore[arg-type]
            raise UserError(f"--resume: no run directory {where}{hint}")
        if not read_pointer(target / schema.CHECKPOINT_DIR, schema.LATEST_POINTER).present:
            hint = other_checkpoints_hint(target / schema.CHECKPOINT_DIR, run_id=run_id_of(target))
            if not hint and holds_run(target):  # it stopped before its first save: nothing to continue from
                how = "with --force instead of --resume" if earlier_run(target) else "without --resume"
                hint = f"; it saved none: start it afresh {how}"
            raise UserError(f"--resume: {target} has no checkpoint to continue (no checkpoints/latest){hint}")
        if config is None and not os.environ.get(CONFIG_ENV):
            # the run's own resolved config, not the default. $CONFIG goes first, as in the trainer: passed on as if
            # given, this file made a set CONFIG "disagree with --config", an option the user never gave
            if not (target / schema.CONFIG_YAML).is_file():  # the default would continue the run without a word
                raise UserError(missing_config_message(target / schema.CONFIG_YAML))
            config = str(target / schema.CONFIG_YAML)
    from_env = config_from_env(config)
    config_path, cfg = load_validated_config(config, req.overrides)
    if req.resume:
        check_latest_usable(target)
        check_resume_has_work(target, cfg.train.steps)
        try:
            check_resume_config(target / schema.CONFIG_YAML, cfg, str(target.absolute()))
        except ConfigError as e:
            raise UserError(str(e)) from None
        if (changed := data_change(target, cfg)) is not None:
            raise UserError(f"--resume: {changed}")
        latest = latest_checkpoint_name(target)
        step = schema.checkpoint_step(latest)
        ckpt_dir = target / schema.CHECKPOINT_DIR
        # where it continues from, and a newer whole checkpoint `latest` does not name (a save cut before its pointer)
        resume_said = [f"continues from {ckpt_dir.absolute() / str(latest)} (step {step})"]
        if req.force:  # a session still running saves a newer one as --force stops it (seen: step 3 resumed, not 2)
            resume_said = [
                f"continues from the latest checkpoint: now {ckpt_dir.absolute() / str(latest)} (step {step}), or "
                "the one a session still running saves as --force stops it"
            ]
        if newer := written_after(ckpt_dir, ckpt_dir / str(latest)):
            resume_said.append(
                f"{newer[-1].name} was written after it (a save cut between its file and its pointer?): to continue "
                f"from that one instead, `echo {newer[-1].name} > {ckpt_dir.absolute() / schema.LATEST_POINTER}` first"
            )
        resume_said += resume_notes(target / schema.CONFIG_YAML, cfg, step, list(req.overrides))
        if from_env and (changed := config_changes(target / schema.CONFIG_YAML, cfg, list(req.overrides))):
            # a --config was typed for this resume; a CONFIG may have been exported long ago for another run: what
            # it changes is a warning, not a note among the plan's lines
            resume_said = [w for w in resume_said if w != changed]
            resume_warned.append(
                f"{CONFIG_ENV}={os.environ[CONFIG_ENV]} in this shell picks this resume's config; {changed}"
            )
    rdzv = Rendezvous(req.nnodes, req.node_rank, req.rdzv_endpoint)
    if req.run_dir is not None:
        # normalised: `..` is the directory above, whose name is the run's (absolute() kept `x/../rr/..` as given)
        run_dir = Path(os.path.abspath(req.run_dir))
        if not (req.name or run_dir.name):
            raise UserError(
                f"--run-dir {req.run_dir} has no name to give the run: add --name NAME, or a directory below /"
            )
        name = validate_run_name(req.name or run_dir.name, run_dir.parent)
    else:
        name = validate_run_name(req.name or default_run_name(str(config_path) if config_path else None))
        run_dir = runs_root() / name
    nproc = resume_nproc(target, req) if req.resume and not req.reshard else None
    nproc = nproc or req.nproc or default_nproc(cfg.runtime.device, environ)
    if req.reshard:
        if cfg.data.source == "hf":  # the trainer refuses it only after its boot: said before a session starts
            from nsa_train.data.reshard import streamed_refusal  # here only: it imports numpy

            raise UserError(
                streamed_refusal(
                    "data.source is hf, streamed", "as many ranks as wrote the checkpoint", target.absolute()
                )
            )
        resume_said.append(reshard_note(target, nproc * req.nnodes))
    run_dir = run_dir.absolute()
    command = TrainerCommand(
        config_path, run_dir, nproc, list(req.overrides), rdzv, resume=req.resume, force=req.force, reshard=req.reshard
    )
    env, sources = trainer_env(cfg.runtime.env, environ)
    shell = os.environ if environ is None else environ
    # the config's runtime.env wins over the shell's: its value is the one the trainer would get
    unread = unread_nsa_env({k: v for k, v in shell.items() if k not in cfg.runtime.env})
    unread += unread_nsa_env(cfg.runtime.env, source="runtime.env.")
    notes = [f"note: {w}" for w in resume_said] + [f"warning: {w}" for w in resume_warned + unread]
    # what the trainer will warn about at its start (a long run without checkpoints, bf16 on a CPU, ...): said
    # before hours are spent, not only in its console later
    notes += [f"warning: {w}" for w in start_warnings(cfg, environ)]
    notes += [  # the caller's credentials are never copied; the config's are the user's own choice, but said
        f"warning: runtime.env.{k} looks like a credential: it is written to the run's config.yaml and launch.json, "
        "which are meant to be shared; give it to the trainer another way (HF_TOKEN: ~/.cache/huggingface/token)"
        for k in sorted(cfg.runtime.env)
        if SECRET_PATTERN.search(k)
    ]
    return LaunchPlan(
        name,
        run_dir,
        tmux.session_name(name),
        config_path,
        cfg,
        command,
        env,
        sources,
        Path.cwd(),
        notes,
        config_from_env=from_env,
    )


def resume_nproc(run_dir: Path, req: LaunchRequest) -> int | None:
    """The ranks per node a resume must start: as many as wrote the latest checkpoint (its data position
    and RNG states are per rank). Without --nproc that is the default; a --nproc that gives another
    world size is refused here, before tmux (the trainer refuses it too, by the same heartbeat, before its boot
    record). None when rank 0's heartbeat does not say (the trainer still checks, once the checkpoint loads)."""
    latest = latest_checkpoint_name(run_dir)
    ranks = checkpoint_world_size(run_dir, latest)
    if ranks is None:
        return None
    wrote = f"--resume: {latest} was written by {ranks} rank{'' if ranks == 1 else 's'}"
    if ranks % req.nnodes:
        raise UserError(f"{wrote}, which {req.nnodes} nodes cannot share")
    per_node = ranks // req.nnodes
    if req.nproc is not None and req.nproc != per_node:
        raise UserError(
            f"{wrote} and --nproc {req.nproc} x {req.nnodes} node(s) would "
            f"start {req.nproc * req.nnodes}: each rank's data position and RNG state continue only with the same "
            f"ranks (--nproc {per_node}, or leave it out; or add --reshard to continue on {req.nproc * req.nnodes}: "
            "docs/data.md)"
        )
    return per_node


def reshard_note(run_dir: Path, world_size: int) -> str:
    """What a --reshard launch will do, by rank 0's heartbeat (the trainer counts the documents read again)."""
    latest = latest_checkpoint_name(run_dir)
    ranks = checkpoint_world_size(run_dir, latest)
    if ranks == world_size:
        said = f"{world_size} rank{'' if world_size == 1 else 's'}"
        return f"--reshard: {latest} was written by {said}, as many as start now: nothing to reshard"
    wrote = "an unknown number of ranks" if ranks is None else f"{ranks} rank{'' if ranks == 1 else 's'}"
    return (
        f"--reshard: {latest} was written by {wrote}, {world_size} start now: the data continues from the ranks' "
        "frontier (the trainer says how many documents are read again) and each rank's RNG is seeded anew"
    )


def git_state(repo: Path) -> tuple[str | None, bool | None]:
    """(HEAD sha, dirty) of the checkout holding the trainer code; (None, None) outside git."""
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    return sha.stdout.strip(), (bool(dirty.stdout.strip()) if dirty.returncode == 0 else None)


def trainer_code_dir(plan: LaunchPlan) -> Path:
    """The checkout (or site-packages) the trainer will import nsa_train from: found as its interpreter will
    find it, in its environment and directory; this process's own when that cannot be asked."""
    probe = "import importlib.util as u; print(u.find_spec('nsa_train').origin)"
    try:
        res = subprocess.run(
            [plan.command.python, "-P", "-c", probe],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=plan.cwd,
            env={**trainer_base_env(os.environ, plan.env), **plan.env},
        )
        if res.returncode == 0 and res.stdout.strip():
            return Path(res.stdout.strip()).resolve().parents[1]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return Path(nsa_train.__file__).resolve().parents[1]


def launch_record(plan: LaunchPlan, now: float | None = None) -> dict[str, Any]:
    now = plan.launched_at if now is None else now
    code_dir = trainer_code_dir(plan)
    sha, dirty = git_state(code_dir)
    argv = plan.argv
    rdzv = plan.command.rendezvous
    return {
        "v": LAUNCH_JSON_VERSION,
        "name": plan.name,
        "run_dir": str(plan.run_dir),
        "tmux_session": plan.session,
        "tmux_socket": os.environ.get(tmux.TMUX_SOCKET_ENV) or None,  # null: the default server
        "argv": argv,
        "command": shell_string(argv),
        "env": plan.env,
        "env_sources": plan.env_sources,
        "runner": plan.runner_argv(),
        "cwd": str(plan.cwd),
        "config_path": str(plan.config_path) if plan.config_path else None,
        "config_hash": config_hash(plan.cfg),
        "overrides": list(plan.command.overrides),
        "code_dir": str(code_dir),
        "git_sha": sha,
        "git_dirty": dirty,
        "host": socket.gethostname(),
        "user": os.environ.get("USER") or os.environ.get("LOGNAME") or _login_name(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)),
        "ts": now,
        "nproc": plan.command.nproc,
        "nnodes": rdzv.nnodes,
        "node_rank": rdzv.node_rank,
        "rdzv_endpoint": rdzv.endpoint,
        "python": sys.executable,
        "nsa_version": nsa_train.__version__,
    }


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    try:
        write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    except OSError as e:  # a full disk, a read-only mount: nothing was started
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def _wait_for_exit(pids: list[int], session: str, timeout: float) -> None:
    """Until the killed session's processes have ended; a UserError, nothing started, when they outlive ``timeout``."""
    from nsa_tui.runs.load import pid_alive

    deadline = time.time() + timeout
    while (alive := [p for p in pids if pid_alive(p)]) and time.time() < deadline:
        time.sleep(0.2)
    if alive:
        raise UserError(
            f"--force: the killed session {session}'s process (pid {alive[0]}) is still running after "
            f"{timeout:.0f}s; nothing was started: run this again once it has ended (`ps -p {alive[0]}`)"
        )


def _wait_for_exit_status(run_dir: Path, since: float, timeout: float) -> None:
    deadline = time.time() + timeout
    status = run_dir / schema.EXIT_STATUS
    while time.time() < deadline:
        try:
            if status.stat().st_mtime >= since - 1:
                return
        except OSError:  # not written yet (or replaced under us)
            pass
        time.sleep(0.2)


def refuse_occupied(plan: LaunchPlan, force: bool) -> preflight.Occupancy:
    """The refusal of a launch into an occupied session or run dir (without --force), or of --force beside a trainer
    alive outside tmux; changes nothing, so `nsa launch --dry-run` refuses as the real launch would. Returns what
    occupies them, for claim to clear."""
    occ = preflight.occupancy(plan.run_dir, plan.session, plan.cfg, resume=plan.command.resume)
    where = f"run dir {plan.run_dir}"
    if occ.session_runs is not None:
        raise _session_runs_elsewhere(plan, occ.session_runs)
    if not force:
        if occ.session_live:
            # with --resume, --force kills the session and continues the run: "start again" read as a fresh start
            again = (
                "pass --force (with --resume) to kill it and resume from the latest checkpoint"
                if plan.command.resume
                else "pass --force to kill it and start again"
            )
            # commands in backticks: over --host, errors.on_host gives them the same --host and --remote-dir
            name = shlex.quote(plan.name)
            raise UserError(
                f"tmux session {occ.session} already exists (see it: `nsa attach {name}`; stop it: "
                f"`nsa halt {name}`); {again}"
            )
        if occ.heartbeat_age_s is not None:
            # --force would refuse a trainer it sees alive outside its session: not suggested then
            _refuse_a_trainer_outside_tmux(plan, prefix=f"{where} holds a live run: ")
            raise UserError(
                f"{where} holds a live run (heartbeat {occ.heartbeat_age_s:.0f}s ago, no end record); "
                "pass --force to reuse it anyway, or choose another --name"
            )
        if occ.previous_run:
            more = f"; or {resume_advice(plan.run_dir)}" if has_checkpoint(plan.run_dir) else ""
            held = ", ".join(earlier_run(plan.run_dir))
            raise UserError(
                f"{where} already holds an earlier run ({held}); choose another --name, or pass --force to reuse "
                f"it{more}"
            )
    elif not occ.session_live:
        _refuse_a_trainer_outside_tmux(plan)
    return occ


def _session_runs_elsewhere(plan: LaunchPlan, runs: Path) -> UserError:
    """The refusal of a launch whose session runs another directory (``runs``), with --force or without: most often
    this run renamed while it trains (`mv runs/a runs/b`, then `nsa launch --name a`), which --force would kill,
    though the user renamed it to keep it."""
    recorded = (runstate.read_launch_json(runs) or {}).get("run_dir")
    renamed = isinstance(recorded, str) and bool(recorded) and not runstate.same_dir(Path(recorded), runs)
    what = f"{runs} (renamed from {recorded})" if renamed else f"{runs}, not {plan.run_dir}"
    return UserError(
        f"tmux session {plan.session} runs {what}: --force does not stop a run that goes on in another directory; "
        f"stop it first (`nsa halt {shlex.quote(str(runs))}`), or choose another --name"
    )


def claim(plan: LaunchPlan, force: bool, say: Callable[[str], None]) -> None:
    """Refuse an occupied session or run dir; with --force say what we do, then do it.
    A resumed launch reuses its earlier run dir by design, but never a live one."""
    occ = refuse_occupied(plan, force)
    if not force:
        return
    if occ.session_live:
        assert occ.session is not None
        say(f"--force: killing tmux session {occ.session}")
        killed_at = time.time()
        pids = tmux.session_pids(occ.session, occ.socket)
        tmux.kill_session(occ.session, occ.socket)
        if pids:
            # the old run's end, its last checkpoint and exit_status are written before the new one starts: it
            # stopped beside the new attempt (which then found the run dir locked), and its exit_status, written
            # after 30 s, read `crashed` on the new run
            _wait_for_exit(pids, occ.session, KILL_WAIT_S)
        elif runstate.read_launch_json(plan.run_dir) and runstate.read_exit_status(plan.run_dir) is None:
            _wait_for_exit_status(plan.run_dir, killed_at, KILL_WAIT_S)
    if not occ.session_live and occ.heartbeat_age_s is not None:
        say(
            f"--force: the heartbeat in {plan.run_dir} is {occ.heartbeat_age_s:.0f}s old with no tmux session "
            f"{plan.session}; a trainer outside tmux may still be writing there"
        )
    if occ.previous_run:
        say(f"--force: reusing {REUSE.format(where=f'run dir {plan.run_dir}')}")


# what --force does to a run directory an earlier run used (said by the launch, and by a dry run before it)
REUSE = "{where} (earlier files kept, console.log appended; old exit_status removed)"
POINTERS = "start afresh there, the trainer removing the earlier run's checkpoints/latest and checkpoints/best"


def force_would(plan: LaunchPlan) -> list[str]:
    """What a real launch with --force would do here, for a dry run (which kills and removes nothing)."""
    occ = preflight.occupancy(plan.run_dir, plan.session, plan.cfg, resume=plan.command.resume)
    would = []
    if occ.session_live:
        would.append(f"kill tmux session {occ.session}")
    elif occ.heartbeat_age_s is not None:
        would.append(f"start beside a heartbeat {occ.heartbeat_age_s:.0f}s old with no tmux session {plan.session}")
    if occ.previous_run:
        would.append("reuse " + REUSE.format(where=f"run dir {plan.run_dir}"))
        if not plan.command.resume:
            would.append(POINTERS)
    return would


def _refuse_a_trainer_outside_tmux(plan: LaunchPlan, prefix: str = "--force: ") -> None:
    """A trainer of this run alive while its session is not found (its server under another $TMUX_TMPDIR, or it
    outlived the session): --force kills a session it can see, never processes, and two trainers writing one
    directory mix their rows and checkpoints. Without --force, said instead of suggesting it."""
    from nsa_tui.launch.dump import rank_processes

    alive = [p for p in rank_processes(plan.run_dir) if p.problem is None] if plan.run_dir.is_dir() else []
    if alive:
        pids = ", ".join(f"rank {p.rank} pid {p.pid}" for p in alive)
        raise UserError(
            f"{prefix}this run's trainer is alive outside tmux session {plan.session} ({pids}): stop it first "
            f"(`nsa halt {shlex.quote(plan.name)}`), then launch again"
        )


def start(plan: LaunchPlan, force: bool, say: Callable[[str], None]) -> None:
    """Preflight, claim, create the run dir, write launch.json, start the tmux session."""
    report = preflight.run_preflight(
        plan.run_dir, plan.cfg, plan.command.nproc, nnodes=plan.command.rendezvous.nnodes, resume=plan.command.resume
    )
    claim(plan, force, say)
    for note in report.notes:
        say(note)
    try:
        plan.run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a symlink to nothing: `File exists` said why not (the preflight's run dir row says it first)
        if why := unusable_run_dir(plan.run_dir):
            raise UserError(f"cannot create run dir: {why}") from None
        raise UserError(f"cannot create run dir {plan.run_dir}: {e.strerror or e}") from None
    set_aside_exit_status(plan.run_dir, resume=plan.command.resume)
    (plan.run_dir / schema.HALT_FILE).unlink(missing_ok=True)  # noted by the preflight
    plan.stamp(time.time())
    record = launch_record(plan)
    _write_json_atomic(plan.run_dir / schema.LAUNCH_JSON, record)  # before the session: the runner reads it
    socket_path = tmux.new_session(plan.session, plan.runner_argv(), plan.cwd)
    try:  # so its name finds it from any directory (nsa_tui.launched)
        launched.record(plan.name, plan.run_dir, plan.launched_at)
    except OSError as e:  # the run is started; only naming it from elsewhere needs its path
        where = e.filename or launched.INDEX_NAME
        say(f"warning: could not record the run in {where} (its name finds it only here): {e.strerror or e}")
    if socket_path is not None:
        # the server as an absolute path, which a shell without this one's $TMUX_TMPDIR still finds (tmux.py)
        record[tmux.SOCKET_PATH_KEY] = socket_path
        try:
            _write_json_atomic(plan.run_dir / schema.LAUNCH_JSON, record)
        except OSError as e:  # the run is started; its record still names the server by name
            say(f"warning: could not add the tmux socket path to launch.json: {e.strerror or e}")


def set_aside_exit_status(run_dir: Path, *, resume: bool) -> None:
    """Clear the old launch's exit_status for this one's, keeping the status of the launch the run is judged by in
    exit_status.previous: a --resume the trainer refuses after its boot leaves the run as that launch ended (a crash's
    status 1, a SIGKILL's 137), and the tools say that, not the refusal's status. A refused launch's own status is
    dropped (the launch before it stays the run's); a fresh start keeps nothing (the earlier run is not its own)."""
    status, previous = run_dir / schema.EXIT_STATUS, run_dir / schema.EXIT_STATUS_PREVIOUS
    try:
        if resume and runstate.launch_refused(run_dir):
            status.unlink(missing_ok=True)
        elif resume and status.exists():
            os.replace(status, previous)
        else:  # a fresh start, or the last launch left no status (its wrapper killed): an older one is not the run's
            status.unlink(missing_ok=True)
            previous.unlink(missing_ok=True)
    except OSError as e:  # the new launch's status must not be taken for the old one's: nothing starts
        raise UserError(f"cannot clear {status}: {e.strerror or e}") from None


def _server_hint() -> str:
    """The tmux server named as a shell reaches it: `tmux -L NAME` finds the socket under $TMUX_TMPDIR, which a
    shell without this one's (a plain ssh command) does not share, so that is named too."""
    name = os.environ.get(tmux.TMUX_SOCKET_ENV)
    tmpdir = os.environ.get("TMUX_TMPDIR")
    if not name:
        return f" (tmux's default server, under TMUX_TMPDIR={tmpdir})" if tmpdir else ""
    return f" (tmux -L {name}, under TMUX_TMPDIR={tmpdir})" if tmpdir else f" (tmux -L {name})"


def describe(plan: LaunchPlan) -> list[str]:
    """What a launch will do (printed by --dry-run and before a real launch)."""
    lines = [
        f"run:     {plan.name}",
        f"run dir: {plan.run_dir}",
        f"session: {plan.session}{_server_hint()}",
        f"config:  {plan.config_path or '<built-in defaults>'} "
        f"({FROM_CONFIG_ENV + ', ' if plan.config_from_env else ''}hash {config_hash(plan.cfg)})",
        f"command: {shell_string(plan.argv)}",
        "env:",
    ]
    lines += [f"  {k}={v}" for k, v in plan.env.items()]
    if LAUNCH_TIME_ENV not in plan.env:
        lines.append(f"  {LAUNCH_TIME_ENV}=<when the session starts: launch.json's ts>")
    return lines + plan.notes


def _login_name() -> str | None:
    """The user by uid, where USER and LOGNAME are unset (cron, `env -i`, some containers)."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        return None
