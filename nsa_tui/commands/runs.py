"""`nsa runs [DIR] [--host HOST [--remote-dir DIR]] [--json]`: a table of runs judged by the health engine."""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from nsa_tui.commands._options import RemoteDirOpt, check_remote_dir
from nsa_tui.commands.status import (
    NAN_LOSS,
    Judged,
    dated_ahead_s,
    error_object,
    fetch_judged,
    fmt_duration,
    halt_said,
    judge_local,
    nan_loss,
    toks_text,
)
from nsa_tui.errors import NOT_FOUND_EXIT, UserError
from nsa_tui.health.rules import BAD_RULES_EXIT
from nsa_tui.health.stop_signal import BEFORE_THE_HALT, NOT_REQUESTED
from nsa_tui.launched import Launched
from nsa_tui.reader_gone import decided
from nsa_tui.rundir import UNREADABLE
from nsa_tui.runs.history import NEWER_KIND
from nsa_tui.styles import HEALTH_STYLE, state_style


@dataclass
class RunListing:
    """The runs under a directory, judged, newest first; and the names of the directories beside them that hold no
    run at all (docs/telemetry.md, Holds a run: a data folder, a report's --out), left out of the table."""

    judged: list[Judged]
    left_out: list[str] = field(default_factory=list)
    from_index: str | None = None  # why the runs are `nsa launch`'s index, not a directory's (nsa_tui.launched)

    def left_out_line(self) -> str | None:
        """One line for the directories left out; None when there were none."""
        n = len(self.left_out)
        if not n:
            return None
        names = ", ".join(self.left_out[:3]) + (", ..." if n > 3 else "")
        return f"{n} director{'y' if n == 1 else 'ies'} that hold{'s' if n == 1 else ''} no run left out: {names}"


def collect_runs(directory: str | None, host: str | None, remote_dir: str | None = None) -> RunListing:
    """Every run directory under DIR (default: the runs root), newest first, and the names of those that hold no run,
    here or on ``host``."""
    check_remote_dir(host, remote_dir)
    if host is not None:
        from nsa_tui.remote.checkout import LISTING

        # the host's script leaves out the directories that hold none by the same definition, and names them
        answer, judged = fetch_judged(host, [f"{LISTING}{directory or ''}"], remote_dir=remote_dir)
        if len(judged) == 1 and judged[0].missing:
            raise UserError(judged[0].error or "no runs directory", NOT_FOUND_EXIT)
        on_host = shlex.join(["nsa", "status", "--host", host, *(["--remote-dir", remote_dir] if remote_dir else [])])
        deleted = [deleted_row(e, taken, on_host) for e, taken in answer.deleted]  # as listed here, on the host
        if answer.from_index is not None:  # no runs root there: its launch index's runs, as launched_runs lists them
            root, index = answer.from_index
            return RunListing(judged + deleted, from_index=index_listing_said(root, index, bool(deleted), host))
        return RunListing(judged + deleted, sorted(answer.left_out))
    from nsa_tui.rundir import holds_run, list_runs, no_runs_dir, runs_root, unreadable_dir

    root = Path(directory) if directory else runs_root()
    try:
        exists, is_dir = root.exists(), root.is_dir()
    except OSError as e:
        raise no_runs_dir(root, e) from None
    if exists and not is_dir:
        raise UserError(f"{root} is a file, not a runs directory (pass DIR or set NSA_RUNS_DIR)", NOT_FOUND_EXIT)
    if not is_dir:
        if directory is None and (recent := launched_runs()) is not None:
            return recent
        raise UserError(f"no runs directory {root} (pass DIR or set NSA_RUNS_DIR)", NOT_FOUND_EXIT)
    if why := unreadable_dir(root):
        raise UserError(why, NOT_FOUND_EXIT)
    # a run directory given as DIR (the contract's holds_run, as for its subdirectories): its checkpoints/ and tb/
    # are no runs, and a listing of them would say so without naming the mistake
    if holds_run(root):
        raise UserError(
            f"{root} is a run directory, not a directory of runs: `nsa status {root}`, or `nsa runs {root.parent}`",
            NOT_FOUND_EXIT,
        )
    # one this user cannot read may hold a run: listed, as unreadable
    dirs = list_runs(root)
    runs = [d for d in dirs if unreadable_dir(d) is not None or holds_run(d)]
    judged = [judge_local(d) for d in runs] + deleted_rows(root)
    return RunListing(judged, sorted(d.name for d in dirs if d not in runs))


def deleted_rows(under: Path | None) -> list[Judged]:
    """The runs `nsa launch` started (in ``under``, when given) whose directory was deleted since, newest launch first
    (at most launched.RECENT): listed after the runs that are there, `deleted`, where they were nowhere."""
    from nsa_tui import launched
    from nsa_tui.deleted_runs import deleted_launches

    gone = deleted_launches(under, launched.RECENT)
    taken = {e.name for e in launched.runs_here()} if gone else set()  # the index read again only when one is gone
    return [deleted_row(e, e.name in taken) for e in gone]


def deleted_row(e: Launched, name_taken: bool, status: str = "nsa status") -> Judged:
    """The row of a launched run whose directory is gone (``status``: the command that says whether it runs)."""
    from nsa_tui.deleted_runs import deleted_row_said

    return Judged(e.name, error=deleted_row_said(e, name_taken, status), path=e.run_dir, deleted_launched_at=e.ts)


def launched_runs() -> RunListing | None:
    """No runs root here: the runs `nsa launch` recorded instead (a shell opened in another directory than the
    launch's), newest first, then those deleted since; None when it recorded none."""
    from nsa_tui import launched
    from nsa_tui.rundir import runs_root

    recent = launched.runs_here()[: launched.RECENT]
    deleted = deleted_rows(None)
    if not recent and not deleted:
        return None
    why = index_listing_said(str(runs_root()), str(launched.index_path()), bool(deleted))
    return RunListing([judge_local(Path(e.run_dir)) for e in recent] + deleted, from_index=why)


def index_listing_said(root: str, index: str, gone: bool, host: str | None = None) -> str:
    """Why `nsa runs` lists the runs of `nsa launch`'s index (``gone``: some whose directory is gone are among them),
    here or on ``host``: the runs root ``root`` is not there."""
    from nsa_tui import launched

    where = f"on {host}" if host else "here"
    return (
        f"no runs directory {root} {where}; the runs nsa launch started, newest first"
        f"{', then those gone from there since' if gone else ''} (at most {launched.RECENT}"
        f"{' of each' if gone else ''}; {index}{' on ' + host if host else ''}):"
    )


def status_command(j: Judged, directory: str | None, host: str | None, remote_dir: str | None = None) -> str:
    """The `nsa status` that judges the listed run ``j`` on its own. Here its name when that finds it (under the
    runs root, and no directory of that name here), else its path: a run listed from another DIR is not under the
    runs root. With --host its path there, or (a remote nsa's error line carries none) its name under the DIR
    listed, resolved there as the listing was."""
    if host is None and j.path is not None:
        from nsa_tui.rundir import runs_root

        named, here = runs_root() / j.run, Path(j.run)
        found = named.is_dir() and named.resolve() == Path(j.path).resolve() and not here.is_dir()
        path = j.run if found else j.path
    else:
        path = j.path or (f"{directory.rstrip('/') or '/'}/{j.run}" if directory else j.run)
    where = ["--host", host, *(["--remote-dir", remote_dir] if remote_dir else [])] if host else []
    return shlex.join(["nsa", "status", *where, *(["--"] if path.startswith("-") else []), path])


_RULE_LISTS = re.compile(r" \((?:built-in|known): [^()]*\)|; known: .*$")  # the lists a rules error ends with


def rules_problem_brief(j: Judged, command: str) -> str:
    """The alerts cell of a run whose monitor section cannot be used: the mistake first (the lists of known rules
    and settings left to `nsa status`), where it is, and the command that says it all."""
    if j.rules_problem is None:  # a remote nsa's error line: only that it is its monitor section
        return f"its config's monitor section: `{command}` says why"
    location, sep, why = j.rules_problem.partition(": ")
    if not sep or not location.startswith("config monitor"):
        location, why = "", j.rules_problem
    where = ", ".join(x for x in (location, f"in its {j.rules_file}" if j.rules_file else "") if x)
    return f"{_RULE_LISTS.sub('', why)} ({where}): `{command}` says why"


class OneLine:
    """A cell kept to one line, cut with an ellipsis: a Text's least width is its longest word (a run's path in
    the command), which would widen the whole table past the terminal; this one's is at most MIN_WIDTH. The table
    gives it all the room its row leaves (nsa_tui.table_fit): the least is for a terminal the rest already fills."""

    MIN_WIDTH = 12  # the mistake's first words, `unknown rul…`: the run's name and numbers beside it are whole

    def __init__(self, text: str) -> None:
        from rich.text import Text

        self.text = Text(text, no_wrap=True, overflow="ellipsis")

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        width = self.text.cell_len
        return Measurement(min(width, self.MIN_WIDTH), width)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield self.text


def verdict_cells(v: dict[str, Any]) -> list[str]:
    """state, step/total, loss, tok/s and heartbeat of a verdict, as the table shows them (rich markup)."""
    from rich.markup import escape

    state = f"[{state_style(v['state'])}]{escape(str(v['state']))}[/]"  # coloured as `nsa status` and the dashboard
    start = v.get("start")  # v.get: a remote nsa may predate the key
    if isinstance(start, dict) and start.get("phase"):  # which phase a start is in: `starting (compile)`
        state += f" ({escape(str(start['phase']))})"
    if v.get("halt_requested"):  # a stop asked for and not yet honoured: `stalled (halt requested 14:02)`
        state += f" [bold yellow]({escape(halt_said(v))})[/]"
    if isinstance(v.get("stop_signal"), str):  # not asked for: `halted (SIGHUP, not requested)`
        said = BEFORE_THE_HALT if v.get("halt_overtaken") else NOT_REQUESTED  # v.get: a remote nsa may predate it
        state += f" [bold yellow]({escape(v['stop_signal'])}, {said})[/]"
    step = "-" if v["step"] is None else str(v["step"])
    if v.get("total_steps"):
        step += f"/{v['total_steps']}"
    loss = (NAN_LOSS if nan_loss(v) else "-") if v["loss"] is None else f"{v['loss']:.4f}"  # as `nsa status` says it
    toks = toks_text(v, unit="", with_mfu=False, last_attempt=LAST_ATTEMPT_MARK)
    # no age where the heartbeat is dated ahead of this clock: how far, as `nsa status` says it (`23h49m ahead`)
    ahead = dated_ahead_s(v)
    beat = fmt_duration(v["last_heartbeat_age_s"]) if ahead is None else f"{fmt_duration(ahead)} ahead"
    return [state, step, loss, escape(toks), beat]


def pending_note(v: dict[str, Any]) -> str:
    """The alerts cell's word on the rules whose condition holds but not yet for their `for` window (the verdict's
    `pending`; v.get: a remote nsa may predate it): `pending throughput_low`, or on an ended run, whose clock stopped
    at its end, that it never will fire. A floor the user set read as met for its first 5 minutes without it;
    `nsa status RUN` says how much of each window has held."""
    from nsa_tui.health.engine import ENDED_STATES

    names = [str(p.get("rule")) for p in v.get("pending") or [] if isinstance(p, dict)]
    if not names:
        return ""
    ended = v.get("state") in ENDED_STATES
    return f"pending {', '.join(names)}" + (" (run ended first)" if ended else "")


# after a resumed run's mean tok/s, explained under the table: "(last attempt)" in the cell pushed the alerts out
LAST_ATTEMPT_MARK = "*"
LAST_ATTEMPT_NOTE = "* the mean of the run's last attempt: it was resumed (`nsa report RUN` gives the whole run's)"


def render_table(
    judged: list[Judged], directory: str | None = None, host: str | None = None, remote_dir: str | None = None
) -> None:
    from rich.markup import escape
    from rich.table import Table

    from nsa_tui.reader_gone import console
    from nsa_tui.table_fit import fit_table, output_width

    table = Table(box=None, pad_edge=False)
    for col in ("run", "state", "step", "loss", "tok/s", "heartbeat", "health", "alerts"):
        # in a narrow terminal only the free text (a state's halt note, the alerts) wraps, between words: a cut run
        # name (default names differ only in their time-of-day tail) would no longer say which run a row is, nor a
        # cut number or alert name what it is
        table.add_column(
            col,
            justify="right" if col in ("step", "loss", "tok/s", "heartbeat") else "left",
            no_wrap=col not in ("state", "alerts"),
        )
    for j in judged:
        v = j.verdict
        if v is None:
            if j.error_code == BAD_RULES_EXIT:
                # the run is there, its config's monitor section is not: what the default rules read of it (state,
                # step, loss), and its mistake on one line (the whole message, with the known rules, is status's)
                d = j.defaults_verdict
                cells = verdict_cells(d) if d is not None else ["-"] * 5
                why = rules_problem_brief(j, status_command(j, directory, host, remote_dir))
                table.add_row(escape(j.run), *cells, "[red]bad rules[/]", OneLine(why))
            elif j.deleted_launched_at is not None:  # where it was and since when, as `nsa status NAME` says it
                table.add_row(escape(j.run), "[dim]gone[/]", "-", "-", "-", "-", "-", OneLine(j.error or ""))
            elif j.error and j.error.startswith(UNREADABLE):  # a permission: "no telemetry" sent people looking
                why = j.error.split(": ", 1)[-1]
                table.add_row(escape(j.run), "[red]unreadable[/]", "-", "-", "-", "-", "-", OneLine(why))
            else:
                table.add_row(escape(j.run), "[red]no telemetry[/]", "-", "-", "-", "-", "-", "")
            continue
        # a file it could not read explains a number missing from the row (a tok/s not the summary's mean): said here
        # too, after the alerts (v.get: a remote nsa may predate the key)
        # newer telemetry is no unreadable file: it was read (as this version), and `nsa status` says which to update
        files = [u for u in v.get("unreadable_files") or [] if isinstance(u, dict)]
        unread = [str(u.get("file")) for u in files if u.get("kind") != NEWER_KIND]
        newer = [str(u.get("file")) for u in files if u.get("kind") == NEWER_KIND]
        notes = [
            escape(", ".join(a["rule"] for a in v["alerts"])),
            f"[dim]{escape(pending)}[/]" if (pending := pending_note(v)) else "",  # dimmer: no alert yet
            escape(f"unreadable {', '.join(unread)}") if unread else "",
            escape(f"newer telemetry {', '.join(newer)}") if newer else "",
        ]
        table.add_row(
            escape(str(v["run"])),
            *verdict_cells(v),
            f"[{HEALTH_STYLE[v['health']]}]{v['health']}[/]",
            "; ".join(n for n in notes if n),
        )
    out = console(highlight=False, soft_wrap=True)
    # the widths here, not rich's squeeze (which cuts names and numbers); a pipe without COLUMNS gets whole rows
    width = fit_table(out, table, output_width(out))
    console(highlight=False, soft_wrap=True, width=width).print(table)
    shown = [v for j in judged if (v := j.verdict or j.defaults_verdict)]
    if any(v.get("resumed") and v.get("mean_toks_per_s") is not None for v in shown):
        print(LAST_ATTEMPT_NOTE)


def run_runs(directory: str | None, *, host: str | None, as_json: bool, remote_dir: str | None = None) -> int:
    listing = collect_runs(directory, host, remote_dir)
    judged, left_out = listing.judged, listing.left_out_line()
    decided(0)  # listed: a reader that stops reading early changes nothing
    if listing.from_index:  # on stderr: --json keeps stdout to one object per run
        print(f"note: {listing.from_index}", file=sys.stderr, flush=True)
    if as_json:  # one object per run, nothing else on stdout
        for j in judged:
            print(json.dumps(j.verdict if j.verdict is not None else j.error_object()), flush=True)
    elif not judged:
        said = f" ({left_out})" if left_out else ""
        print(f"no runs under {directory or 'the runs root'}{' on ' + host if host else ''}{said}")
    else:
        render_table(judged, directory, host, remote_dir)
        if left_out:
            print(left_out)
        if listing.from_index:  # where each is: the table names them only (a host's nsa: its verdict's path)
            for j in judged:
                print(f"  {j.run}: {j.path or (j.verdict or {}).get('path')}")
    return 0


def register(app: typer.Typer) -> None:
    @app.command("runs")
    def runs(
        directory: Annotated[
            str | None, typer.Argument(help="Directory holding run directories (default: $NSA_RUNS_DIR, else ./runs).")
        ] = None,
        host: Annotated[str | None, typer.Option("--host", help="List the runs on this SSH host.")] = None,
        remote_dir: RemoteDirOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run per line.")] = False,
    ) -> None:
        """A table of runs: name, state, step/total, loss, tokens/s, last heartbeat age, health."""
        from nsa_tui.errors import fail, fail_with_json

        try:
            code = run_runs(directory, host=host, as_json=as_json, remote_dir=remote_dir)
        except UserError as e:
            if as_json:  # a script reading stdout gets a line to parse too, as from `nsa status --json`
                fail_with_json(str(e), error_object(None, str(e), e.code), e.code)
            fail(str(e), e.code)
        raise typer.Exit(code)
