"""A new attempt in a run directory supersedes what earlier attempts logged past its start step.

`nsa launch --force` over a finished run keeps its files: the fresh attempt's rows land after the old ones, and
points merged by step showed "finished step 40/20, loss <the old attempt's>". A resume from a checkpoint older than
the last logged step (a crash after the checkpoint) redoes steps the dead attempt logged. Status, the dashboard and
any reading order must show the current attempt continuing from its start."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from fixtures.cli import invoke
from fixtures.runs import V1RunWriter, boot, make_v1_run, start_training, write_exit_status

from nsa_train.telemetry import schema
from nsa_train.telemetry.writer import truncate_csv_after
from nsa_tui.commands.status import new_attempt_where
from nsa_tui.health import evaluate
from nsa_tui.launch.launcher import set_aside_exit_status
from nsa_tui.report.load import final_numbers, load_report_run
from nsa_tui.runs import RunHistory, load_run
from nsa_tui.runs import bundle as bundle_mod
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.verdict import evaluate as watch_evaluate

NEW_LOSS = 1.5
NEW_VAL = 1.6


def forced_run(path: Path) -> V1RunWriter:
    """Finished at step 40 of 40; `nsa launch --force` started it again with train.steps=20, from step 0."""
    w = make_v1_run(path, steps=40, total_steps=40, state="finished", now=time.time() - 300)
    (path / schema.EXIT_STATUS).unlink()  # the launcher removes the old exit status, keeps every other file
    boot(w, resume=False)
    start_training(w, 20, 0)
    w.progress(2, loss=NEW_LOSS)
    w.eval(NEW_VAL)
    w.checkpoint()
    w.end(schema.END_COMPLETED, 0)
    return w


def resumed_run(path: Path) -> V1RunWriter:
    """Crashed at step 250 (checkpoint at 200, an eval at 250), resumed from 200: the trainer cut training.csv and
    val.csv back to 200, the heartbeat keeps the dead attempt's records of 210..250."""
    w = make_v1_run(path, steps=250, total_steps=1000, log_every=10, state="running", now=time.time() - 300)
    w.eval(9.0)
    write_exit_status(path, 1)
    (path / schema.EXIT_STATUS).unlink()  # ... and `nsa launch --resume` clears it
    boot(w, resume=True)
    start_training(w, 1000, 200)
    truncate_csv_after(path / schema.TRAINING_CSV, 200)
    truncate_csv_after(path / schema.VAL_CSV, 200)
    w.progress(3, loss=NEW_LOSS)
    return w


def read_model(path: Path) -> RunModel:
    m = RunModel(path.name, LocalRunSource(path, force_poll=True), where=str(path))
    m.pump()
    m.pump()
    m.source.close()
    return m


def shown(h: RunHistory, now: float) -> tuple:
    v = evaluate(h, now)
    return (v.state, v.health, [a.rule for a in v.alerts], v.step, v.total_steps, v.loss, v.val_loss)


def test_a_forced_start_over_a_finished_run_shows_the_new_attempt(tmp_path):
    path = tmp_path / "r"
    forced_run(path)
    s = json.loads(invoke("status", "--json", str(path)).stdout)
    said = (s["state"], s["step"], s["total_steps"], s["loss"], s["val_loss"])
    assert said == ("finished", 20, 20, NEW_LOSS, NEW_VAL)
    m = read_model(path)
    v = watch_evaluate(m.history, time.time())
    seen = (v.state, v.health, [a.rule for a in v.alerts])
    assert seen == (s["state"], s["health"], [a["rule"] for a in s["alerts"]])
    h = m.history
    assert (h.steps, h.latest_step, h.latest["loss"], h.val_steps) == ([10, 20], 20, NEW_LOSS, [20])
    assert list(m.table.cols["step"].x) == [10, 20]  # the charts: the old attempt's 30 and 40 are gone too
    # the report of the run: the current attempt's numbers
    nums = final_numbers(load_report_run(path))
    reported = (nums["step"], nums["total_steps"], nums["final_loss"], nums["final_val_loss"])
    assert reported == (20, 20, NEW_LOSS, NEW_VAL)
    # one attempt of its own: the report said "(2 attempts)" and summed the replaced run's time into it
    assert (nums["attempts"], nums["resumed_at"]) == (1, [])


def test_a_forced_runs_report_counts_its_own_attempts_and_resumes(tmp_path):
    """A finished run resumed at step 20 (a seam), then `--force`d and resumed at 30: the report said "3 attempts,
    resumed at step 20" and drew the old seam on the new run's chart."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=40, total_steps=40, state="finished", now=time.time() - 900)
    boot(w, resume=True)
    start_training(w, 60, 20)  # a resume of the first run, from step 20
    w.progress(2)
    w.end(schema.END_COMPLETED, 0)
    (path / schema.EXIT_STATUS).unlink()
    boot(w, resume=False)  # nsa launch --force
    start_training(w, 50, 0)
    w.progress(3)
    w.checkpoint()
    w.end(schema.END_HALT, 0)
    boot(w, resume=True)
    start_training(w, 50, 30)
    w.progress(1)
    w.end(schema.END_COMPLETED, 0)
    nums = final_numbers(load_report_run(path))
    assert (nums["attempts"], nums["resumed_at"]) == (2, [30])


def test_a_resume_from_before_a_crash_shows_the_new_attempt(tmp_path):
    path = tmp_path / "r"
    w = resumed_run(path)
    now = w.ts + 1
    status = load_run(path)
    m = read_model(path)
    for h in (status, m.history):
        assert (h.latest_step, h.steps[-4:], h.latest["loss"]) == (230, [200, 210, 220, 230], NEW_LOSS)
        assert 250 not in h.val_steps and h.fallbacks[-1][0] == 230
    assert shown(status, now) == shown(m.history, now)
    assert shown(status, now)[:4] == ("running", "ok", [], 230)
    assert m.table.last_step == 230 and m.table.cols["step"].x[-4:].tolist() == [200, 210, 220, 230]
    s = json.loads(invoke("status", "--json", str(path)).stdout)
    assert (s["step"], s["loss"]) == (230, NEW_LOSS)
    nums = final_numbers(load_report_run(path))
    assert (nums["step"], nums["final_loss"], nums["resumed_at"], nums["attempts"]) == (230, NEW_LOSS, [200], 2)


def test_the_dashboard_follows_a_forced_start_live(tmp_path):
    """Watching the finished run while `nsa launch --force` starts it again: from the fresh boot on, the old
    attempt's steps are gone (a fresh start begins at 0), and the charts start over with the new points."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=40, total_steps=40, state="finished", now=time.time() - 300)
    m = RunModel(path.name, LocalRunSource(path, force_poll=True), where=str(path))
    try:
        m.pump()
        assert m.history.latest_step == 40 and m.table.last_step == 40
        (path / schema.EXIT_STATUS).unlink()
        boot(w, resume=False)
        w.phase("config")
        w.phase("config", done=True, total_steps=20)
        m.pump()
        v = evaluate(m.history, w.ts + 1)
        assert (v.state, v.step, v.total_steps, v.loss) == ("starting", 0, 20, None)  # not "40/20, 200%"
        assert m.table.cols["step"].n == 0
        start_training(w, 20, 0)
        w.progress(1, loss=NEW_LOSS)
        m.pump()
        assert shown(m.history, w.ts + 1) == shown(load_run(path), w.ts + 1)
        assert shown(m.history, w.ts + 1)[:6] == ("running", "ok", [], 10, 20, NEW_LOSS)
        assert m.table.cols["step"].x.tolist() == [10] and m.table.cols["loss"].y.tolist() == [NEW_LOSS]
    finally:
        m.source.close()


def feed_in_order(path: Path, names: list[str]) -> RunHistory:
    h = RunHistory("nsa-v1")
    for name in names:
        h.feed(name, (path / name).read_bytes().splitlines())
    return h


def signature(h: RunHistory) -> tuple:
    return (
        h.steps,
        h.column("loss"),
        h.ts,
        h.val_steps,
        h.val_loss,
        h.latest_step,
        h.last_progress_ts,
        h.fallbacks[-1] if h.fallbacks else None,
    )


@pytest.mark.parametrize("make", [forced_run, resumed_run])
def test_any_reading_order_gives_the_same_history(tmp_path, make):
    """Status feeds training.csv, val.csv, then the heartbeat; the dashboard the heartbeat first (file names in
    order); either way the superseded points go, whether the cut is read before or after them."""
    path = tmp_path / "r"
    make(path)
    files = [schema.TRAINING_CSV, schema.VAL_CSV, schema.heartbeat_name(0)]
    as_status = signature(feed_in_order(path, files))
    assert signature(feed_in_order(path, files[::-1])) == as_status
    assert signature(feed_in_order(path, [files[0], files[2], files[1]])) == as_status
    assert signature(load_run(path))[:1] == as_status[:1]
    # line by line, the heartbeat interleaved with the tables by time (as a live dashboard reads them)
    h = RunHistory("nsa-v1")
    hb = (path / schema.heartbeat_name(0)).read_bytes().splitlines()
    rows = {n: (path / n).read_bytes().splitlines() for n in files[:2]}
    h.feed(files[0], rows[files[0]][:1])
    h.feed(files[1], rows[files[1]][:1])
    csv_at = {files[0]: 1, files[1]: 1}
    for line in hb:
        h.feed(files[2], [line])
        rec = json.loads(line)
        table = {schema.KIND_PROGRESS: files[0], schema.KIND_EVAL: files[1]}.get(rec["kind"])
        if table is not None and csv_at[table] < len(rows[table]):  # its row follows its record
            nxt = rows[table][csv_at[table]]
            if int(nxt.split(b",", 1)[0]) == rec["step"]:
                h.feed(table, [nxt])
                csv_at[table] += 1
    h.feed(files[0], rows[files[0]][csv_at[files[0]] :])
    h.feed(files[1], rows[files[1]][csv_at[files[1]] :])
    assert (h.steps, h.column("loss"), h.val_steps, h.latest_step) == (
        as_status[0],
        as_status[1],
        as_status[3],
        as_status[5],
    )


def test_a_forced_start_seen_only_in_training_csv(tmp_path, monkeypatch):
    """A status tail of the heartbeat that no longer holds the fresh start's records: training.csv stepping back
    says the same (its rows before the step back are the earlier attempt's)."""
    path = tmp_path / "r"
    forced_run(path)
    full = load_run(path)
    hb = schema.heartbeat_name(0)
    # the heartbeat tail: the new attempt's two progress records, its eval, checkpoint and end only
    tail = b"".join(line + b"\n" for line in (path / hb).read_bytes().splitlines()[-5:])
    limits = tuple((p, len(tail) + 1 if p == hb else n) for p, n in bundle_mod.FILE_LIMITS)
    monkeypatch.setattr(bundle_mod, "FILE_LIMITS", limits)
    cut = load_run(path)
    assert not any(e.kind == schema.KIND_BOOT for e in cut.events)
    assert (cut.steps, cut.column("loss"), cut.latest_step) == (full.steps, full.column("loss"), 20)


def test_the_report_times_an_attempt_killed_after_its_checkpoint_to_its_last_record(tmp_path):
    """Killed at step 250, 50 steps after its last checkpoint (no end record), then resumed from step 200: its records
    of steps 210..250 are superseded by the resume's and dropped from the history, so the report ended the first
    attempt at its checkpoint, short of the 20 s it trained after it."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=200, total_steps=1000, log_every=10, state="running", now=time.time() - 600)
    w.checkpoint()
    w.progress(5)  # steps 210..250, 4 s each, then SIGKILL: no end record
    first_last = w.ts
    boot(w, resume=True)
    second_boot = w.ts
    start_training(w, 1000, 200)
    truncate_csv_after(path / schema.TRAINING_CSV, 200)
    w.progress(3)
    w.end(schema.END_HALT, 0)
    records = [json.loads(line) for line in (path / schema.heartbeat_name(0)).read_text().splitlines()]
    first_boot = records[0]["ts"]
    nums = final_numbers(load_report_run(path))
    assert nums["attempts"] == 2
    assert nums["wall_time_s"] == pytest.approx((first_last - first_boot) + (w.ts - second_boot))


def relaunch(w: V1RunWriter, tmux_socket: str, at: float | None = None) -> float:
    """`nsa launch --resume` on ``w``'s run at ``at`` (default: 10 s after its last record): launch.json names a live
    tmux session; the launcher set the old exit status aside (its own code does). Returns the launch time."""
    import subprocess

    launched = w.ts + 10.0 if at is None else at
    set_aside_exit_status(w.path, resume=True)  # before the new launch.json, as the launcher does
    record = {"name": w.path.name, "tmux_session": f"nsa-{w.path.name}", "tmux_socket": tmux_socket, "ts": launched}
    (w.path / schema.LAUNCH_JSON).write_text(json.dumps(record))
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", f"nsa-{w.path.name}", "sleep 60"], check=True)
    return launched


@pytest.mark.parametrize("before", ["halted", "killed"])
def test_a_relaunch_that_has_not_booted_is_starting(tmp_path, tmux_socket, before):
    """Between `nsa launch --resume` and the new process's boot record (torchrun and the trainer's imports: seconds,
    minutes on a busy host) the records are the last attempt's: its halt end record said `halted`, and a killed
    attempt's fresh records `running` with its ETA. The new attempt is starting, from its launch time on."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=250, total_steps=1000, log_every=10, state="running", now=time.time() - 60)
    if before == "halted":
        w.end(schema.END_HALT, 0)
    launched = relaunch(w, tmux_socket)
    now = launched + 5
    for h in (load_run(path), read_model(path).history):
        v = evaluate(h, now)
        assert (v.state, v.health, [a.rule for a in v.alerts], v.eta_s) == ("starting", "ok", [], None)
        assert h.attempt_start_ts == launched and h.boot_event is None and h.end_event is None
        assert v.step == 250  # what is known so far, the last attempt's, until the new one says where it resumes
    s = json.loads(invoke("status", "--json", str(path)).stdout)
    assert (s["state"], s["health"]) == ("starting", "ok")
    # the start limit counts from the launch, not from the last attempt's boot
    v = evaluate(load_run(path), launched + 901)
    assert (v.state, [a.rule for a in v.alerts]) == ("stalled", ["stuck_at_start"])
    assert "no boot record from the process it started" in v.alerts[0].message
    # once the new process boots and trains, its records decide
    w.ts = launched
    boot(w, resume=True)
    start_training(w, 1000, 200)
    truncate_csv_after(path / schema.TRAINING_CSV, 200)
    w.progress(2, loss=NEW_LOSS)
    v = evaluate(load_run(path), w.ts + 1)
    assert (v.state, v.health, v.step, v.loss) == ("running", "ok", 220, NEW_LOSS)


def test_an_old_launch_record_does_not_hide_the_attempt_it_started(tmp_path, tmux_socket):
    """launch.json older than the boot (the launch that started this attempt) or than the last progress (a long
    run whose boot left the heartbeat tail) changes nothing."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=250, total_steps=1000, log_every=10, state="running", now=time.time() - 5)
    relaunch(w, tmux_socket, at=json.loads((path / schema.RUN_JSON).read_text())["start_time"] - 1)
    h = load_run(path)
    assert not h.unbooted_launch and h.boot_event is not None
    assert evaluate(h, w.ts + 1).state == "running"
    lines = (path / schema.heartbeat_name(0)).read_text().splitlines()
    (path / schema.heartbeat_name(0)).write_text("\n".join(lines[-5:]) + "\n")  # the boot is out of the tail
    h = load_run(path)
    assert h.boot_event is None and not h.unbooted_launch
    assert evaluate(h, w.ts + 1).state == "running"


def test_status_says_the_figures_of_a_starting_resume_are_the_last_attempts(tmp_path, tmux_socket):
    """The `new attempt` line says where the attempt is only where the `starting:` line above it does not: it said
    `at phase data` under `starting: phase data for 2s`, and `not booted yet` of a process that had booted."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=250, total_steps=1000, log_every=10, state="running", now=time.time() - 60)
    relaunch(w, tmux_socket)
    out = invoke("status", str(path)).stdout
    assert "starting" in out and "step 250/1000" in out
    assert "new attempt not booted yet: step and metrics above are the last attempt's until its first step" in out
    w.ts = time.time() - 3
    boot(w, resume=True)
    out = invoke("status", str(path)).stdout
    assert "starting: no phase record yet" in out and "since boot" in out, out
    assert "new attempt: step and metrics above are the last attempt's until its first step" in out, out
    w.phase("data")
    out = invoke("status", str(path)).stdout
    assert "starting: phase data for " in out and out.count("phase data") == 1, out
    assert "new attempt: step and metrics above" in out, out
    start_training(w, 1000, 200)
    truncate_csv_after(path / schema.TRAINING_CSV, 200)
    w.progress(1)
    assert "new attempt" not in invoke("status", str(path)).stdout


def test_without_a_start_line_the_new_attempt_line_says_where_it_is():
    """A remote nsa from before the verdict's `start` prints no `starting:` line: the phase is said here then."""
    assert new_attempt_where("data", None) == " at phase data"
    assert new_attempt_where(None, None) == " not booted yet"
    assert new_attempt_where("data", {"phase": "data", "clock": "boot"}) == ""


def test_a_new_run_starting_has_no_last_attempt_to_speak_of(tmp_path):
    """'new attempt ... the last attempt's' was printed for a brand-new run during its boot (step 0, nothing else)."""
    make_v1_run(tmp_path / "new", state="starting")
    out = invoke("status", str(tmp_path / "new")).stdout
    assert "starting" in out and "new attempt" not in out


def test_the_dashboards_elapsed_is_the_attempts_and_stops_with_it(tmp_path: Path) -> None:
    """The header's `elapsed` ran from run.json's first start_time to now unless an end record came: a killed run
    (no end record) kept counting for as long as it sat on disk, and a resume's boot showed the earlier attempt's
    time plus the gap since."""
    now = time.time()
    crashed = make_v1_run(tmp_path / "crashed", steps=300, state="crashed", now=now - 3600)  # 120 s of steps
    h = load_run(tmp_path / "crashed")
    ran = crashed.ts - json.loads((tmp_path / "crashed" / schema.RUN_JSON).read_text())["start_time"]
    assert evaluate(h, now).state == "crashed" and h.end_event is None
    assert h.attempt_elapsed(now, ended=True) == pytest.approx(ran, abs=1.0)  # to its last record: ~123 s
    assert h.attempt_elapsed(now, ended=False) == pytest.approx(ran + 3600, abs=3.0)  # a live run counts to now

    w = make_v1_run(tmp_path / "resumed", steps=40, total_steps=40, state="finished", now=now - 3600)
    first = json.loads((tmp_path / "resumed" / schema.RUN_JSON).read_text())["start_time"]
    assert load_run(tmp_path / "resumed").attempt_elapsed(now, ended=True) == pytest.approx(w.ts - first)  # to its end
    (tmp_path / "resumed" / schema.EXIT_STATUS).unlink()  # as `nsa launch --resume` does
    w.ts = now - 50.0
    boot(w, resume=True)  # 20 s ago (boot() adds 30)
    h = load_run(tmp_path / "resumed")
    assert evaluate(h, now).state != "finished"
    assert h.attempt_elapsed(now, ended=False) == pytest.approx(20.0, abs=1.0)  # not the hour since the first start


def refused_resume(w: V1RunWriter, message: str, launch_ts: float | None = None) -> None:
    """A --resume that the trainer refused once it had booted (the data files' contents changed, a checkpoint whose
    bytes are damaged): its phase records up to the data, its error, and an end record that says it was refused.
    ``launch_ts``: the launch its boot names (none: a trainer before that field)."""
    boot(w, resume=True, launch_ts=launch_ts)
    w.phase("config")
    w.phase("config", done=True, total_steps=60)  # the steps it was asked for, which it never trained
    w.phase("data")
    w.error(message)
    w.ts += 1.0
    for r in range(w.n_ranks):
        w._hb(r, schema.KIND_END, 0, reason=schema.END_ERROR, exit_status=2, **{schema.RESUME_REFUSED: True})


def test_a_resume_refused_after_its_boot_leaves_the_run_as_it_was(tmp_path, tmux_socket):
    """A finished run resumed on changed data files (the same names and sizes): the trainer refused it at the data
    phase, after its boot record, and the finished run read `crashed`, CRITICAL, step 40/60, from then on, though
    nothing of the run had changed (its checkpoints, config and summary are the last attempt's). The refused attempt
    is no attempt: the run keeps its verdict, and status says what was refused. Also launched by `nsa launch --resume`,
    whose wrapper then records the trainer's exit status 2."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=40, total_steps=40, log_every=10, state="finished", now=time.time() - 300)
    before = evaluate(load_run(path), w.ts + 30)
    done = load_run(path)
    ranks_before = {r: st.pid for r, st in done.attempt_ranks.items()}
    last_before = max(st.last_ts for st in done.attempt_ranks.values())
    was = final_numbers(load_report_run(path))
    before_nums = (was["wall_time_s"], was["mean_toks_per_s"])
    relaunch(w, tmux_socket, at=w.ts + 5)
    message = "data.path data changed since the checkpoint: 1 file/120 documents then, 1 file/119 documents now"
    refused_resume(w, message)
    write_exit_status(path, 2)  # the launch's wrapper, once the trainer exited
    now = w.ts + 30
    for h in (load_run(path), read_model(path).history):
        v = evaluate(h, now)
        assert (v.state, v.health, v.alerts, v.step, v.total_steps) == ("finished", "ok", [], 40, 40)
        # the exit status is the finished launch's, which the refused launch set aside, not the refusal's 2
        assert (v.end_reason, v.exit_status, v.mean_toks_per_s) == ("completed", 0, before.mean_toks_per_s)
        assert v.refused_resume == message
    s = json.loads(invoke("status", "--json", str(path)).stdout)
    assert (s["state"], s["health"], s["refused_resume"]) == ("finished", "ok", message)
    proc = invoke("status", str(path))
    assert proc.exit_code == 0 and "finished" in proc.stdout and "process_exited" not in proc.stdout
    assert f"resume refused (the run is as its last attempt left it): {message}" in " ".join(proc.stdout.split())
    # the report: still one attempt, its own time only (the refused process's seconds were added, "2 attempts"),
    # and the refusal in its warnings
    nums = final_numbers(load_report_run(path))
    assert (nums["attempts"], nums["wall_time_s"], nums["mean_toks_per_s"]) == (1, *before_nums)
    from nsa_tui.report.markdown import warnings_section

    said = warnings_section([load_report_run(path)])
    assert any(f"a --resume was refused (the run is as its last attempt left it): {message}" in w for w in said)
    # the ranks (the dashboard's panel, the heartbeat age) are the finished process's, not the refused one's
    h = load_run(path)
    assert {r: st.pid for r, st in h.attempt_ranks.items()} == ranks_before
    assert max(st.last_ts for st in h.attempt_ranks.values()) == last_before
    # the dashboard's health panel says it too, where the start warnings stay in view
    from nsa_tui.watch.verdict import evaluate as watch_verdict

    said = watch_verdict(read_model(path).history, now).start_warnings
    assert said == [f"a --resume was refused, the run is as its last attempt left it: {message}"]
    # a resume that then goes on is the run's attempt again, and nothing is said of the refused one
    boot(w, resume=True)
    start_training(w, 60, 40)
    w.progress(1, loss=NEW_LOSS)
    v = evaluate(load_run(path), w.ts + 1)
    assert (v.state, v.step, v.total_steps, v.refused_resume) == ("running", 50, 60, None)


def test_a_refused_resume_is_the_launch_its_boot_names_whatever_the_clock_did(tmp_path, tmux_socket):
    """The launch's process was "the first boot after the launch" by time: a clock stepped back between `nsa launch
    --resume` and the boot dated the refused boot before the launch, the refusal was not the launch's, and the run's
    exit status read as the refusal's 2. The boot names its launch (launch_ts): that decides, not the times."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=40, total_steps=40, log_every=10, state="finished", now=time.time() - 300)
    launched = relaunch(w, tmux_socket, at=w.ts + 60)
    w.ts -= 15  # the clock stepped back: the boot (30 s on) is dated 25 s before the launch that started it
    refused_resume(w, "data.path data changed since the checkpoint", launch_ts=launched)
    write_exit_status(path, 2)  # the refused launch's wrapper
    h = load_run(path)
    assert h.launch_refused and h.exit_status == 0, (h.launch_refused, h.exit_status)
    v = evaluate(h, w.ts + 30)
    assert (v.state, v.health, v.exit_status) == ("finished", "ok", 0), v
    # a launch since (not booted yet), dated before the refused boot by a clock stepped back again: that boot names
    # another launch, so it is not this one's process
    subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", f"nsa-{path.name}"], check=True)  # it ended
    relaunch(w, tmux_socket, at=w.ts - 10)
    assert not load_run(path).launch_refused


def test_a_refused_resume_of_a_crashed_run_leaves_its_crash_said_as_it_was(tmp_path, tmux_socket):
    """A launched run SIGKILLed, then `nsa launch --resume` refused after its boot: the run stayed `crashed`, but its
    process_exited alert quoted the refused launch's console.log lines (its data error, torchrun's report) and lost
    the SIGKILL / out-of-memory hint, the one thing the user needed."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=70, total_steps=300, log_every=10, state="running", now=time.time() - 300)
    killed = [
        "[nsa 2026-12-06 17:01:00] starting: torchrun --nproc-per-node 1 -m nsa_train.train --run-dir r",
        "step 70 | loss 3.1 | lr 3.00e-03 | toks/s 900",
        "Root Cause (first observed failure):",
        "[0]:",
        "  exitcode  : -9 (pid: 26265)",
        "  traceback : Signal 9 (SIGKILL) received by PID 26265",
        "[nsa 2026-12-06 17:02:00] torchrun exited with status 1",
    ]
    (path / schema.CONSOLE_LOG).write_text("\n".join(killed) + "\n")
    write_exit_status(path, 1)
    relaunch(w, tmux_socket, at=w.ts + 5)
    message = "data.path corpus changed since the checkpoint: 1 file/1500 documents then, 1 file/1501 documents now"
    refused_resume(w, message)
    refusal = [
        "[nsa 2026-12-06 17:05:00] starting: torchrun --nproc-per-node 1 -m nsa_train.train --run-dir r --resume",
        f"error: {message}",
        "[end] error at step 0 (exit status 2)",
        "  exitcode  : 2 (pid: 27000)",
        "[nsa 2026-12-06 17:05:09] torchrun exited with status 1",
    ]
    with open(path / schema.CONSOLE_LOG, "a", encoding="utf-8") as fh:
        fh.write("\n".join(refusal) + "\n")
    write_exit_status(path, 1)
    import subprocess

    subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", f"nsa-{path.name}"], check=True)  # it ended
    v = evaluate(load_run(path), w.ts + 30)
    assert (v.state, [a.rule for a in v.alerts], v.refused_resume) == ("crashed", ["process_exited"], message)
    said = v.alerts[0].message
    assert "killed by SIGKILL" in said and "Signal 9 (SIGKILL) received by PID 26265" in said
    assert "exit status 2" not in said and "1501 documents" not in said
    said = " ".join(invoke("status", str(path)).stdout.split())
    assert "Signal 9 (SIGKILL) received by PID 26265" in said and "exitcode : 2" not in said
    # refused again: the lines before the newest launch are the first refusal's, which the alert quoted as the crash's
    relaunch(w, tmux_socket, at=w.ts + 5)
    again = message.replace("1501", "1502")
    refused_resume(w, again)
    with open(path / schema.CONSOLE_LOG, "a", encoding="utf-8") as fh:
        fh.write("\n".join(line.replace(message, again).replace("17:05", "17:09") for line in refusal) + "\n")
    write_exit_status(path, 1)
    subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", f"nsa-{path.name}"], check=True)
    for h in (load_run(path), read_model(path).history):
        v = evaluate(h, w.ts + 30)
        assert (v.state, v.exit_status, v.refused_resume) == ("crashed", 1, again)  # the newest refusal said
        said = v.alerts[0].message
        assert said.endswith("PID 26265 | [nsa 2026-12-06 17:02:00] torchrun exited with status 1"), said
        assert "killed by SIGKILL" in said and "exitcode : 2" not in said and "documents now" not in said


def test_a_refused_resume_of_a_sigkilled_launch_keeps_its_exit_status(tmp_path, tmux_socket):
    """torchrun itself SIGKILLed (the out-of-memory killer): its wrapper records 137, the one sign of the kill
    (torchrun could not report its workers). `nsa launch --resume`, refused after its boot, removed that status and
    wrote its own, and the run read "the tmux session is gone without an end record", the SIGKILL hint lost. The
    refused launch set the status aside, and the run's exit status is its crashed launch's, through every refusal."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=70, total_steps=300, log_every=10, state="running", now=time.time() - 300)
    killed = [
        "[nsa 2026-12-06 17:01:00] starting: torchrun --nproc-per-node 1 -m nsa_train.train --run-dir r",
        "step 70 | loss 3.1 | lr 3.00e-03 | toks/s 900",
        "[nsa 2026-12-06 17:02:00] torchrun exited with status 137",
    ]
    (path / schema.CONSOLE_LOG).write_text("\n".join(killed) + "\n")
    write_exit_status(path, 137)
    message = "data.path corpus changed since the checkpoint: 1 file/1500 documents then, 1 file/1501 documents now"
    import subprocess

    for refusal in (2, 3):  # refused twice, each wrapper with its own status
        relaunch(w, tmux_socket, at=w.ts + 5)
        refused_resume(w, message)
        write_exit_status(path, refusal)
        subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", f"nsa-{path.name}"], check=True)  # it ended
        for h in (load_run(path), read_model(path).history):
            v = evaluate(h, w.ts + 30)
            assert (v.state, v.exit_status, v.refused_resume) == ("crashed", 137, message)
            assert [a.rule for a in v.alerts] == ["process_exited"]
            assert v.alerts[0].message.startswith("exit status 137 without an end record (killed by SIGKILL")
        s = json.loads(invoke("status", "--json", str(path)).stdout)
        assert (s["state"], s["exit_status"]) == ("crashed", 137)
    # a resume that goes on is the run's attempt: the status set aside is not its own
    relaunch(w, tmux_socket, at=w.ts + 5)
    boot(w, resume=True)
    start_training(w, 300, 70)
    w.progress(1, loss=NEW_LOSS)
    v = evaluate(load_run(path), w.ts + 1)
    assert (v.state, v.exit_status, v.refused_resume) == ("running", None, None)
    # ... nor is it a fresh start's (nsa launch --force without --resume), refused or not
    write_exit_status(path, 1)
    set_aside_exit_status(path, resume=False)
    assert not (path / schema.EXIT_STATUS_PREVIOUS).exists() and not (path / schema.EXIT_STATUS).exists()


def test_a_resume_that_failed_otherwise_still_reads_crashed(tmp_path):
    """Only a refusal (its end record says so) keeps the run's verdict: a resume that failed on a bug is the run's
    news, said as the crash it is."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=40, total_steps=40, log_every=10, state="finished", now=time.time() - 300)
    boot(w, resume=True)
    w.phase("config")
    w.error("RuntimeError: boom")
    w.end(schema.END_ERROR, 1)
    v = evaluate(load_run(path), w.ts + 1)
    assert (v.state, v.health, v.refused_resume) == ("crashed", "critical", None)


def test_a_forced_runs_report_marks_the_checkpoints_the_earlier_run_left(tmp_path):
    """After `--force` over a finished run, `nsa report` listed that run's step_40 beside this run's step_20 as if
    both were this run's. The checkpoint records since the fresh boot, and the order file after them, say which are."""
    from nsa_tui.report.markdown import checkpoints_section
    from nsa_tui.report.remote import pop_checkpoints
    from nsa_tui.runs.bundle import FileWindow

    path = tmp_path / "forced"
    forced_run(path)
    ckpts = path / schema.CHECKPOINT_DIR
    ckpts.mkdir()
    names = ["step_00000040.pt", "step_00000020.pt", "step_00000021.pt"]  # 21: a save cut before its record
    for name in names:
        (ckpts / name).write_bytes(b"PK\x03\x04")
    (ckpts / schema.CHECKPOINT_ORDER).write_text("".join(f"{n}\n" for n in names))
    (ckpts / schema.LATEST_POINTER).write_text("step_00000020.pt\n")
    local = load_report_run(path)
    assert {c.name: c.earlier for c in local.checkpoints} == {names[0]: True, names[1]: False, names[2]: False}
    lines = checkpoints_section([local])
    assert [ln for ln in lines if "an earlier run's" in ln] == [
        f"  - `{names[0]}` 4 B (an earlier run's: written before this run's `--force` start)"
    ]
    # a report over ssh reads the order file with the pointers, and marks the same
    from nsa_tui.report.load import full_bundle, report_run

    fetched = {
        f"{schema.CHECKPOINT_DIR}/{p.name}": FileWindow(p.name, p.read_bytes(), 4, None) for p in ckpts.iterdir()
    }
    remote = report_run(full_bundle(path), pop_checkpoints(fetched), "host:forced", "x")
    assert [(c.name, c.earlier) for c in remote.checkpoints] == [(c.name, c.earlier) for c in local.checkpoints]


def test_a_run_without_a_forced_start_marks_no_checkpoint(tmp_path):
    path = tmp_path / "resumed"
    resumed_run(path)
    (path / schema.CHECKPOINT_DIR).mkdir()
    (path / schema.CHECKPOINT_DIR / "step_00000200.pt").write_bytes(b"PK\x03\x04")
    assert [c.earlier for c in load_report_run(path).checkpoints] == [False]
