"""`nsa status [RUN ...] [--host HOST [--remote-dir DIR]] [--json] [--rules PATH]`: one-shot health verdicts.

Exit codes: 0 all ok, 1 the worst verdict is a warning, 2 critical, 3 no telemetry or the
host/run could not be reached, 4 a rules file (or a run's monitor section) we cannot use.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from nsa_tui.commands._options import RemoteDirOpt
from nsa_tui.errors import UserError

EXIT_NO_TELEMETRY = 3


@dataclass
class Judged:
    """One RUN's outcome: a verdict dict (the JSON object), or an error line."""

    run: str
    verdict: dict[str, Any] | None = None
    error: str | None = None
    missing: bool = False  # no such run directory (as opposed to one without telemetry)
    error_code: int = EXIT_NO_TELEMETRY  # the exit status an error stands for (4: the run's monitor section)

    def error_object(self) -> dict[str, Any]:
        """The --json line of a run without a verdict."""
        return {"run": self.run, "error": self.error, "exit_code": self.exit_code}

    @property
    def exit_code(self) -> int:
        if self.verdict is None:
            return self.error_code
        return {"ok": 0, "warning": 1, "critical": 2}.get(self.verdict.get("health"), EXIT_NO_TELEMETRY)


def _rules_for(config: dict[str, Any], user_rules: dict[str, Any] | None):  # -> dict[str, Rule]
    from nsa_tui.health import BAD_RULES_EXIT, RulesError, build_rules

    try:
        return build_rules(config, user_rules)
    except RulesError as e:
        raise UserError(str(e), BAD_RULES_EXIT) from None


def judge_history(h, *, run: str, path: str, host: str | None, now: float, user_rules) -> Judged:
    from nsa_tui.health import BAD_RULES_EXIT, RulesError, build_rules, evaluate

    where = f"{host}:{path}" if host else path
    if h.format is None:
        return Judged(run, error=f"no telemetry in {where} (no heartbeat_rank*.jsonl, training.csv or *_log.jsonl)")
    try:  # the run's own monitor section first, alone: a mistake there is this run's, not every listed run's
        rules = build_rules(h.config)
    except RulesError as e:
        return Judged(run, error=e.in_run_config(where), error_code=BAD_RULES_EXIT)
    if user_rules is not None:
        rules = _rules_for(h.config, user_rules)
    v = evaluate(h, now, rules, run=run)
    v.path, v.host, v.via = path, host, ("ssh" if host else None)
    return Judged(run, verdict=v.to_dict())


def judge_local(run_dir: Path, user_rules: dict[str, Any] | None = None) -> Judged:
    import time

    from nsa_tui.runs import load_run

    h = load_run(run_dir)
    return judge_history(
        h, run=run_dir.name or str(run_dir), path=str(run_dir), host=None, now=time.time(), user_rules=user_rules
    )


def judge_remote(
    host: str, runs: list[str], user_rules: dict[str, Any] | None = None, remote_dir: str | None = None
) -> list[Judged]:
    """All RUNs on ``host`` in one ssh call, names resolved under ``remote_dir`` there. With a
    rules file we judge locally (the remote `nsa` does not see the file); otherwise a remote
    `nsa status --json` is used when present."""
    from nsa_tui.health import BAD_RULES_EXIT
    from nsa_tui.remote.checkout import missing_run_message
    from nsa_tui.runs import history_from_bundle
    from nsa_tui.runs.bundle import MissingRun
    from nsa_tui.runs.remote import fetch_remote

    answer = fetch_remote(host, runs, prefer_nsa=user_rules is None, remote_dir=remote_dir)
    out: list[Judged] = []
    for item in answer.bundles:
        if isinstance(item, MissingRun):
            error = missing_run_message(item.run, host, item.cwd, item.runs_root, item.is_run_dir)
            out.append(Judged(item.run or "(newest)", error=error, missing=True))
        elif isinstance(item, bytes):
            for line in item.decode("utf-8", errors="replace").splitlines():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and "health" in obj:
                    obj["host"], obj["via"] = host, "remote-nsa"
                    out.append(Judged(str(obj.get("run")), verdict=obj))
                elif isinstance(obj, dict):
                    # a remote nsa that predates exit_code sends none: no telemetry, as it used to mean
                    code = BAD_RULES_EXIT if obj.get("exit_code") == BAD_RULES_EXIT else EXIT_NO_TELEMETRY
                    error = f"{obj.get('error') or 'no telemetry'} on {host}"
                    out.append(Judged(str(obj.get("run")), error=error, error_code=code))
        else:
            h = history_from_bundle(item)
            out.append(judge_history(h, run=item.run, path=item.path, host=host, now=item.now, user_rules=user_rules))
    return out


# ---------------------------------------------------------------- human output
def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def fmt_duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


HEALTH_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red"}
STATE_STYLE = {"running": "green", "finished": "cyan", "halted": "cyan", "starting": "yellow"}


def render_human(j: Judged) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    if j.verdict is None:
        console.print(f"[bold]{escape(j.run)}[/]  [red]{escape(j.error or 'unknown')}[/]")
        return
    v = j.verdict
    st, hl = v["state"], v["health"]
    where = f"{v['host']}:" if v.get("host") else ""
    console.print(
        f"[bold]{escape(str(v['run']))}[/] [dim]{escape(where + str(v.get('path') or ''))} ({v['format']})[/]  "
        f"[{STATE_STYLE.get(st, 'red')}]{st}[/]  health [{HEALTH_STYLE[hl]}]{hl.upper()}[/]"
    )
    step = "-" if v["step"] is None else str(v["step"])
    if v.get("total_steps"):
        step += f"/{v['total_steps']} ({100 * (v['step'] or 0) / v['total_steps']:.0f}%)"
    loss = "nan/inf" if v["loss"] is None and any(a["rule"] == "nan_loss" for a in v["alerts"]) else None
    # a CPU run logs no GPU memory, only the host's RSS (v.get: a remote nsa may predate that key); before the
    # first progress record neither is known, and the run may be either
    rss = v.get("rss_gb")
    if v["gpu_mem_gb"] is not None:
        mem = f"GPU {v['gpu_mem_gb']:.1f} GiB"
    else:
        mem = f"RSS {rss:.2f} GiB" if rss is not None else "memory -"
    console.print(
        f"  step {step}  loss {loss or _num(v['loss'], '.4f')}  val {_num(v.get('val_loss'), '.4f')}  "
        f"lr {_num(v['lr'], '.2e')}  {toks_text(v)}  {mem}"
    )
    # v.get: a remote nsa may predate the key; which attention path runs says whether the kernels do
    attention = f"   attention {escape(str(v['attention_impl']))}" if v.get("attention_impl") else ""
    console.print(
        f"  gates: entropy {_num(v['gate_entropy_mean'], '.3f')}  collapsed {_num(v['gate_collapse_frac'], '.2f')}"
        f"   heartbeat {fmt_duration(v['last_heartbeat_age_s'])} ago   ETA {fmt_duration(v['eta_s'])}"
        + attention
        + (f"   [yellow]{v['corrupt_lines']} corrupt lines skipped[/]" if v.get("corrupt_lines") else "")
    )
    for w in v.get("start_warnings") or []:  # v.get: a remote nsa may predate the key
        console.print(f"  [yellow]at start[/] {escape(str(w))}")
    for a in v["alerts"]:
        since = f" (since step {a['since_step']})" if a.get("since_step") is not None else ""
        console.print(
            f"  [{HEALTH_STYLE[a['severity']]}]{a['severity']:>8}[/] {a['rule']}{since}: {escape(a['message'])}"
        )


def toks_text(v: dict, unit: str = " tok/s") -> str:
    """An ended run's mean tokens/s, marked 'mean' (v.get: a remote nsa may predate the key), else the last
    window's; `nsa runs` leaves the unit to its column header."""
    mean = v.get("mean_toks_per_s")
    return f"{mean:,.0f}{unit} mean" if mean is not None else f"{_num(v['toks_per_s'], ',.0f')}{unit}"


# ---------------------------------------------------------------- command
def run_status(
    runs: list[str], *, host: str | None, as_json: bool, rules_path: Path | None, remote_dir: str | None = None
) -> int:
    """Judge every RUN, print, return the exit code (worst verdict; 3 for missing telemetry)."""
    from nsa_tui.commands._options import check_remote_dir
    from nsa_tui.rundir import resolve_run

    check_remote_dir(host, remote_dir)

    user_rules = None
    if rules_path is not None:
        from nsa_tui.health import BAD_RULES_EXIT, RulesError, load_rules_file

        try:
            user_rules = load_rules_file(rules_path)
        except RulesError as e:
            raise UserError(str(e), BAD_RULES_EXIT) from None
    if host is not None:
        judged = judge_remote(host, runs, user_rules, remote_dir)
        if not judged:  # a remote nsa that said nothing we could read: one line, not silence
            raise UserError(f"no verdicts from {host} (its `nsa status --json` said nothing)", EXIT_NO_TELEMETRY)
    else:
        judged = [judge_local(resolve_run(r), user_rules) for r in (runs or [None])]
    for j in judged:
        if as_json:
            obj = j.verdict if j.verdict is not None else j.error_object()
            print(json.dumps(obj, allow_nan=False), flush=True)
        elif not j.missing:  # a run that is not there is the error line below only, as for a local RUN
            render_human(j)
        if j.verdict is None:
            print(f"error: {j.error}", file=sys.stderr)
    return max((j.exit_code for j in judged), default=EXIT_NO_TELEMETRY)


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        runs: Annotated[
            list[str] | None, typer.Argument(help="Run directories or names under the runs root (default: newest).")
        ] = None,
        host: Annotated[str | None, typer.Option("--host", help="Judge runs on this SSH host (one ssh call).")] = None,
        remote_dir: RemoteDirOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run per line.")] = False,
        rules: Annotated[
            Path | None, typer.Option("--rules", help="YAML/JSON file overriding or adding health rules.")
        ] = None,
    ) -> None:
        """Is it alive, learning, fast enough, healthy? Exit 0 ok, 1 warning, 2 critical, 3 no telemetry/unreachable,
        4 bad rules."""
        from nsa_tui.errors import fail

        try:
            code = run_status(runs or [], host=host, as_json=as_json, rules_path=rules, remote_dir=remote_dir)
        except UserError as e:
            fail(str(e), e.code)
        raise typer.Exit(code)
