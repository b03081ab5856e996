"""`nsa check [--config PATH] [--set K=V ...] [--run-dir DIR] [--host HOST] [--json]`: preflight
on the machine that will train. Exit 0 when nothing failed (warnings allowed), 1 on any fail,
2 for a config that does not load, 3 when the host cannot be reached.

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

from nsa_tui.errors import UserError, fail

EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_UNREACHABLE = 3
STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


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
) -> list[dict[str, str]]:
    """Every row of the preflight table (plain dicts, the --json shape)."""
    from nsa_train.config import ConfigError, load_config, resolve_config_path
    from nsa_tui.check_cheap import cheap_checks

    t0 = time.perf_counter()
    try:
        path = resolve_config_path(config)
        cfg = load_config(path, overrides)
    except ConfigError as e:
        raise UserError(str(e), EXIT_BAD_CONFIG) from None
    rows = [{"name": "config", "status": "pass", "reason": f"{path or '<embedded default>'} is valid"}]
    from nsa_train.selfcheck import run_selfcheck  # torch: only now

    deep = run_selfcheck(cfg, gpu_probe=gpu_probe, nsa_test=nsa_test)
    cheap = cheap_checks(cfg, run_dir or _default_run_dir(), param_count=deep.param_count, disk_free=disk_free)
    rows += [r.to_dict() for r in cheap] + deep.rows
    rows.append({"name": "time", "status": "pass", "reason": f"all checks in {time.perf_counter() - t0:.1f}s"})
    return rows


def remote_check(host: str, config: str | None, overrides: list[str], json_out: bool) -> int:
    """`nsa check` on HOST over ssh (the config path is the remote one); its output is passed through."""
    from nsa_tui.remote.ssh import SSHError, remote_command, run_remote

    argv = ["nsa", "check"]
    if config:
        argv += ["--config", config]
    for o in overrides:
        argv += ["--set", o]
    if json_out:
        argv.append("--json")
    try:
        result = run_remote(host, remote_command(argv), timeout=300)
    except SSHError as e:
        raise UserError(str(e), EXIT_UNREACHABLE) from None
    sys.stdout.write(result.stdout.decode("utf-8", errors="replace"))
    sys.stderr.write(result.stderr.decode("utf-8", errors="replace"))
    if result.returncode == 127:  # the remote shell found no `nsa`
        raise UserError(f"`nsa` is not installed (or not on PATH) on {host}", EXIT_UNREACHABLE)
    return result.returncode


def print_table(rows: list[dict[str, str]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for r in rows:
        style = STATUS_STYLE.get(r["status"], "")
        table.add_row(escape(r["name"]), f"[{style}]{r['status'].upper()}[/]", escape(r["reason"]))
    Console().print(table)
    bad = [r["name"] for r in rows if r["status"] == "fail"]
    warn = [r["name"] for r in rows if r["status"] == "warn"]
    if bad:
        print(f"FAILED: {', '.join(bad)}", file=sys.stderr)
    else:
        print("ready to train" + (f" (warnings: {', '.join(warn)})" if warn else ""))


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check(
        config: Annotated[str | None, typer.Option("--config", help="YAML config (default: the tiny CPU run)")] = None,
        overrides: Annotated[
            list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="override a config key (repeatable)")
        ] = None,
        run_dir: Annotated[
            Path | None, typer.Option("--run-dir", help="where the run will write (default: <runs root>/check-probe)")
        ] = None,
        host: Annotated[str | None, typer.Option("--host", help="run the check on this SSH host")] = None,
        json_out: Annotated[bool, typer.Option("--json", help="one JSON object: {ok, rows}")] = False,
    ) -> None:
        """Preflight before a long run: versions, GPUs and memory, disk, data, tokenizer, NSA self-test."""
        try:
            if host:
                raise typer.Exit(remote_check(host, config, overrides or [], json_out))
            rows = run_check(config, overrides or [], run_dir)
        except UserError as e:
            fail(str(e), e.code)
        ok = not any(r["status"] == "fail" for r in rows)
        if json_out:
            print(json.dumps({"ok": ok, "rows": rows}, indent=2))
        else:
            print_table(rows)
        raise typer.Exit(0 if ok else EXIT_FAILED)
