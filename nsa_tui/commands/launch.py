"""`nsa launch`: start a training run in a detached tmux session, here or on --host."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nsa_tui.commands._options import USAGE_EXIT, check_remote_dir
from nsa_tui.errors import UserError, fail

if TYPE_CHECKING:  # the launcher imports the config loader: only inside the command body
    from nsa_tui.launch.launcher import LaunchRequest

HOST_HELP = "Run on this OpenSSH destination (user@host or a ~/.ssh/config alias) instead of here."
RUN_DIR_HELP = "Run directory (default: $NSA_RUNS_DIR/<name>, runs/<name> when that is unset)."
REMOTE_DIR_HELP = (
    "With --host: the directory to cd into on the host first (e.g. the checkout; its .venv/bin/nsa is used)."
)


def launch_command(
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="YAML config (default: $CONFIG, else configs/tiny-cpu.yaml, or with --resume the run's config.yaml).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Run name (default: config stem + timestamp).")] = None,
    run_dir: Annotated[str | None, typer.Option("--run-dir", help=RUN_DIR_HELP)] = None,
    nproc: Annotated[
        int | None, typer.Option("--nproc", help="Processes on this node (default: visible GPUs, or 1).")
    ] = None,
    nnodes: Annotated[int, typer.Option("--nnodes", help="Nodes in a multi-node run.")] = 1,
    node_rank: Annotated[int, typer.Option("--node-rank", help="This node's rank (0 hosts the rendezvous).")] = 0,
    rdzv_endpoint: Annotated[
        str | None, typer.Option("--rdzv-endpoint", help="HOST:PORT of node 0, reachable from every node.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Config override KEY=VALUE (repeatable), e.g. train.lr=3e-4.")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help=HOST_HELP)] = None,
    remote_dir: Annotated[str | None, typer.Option("--remote-dir", help=REMOTE_DIR_HELP)] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the command and environment; start nothing.")
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Open the dashboard on the new run.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Kill an existing session of the same name / reuse an occupied run dir.")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run (--name/--run-dir) from its latest checkpoint.")
    ] = False,
    reshard: Annotated[
        bool,
        typer.Option(
            "--reshard",
            help="With --resume: continue on another number of ranks than wrote the checkpoint (--nproc, default the "
            "visible GPUs); documents some ranks had read are read again, counted at the start.",
        ),
    ] = False,
) -> None:
    """Start a training run (torchrun in tmux) and record how it was started in launch.json."""
    from nsa_tui.launch.launcher import LaunchRequest
    from nsa_tui.reader_gone import keep_going

    # a reader gone (`| head -1`) never leaves a launch half done (an old session killed and no new one, a session
    # started and not in the index): it finishes, here or on --host, and exits with its outcome
    keep_going()
    req = LaunchRequest(
        config, name, run_dir, nproc, nnodes, node_rank, rdzv_endpoint, list(overrides or []), force, resume, reshard
    )
    try:
        if watch and not dry_run:
            from nsa_tui.commands.watch import check_terminal

            # before the run starts, not after it (its dashboard could not open)
            check_terminal("--watch", "leave it out and open `nsa watch` from a terminal")
        if host is not None:
            check_remote_dir(host, remote_dir)  # an empty one is a usage mistake (exit 2), as in every command
            code, run = launch_remote(req, host, remote_dir, dry_run)
            if code != 0:
                raise typer.Exit(code)
            if watch and not dry_run:
                open_watch(run, host, remote_dir)
            return
        if remote_dir is not None:
            raise UserError("--remote-dir needs --host", USAGE_EXIT)
        run_dir_path = launch_local(req, dry_run)
    except UserError as e:
        fail(str(e), e.code)
    if watch and not dry_run:
        open_watch(str(run_dir_path), None)


def _say(line: str) -> None:
    print(line, flush=True)


def launch_local(req: LaunchRequest, dry_run: bool) -> Path:
    from nsa_train.telemetry import schema
    from nsa_tui.launch import launcher, preflight

    plan = launcher.plan_launch(req)
    for line in launcher.describe(plan):
        _say(line)
    if dry_run:
        report = preflight.run_preflight(
            plan.run_dir,
            plan.cfg,
            plan.command.nproc,
            nnodes=plan.command.rendezvous.nnodes,
            resume=plan.command.resume,
        )
        for note in report.notes:
            _say(note)
        if req.force:  # given: what it would do ("needs --force" sent users looking for a flag they had passed)
            for would in launcher.force_would(plan):
                _say(f"note: --force would {would}")
        # the real launch's refusal, as its error and exit 1: a dry run used as a preflight must not pass (exit 0)
        # what the launch then refuses
        launcher.refuse_occupied(plan, req.force)
        _say("dry run: nothing started")
        return plan.run_dir
    launcher.start(plan, req.force, _say)
    _say(f"started tmux session {plan.session}; console: {plan.run_dir / schema.CONSOLE_LOG}")
    _say(next_steps(run_argument(plan.name, plan.run_dir)))
    if (hint := path_hint()) is not None:
        _say(hint)
    return plan.run_dir


def path_hint() -> str | None:
    """A note when the `nsa` these next steps name is not this one on PATH (README command 1 runs .venv/bin/nsa from
    a shell that has no nsa): what to type instead; None when it is."""
    import shutil
    import sys

    ours = Path(sys.executable).parent / "nsa"
    found = shutil.which("nsa")
    if not ours.exists() or (found is not None and Path(found).resolve() == ours.resolve()):
        return None
    venv = ours.parent.parent
    which = "nsa is not on this shell's PATH" if found is None else f"the nsa on this shell's PATH is another ({found})"
    return f"  ({which}: `. {shlex.quote(str(venv))}/bin/activate` first, or type {ours})"


def run_argument(name: str, run_dir: Path) -> str:
    """How the other commands can name this run: its name when that finds it (as they resolve it: a directory
    of that name here goes first, a data folder `./d` say), else its path."""
    from nsa_tui.errors import UserError
    from nsa_tui.rundir import resolve_run

    try:
        found = resolve_run(name, index=False)  # the name as found without the index: no note in the next steps
    except UserError:
        return str(run_dir)
    return name if found.resolve() == run_dir.resolve() else str(run_dir)


def next_steps(run: str, host: str | None = None, remote_dir: str | None = None) -> str:
    """The line that tells what to type next; from another machine it carries --host (and --remote-dir)."""
    where = []
    if host is not None:
        where = ["--host", host] + (["--remote-dir", remote_dir] if remote_dir else [])
    end = ["--", run] if run.startswith("-") else [run]  # else the run would read as an option
    cmd = {verb: shlex.join(["nsa", verb, *where, *end]) for verb in ("watch", "attach", "halt")}
    return f"  watch: {cmd['watch']}   attach: {cmd['attach']}   stop: {cmd['halt']}"


def _from_here(host: str, remote_dir: str | None) -> Callable[[str], str]:
    """Rewrites the remote nsa's next-steps line (which names the run as seen over there) into
    commands to type here; every other line passes as it is."""
    pattern = re.compile(r"  watch: nsa watch (.+)   attach: nsa attach (.+)   stop: nsa halt (.+)")

    def rewrite(line: str) -> str:
        m = pattern.fullmatch(line.rstrip("\n"))
        if m is None or len(set(m.groups())) != 1:
            return line
        try:
            words = shlex.split(m.group(1))
        except ValueError:  # not the quoting our own nsa writes: leave the line as it came
            return line
        words = words[1:] if words[:1] == ["--"] else words
        return next_steps(words[0], host, remote_dir) + "\n" if len(words) == 1 else line

    return rewrite


def remote_launch_args(req: LaunchRequest, dry_run: bool) -> list[str]:
    """The same launch, as argv for the remote nsa (host-only options left out)."""
    args = ["launch"]
    for flag, value in (
        ("--config", req.config),
        ("--name", req.name),
        ("--run-dir", req.run_dir),
        ("--nproc", req.nproc),
        ("--rdzv-endpoint", req.rdzv_endpoint),
    ):
        if value is not None:
            args += [flag, str(value)]
    if req.nnodes != 1:
        args += ["--nnodes", str(req.nnodes)]
    if req.node_rank != 0:
        args += ["--node-rank", str(req.node_rank)]
    for item in req.overrides:
        args += ["--set", item]
    if dry_run:
        args.append("--dry-run")
    if req.force:
        args.append("--force")
    if req.resume:
        args.append("--resume")
    if req.reshard:
        args.append("--reshard")
    return args


def launch_remote(req: LaunchRequest, host: str, remote_dir: str | None, dry_run: bool) -> tuple[int, str]:
    """Run `nsa launch` on host. The default name is chosen here, so we know what to watch."""
    from nsa_tui.launch.host_env import check_host_config, host_env
    from nsa_tui.launch.launcher import check_request, default_run_name, validate_run_name
    from nsa_tui.launch.remote import run_nsa

    check_request(req)  # as a local launch would: before a default name is made up for a --resume
    check_host_config(req.config, req.resume, host)  # before the default name is made from the default config's stem
    if req.name is None and req.run_dir is None:
        req.name = default_run_name(req.config)
    if req.name is not None:
        validate_run_name(req.name)
    send, said = host_env(host)
    for line in said:
        _say(line)
    code, out = run_nsa(
        host, remote_dir, remote_launch_args(req, dry_run), rewrite=_from_here(host, remote_dir), env=tuple(send)
    )
    # The remote nsa prints the absolute run dir: watch that, whatever the remote cwd was.
    run_dirs = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("run dir:")]
    return code, run_dirs[0] if run_dirs else (req.run_dir or req.name or "")


def open_watch(run: str, host: str | None, remote_dir: str | None = None) -> None:
    """Hand this terminal to `nsa watch` on the new run."""
    argv = [sys.executable, "-m", "nsa_tui", "watch", run]
    if host is not None:
        argv += ["--host", host]
        if remote_dir:
            argv += ["--remote-dir", remote_dir]  # the h and d keys run that checkout's nsa
    sys.stdout.flush()
    os.execv(argv[0], argv)


def register(app: typer.Typer) -> None:
    app.command("launch")(launch_command)
