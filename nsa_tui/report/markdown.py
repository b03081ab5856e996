"""The Markdown summary of a report: runs and final numbers, charts, config differences, alerts, checkpoints."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nsa_train.telemetry import schema
from nsa_train.telemetry.data_said import data_said
from nsa_train.telemetry.init_from_said import init_from_said
from nsa_train.telemetry.mfu import fmt_mfu
from nsa_train.telemetry.units import human_bytes
from nsa_tui.health.stop_signal import halted_by_text
from nsa_tui.report.load import ReportRun, config_differences, final_numbers
from nsa_tui.runs.history import corrupt_lines_text, newer_telemetry_line, newer_telemetry_text

KEY_SETTINGS = (
    "model.attention",
    "model.dim",
    "model.n_layers",
    "model.n_heads",
    "model.n_kv_heads",
    "train.steps",
    "train.seq_len",
    "train.batch_size",
    "train.lr",
    "train.min_lr",
    "train.warmup_steps",
    "data.source",
    "data.tokenizer",
)
CONFIG_FILES = (schema.RUN_JSON, schema.CONFIG_YAML)  # where a run's config is read from (run.json's copy first)
CHART_TITLES = {
    "loss": "Loss",
    "lr": "Learning rate",
    "throughput": "Throughput",
    "memory": "Memory",
    "gates": "Gates",
}


def _f(v: Any, fmt: str = ".4f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, fmt)
    return str(v)


def _duration(s: Any) -> str:
    from nsa_tui.fmt import duration

    # a total, rounded (27.998 s is 0m28s), in minutes and seconds from the first, as the report's tables show it
    return duration(round(s), seconds_below=0) if isinstance(s, (int, float)) and math.isfinite(s) else "-"


def _cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


_MARKUP = set("\\`*_[]<>|#")


def _name(v: Any) -> str:
    """A run's name as text: its Markdown characters escaped (a directory may be called `a*b*` or `<img ...>`)."""
    return "".join("\\" + ch if ch in _MARKUP else ch for ch in str(v).replace("\n", " "))


def _code(v: Any) -> str:
    """A code span holding ``v`` whatever backticks it contains (fenced by one more than its longest run)."""
    s = str(v).replace("\n", " ")
    longest = cur = 0
    for ch in s:
        cur = cur + 1 if ch == "`" else 0
        longest = max(longest, cur)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def state_said(r: ReportRun) -> str:
    """The run's state as the Runs table gives it: a halt nobody asked for (a killed tmux server's SIGHUP) in the words
    `nsa status` says it with, not a bare `halted`, which read as the user's own `nsa halt`."""
    stop = r.verdict.stop_signal
    return halted_by_text(stop, halt_requested=r.verdict.halt_overtaken) if stop else str(r.verdict.state)


def runs_table(runs: Sequence[ReportRun]) -> list[str]:
    lines = [
        "| run | format | state | step | params | tokens | final loss | final val loss (ppl) "
        "| best val loss @ step | wall time | mean tok/s | end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        n = final_numbers(r)
        step = f"{_f(n['step'])}/{_f(n['total_steps'])}" if n["total_steps"] else _f(n["step"])
        params = f"{n['params'] / 1e6:.2f}M" if isinstance(n["params"], (int, float)) else "-"
        tokens = f"{n['tokens_seen'] / 1e6:.3f}M" if isinstance(n["tokens_seen"], (int, float)) else "-"
        val = f"{_f(n['final_val_loss'])} ({_f(n['final_val_ppl'], '.2f')})" if n["final_val_loss"] is not None else "-"
        best = f"{_f(n['best_val_loss'])} @ {_f(n['best_step'])}" if n["best_val_loss"] is not None else "-"
        resumed = f", resumed at step {', '.join(map(str, n['resumed_at']))}" if n["resumed_at"] else ""
        toks = _f(n["mean_toks_per_s"], ".0f") + (f" (MFU {fmt_mfu(n['mfu'])})" if n["mfu"] is not None else "")
        wall = _duration(n["wall_time_s"]) + (f" ({n['attempts']} attempts{resumed})" if n["attempts"] > 1 else "")
        cells = [_name(r.name), n["format"], state_said(r), step, params, tokens, _f(n["final_loss"]), val, best,
                 wall, toks, _f(n["end_reason"])]  # fmt: skip
        lines.append("| " + " | ".join(c if i == 0 else _cell(c) for i, c in enumerate(cells)) + " |")
    return lines


def data_section(runs: Sequence[ReportRun]) -> list[str]:
    """What each run trains on and how much of it (run.json's data_summary); empty for runs from before it."""
    lines = []
    for r in runs:
        if said := data_said(r.history.run_info.get(schema.RUN_DATA_SUMMARY)):
            lines.append(f"- **{_name(r.name)}**: {_name(said)}")
    return lines


def initial_weights_section(runs: Sequence[ReportRun]) -> list[str]:
    """Where a run's initial weights came from (run.json's init_from): a curve that starts low is another run's
    training, not this one's. Empty when every run started from random weights."""
    lines = []
    for r in runs:
        if said := init_from_said(r.history.run_info.get(schema.RUN_INIT_FROM)):
            lines.append(f"- **{_name(r.name)}**: {_name(said)}")
    return lines


def warnings_section(runs: Sequence[ReportRun]) -> list[str]:
    """What could not be read or applied, per run: its context files that are there but unreadable, its corrupt
    lines, a monitor section the health rules cannot use. Empty when there is nothing to say."""
    lines = []
    for r in runs:
        h, said = r.history, []
        if r.rules_error:
            said.append(f"its own health rules could not be applied: {r.rules_error}; its alerts are judged with the "
                        "default rules")  # fmt: skip
        if h.refused_resume:  # no attempt, so in no table: said here as nsa status says it
            said.append(f"a --resume was refused (the run is as its last attempt left it): {h.refused_resume}")
        said += [f"{name} unreadable: {why}" for name, why in h.unreadable_files.items()]
        said += [newer_telemetry_line(n, newer_telemetry_text(v), "here") for n, v in h.newer_files.items()]
        if h.corrupt:
            where = ", ".join(f"{n} {k}" for n, k in sorted(h.corrupt_by_source.items()))
            said.append(f"{corrupt_lines_text(h.corrupt)} ({where})")
        lines += [f"- **{_name(r.name)}**: {_name(w)}" for w in said]
    return lines


def _unread_config(r: ReportRun) -> str | None:
    """Why a run without a config has none, when the files it comes from are there but unreadable."""
    files = [f"{n} unreadable: {_name(why)}" for n, why in r.history.unreadable_files.items() if n in CONFIG_FILES]
    return "; ".join(files) if files and not r.history.config else None


def config_section(runs: Sequence[ReportRun]) -> list[str]:
    diff, flat = config_differences(runs)
    if len(runs) == 1:
        cfg = flat[runs[0].name]
        keys = [k for k in KEY_SETTINGS if k in cfg]
        if not keys:
            unread = _unread_config(runs[0])
            return [f"No config: {unread}." if unread else "No config recorded for this run."]
        return ["| setting | value |", "|---|---|", *(f"| {k} | {_cell(cfg[k])} |" for k in keys)]
    unread = [f"- **{_name(r.name)}**: {why}" for r in runs if (why := _unread_config(r))]
    notes = ["Configs that could not be read:", "", *unread, ""] if unread else []
    if not diff:
        said = "The runs' configs are identical." if any(flat.values()) else "No config recorded for these runs."
        return [*notes, said]
    head = "| setting | " + " | ".join(_name(r.name) for r in runs) + " |"
    lines = [*notes, head, "|---|" + "---|" * len(runs)]
    missing = {r.name: "(unreadable)" if _unread_config(r) else "(absent)" for r in runs}
    for k in diff:
        lines.append(f"| {k} | " + " | ".join(_cell(flat[r.name].get(k, missing[r.name])) for r in runs) + " |")
    return lines


def alerts_section(runs: Sequence[ReportRun], events_below: bool = False) -> list[str]:
    """The verdicts' alerts; ``events_below``: an Events section follows, which the no-alert line points to (the
    alerts judge the run as it is now, not what happened during it)."""
    rows = [(r.name, a) for r in runs for a in r.verdict.alerts]
    defaults = [f"**{_name(r.name)}** is judged with the default rules: its own could not be applied (Warnings)."
                for r in runs if r.rules_error]  # fmt: skip
    notes = [*defaults, ""] if defaults else []
    if not rows:
        said = "No health rule fired (judged by the same rules as `nsa status`"
        return [
            *notes,
            said + (", on the run as it is now: what happened during it is under Events)." if events_below else ")."),
        ]
    lines = [*notes, "| run | rule | severity | since step | message |", "|---|---|---|---|---|"]
    for name, a in rows:
        lines.append(f"| {_name(name)} | {a.rule} | {a.severity} | {_f(a.since_step)} | {_cell(a.message)} |")
    return lines


def events_section(runs: Sequence[ReportRun]) -> list[str]:
    """Stalls, errors, stack dumps, the anomaly marker, resumes (and refused ones) and how attempts ended, from the
    run's records (nsa_tui.report.events): the alerts judge the run as it is now, and a run that stalled for
    minutes before its halt read "No health rule fired" with nothing else said. Empty when there are none."""
    from nsa_tui.report.events import MAX_EVENT_ROWS, run_events

    # a crashed run's newest attempt ended without an end record too (a running one has not written it yet)
    each = [(r, run_events(r.history, ended=r.verdict.state == "crashed")) for r in runs]
    rows = [(r, e) for r, events in each for e in events]
    if not rows:
        return []
    lines = ["| run | time (UTC) | step | rank | event | detail |", "|---|---|---|---|---|---|"]
    for r, e in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.ts)) if e.ts is not None else "-"
        cells = [_name(r.name), when, _f(e.step), _f(e.rank), e.what, _cell(e.detail) or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    if any(len(events) >= MAX_EVENT_ROWS for _, events in each):
        lines += ["", f"At most the newest {MAX_EVENT_ROWS} events of a run are listed."]
    return lines


def checkpoints_section(runs: Sequence[ReportRun]) -> list[str]:
    lines = []
    for r in runs:
        if not r.checkpoints:
            lines.append(f"- **{_name(r.name)}**: no checkpoints")
            continue
        lines.append(f"- **{_name(r.name)}** ({_code(r.where.rstrip('/') + '/' + schema.CHECKPOINT_DIR)}):")
        for c in r.checkpoints:
            marks = f" ← {', '.join(c.pointers)}" if c.pointers else ""
            if c.earlier:
                # a `--force` start keeps the earlier run's files until train.keep_last prunes them
                marks += " (an earlier run's: written before this run's `--force` start)"
            lines.append(f"  - {_code(c.name)} {human_bytes(c.size)}{marks}")
    return lines


def warmup_said(runs: Sequence[ReportRun]) -> str | None:
    """The lr chart's dashed lines in words (charts.warmup_marks): where each attempt's warmup ends, and the steps
    of attempts whose warmup is not recorded (no line is drawn for them)."""
    from nsa_tui.report.charts import warmup_marks

    marked = warmup_marks(runs)
    ends = [(r, w) for r, marks in marked for w in marks.ends]
    unknown = [(r, first, last) for r, marks in marked for first, last in marks.unknown]
    if not ends and not unknown:
        return None

    def whose(r: ReportRun) -> str:
        return f"{_name(r.name)} " if len(runs) > 1 else ""

    said = []
    if len(ends) == 1:
        said.append(
            f"The dashed line is the end of warmup ({whose(ends[0][0])}step {ends[0][1]}, `train.warmup_steps`)."
        )
    elif ends:
        each = ", ".join(f"{whose(r)}step {w}" for r, w in ends)
        said.append(f"The dashed lines are the ends of warmup (`train.warmup_steps`, each attempt's own): {each}.")
    if unknown:
        steps = ", ".join(
            f"{whose(r)}{f'step {first}' if first == last else f'steps {first}-{last}'}" for r, first, last in unknown
        )
        said.append(
            f"The warmup of {steps} is not marked: the attempt that trained them did not record its "
            "`train.warmup_steps` (an older trainer), and a resume may have changed it."
        )
    return " ".join(said)


def render(runs: Sequence[ReportRun], charts: dict[str, Path], out_dir: Path) -> str:
    title = ", ".join(_name(r.name) for r in runs)
    out = [f"# Report: {title}", "", f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by `nsa report`.", ""]
    out += ["## Runs", "", *runs_table(runs), ""]
    if data := data_section(runs):
        out += ["## Data", "", *data, ""]
    if weights := initial_weights_section(runs):
        out += ["## Initial weights", "", *weights, ""]
    warnings = warnings_section(runs)
    if warnings:
        out += ["## Warnings", "", *warnings, ""]
    out += ["## Charts", ""]
    for name, path in charts.items():
        rel = os.path.relpath(path, out_dir)
        out += [f"### {CHART_TITLES.get(name, name)}", "", f"![{name}]({rel})", ""]
        if name == "lr" and (said := warmup_said(runs)):
            out += [said, ""]
    missing = [CHART_TITLES[n] for n in CHART_TITLES if n not in charts]
    if missing:
        out += [f"No data for: {', '.join(missing)}.", ""]
    out += ["## Config" if len(runs) == 1 else "## Config differences", "", *config_section(runs), ""]
    events = events_section(runs)
    out += ["## Alerts", "", *alerts_section(runs, events_below=bool(events)), ""]
    if events:
        out += ["## Events", "", *events, ""]
    out += ["## Checkpoints", "", *checkpoints_section(runs), ""]
    return "\n".join(out)
