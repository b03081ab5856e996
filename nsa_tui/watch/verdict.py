"""Thin adapter to the health engine of `nsa status` (nsa_tui.health): one engine for both.

Only shapes the engine's Verdict for display; it judges nothing itself. If the engine
cannot be imported (it is another engineer's module), the panel says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITY_ORDER = {"critical": 0, "error": 0, "warning": 1, "warn": 1, "info": 2}


@dataclass
class AlertView:
    rule: str
    severity: str
    message: str
    since_step: int | None = None


@dataclass
class VerdictView:
    state: str = "unknown"
    health: str = "unknown"
    alerts: list[AlertView] = field(default_factory=list)
    eta_s: float | None = None
    problem: str = ""  # why there is no verdict


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def evaluate(history: Any, now: float, run_dir: Any = None) -> VerdictView:
    try:
        from nsa_tui import health
    except Exception as e:  # the engine is missing or broken: say so, judge nothing
        return VerdictView(problem=f"health engine unavailable ({type(e).__name__})")
    fn = getattr(health, "evaluate", None)
    if fn is None:
        return VerdictView(problem="health engine unavailable (no evaluate)")
    try:
        v = fn(history, now=now)
    except TypeError:
        v = fn(history, now)
    except Exception as e:
        return VerdictView(problem=f"health engine failed: {e}")
    alerts = [
        AlertView(
            str(_get(a, "rule", "?")),
            str(_get(a, "severity", "warning")),
            str(_get(a, "message", "")),
            _get(a, "since_step"),
        )
        for a in (_get(v, "alerts", []) or [])
    ]
    alerts.sort(key=lambda a: (SEVERITY_ORDER.get(a.severity, 3), a.rule))
    eta = _get(v, "eta", None)
    if eta is None:
        eta = _get(v, "eta_s", None)
    return VerdictView(
        state=str(_get(v, "state", "unknown")),
        health=str(_get(v, "health", "unknown")),
        alerts=alerts,
        eta_s=float(eta) if isinstance(eta, (int, float)) else None,
    )
