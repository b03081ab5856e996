"""A run a signal stopped with nobody asking (a killed tmux server's or a dropped terminal's SIGHUP) read `halted,
health OK` in `nsa status`, `nsa runs` and the dashboard, exactly as the user's own `nsa halt`: only the JSON's
end_reason `signal` told. Each says which signal, and that no halt was requested."""

from __future__ import annotations

import json
import os
import signal

import pytest
from fixtures.runs import boot, end_by_signal, make_v1_run, start_training
from typer.testing import CliRunner

from nsa_train.telemetry import schema
from nsa_tui.cli import app
from nsa_tui.health.stop_signal import UNNAMED, halted_by_text, stop_signal
from nsa_tui.launch.halt import already_ended_reason

SIGHUP_LINE = "halted by SIGHUP (no halt was requested: its terminal or tmux server went away)"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_the_signal_is_named_by_the_rank_that_received_it():
    ends = [{"reason": schema.END_SIGNAL, "exit_status": 0}, {"reason": schema.END_SIGNAL, "exit_status": 129}]
    assert stop_signal(ends) == "SIGHUP"
    assert stop_signal([{"reason": schema.END_SIGNAL, "exit_status": 0}]) == UNNAMED  # no rank says which
    assert stop_signal([{"reason": schema.END_HALT, "exit_status": 0}]) is None
    assert stop_signal([]) is None
    assert halted_by_text("SIGHUP") == SIGHUP_LINE
    assert halted_by_text(UNNAMED) == "halted by a signal (no halt was requested)"


def test_status_runs_and_json_say_a_sighup_is_no_requested_halt(runs_dir, monkeypatch):
    w = make_v1_run(runs_dir / "hup", n_ranks=2, state="running")
    end_by_signal(w, signal.SIGHUP, on_rank=1)
    make_v1_run(runs_dir / "asked", state="halted")

    res = invoke("status", "hup")
    lines = res.stdout.splitlines()
    assert " halted " in lines[0] and "health OK" in lines[0] and res.exit_code == 0, res.stdout
    assert lines[1].strip() == SIGHUP_LINE, res.stdout
    obj = json.loads(invoke("status", "--json", "hup").stdout)
    assert obj["state"] == "halted" and obj["health"] == "ok" and obj["stop_signal"] == "SIGHUP"

    asked = invoke("status", "asked").stdout
    assert " halted " in asked and "halted by" not in asked and "no halt was requested" not in asked, asked
    assert json.loads(invoke("status", "--json", "asked").stdout)["stop_signal"] is None

    monkeypatch.delenv("COLUMNS", raising=False)  # whole rows
    rows = {ln.split()[0]: ln for ln in invoke("runs").stdout.splitlines() if ln.startswith(("hup", "asked"))}
    assert "halted (SIGHUP, not requested)" in rows["hup"], rows
    assert "not requested" not in rows["asked"], rows


def _state_cells(md: str) -> dict[str, str]:
    """The Runs table's state cell of each run in a report's Markdown."""
    table = md.split("## Runs\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln.removeprefix("| ").removesuffix(" |").split(" | ") for ln in table.splitlines() if ln.startswith("| ")]
    return {cells[0]: cells[2] for cells in rows[1:]}


def test_report_says_which_signal_stopped_the_run_as_status_does(tmp_path):
    """`nsa report` of a run a killed tmux server stopped said `halted` in its Runs table, as of `nsa halt`'s."""
    runs = tmp_path / "runs"
    w = make_v1_run(runs / "hup", n_ranks=2, state="running")
    end_by_signal(w, signal.SIGHUP, on_rank=1)
    make_v1_run(runs / "asked", state="halted")
    res = invoke("report", str(runs / "hup"), str(runs / "asked"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.stdout + res.stderr
    cells = _state_cells((tmp_path / "out" / "report.md").read_text())
    assert cells == {"hup": SIGHUP_LINE, "asked": "halted"}, cells


def _event_cells(md: str) -> list[tuple[str, str, str]]:
    """(run, event, detail) of each row of a report's Events table."""
    table = md.split("## Events\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln.removeprefix("| ").removesuffix(" |").split(" | ") for ln in table.splitlines() if ln.startswith("| ")]
    return [(cells[0], cells[4], cells[5]) for cells in rows[1:]]


def test_report_events_name_the_signal_as_the_runs_table_does(tmp_path):
    """The Events row of a killed tmux server's stop said `stopped by a signal | exit status 0`: which signal, only the
    Runs table said. The rank that received it (here rank 1) names it; rank 0's row says it."""
    runs = tmp_path / "runs"
    w = make_v1_run(runs / "hup", n_ranks=2, state="running")
    for rank, status, after_s in ((1, 129, 1.0), (0, 0, 20.0)):  # rank 0's last: after the checkpoint it saved
        w.ts += after_s
        w._hb(rank, schema.KIND_END, w.step, reason=schema.END_SIGNAL, exit_status=status)
    stopped_at = w.step
    boot(w, resume=True)  # resumed, then stopped by a signal no rank names by its exit status
    start_training(w, w.total_steps, stopped_at)
    w.progress(3)
    w.ts += 5.0
    for r in range(w.n_ranks):
        w._hb(r, schema.KIND_END, w.step, reason=schema.END_SIGNAL, exit_status=0)
    res = invoke("report", str(runs / "hup"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.stdout + res.stderr
    ends = [(what, detail) for _, what, detail in _event_cells((tmp_path / "out" / "report.md").read_text())]
    ends = [(what, detail) for what, detail in ends if what.startswith(("halted", "stopped"))]
    assert ends == [(SIGHUP_LINE, "exit status 0"), (halted_by_text(UNNAMED), "exit status 0")], ends


def test_halt_of_a_run_a_signal_stopped_names_the_signal(runs_dir):
    """`nsa halt` of a run a killed tmux server had stopped said `had already ended (reason signal, step N)`: which
    signal, and that nobody asked for that halt, only `nsa status` said."""
    w = make_v1_run(runs_dir / "hup", n_ranks=2, state="running")
    end_by_signal(w, signal.SIGHUP, on_rank=1)
    res = invoke("halt", "hup")
    lines = res.stdout.splitlines()
    assert res.exit_code == 0 and lines[0].startswith("run 'hup' had already ended (reason signal, "), res.stdout
    assert lines[1] == SIGHUP_LINE, res.stdout
    assert already_ended_reason(res.stdout) == schema.END_SIGNAL  # as the dashboard's `h` on a host reads it
    assert not (runs_dir / "hup" / schema.HALT_FILE).exists()

    make_v1_run(runs_dir / "asked", state="halted")
    asked = invoke("halt", "asked").stdout
    assert "(reason halt, " in asked and "halted by" not in asked, asked


def test_halt_names_no_signal_from_an_earlier_attempts_rank(runs_dir):
    """A rank's file an earlier attempt of more ranks left ends with that attempt's end record: its SIGTERM is not
    what stopped the last attempt, whose ranks name none (status says `a signal` too)."""
    w = make_v1_run(runs_dir / "shrunk", n_ranks=2, state="running")
    end_by_signal(w, signal.SIGTERM, on_rank=1)
    w.n_ranks = 1  # resumed on one rank
    boot(w, resume=True)
    start_training(w, w.total_steps, w.step)
    w.progress(3)
    end_by_signal(w, signal.SIGHUP, on_rank=1)  # a rank this attempt does not have: no rank names the signal
    assert json.loads(invoke("status", "--json", "shrunk").stdout)["stop_signal"] == UNNAMED
    assert invoke("halt", "shrunk").stdout.splitlines()[1] == halted_by_text(UNNAMED)


OVERTAKEN_LINE = SIGHUP_LINE.replace(
    "no halt was requested", "a halt had been requested; the signal ended the run first"
)


def _stopped_while_halting(path, *, by_record: bool):
    """A run `nsa halt` was waiting on when its tmux session was killed: the SIGHUP ended it first (reason signal).
    ``by_record``: rank 0's end record says a halt was requested (the trainer saw .HALT as it saved); else a .HALT
    left from before the end (a signal during the trainer's start-up, which does not remove it)."""
    w = make_v1_run(path, state="running")
    w.ts += 1.0
    if not by_record:
        (path / schema.HALT_FILE).touch()
        os.utime(path / schema.HALT_FILE, (w.ts, w.ts))
    w.ts += 1.0
    asked = {schema.END_HALT_REQUESTED: True} if by_record else {}
    w._hb(0, schema.KIND_END, w.step, reason=schema.END_SIGNAL, exit_status=129, **asked)


@pytest.mark.parametrize("by_record", [True, False])
def test_a_signal_that_overtook_a_requested_halt_is_said_so(runs_dir, tmp_path, monkeypatch, by_record):
    """`nsa halt y` waited (.HALT created) when the session was killed: `nsa status y` said `halted by SIGHUP (no
    halt was requested: ...)`, while `nsa halt` itself said `stopped by SIGHUP, not by this halt`."""
    _stopped_while_halting(runs_dir / "y", by_record=by_record)
    res = invoke("status", "y")
    lines = res.stdout.splitlines()
    assert res.exit_code == 0 and " halted " in lines[0] and "health OK" in lines[0], res.stdout
    assert lines[1].strip() == OVERTAKEN_LINE, res.stdout
    obj = json.loads(invoke("status", "--json", "y").stdout)
    assert (obj["stop_signal"], obj["halt_overtaken"]) == ("SIGHUP", True), obj

    monkeypatch.delenv("COLUMNS", raising=False)  # whole rows
    row = next(ln for ln in invoke("runs").stdout.splitlines() if ln.startswith("y "))
    assert "halted (SIGHUP, before the requested halt)" in row, row

    halt = invoke("halt", "y").stdout.splitlines()
    assert halt[1] == OVERTAKEN_LINE, halt

    res = invoke("report", str(runs_dir / "y"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.stdout + res.stderr
    assert _state_cells((tmp_path / "out" / "report.md").read_text()) == {"y": OVERTAKEN_LINE}


def test_a_halt_file_after_the_end_is_no_request_the_signal_overtook(runs_dir):
    """A .HALT touched after the run ended asked nothing of it: the signal's halt was still nobody's."""
    w = make_v1_run(runs_dir / "late", state="running")
    end_by_signal(w, signal.SIGHUP)
    (runs_dir / "late" / schema.HALT_FILE).touch()
    os.utime(runs_dir / "late" / schema.HALT_FILE, (w.ts + 60, w.ts + 60))
    obj = json.loads(invoke("status", "--json", "late").stdout)
    assert (obj["stop_signal"], obj["halt_overtaken"]) == ("SIGHUP", False), obj
