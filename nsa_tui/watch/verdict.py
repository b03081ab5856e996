"""Thin adapter to the health engine of `nsa status` (nsa_tui.health): one engine for both.
It only shapes the engine's Verdict for the panels; it judges nothing itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nsa_tui.styles import HEALTH_STYLE

if TYPE_CHECKING:
    from nsa_tui.health.engine import Pending

SEVERITY_ORDER = {"critical": 0, "warning": 1}  # the engine's only severities (nsa_tui.health.rules.SEVERITIES)


@dataclass
class AlertView:
    rule: str
    severity: str
    message: str
    since_step: int | None = None


@dataclass
class PendingView:
    """A rule whose condition holds but not yet for its `for` window (the verdict's `pending`): not an alert, but
    said, or a run under the user's floor read "no active alerts" for the window's 5 minutes."""

    rule: str
    severity: str  # what it fires with
    message: str
    # how much of its window has held, longest to shortest ("held 40 s of 300 s", ..., "40/300 s"): the panel takes
    # the first that fits beside the rule, whole (a cut number reads as another)
    held: list[str] = field(default_factory=list)


def held_forms(p: Pending, ended: bool) -> list[str]:
    """The ways to say how much of its `for` window a pending rule has held, longest first; on an ended run, whose
    clock stopped at its end, that it ended first (`nsa status`: "the run ended first, so it never fired")."""
    long, short = [], []
    if isinstance(p.for_s, int | float):
        done = f"{p.held_s:.0f}" if isinstance(p.held_s, int | float) else "?"
        long.append(f"{done} s of {p.for_s:g} s")
        short.append(f"{done}/{p.for_s:g} s")
    if isinstance(p.for_steps, int):
        done = str(p.held_steps) if isinstance(p.held_steps, int) else "?"
        long.append(f"{done} of {p.for_steps} steps")
        short.append(f"{done}/{p.for_steps} steps")
    if not long:
        return []
    held, brief = ", ".join(long), ", ".join(short)
    if ended:
        return [f"held {held}, the run ended first", f"{brief}, run ended", f"{brief}, ended", brief]
    return [f"held {held}", held, brief]


@dataclass
class VerdictView:
    state: str = "unknown"
    health: str = "unknown"
    alerts: list[AlertView] = field(default_factory=list)
    pending: list[PendingView] = field(default_factory=list)  # under the alerts, dimmer: they change no health
    eta_s: float | None = None
    mean_toks_per_s: float | None = None  # an ended run's mean over its last attempt, as `nsa status` shows it
    problem: str = ""  # why there is no verdict (the engine raised)
    rules_problem: str = ""  # the run's monitor section has a mistake: judged with the default rules instead
    start_warnings: list[str] = field(default_factory=list)  # what this attempt warned about as it started
    # the line saying why throughput_low cannot judge the tokens/s, as `nsa status` prints it (the previous trainer's
    # runs: 38 tokens/s beside "no active alerts", and nothing said no rule looked at it); "" when it judges them or
    # leaves the run alone by design
    toks_not_judged: str = ""
    # why the run cannot be read now (a host that does not answer): its last data is not judged, and the panel says
    # so in full where the header's line crops it
    unreachable: str = ""
    # the `unknown` state with no alert: nothing readable to judge (an empty directory the trainer has not written to
    # yet). Said instead of "no active alerts", and the header gives no health: `nsa status` calls it an error
    nothing_read: str = ""
    # .HALT waits on a live attempt ("halt requested 14:02" in the header, as `nsa status` says it); "" otherwise
    halt_requested: str = ""
    # a halted run that nobody asked to halt: the signal that stopped it ('SIGHUP'), said beside `halted` in the header
    stop_signal: str = ""
    halt_overtaken: bool = False  # with stop_signal: a halt had been requested, the signal ended the run first


PENDING_MARK_STYLE = "grey50"  # the health panel's pending lines: dimmer than any alert


def run_mark(v: VerdictView) -> tuple[str, str]:
    """(text, style) after a run's name in its tab and in the compare view's legend, where its panel is not in view:
    its health when alerts make it one (the header's word and colour), else "pending" when a rule waits out its `for`
    window (dim, as the panel's pending lines: no alert yet), else nothing: a run with a pending throughput_low read
    the same as a healthy one there."""
    if v.alerts and v.health in HEALTH_STYLE:
        return v.health, HEALTH_STYLE[v.health]
    if v.pending:
        return "pending", PENDING_MARK_STYLE
    return "", ""


def evaluate(history: Any, now: float, run_dir: Any = None) -> VerdictView:
    """The health engine's verdict (nsa_tui.health.evaluate), shaped for the panels. A crash
    inside the engine is shown in the health panel rather than taking the dashboard down."""
    from nsa_tui.fmt import halt_requested
    from nsa_tui.health import evaluate as engine_evaluate
    from nsa_tui.health import run_rules
    from nsa_tui.health.checks import toks_unjudged_text
    from nsa_tui.health.engine import ENDED_STATES
    from nsa_tui.runs.load import config_file

    rules_problem = ""
    try:
        rules, mistake = run_rules(history.config)
        if mistake is not None:  # the user's config, not a fault of the engine: judged as `nsa status` judges it
            rules_problem = f"judged with the default rules: the run's {config_file(history)}: {mistake}"
        v = engine_evaluate(history, now, rules)
    except Exception as e:  # shown on screen, never swallowed
        return VerdictView(problem=f"health engine failed: {type(e).__name__}: {e}")
    alerts = [AlertView(a.rule, a.severity, a.message, a.since_step) for a in v.alerts]
    alerts.sort(key=lambda a: SEVERITY_ORDER.get(a.severity, 3))  # the engine's order within a severity (a cause first)
    ended = v.state in ENDED_STATES
    pending = [PendingView(p.rule, p.severity, p.message, held_forms(p, ended)) for p in v.pending]
    nothing = v.state == "unknown" and not alerts  # an alert (run_dir_gone) is a verdict on what was read: kept
    return VerdictView(
        state=v.state,
        health="" if nothing else v.health,
        nothing_read=_nothing_read(history) if nothing else "",
        alerts=alerts,
        pending=pending,
        eta_s=v.eta_s,
        mean_toks_per_s=v.mean_toks_per_s,
        # a refused --resume left the run as it was: said where the run's start notes stay in view
        start_warnings=[*_refused(v.refused_resume), *v.start_warnings],
        toks_not_judged=toks_unjudged_text(v.toks_not_judged) if v.toks_not_judged else "",
        rules_problem=rules_problem,
        halt_requested=halt_requested(v.halt_requested_ts) if v.halt_requested else "",
        stop_signal=v.stop_signal or "",
        halt_overtaken=v.halt_overtaken,
    )


def _refused(message: str | None) -> list[str]:
    """The health panel's line for a refused --resume (`nsa status` says the same), or none."""
    return [f"a --resume was refused, the run is as its last attempt left it: {message}"] if message else []


def _nothing_read(history: Any) -> str:
    """The health panel's line for a run with nothing readable yet."""
    if history.last_write_ts is None:  # no telemetry file at all
        return "no run files here yet (waiting for the trainer)"
    return "nothing readable in its files yet (waiting for the trainer)"
