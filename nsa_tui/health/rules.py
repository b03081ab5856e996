"""Rule specifications: defaults + a run's ``monitor`` config section + a user's rules file.

Precedence, lowest first: DEFAULT_RULES, the run's ``monitor.*`` keys and
``monitor.rules``, then ``--rules FILE``. A rules file (YAML or JSON) is either a mapping
``{rule_name: {...}}`` or ``{rules: {...}, monitor: {...}}``. A rule entry may set any of
its params, ``for`` (int steps, or "300s", "5m", "2h", "200 steps"), ``severity``
(warning|critical) and ``enabled``. A new name with ``metric`` and ``above``/``below``
adds a threshold rule over any metric column, e.g.::

    rss_high: {metric: rss_gb, above: 100, for: 5m, severity: warning,
               message: "host RAM above 100 GiB: a leak in the data pipeline?"}
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsa_train.config.schema import ConfigError
from nsa_tui.health.defaults import DEFAULT_RULES, MONITOR_KEYS
from nsa_tui.runs.records import METRICS

SEVERITIES = ("warning", "critical")
BAD_RULES_EXIT = 4  # documented in docs/health.md: a rules file or monitor section we cannot use
_FOR_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|steps?)?\s*$")
_UNIT_S = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60}
_UNIT_S |= {"minute": 60, "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600}
THRESHOLD_KEYS = ("metric", "above", "below", "message")
# the parameters whose null has a meaning (no limit; for stale_s the adaptive limit); any other null is a mistake
NULLABLE_PARAMS = frozenset({"min_toks_per_s", "min_mfu", "max_gpu_mem_gb", "stale_s"})


class RulesError(ValueError):
    """A rules file or monitor section that cannot be used; the message says where and why."""

    def in_run_config(self, where: str, source: str = "config.yaml") -> str:
        """This error as a run's own (its config's monitor section), for the run at ``where``: one wording for
        `nsa status`, `nsa runs` and `nsa report`. ``source``: the file the config was read from
        (nsa_tui.runs.load.config_file: run.json's copy when it has one, else config.yaml)."""
        return f"{where}: {self} (in its {source})"


@dataclass
class Rule:
    name: str
    severity: str
    for_steps: int = 0
    for_s: float = 0.0
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    # threshold rules added by users
    metric: str | None = None
    above: float | None = None
    below: float | None = None
    message: str | None = None

    @property
    def builtin(self) -> bool:
        return self.name in DEFAULT_RULES


def parse_for(value: Any, where: str) -> tuple[int, float]:
    """``for`` to (steps, seconds): 200 -> 200 steps; "300s"/"5m"/"2h" -> seconds; "50 steps"."""
    if isinstance(value, bool):
        raise RulesError(f"{where}: `for` must be steps (an integer) or a duration like '300s', not {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise RulesError(f"{where}: `for` must be a finite number of steps >= 0, got {value!r}")
        return _whole_steps(value, where), 0.0
    if isinstance(value, str):
        m = _FOR_RE.match(value.lower())
        if m:
            n, unit = float(m.group(1)), m.group(2)
            if unit is None or unit.startswith("step"):
                return _whole_steps(n, where), 0.0
            return 0, n * _UNIT_S[unit]
    raise RulesError(f"{where}: `for` must be steps (an integer) or a duration like '300s', '5m', not {value!r}")


def _whole_steps(n: float, where: str) -> int:
    """Steps are counted whole: 1.5 was taken as 1 without a word (seconds may be fractions: '1.5s')."""
    if n != int(n):
        raise RulesError(f"{where}: `for` in steps must be a whole number, got {n:g} (or give seconds: '{n:g}s')")
    return int(n)


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RulesError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _param(rule: str, key: str, value: Any, where: str) -> float | int | None:
    """A built-in rule's parameter, checked against what the rule can use: a number that is finite and not
    negative, a whole number for counts (points, steps, evals, lines), null only where null means "off". A bad
    value must be refused here: a check that meets one raises, and the engine skips a check that raises (it
    reads odd data that way), which would turn the rule off without a word."""
    if value is None:
        if key in NULLABLE_PARAMS:
            return None
        raise RulesError(
            f"{where}: needs a number (null is for min_toks_per_s, min_mfu and max_gpu_mem_gb: no limit, "
            "and stale_s: the adaptive limit)"
        )
    number = _float(value, where)
    if not math.isfinite(number) or number < 0:
        raise RulesError(f"{where}: must be a finite number >= 0, got {value!r}")
    if key == "min_mfu" and not 0 < number < 1:  # 5 meant as 5%: a floor no run reaches, as the config refuses it
        raise RulesError(f"{where}: must be a fraction (0.005 = 0.5%), or null; got {value!r}")
    if isinstance(DEFAULT_RULES[rule]["params"][key], int):  # a count: points, steps, evals, lines
        least = 0 if key == "skip_first_points" else 1
        if number != int(number) or number < least:
            raise RulesError(f"{where}: must be a whole number >= {least}, got {value!r}")
        return int(number)
    return number


def _apply(rule: Rule, entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise RulesError(f"{where}: expected a mapping of settings, got {type(entry).__name__}")
    for key, value in entry.items():
        w = f"{where}.{key}"
        if key == "for":
            rule.for_steps, rule.for_s = parse_for(value, where)
        elif key == "severity":
            if value not in SEVERITIES:
                raise RulesError(f"{w}: must be one of {', '.join(SEVERITIES)}, got {value!r}")
            rule.severity = value
        elif key == "enabled":
            if not isinstance(value, bool):
                raise RulesError(f"{w}: must be true or false, got {value!r}")
            rule.enabled = value
        elif key == "params" and isinstance(value, dict):
            _apply(rule, value, where)
        elif key in rule.params:
            rule.params[key] = _param(rule.name, key, value, w)
        elif not rule.builtin and key in THRESHOLD_KEYS:
            if key == "metric":
                if value not in METRICS and value != "val_loss":
                    raise RulesError(f"{w}: unknown metric {value!r}; known: {', '.join((*METRICS, 'val_loss'))}")
                rule.metric = value
            elif key == "message":
                rule.message = str(value)
            else:
                setattr(rule, key, _float(value, w))
        else:
            known = ["for", "severity", "enabled", *rule.params]
            if not rule.builtin:
                known += list(THRESHOLD_KEYS)
            raise RulesError(f"{w}: unknown setting {key!r} (known: {', '.join(known)})")


def default_rules() -> dict[str, Rule]:
    rules = {}
    for name, spec in DEFAULT_RULES.items():
        steps, secs = parse_for(spec["for"], f"defaults.{name}")
        rules[name] = Rule(name, spec["severity"], steps, secs, True, copy.deepcopy(spec["params"]))
    return rules


def _apply_rules_section(rules: dict[str, Rule], section: Any, where: str) -> None:
    if section is None:
        return
    if not isinstance(section, dict):
        raise RulesError(f"{where}: expected a mapping {{rule_name: {{...}}}}, got {type(section).__name__}")
    for name, entry in section.items():
        w = f"{where}.{name}"
        if name not in rules:
            if not isinstance(entry, dict) or "metric" not in entry:
                known = ", ".join(DEFAULT_RULES)
                raise RulesError(f"{w}: unknown rule {name!r} (built-in: {known}; a new rule needs `metric`)")
            rules[name] = Rule(str(name), "warning")
        _apply(rules[name], entry, w)
        r = rules[name]
        if not r.builtin and (r.metric is None or (r.above is None) == (r.below is None)):
            raise RulesError(f"{w}: a threshold rule needs `metric` and exactly one of `above`/`below`")


def _apply_monitor(rules: dict[str, Rule], monitor: Any, where: str) -> None:
    if not monitor:
        return
    if not isinstance(monitor, dict):
        raise RulesError(f"{where}: expected a mapping, got {type(monitor).__name__}")
    for key, (rule, param) in MONITOR_KEYS.items():
        if key in monitor:
            rules[rule].params[param] = _param(rule, param, monitor[key], f"{where}.{key}")
    _apply_rules_section(rules, monitor.get("rules"), f"{where}.rules")


def build_rules(config: dict[str, Any] | None = None, user: dict[str, Any] | None = None) -> dict[str, Rule]:
    """The rules for one run: defaults, then its config's monitor section, then the user's file."""
    rules = default_rules()
    if config:
        _apply_monitor(rules, config.get("monitor"), "config monitor")
    if user:
        _apply_monitor(rules, user.get("monitor"), "monitor")
        if "rules" in user or "monitor" in user:
            extra = set(user) - {"rules", "monitor"}
            if extra:
                raise RulesError(f"unknown top-level key(s) {', '.join(sorted(extra))}")
            _apply_rules_section(rules, user.get("rules"), "rules")
        else:
            _apply_rules_section(rules, user, "rules")
    return rules


def run_rules(config: dict[str, Any] | None) -> tuple[dict[str, Rule], RulesError | None]:
    """A run's rules from its own config, or the defaults and the mistake when its monitor section has one: a typo
    there costs the run its thresholds, not its verdict (status, report and watch all judge it with the defaults
    and say why)."""
    try:
        return build_rules(config), None
    except RulesError as e:
        return default_rules(), e


def load_rules_file(path: str | Path) -> dict[str, Any]:
    """Parse and validate a rules file (YAML or JSON); RulesError with one line otherwise."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RulesError(f"cannot read rules file {p}: {getattr(e, 'strerror', None) or e}") from None
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            from nsa_train.config.loader import load_yaml_text

            # as a config file is read: a key twice, or `for: 010` (YAML's octal 8), is an error, not the last/8
            data = load_yaml_text(text, str(p))
    except ConfigError as e:
        raise RulesError(f"rules file {e}") from None
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RulesError(f"rules file {p} is not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {first}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(f"rules file {p}: expected a mapping at the top, got {type(data).__name__}")
    try:
        build_rules(None, data)  # validate now: one clear error before reading any run
    except RulesError as e:
        raise RulesError(f"rules file {p}: {e}") from None
    return data
