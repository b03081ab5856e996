"""`nsa status [RUN ...] [--host HOST [--remote-dir DIR]] [--json] [--rules PATH]`: one-shot health verdicts.

Exit codes (_status_exit): 0 all ok, 1 the worst verdict is a warning, 2 critical, 3 no verdict (no telemetry, the
host/run could not be reached, a name two runs share, a usage mistake), 4 a rules file (or a run's monitor section)
we cannot use.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nsa_train.telemetry.data_said import data_said
from nsa_train.telemetry.init_from_said import init_from_said
from nsa_train.telemetry.mfu import fmt_mfu
from nsa_train.telemetry.units import human_count
from nsa_tui.commands._options import RemoteDirOpt, path_option
from nsa_tui.commands._status_exit import UNKNOWN_EXIT, StatusCommand, no_verdict_exit
from nsa_tui.commands._status_exit import error_line as error_object
from nsa_tui.errors import NOT_FOUND_EXIT, UserError, run_command
from nsa_tui.fmt import duration, halt_requested
from nsa_tui.reader_gone import console as output_console
from nsa_tui.reader_gone import keep_going
from nsa_tui.rundir import check_run_arg, run_name
from nsa_tui.styles import HEALTH_STYLE, state_style

if TYPE_CHECKING:  # imported where used: `nsa status` of a local run never reads an ssh answer
    from nsa_tui.runs.bundle import RemoteAnswer

HOLDS_RUNS = "; it holds run directories: "  # then the `nsa runs` that lists them (see remote_error)


@dataclass
class Judged:
    """One RUN's outcome: a verdict dict (the JSON object), or an error line."""

    run: str
    verdict: dict[str, Any] | None = None
    error: str | None = None
    missing: bool = False  # no such run directory (as opposed to one without telemetry)
    error_code: int = NOT_FOUND_EXIT  # the exit status an error stands for (4: the run's monitor section)
    path: str | None = None  # the run directory, as judged (on the host with --host); None when not known
    # a run whose own monitor section cannot be used (error_code 4): that section's mistake (without the run's path)
    # and the file it was read from, and its verdict with the default rules, for `nsa runs` to show what it can read
    # (`nsa status` keeps the error: its exit code and --json line are the documented ones)
    rules_problem: str | None = None
    rules_file: str | None = None
    defaults_verdict: dict[str, Any] | None = None
    # no RUN was named (the newest one was asked for) or the host's nsa failed as a whole: ``run`` is only a label,
    # and the --json line says "run": null, the error of the whole command
    unnamed: bool = False
    # a run `nsa launch` recorded whose directory (``path``) is gone: when it was launched (`nsa runs` lists it)
    deleted_launched_at: float | None = None

    def error_object(self) -> dict[str, Any]:
        """The --json line of a run without a verdict; a deleted run's says where it was and when it was launched."""
        obj = error_object(None if self.unnamed else self.run, self.error, self.exit_code)
        if self.deleted_launched_at is not None:
            obj["deleted"] = {"path": self.path, "launched_at": self.deleted_launched_at}
        return obj

    @property
    def exit_code(self) -> int:
        if self.verdict is None:
            return self.error_code
        return {"ok": 0, "warning": 1, "critical": 2}.get(self.verdict.get("health"), NOT_FOUND_EXIT)


def _rules_for(config: dict[str, Any], user_rules: dict[str, Any] | None):  # -> dict[str, Rule]
    from nsa_tui.health import BAD_RULES_EXIT, RulesError, build_rules

    try:
        return build_rules(config, user_rules)
    except RulesError as e:
        raise UserError(str(e), BAD_RULES_EXIT) from None


def judge_history(h, *, run: str, path: str, host: str | None, now: float, user_rules) -> Judged:
    from nsa_tui.health import BAD_RULES_EXIT, evaluate, run_rules
    from nsa_tui.runs.load import config_file, no_telemetry

    where = f"{host}:{path}" if host else path
    if h.format is None:
        return Judged(run, error=no_telemetry(where, h), path=path)
    # the run's own monitor section first, alone: a mistake there is this run's, not every listed run's
    rules, e = run_rules(h.config)
    if e is not None:
        fallback = evaluate(h, now, rules, run=run)
        fallback.path, fallback.host, fallback.via = path, host, ("ssh" if host else None)
        source = config_file(h)
        return Judged(
            run,
            error=e.in_run_config(where, source),
            error_code=BAD_RULES_EXIT,
            path=path,
            rules_problem=str(e),
            rules_file=source,
            defaults_verdict=fallback.to_dict(),
        )
    if user_rules is not None:
        rules = _rules_for(h.config, user_rules)
    v = evaluate(h, now, rules, run=run)
    v.path, v.host, v.via = path, host, ("ssh" if host else None)
    return Judged(run, verdict=v.to_dict(), path=path)


def judge_local(run_dir: Path, user_rules: dict[str, Any] | None = None) -> Judged:
    from nsa_tui.rundir import holds_runs, runs_command, unreadable_dir
    from nsa_tui.runs import load_run

    if why := unreadable_dir(run_dir):  # a directory in a listing (`nsa runs`): that run's error, not a traceback
        return Judged(run_name(run_dir), error=why, path=str(run_dir))
    h = load_run(run_dir)
    j = judge_history(h, run=run_name(run_dir), path=str(run_dir), host=None, now=time.time(), user_rules=user_rules)
    if h.format is None and holds_runs(run_dir):  # `nsa status runs`: the runs root given as a run
        j.error = f"{j.error}{HOLDS_RUNS}`{runs_command(run_dir)}` lists them"
    return j


def remote_error(error: str, host: str, remote_dir: str | None) -> str:
    """A remote nsa's error line as said here: "on HOST" after what it is about, and its `nsa runs` hint (the
    command to type there) as the one to type here."""
    text, sep, hint = error.partition(HOLDS_RUNS)
    m = re.fullmatch(r"`nsa runs(.*)` lists them", hint) if sep else None
    if m is None:
        return f"{error} on {host}"
    try:
        args = shlex.split(m.group(1))
    except ValueError:  # not the quoting our own nsa writes
        return f"{error} on {host}"
    where = ["--host", host, *(["--remote-dir", remote_dir] if remote_dir else [])]
    return f"{text} on {host}{sep}`{shlex.join(['nsa', 'runs', *where, *args])}` lists them"


def judge_named(run: str | None, user_rules: dict[str, Any] | None = None) -> Judged:
    """A local RUN argument judged; one that is not there is its error line (missing), as with --host, so the
    other RUNs named still get their verdicts."""
    from nsa_tui.rundir import resolve_run

    try:
        run_dir = resolve_run(run)
    except UserError as e:  # `nsa status` of a name two runs share has no verdict: 3, not the usage mistake's 2
        code = no_verdict_exit(e.code)
        # `nsa status ''` named a run, an empty one: its line says "run": "", where no RUN's says null
        label = run if run is not None else "(newest)"
        return Judged(label, error=str(e), missing=True, error_code=code, unnamed=run is None)
    return judge_local(run_dir, user_rules)


def judge_remote(
    host: str, runs: list[str], user_rules: dict[str, Any] | None = None, remote_dir: str | None = None
) -> list[Judged]:
    """All RUNs on ``host`` in one ssh call, names resolved under ``remote_dir`` there. With a
    rules file we judge locally (the remote `nsa` does not see the file); otherwise a remote
    `nsa status --json` is used when present and as new as this one (fetch_judged)."""
    return fetch_judged(host, runs, user_rules, remote_dir)[1]


def fetch_judged(
    host: str, runs: list[str], user_rules: dict[str, Any] | None = None, remote_dir: str | None = None
) -> tuple[RemoteAnswer, list[Judged]]:
    """One remote answer for RUNs and its runs judged. The host's own verdicts when it has an nsa whose engine is
    this one's or newer; an older one's (it said `halted` of a finished run, and lacks keys) are read again as
    files and judged here: one more ssh call, only for such a host, and a note on stderr says so."""
    from nsa_tui.runs.remote import fetch_remote

    answer = fetch_remote(host, runs, prefer_nsa=user_rules is None, remote_dir=remote_dir)
    older = older_judge(answer)
    if older is not None:
        answer = fetch_remote(host, runs, prefer_nsa=False, remote_dir=remote_dir)
        print(older_judge_note(host, older), file=sys.stderr, flush=True)
    return answer, judge_answer(answer, host, user_rules, remote_dir)


def json_objects(output: bytes) -> Iterator[dict[str, Any]]:
    """The JSON objects of a remote `nsa status --json` output, one a line (anything else skipped)."""
    for line in output.decode("utf-8", errors="replace").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


def older_judge(answer: RemoteAnswer) -> int | None:
    """The judge version of a host's answers when older than this engine's (a verdict of an nsa before the key: 0);
    None when they are as new or newer, or the host sent none. An error line counts by its judge_version (an older
    engine's "no telemetry" or bad monitor section may be its own shortcoming); one without the key, from an nsa
    before error lines carried it, says nothing of its engine and does not count."""
    from nsa_tui.health.engine import JUDGE_VERSION

    outputs = [item for item in answer.bundles if isinstance(item, bytes)]
    answers = [obj for output in outputs for obj in json_objects(output) if "health" in obj or "judge_version" in obj]
    versions = [v if type(v := obj.get("judge_version", 0)) is int else 0 for obj in answers]
    oldest = min(versions, default=JUDGE_VERSION)
    return oldest if oldest < JUDGE_VERSION else None


def older_judge_note(host: str, version: int) -> str:
    """The stderr line of runs judged here because the host's nsa is older."""
    from nsa_tui.health.engine import JUDGE_VERSION

    return (
        f"note: the nsa on {host} is older than this one (judge version {version}, this one's {JUDGE_VERSION}): "
        f"its runs were judged here from their files (`via: ssh`); update nsa there to have it judge them"
    )


def judge_answer(
    answer: RemoteAnswer, host: str, user_rules: dict[str, Any] | None = None, remote_dir: str | None = None
) -> list[Judged]:
    """The runs of one remote answer, judged, in its order (a listing's left-out names stay in ``answer``)."""
    from nsa_tui.health import BAD_RULES_EXIT
    from nsa_tui.remote.checkout import missing_run_message
    from nsa_tui.runs import history_from_bundle
    from nsa_tui.runs.bundle import MissingRun

    out: list[Judged] = []
    for item in answer.bundles:
        if isinstance(item, MissingRun) and (item.twice or item.unreadable):  # refused, as a local name is
            out.append(Judged(item.run, error=item.twice or item.unreadable, missing=True, error_code=UNKNOWN_EXIT))
        elif isinstance(item, MissingRun):
            error = missing_run_message(item.run, host, item.cwd, item.runs_root, item.is_run_dir, item.said)
            out.append(Judged(item.run or "(newest)", error=error, missing=True, unnamed=not item.run))
        elif isinstance(item, bytes):
            for obj in json_objects(item):
                if "health" in obj:
                    obj["host"], obj["via"] = host, "remote-nsa"
                    out.append(Judged(str(obj.get("run")), verdict=said_over_ssh(obj, host)))
                else:
                    # a remote nsa that predates exit_code sends none: no telemetry, as it used to mean
                    code = BAD_RULES_EXIT if obj.get("exit_code") == BAD_RULES_EXIT else NOT_FOUND_EXIT
                    error = remote_error(str(obj.get("error") or "no telemetry"), host, remote_dir)
                    # "run": null is the remote command's own error, not one run's
                    run = obj.get("run")
                    out.append(Judged(str(run or "(all)"), error=error, error_code=code, unnamed=not run))
        else:
            h = history_from_bundle(item)
            out.append(judge_history(h, run=item.run, path=item.path, host=host, now=item.now, user_rules=user_rules))
    return out


def said_over_ssh(verdict: dict[str, Any], host: str) -> dict[str, Any]:
    """A host's verdict with its alerts' and pending rules' `kill -CONT PID` run through ssh on that host, as the
    runs judged here from its files say it (the pid is the host's)."""
    from nsa_tui.stopped_ranks import resumed_over_ssh

    for key in ("alerts", "pending"):
        for said in verdict.get(key) or ():
            if isinstance(said, dict) and isinstance(said.get("message"), str):
                said["message"] = resumed_over_ssh(said["message"], host)
    return verdict


# ---------------------------------------------------------------- human output
def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def fmt_duration(s: float | None) -> str:
    """A heartbeat's age or an ETA: seconds to 120 s, minutes and seconds to an hour (a heartbeat 9m59s old is a
    second from heartbeat_stale's 600 s, not "9m"), hours to two days. A remote answer's NaN is "-"."""
    return duration(s, seconds_below=120, hours_below=172800, missing="-")


def dated_ahead_s(v: dict) -> float | None:
    """How far ahead of this clock the heartbeat is dated, where that is why it has no age; None otherwise (v.get: a
    remote nsa may predate the key)."""
    ahead = v.get("heartbeat_ahead_s")
    if v["last_heartbeat_age_s"] is None and isinstance(ahead, (int, float)) and not isinstance(ahead, bool):
        return float(ahead)
    return None


def heartbeat_said(v: dict) -> str:
    """`12s ago`; where no age can be told because the records are dated ahead of this clock, how far ahead."""
    if (ahead := dated_ahead_s(v)) is not None:
        return f"dated {fmt_duration(ahead)} ahead of this machine's clock"
    return f"{fmt_duration(v['last_heartbeat_age_s'])} ago"


def render_human(j: Judged, dump_cmd: str | None = None) -> None:
    """One run's verdict, for people; ``dump_cmd``: the `nsa dump` of this run, named on a starting run's line."""
    from rich.markup import escape

    from nsa_tui.health.checks import toks_unjudged_text
    from nsa_tui.health.stop_signal import halted_by_text
    from nsa_tui.runs.history import NEWER_KIND, corrupt_lines_text, newer_telemetry_line

    console = output_console(highlight=False, soft_wrap=True)
    v = j.verdict
    if v is None:  # a run without a verdict is its `error:` line on stderr only
        return
    st, hl = v["state"], v["health"]
    where = f"{v['host']}:" if v.get("host") else ""
    console.print(
        f"[bold]{escape(str(v['run']))}[/] [dim]{escape(where + str(v.get('path') or ''))} ({format_said(v)})[/]  "
        f"[{state_style(st)}]{escape(st)}[/]  health [{HEALTH_STYLE[hl]}]{hl.upper()}[/]"
        + (f"  [bold yellow]{escape(halt_said(v, time.time()))}[/]" if v.get("halt_requested") else "")
    )
    if isinstance(v.get("stop_signal"), str):  # v.get: a remote nsa may predate the key
        said = halted_by_text(v["stop_signal"], halt_requested=v.get("halt_overtaken") is True)
        console.print(f"  [bold yellow]{escape(said)}[/]")
    step = "-" if v["step"] is None else str(v["step"])
    if v.get("total_steps"):
        step += f"/{v['total_steps']} ({100 * (v['step'] or 0) / v['total_steps']:.0f}%)"
    loss = NAN_LOSS if nan_loss(v) else None
    # a CPU run logs no GPU memory, only the host's RSS (v.get: a remote nsa may predate that key); before the
    # first progress record neither is known, and the run may be either
    rss = v.get("rss_gb")
    if v["gpu_mem_gb"] is not None:
        mem = f"GPU {v['gpu_mem_gb']:.1f} GiB"
    else:
        mem = f"RSS {rss:.2f} GiB" if rss is not None else "memory -"
    console.print(
        f"  step {step}  loss {loss or _num(v['loss'], '.4f')}  val {_num(v.get('val_loss'), '.4f')}  "
        f"lr {_num(v['lr'], '.2e')}{lr_note(v)}  "
        f"{toks_text(v)}  {mem}"
    )
    # v.get: a remote nsa may predate the key; which attention path runs says whether the kernels do
    attention = f"   attention {escape(str(v['attention_impl']))}" if v.get("attention_impl") else ""
    if isinstance(v.get("param_count"), int):  # v.get: a remote nsa may predate the key
        attention += f"   {human_count(v['param_count'])} params"
    console.print(
        f"  gates: entropy {_num(v['gate_entropy_mean'], '.3f')}  collapsed {_num(v['gate_collapse_frac'], '.2f')}"
        f"   heartbeat {heartbeat_said(v)}   ETA {fmt_duration(v['eta_s'])}"
        + attention
        + (f"   [yellow]{corrupt_lines_text(v['corrupt_lines'])}[/]" if v.get("corrupt_lines") else "")
    )
    if why := v.get("toks_not_judged"):  # v.get: a remote nsa may predate the key
        label, said = toks_unjudged_text(str(why)).split(":", 1)
        console.print(f"  [yellow]{label}[/]:{escape(said)}")
    if said := data_said(v.get("data")):  # v.get: a remote nsa may predate the key
        console.print(f"  data {escape(said)}")
    if said := init_from_said(v.get("init_from")):  # v.get: a remote nsa may predate the key
        console.print(f"  {escape(said)}")
    for u in v.get("unreadable_files") or []:  # v.get: a remote nsa may predate the key
        if not isinstance(u, dict):
            continue
        name, problem = escape(str(u.get("file"))), escape(str(u.get("problem")))
        if u.get("kind") == NEWER_KIND:  # read, as this version: the nsa that read it is the one to update
            console.print(f"  [yellow]{newer_telemetry_line(name, problem, reader_place(v))}[/]")
        else:
            console.print(f"  [yellow]unreadable[/] {name}: {problem}")
    start = v.get("start") if st == "starting" else None  # v.get: a remote nsa may predate it
    if said := start_text(start, dump_cmd):
        console.print(f"  {escape(said)}")
    if st == "starting" and (v.get("loss") is not None or v.get("val_loss") is not None):
        # a resume before its first step: the figures shown are what the last attempt logged (a new run and a
        # --force rerun have none: their boot records say step 0 and nothing else)
        where = escape(new_attempt_where(v.get("last_phase"), start if said else None))
        console.print(
            f"  [yellow]new attempt[/]{where}: step and metrics above are the last attempt's until its first step"
        )
    if refused := v.get("refused_resume"):  # v.get: a remote nsa may predate the key
        console.print(f"  [yellow]resume refused[/] (the run is as its last attempt left it): {escape(str(refused))}")
    for w in v.get("start_warnings") or []:  # v.get: a remote nsa may predate the key
        console.print(f"  [yellow]at start[/] {escape(str(w))}")
    for a in v["alerts"]:
        since = f" (since step {a['since_step']})" if a.get("since_step") is not None else ""
        console.print(
            f"  [{HEALTH_STYLE[a['severity']]}]{a['severity']:>8}[/] {a['rule']}{since}: {escape(a['message'])}"
        )
    ended = st in ("finished", "halted", "crashed")
    for p in v.get("pending") or []:  # v.get: a remote nsa may predate the key
        if isinstance(p, dict):
            console.print(f"  [dim]{'pending':>8}[/] {escape(pending_text(p, ended))}")


def pending_text(p: dict[str, Any], ended: bool) -> str:
    """A pending rule (the verdict's `pending`) as one line: its alert's message and how much of its `for` window
    the condition has held; on an ended run, that it never will (only the time alive counts)."""
    since = f" (since step {p['since_step']})" if p.get("since_step") is not None else ""
    held = []
    if isinstance(p.get("for_s"), int | float):
        done = f"{p['held_s']:.0f} s" if isinstance(p.get("held_s"), int | float) else "an unknown time"
        held.append(f"{done} of its for: {p['for_s']:g} s")
    if isinstance(p.get("for_steps"), int):
        done = f"{p['held_steps']} steps" if isinstance(p.get("held_steps"), int) else "an unknown number of steps"
        held.append(f"{done} of its for: {p['for_steps']} steps")
    then = "the run ended first, so it never fired" if ended else f"not yet {p.get('severity')}"
    return f"{p.get('rule')}{since}: {p.get('message')} (held {', '.join(held) or 'too short'}: {then})"


def halt_said(v: dict[str, Any], now: float | None = None) -> str:
    """A verdict's pending halt (`halt_requested`: v.get, a remote nsa may predate it), as status and runs say it."""
    ts = v.get("halt_requested_ts")
    return halt_requested(ts if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None, now)


def format_said(v: dict[str, Any]) -> str:
    """The header's format: `nsa-v1`, or `nsa-v2 read as nsa-v1` when some file is of a newer telemetry version
    (the lines below name each; the format alone read as if the files were of this version)."""
    from nsa_tui.runs.history import NEWER_KIND

    newer = [u.get("v") for u in v.get("unreadable_files") or [] if isinstance(u, dict) and u.get("kind") == NEWER_KIND]
    newest = max((n for n in newer if type(n) is int), default=None)
    fmt = str(v["format"])
    return fmt if newest is None else f"nsa-v{newest} read as {fmt}"


def reader_place(v: dict[str, Any]) -> str:
    """Where the nsa that read a verdict's files runs: 'here', or 'on HOST' for a host's own verdict."""
    return f"on {v.get('host')}" if v.get("via") == "remote-nsa" else "here"


CLOCK_WORDS = {"boot": "since boot", "replay": "since the data replay's last report", "launch": "since `nsa launch`"}


def start_text(start: Any, dump_cmd: str | None) -> str | None:
    """A starting run's line: its phase and how long it has been in it, the time stuck_at_start has counted and
    when it fires, and the `nsa dump` that shows where it is (the verdict's `start`; None without one)."""
    if not isinstance(start, dict):
        return None
    phase, phase_s = start.get("phase"), start.get("phase_s")
    where = f"phase {phase} for {fmt_duration(phase_s)}" if phase else "no phase record yet"
    waited, clock = start.get("waited_s"), CLOCK_WORDS.get(str(start.get("clock")))
    if waited is not None and clock:
        where += f", {fmt_duration(waited)} {clock}"
    timeout = start.get("timeout_s")
    rule = f"stuck_at_start after {timeout:g}s" if isinstance(timeout, int | float) else "stuck_at_start off"
    dump = f"; `{dump_cmd}` shows where it is" if dump_cmd and start.get("clock") != "launch" else ""
    return f"starting: {where} ({rule}{dump})"


def new_attempt_where(last_phase: Any, start: Any) -> str:
    """Where a resume before its first step is, for its `new attempt` line: nothing the `starting:` line above it
    (the verdict's ``start``, None when not printed) already says (the phase was said twice), only that its process
    has not booted yet (the clock counts from `nsa launch`). Without that line (a remote nsa before `start`), the
    newest phase record's phase, else "not booted yet"."""
    if isinstance(start, dict):
        return " not booted yet" if start.get("clock") == "launch" else ""
    return f" at phase {last_phase}" if last_phase else " not booted yet"


def dump_command(j: Judged, host: str | None, remote_dir: str | None) -> str | None:
    """The `nsa dump` that asks this run's ranks for their stacks: our trainer's (an nsa-v1 run) only. By name when
    the name finds this directory, else by its path; on a host, by name under its runs root (or --remote-dir)."""
    v = j.verdict or {}
    if v.get("format") != "nsa-v1":
        return None
    if host is not None:
        where, arg = ["--host", host, *(["--remote-dir", remote_dir] if remote_dir else [])], j.run
    else:
        from nsa_tui.rundir import runs_root

        where, arg = [], j.path or j.run
        try:
            if j.path is not None and Path(j.path).resolve() == (runs_root() / j.run).resolve():
                arg = j.run
        except (OSError, ValueError):
            pass
    return run_command("dump", arg, where)


def lr_note(v: dict[str, Any]) -> str:
    """After the lr: '(warmup)' where the schedule ramps it up on purpose (a seed report took a warmup lr for a bug),
    '(schedule unknown)' where the run does not say its schedule (the previous trainer's, a foreign log): a small lr
    there may be either; nothing for an lr past warmup, or none logged."""
    if v["lr"] is None or "lr_phase" not in v:  # a remote nsa that predates lr_phase says nothing of it
        return ""
    return {"warmup": " (warmup)", None: " (schedule unknown)"}.get(v["lr_phase"], "")


def toks_text(v: dict, unit: str = " tok/s", with_mfu: bool = True, last_attempt: str | None = None) -> str:
    """An ended run's mean tokens/s, marked 'mean' (v.get: a remote nsa may predate the key), and 'last attempt'
    after a resume (``last_attempt``: `nsa runs`' shorter mark), else the last window's; `nsa runs` leaves the unit
    to its column header."""
    from nsa_tui.health.engine import MEAN_OF_LAST_ATTEMPT

    mean = v.get("mean_toks_per_s")
    last = (MEAN_OF_LAST_ATTEMPT if last_attempt is None else last_attempt) if v.get("resumed") else ""
    toks = f"{mean:,.0f}{unit} mean{last}" if mean is not None else f"{_num(v['toks_per_s'], ',.0f')}{unit}"
    mfu = v.get("mfu")  # v.get: a remote nsa may predate the key
    return toks + (f" (MFU {fmt_mfu(mfu)})" if with_mfu and isinstance(mfu, float) else "")


NAN_LOSS = "nan/inf"


def nan_loss(v: dict[str, Any]) -> bool:
    """A verdict's loss is null because it was NaN or infinite (JSON holds neither): its nan_loss alert says so."""
    return v["loss"] is None and any(a["rule"] == "nan_loss" for a in v["alerts"])


# ---------------------------------------------------------------- command
def run_status(
    runs: list[str], *, host: str | None, as_json: bool, rules_path: Path | None, remote_dir: str | None = None
) -> int:
    """Judge every RUN, print, return the exit code (worst_exit_code of the runs')."""
    from nsa_tui.commands._options import check_remote_dir

    check_remote_dir(host, remote_dir)
    if host is not None:  # locally each RUN is judged alone (an empty one is its own error line)
        for run in runs:
            check_run_arg(run)  # the host's script would read '' as its newest run

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
            raise UserError(f"no verdicts from {host} (its `nsa status --json` said nothing)", NOT_FOUND_EXIT)
    else:
        judged = [judge_named(r, user_rules) for r in (runs or [None])]
    code = worst_exit_code([j.exit_code for j in judged])
    for j in judged:
        if j.verdict is None:  # on stderr, whatever stdout's reader does (keep_going)
            print(f"error: {j.error}", file=sys.stderr, flush=True)
        if as_json:
            obj = j.verdict if j.verdict is not None else j.error_object()
            print(json.dumps(obj, allow_nan=False), flush=True)
        elif j.verdict is not None:  # a run without a verdict is the one error line above, not that and its echo
            render_human(j, dump_command(j, host, remote_dir))
    return code


# A critical run outranks every other answer: a script gating on the code must hear of a crash even when a second
# run named beside it is unreachable (3) or has a bad monitor section (4); after it the errors, then a warning.
EXIT_SEVERITY = (2, 4, 3, 1, 0)


def worst_exit_code(codes: list[int]) -> int:
    """The exit code of several runs' answers: the first of EXIT_SEVERITY among them (3 when there are none)."""
    if not codes:
        return NOT_FOUND_EXIT
    return min(codes, key=lambda c: EXIT_SEVERITY.index(c) if c in EXIT_SEVERITY else -1)


def register(app: typer.Typer) -> None:
    @app.command("status", cls=StatusCommand)
    def status(
        runs: Annotated[
            list[str] | None, typer.Argument(help="Run directories or names under the runs root (default: newest).")
        ] = None,
        host: Annotated[str | None, typer.Option("--host", help="Judge runs on this SSH host (one ssh call).")] = None,
        remote_dir: RemoteDirOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run per line.")] = False,
        rules: Annotated[
            str | None, typer.Option("--rules", help="YAML/JSON file overriding or adding health rules.")
        ] = None,
    ) -> None:
        """Is it alive, learning, fast enough, healthy? Exit 0 ok, 1 warn, 2 critical, 3 unknown, 4 bad rules.

        Exit 3 (unknown): no verdict, for no telemetry or run, a host not reached, a name two runs share, bad usage.

        Exit 2 is a critical verdict and nothing else."""
        from nsa_tui.errors import fail, fail_with_json

        keep_going()  # stdout's reader gone (`| head -1`): every run's error line still reaches stderr's
        try:
            rules_path = path_option(rules, "--rules")
            code = run_status(runs or [], host=host, as_json=as_json, rules_path=rules_path, remote_dir=remote_dir)
        except UserError as e:
            code = no_verdict_exit(e.code)  # a bad --host or option too: no verdict, not the usage mistake's 2
            if as_json:  # a script reading stdout gets a line to parse too (no run: the whole command failed)
                fail_with_json(str(e), error_object(None, str(e), code), code)
            fail(str(e), code)
        raise typer.Exit(code)
