"""How the events pane words each telemetry event (plain logic: no app needed)."""

from __future__ import annotations

from types import SimpleNamespace

from nsa_tui.watch.widgets.events_pane import describe_event


def ev(kind: str, rank: int | None = 0, **fields) -> SimpleNamespace:
    return SimpleNamespace(kind=kind, rank=rank, fields=fields)


def test_a_phase_start_and_its_done_record_read_differently():
    assert describe_event(ev("phase", phase="config")) == "phase config"
    assert describe_event(ev("phase", phase="config", done=True)) == "phase config done"
    assert describe_event(ev("phase", name="data")) == "phase data"


def test_other_kinds():
    assert describe_event(ev("eval", val_loss=2.4391)) == "eval val_loss 2.439"
    assert describe_event(ev("end", reason="halt")) == "end halt"
    assert describe_event(ev("boot", world_size=2)) == "boot world=2"
    assert describe_event(ev("stall", seconds_since_progress=125)).startswith("stall: no progress for 2m")


def test_rows_are_shared_without_blank_rows():
    from nsa_tui.watch.widgets.events_pane import split_rows

    assert split_rows(46, 14, 50) == (14, 32)  # few events: the log tail takes the rest
    assert split_rows(46, 100, 50) == (23, 23)  # both plenty: half each
    assert split_rows(46, 100, 5) == (41, 5)
    assert split_rows(46, 3, 5) == (3, 5)
    assert split_rows(46, 0, 0) == (0, 0)
    assert split_rows(5, 100, 100) == (3, 2)


def test_events_of_other_ranks_say_which():
    assert describe_event(ev("end", rank=0, reason="halt")) == "end halt"
    assert describe_event(ev("end", rank=1, reason="halt")) == "end halt (rank 1)"
    assert describe_event(ev("error", rank=3, message="CUDA error")) == "error CUDA error (rank 3)"
    assert describe_event(ev("stall", rank=None, seconds_since_progress=5)).endswith("5s")  # a format without ranks
