"""A run's state has one colour everywhere: `nsa status`, `nsa runs` and the dashboard's header take it from
nsa_tui.styles.STATE_STYLE, which has one for every state the health engine gives; the dashboard's severity badges
and event kinds take theirs from the same module, one for every severity and kind the code gives."""

from __future__ import annotations

import pytest
from fixtures.runs import make_v1_run
from rich.color import ColorSystem
from rich.style import Style

from nsa_tui.commands.runs import run_runs
from nsa_tui.commands.status import run_status
from nsa_tui.health import STATES
from nsa_tui.health.engine import HEALTH
from nsa_tui.health.rules import SEVERITIES
from nsa_tui.runs.history import EVENT_KINDS
from nsa_tui.styles import EVENT_KIND_STYLE, HEALTH_STYLE, SEVERITY_BADGE_STYLE, STATE_STYLE, state_style


def test_every_state_has_a_style():
    assert set(STATE_STYLE) == set(STATES)
    for state, style in STATE_STYLE.items():
        assert Style.parse(style), state  # a typo is a rich StyleSyntaxError here, not on a user's screen
    assert state_style("a-state-from-a-newer-nsa") == "bold"


def test_every_health_and_severity_has_a_style():
    assert set(HEALTH_STYLE) == set(HEALTH)
    assert set(SEVERITY_BADGE_STYLE) == set(SEVERITIES)
    for name, style in (HEALTH_STYLE | SEVERITY_BADGE_STYLE).items():
        assert Style.parse(style), name
    # one colour per severity: the badge is the health's colour as a background, never a second meaning of it
    for sev in SEVERITIES:
        assert Style.parse(SEVERITY_BADGE_STYLE[sev]).bgcolor == Style.parse(HEALTH_STYLE[sev]).color, sev


def test_every_event_kind_has_a_style():
    assert set(EVENT_KIND_STYLE) == set(EVENT_KINDS)
    for kind, style in EVENT_KIND_STYLE.items():
        assert Style.parse(style).color is not None, kind


@pytest.fixture
def colour(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich's colours on a captured stdout, in 256 colours whatever terminal runs the tests."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.mark.parametrize("state", ["running", "finished", "crashed"])
def test_status_and_runs_colour_the_state_from_the_table(tmp_path, capsys, colour, state):
    make_v1_run(tmp_path / "runs" / "r", steps=100, state=state)
    coloured = Style.parse(STATE_STYLE[state]).render(state, color_system=ColorSystem.EIGHT_BIT)
    run_status([str(tmp_path / "runs" / "r")], host=None, as_json=False, rules_path=None)
    out = capsys.readouterr().out
    assert coloured in out, out
    run_runs(str(tmp_path / "runs"), host=None, as_json=False)
    out = capsys.readouterr().out
    assert coloured in out, out
