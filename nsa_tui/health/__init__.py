"""Health rules (as data) and the engine that judges a RunHistory.

from nsa_tui.health import evaluate, build_rules, load_rules_file
verdict = evaluate(history, now)            # defaults + the run's monitor section
verdict = evaluate(history, now, build_rules(history.config, load_rules_file(path)))
verdict.state, verdict.health, verdict.alerts[i].rule/.severity/.message/.since_step,
verdict.eta_s, verdict.to_dict()
"""

from nsa_tui.health.defaults import DEFAULT_RULES, MONITOR_KEYS
from nsa_tui.health.engine import HEALTH, STATES, Alert, Verdict, evaluate
from nsa_tui.health.rules import BAD_RULES_EXIT, Rule, RulesError, build_rules, load_rules_file, run_rules

RULE_NAMES = tuple(DEFAULT_RULES)

__all__ = [
    "BAD_RULES_EXIT",
    "DEFAULT_RULES",
    "HEALTH",
    "MONITOR_KEYS",
    "RULE_NAMES",
    "STATES",
    "Alert",
    "Rule",
    "RulesError",
    "Verdict",
    "build_rules",
    "evaluate",
    "load_rules_file",
    "run_rules",
]
