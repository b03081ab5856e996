"""The colours of a verdict's health, one table for `nsa status`, `nsa runs` and the dashboard's header (rich
style strings: no Textual)."""

from __future__ import annotations

HEALTH_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red"}  # nsa_tui.health.engine.HEALTH
