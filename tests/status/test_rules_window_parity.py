"""One rules window for `nsa status` and `nsa watch`: the engine judges the last RULES_WINDOW_POINTS points of each
series, and both readers hold at least that many, so a long run gets one verdict, "since step" included.

Before, the dashboard handed the rules the last 2000 rows of a big training.csv (then up to 20,000 points as it
ran) and `nsa status` a 640 KiB tail (~3000 rows): on a log_every=1 plateau status warned and the dashboard did
not, and on a long run both warned with different "since step" and "for N steps"."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from fixtures.cli import invoke
from fixtures.runs import make_v1_run

from nsa_train.telemetry import schema
from nsa_tui.health import evaluate
from nsa_tui.health.defaults import RULES_WINDOW_POINTS
from nsa_tui.runs import RunHistory
from nsa_tui.runs.bundle import file_limit
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch import model as model_mod
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.verdict import evaluate as watch_evaluate


def status_json(path: Path) -> dict:
    res = invoke("status", "--json", str(path))
    assert res.exit_code in (0, 1, 2), res.output
    return json.loads(res.stdout)


def read_model(path: Path) -> RunModel:
    m = RunModel(path.name, LocalRunSource(path, force_poll=True), where=str(path))
    m.pump()
    m.pump()
    return m


def assert_same_verdict(path: Path, m: RunModel) -> list[tuple]:
    """`nsa status --json` and the dashboard's verdict (the evaluate its health panel shows) agree."""
    s = status_json(path)
    w = watch_evaluate(m.history, time.time())
    seen = [(a.rule, a.severity, a.message, a.since_step) for a in w.alerts]
    said = [(a["rule"], a["severity"], a["message"], a["since_step"]) for a in s["alerts"]]
    assert (w.state, w.health, seen) == (s["state"], s["health"], said)
    return seen


def test_a_log_every_1_plateau_is_one_verdict(tmp_path):
    """The reviewer's repro: 8000 steps logged every step, training.csv over the dashboard's bulk-read size."""
    path = tmp_path / "plateau2"
    make_v1_run(path, steps=8000, total_steps=50000, log_every=1, state="running", alerts=("loss_plateau",), age_s=1)
    assert (path / schema.TRAINING_CSV).stat().st_size >= model_mod.BULK_MIN_BYTES
    m = read_model(path)
    try:
        alerts = assert_same_verdict(path, m)
    finally:
        m.source.close()
    assert [a[0] for a in alerts] == ["loss_plateau"]
    assert alerts[0][3] == 8000 - RULES_WINDOW_POINTS + 20  # the window's first smoothed point


def test_a_long_run_is_one_verdict_while_the_dashboard_keeps_reading(tmp_path):
    """1.2M steps logged every 100 (12,000 rows, a training.csv longer than status's tail): the same "since step"
    and "for N steps" from both, at the first read and after the dashboard's history has grown past the window."""
    path = tmp_path / "long"
    w = make_v1_run(
        path,
        steps=1_200_000,
        total_steps=2_000_000,
        log_every=100,
        state="running",
        alerts=("loss_plateau",),
        age_s=1,
        step_time_s=0.0002,  # the 3000 points added below end 60 s ahead of now, not 33 h (a clock_skew)
    )
    assert (path / schema.TRAINING_CSV).stat().st_size > file_limit(schema.TRAINING_CSV)  # status reads a tail
    m = read_model(path)
    try:
        first = assert_same_verdict(path, m)
        assert [a[0] for a in first] == ["loss_plateau"]
        w.progress(3000, plan_total=w._n + 3000)  # the run goes on; the dashboard's history grows
        m.pump()
        assert len(m.history.steps) > RULES_WINDOW_POINTS
        later = assert_same_verdict(path, m)
    finally:
        m.source.close()
    assert [a[0] for a in later] == ["loss_plateau"] and later[0][3] > first[0][3]


def test_the_engine_judges_only_the_window(tmp_path):
    """A low loss older than the window is not the "best so far" of loss_increase: a reader that holds more
    points (the dashboard) must not see a rise that one holding the window (status) cannot."""
    h = RunHistory("nsa-v1")
    n_old, n_new = 1000, RULES_WINDOW_POINTS
    rows = [",".join(schema.TRAINING_CSV_HEADER)]
    for i in range(1, n_old + n_new + 1):
        loss = 1.0 if i <= n_old else 3.0 + 0.001 * math.sin(i)
        cells = {"step": str(i), "loss": repr(loss), "ts": repr(1_700_000_000.0 + i)}
        rows.append(",".join(cells.get(k, "") for k in schema.TRAINING_CSV_HEADER))
    h.feed(schema.TRAINING_CSV, rows)
    v = evaluate(h, 1_700_000_000.0 + n_old + n_new + 1)
    assert "loss_increase" not in [a.rule for a in v.alerts]


def test_status_and_the_dashboard_read_at_least_the_window():
    """The longest training.csv row (19 cells of 24 characters: the longest float repr) and val.csv row fit
    RULES_WINDOW_POINTS times in status's tails; the dashboard's first bulk read hands the rules as many rows."""
    cell = repr(-1.2345678901234567e-300)
    assert len(cell) == 24
    training_row = ",".join([cell] * len(schema.TRAINING_CSV_HEADER)) + "\n"
    val_row = f"{10**10},{cell},{cell}\n"
    assert file_limit(schema.TRAINING_CSV) >= RULES_WINDOW_POINTS * len(training_row)
    assert file_limit(schema.VAL_CSV) >= RULES_WINDOW_POINTS * len(val_row)
    assert model_mod.RECENT_ROWS >= RULES_WINDOW_POINTS
    assert model_mod.HISTORY_POINTS >= RULES_WINDOW_POINTS
