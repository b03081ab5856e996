"""How the events pane words each telemetry event (plain logic: no app needed)."""

from __future__ import annotations

from types import SimpleNamespace

from nsa_tui.watch.events import describe_event


def ev(kind: str, rank: int | None = 0, step: int | None = 0, ts: float | None = None, **fields) -> SimpleNamespace:
    return SimpleNamespace(kind=kind, rank=rank, step=step, ts=ts, fields=fields)


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
    from nsa_tui.watch.layout import split_rows

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


def test_pane_shows_each_event_once_in_time_order_and_what_only_another_rank_said():
    """Rank 0's file is read before rank 1's: the pane sorts by time, drops rank 1's copies of rank 0's
    phase/eval/end records, and keeps rank 1's own error."""
    from nsa_tui.watch.events import pane_events

    rank0 = [
        ev("phase", 0, 0, 1.0, phase="train"),
        ev("eval", 0, 100, 5.0, val_loss=2.5),
        ev("end", 0, 198, 9.0, reason="halt"),
    ]
    rank1 = [
        ev("phase", 1, 0, 1.1, phase="train"),
        ev("eval", 1, 100, 5.1, val_loss=2.5),
        ev("error", 1, 150, 8.0, message="gloo timeout"),
        ev("end", 1, 198, 9.1, reason="halt"),
    ]
    shown = [describe_event(e) for e in pane_events(rank0 + rank1, 50)]
    assert shown == ["phase train", "eval val_loss 2.5", "error gloo timeout (rank 1)", "end halt"]
    assert [describe_event(e) for e in pane_events(rank0 + rank1, 2)] == ["error gloo timeout (rank 1)", "end halt"]
    # a format without ranks or timestamps keeps its order
    plain = [ev("phase", None, 0, None, phase=p) for p in ("config", "data", "model")]
    assert [describe_event(e) for e in pane_events(plain, 50)] == ["phase config", "phase data", "phase model"]


def test_a_phase_carries_its_warnings_and_another_rank_without_them_is_still_a_copy():
    from nsa_tui.watch.events import pane_events

    lr = "the lr schedule changes with this resume (train.steps 600 -> 800): step 601 trains at lr 7.42e-04"
    rank0 = [ev("phase", 0, 600, 1.0, phase="train", start_step=600, warnings=[lr, "removed a stale .HALT"])]
    rank1 = [ev("phase", 1, 600, 1.1, phase="train", start_step=600, warnings=[lr])]
    shown = [describe_event(e) for e in pane_events(rank0 + rank1, 50)]
    assert shown == [f"phase train · warning: {lr} · warning: removed a stale .HALT"]
    assert describe_event(ev("phase", 0, 0, 1.0, phase="train", warnings=[])) == "phase train"
    assert describe_event(ev("phase", 0, 0, 1.0, phase="config", done=True, warnings="odd")) == "phase config done"
