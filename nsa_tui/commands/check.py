"""`nsa check [--config PATH] [--set K=V ...] [--run-dir DIR] [--host HOST [--remote-dir DIR]] [--json]`: preflight
on the machine that will train. Exit 0 when nothing failed (warnings allowed), 1 on any fail,
2 for a config that does not load, 3 when the host cannot be reached (127: no `nsa` there).

The torch side (nsa_train.selfcheck) is imported inside the command body: `nsa --help` and
`nsa status` never pay for torch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from nsa_tui.commands._options import RemoteDirOpt, check_remote_dir
from nsa_tui.errors import USAGE_EXIT, UserError, fail, fail_with_json
from nsa_tui.reader_gone import decided

EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2
STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "grey50"}


class BadConfig(UserError):
    """A config that does not load (exit 2). With --json it is also the failed config row on stdout: a script that
    reads the JSON would otherwise get nothing to parse."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_BAD_CONFIG)


def _default_run_dir() -> Path:
    from nsa_tui.rundir import runs_root

    return runs_root() / "check-probe"


def run_check(
    config: str | None,
    overrides: list[str],
    run_dir: Path | None = None,
    *,
    gpu_probe: Any = None,
    disk_free: Any = None,
    nsa_test: bool = True,
    nproc: int | None = None,
) -> list[dict[str, str]]:
    """Every row of the preflight table (plain dicts, the --json shape)."""
    from nsa_train.config import ConfigError, load_config, resolve_config_path
    from nsa_train.config.loader import FROM_CONFIG_ENV, config_from_env
    from nsa_tui.check_cheap import cheap_checks

    t0 = time.perf_counter()
    try:
        path = resolve_config_path(config)
        cfg = load_config(path, overrides)
    except ConfigError as e:
        raise BadConfig(str(e)) from None
    source = f" ({FROM_CONFIG_ENV})" if config_from_env(config) else ""
    rows = [{"name": "config", "status": "pass", "reason": f"{path or '<embedded default>'}{source} is valid"}]
    # before the deep checks: their data row loads data.path, which builds datasets' Arrow copy of it, and the disk
    # row would then call the copy the start needs room for "there already" (the parameters are counted from the
    # config, as exactly as the model does: a test holds the two equal)
    cheap = cheap_checks(cfg, run_dir or _default_run_dir(), disk_free=disk_free, fresh_start=True)
    from nsa_train.selfcheck import run_selfcheck  # torch: only now

    deep = run_selfcheck(cfg, gpu_probe=gpu_probe, nsa_test=nsa_test, nproc=nproc)
    rows += [r.to_dict() for r in cheap] + deep.rows
    rows.append({"name": "time", "status": "pass", "reason": f"all checks in {time.perf_counter() - t0:.1f}s"})
    return rows


def remote_check(
    host: str,
    remote_dir: str | None,
    config: str | None,
    overrides: list[str],
    run_dir: Path | None,
    json_out: bool,
    nproc: int | None = None,
) -> int:
    """`nsa check` on HOST over ssh, the way every --host command runs `nsa` there (in ``remote_dir``,
    its venv's nsa first); paths are the remote ones. Its output is passed through as it comes."""
    from nsa_tui.launch.remote import run_nsa

    argv = ["check"]
    if config:
        argv += ["--config", config]
    for o in overrides:
        argv += ["--set", o]
    if run_dir is not None:
        argv += ["--run-dir", str(run_dir)]
    if nproc is not None:
        argv += ["--nproc", str(nproc)]
    if json_out:
        argv.append("--json")
    code, _ = run_nsa(host, remote_dir, argv)
    return code


def print_table(rows: list[dict[str, str]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from nsa_tui.reader_gone import console

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for r in rows:
        style = STATUS_STYLE.get(r["status"], "")
        table.add_row(escape(r["name"]), f"[{style}]{r['status'].upper()}[/]", escape(r["reason"]))
    console().print(table)
    bad = [r["name"] for r in rows if r["status"] == "fail"]
    warn = [r["name"] for r in rows if r["status"] == "warn"]
    if bad:
        print(f"FAILED: {', '.join(bad)}", file=sys.stderr)
    else:
        # the rows' names, once each: several `warning` rows read "warnings: warning, warning"
        names = list(dict.fromkeys(warn))
        said = ", ".join(f"{n} x{warn.count(n)}" if warn.count(n) > 1 else n for n in names)
        print("ready to train" + (f" ({len(warn)} warning{'s' if len(warn) > 1 else ''}: {said})" if warn else ""))


def check_here_or_on_host(
    config: str | None,
    overrides: list[str],
    run_dir: str | None,
    host: str | None,
    remote_dir: str | None,
    nproc: int | None,
    json_out: bool,
    *,
    nsa_test: bool = True,
) -> int:
    """`nsa check`: the options checked, then the preflight here (its table, or with ``json_out`` one JSON object,
    printed) or `nsa check` on ``host``, which prints its own: the exit status. A user's mistake raises UserError
    (BadConfig, exit 2, for a config that does not load: with ``json_out`` its failed row is printed first)."""
    check_remote_dir(host, remote_dir)
    for flag, value in (("--config", config), ("--run-dir", run_dir)):
        if value is not None and not value.strip():  # `--config "$CFG"` with CFG unset: not the default
            raise UserError(f"{flag} is empty: give a value, or leave the option out for the default", USAGE_EXIT)
    from nsa_train.config.loader import repeated_set

    if said := repeated_set(overrides):
        raise UserError(said, USAGE_EXIT)
    where = Path(run_dir) if run_dir is not None else None
    if host:
        from nsa_tui.launch.host_env import check_host_config

        check_host_config(config, False, host, command="check")  # before any ssh: the host's check would not see it
        return remote_check(host, remote_dir, config, overrides, where, json_out, nproc)
    try:
        rows = run_check(config, overrides, where, nproc=nproc, nsa_test=nsa_test)
    except BadConfig as e:
        if json_out:  # a script reading the JSON gets the failed config row to parse
            failed = {"ok": False, "rows": [{"name": "config", "status": "fail", "reason": str(e)}]}
            fail_with_json(str(e), failed, e.code, indent=2)
        raise
    ok = not any(r["status"] == "fail" for r in rows)
    code = decided(0 if ok else EXIT_FAILED)  # before the output: a reader may leave early
    if json_out:
        print(json.dumps({"ok": ok, "rows": rows}, indent=2))
    else:
        print_table(rows)
    return code


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check(
        config: Annotated[
            str | None, typer.Option("--config", help="YAML config (default: $CONFIG, else configs/tiny-cpu.yaml)")
        ] = None,
        overrides: Annotated[
            list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="override a config key (repeatable)")
        ] = None,
        run_dir: Annotated[
            str | None, typer.Option("--run-dir", help="where the run will write (default: <runs root>/check-probe)")
        ] = None,
        host: Annotated[str | None, typer.Option("--host", help="run the check on this SSH host")] = None,
        remote_dir: RemoteDirOpt = None,
        nproc: Annotated[
            int | None,
            typer.Option(
                "--nproc",
                min=1,
                help="ranks the run will have, as `nsa launch --nproc` (default: the visible GPUs, or 1)",
            ),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="one JSON object: {ok, rows}")] = False,
    ) -> None:
        """Preflight before a long run: versions, GPUs and memory, disk, data, tokenizer, NSA self-test."""
        try:
            code = check_here_or_on_host(config, overrides or [], run_dir, host, remote_dir, nproc, json_out)
        except UserError as e:
            fail(str(e), e.code)
        raise typer.Exit(code)
