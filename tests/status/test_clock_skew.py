"""Records written by a clock other than this machine's (health/clock.py). A record's ts far from its heartbeat
file's mtime (stamped by the filesystem the reader sees when the record was appended) means the writer's clock
differs: the run is aged from the mtime, and `clock_skew` says so. Before, `heartbeat_age` clamped a future
record's age at 0: a hung run written by a clock ahead read `running, health OK, heartbeat 0s ago`, exit 0, and a
healthy run written by a clock behind read `stalled`, critical."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from fixtures.cli import invoke
from fixtures.runs import make_v1_run

from nsa_train.telemetry import schema
from nsa_tui.health import evaluate
from nsa_tui.health.engine import heartbeat_age, heartbeat_ahead
from nsa_tui.report.load import final_numbers, load_report_run
from nsa_tui.runs import RunHistory, load_run
from nsa_tui.runs.history import ClockStep
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.verdict import VerdictView
from nsa_tui.watch.verdict import evaluate as watch_evaluate


def _written_at(path: Path, rank: int, when: float) -> None:
    """The rank's heartbeat file last appended at ``when`` on this machine's clock (its mtime)."""
    os.utime(path / schema.heartbeat_name(rank), (when, when))


def _status(path: Path) -> tuple[int, dict]:
    res = invoke("status", "--json", str(path))
    return res.exit_code, json.loads(res.stdout)


def _rules(obj: dict) -> dict[str, str]:
    return {a["rule"]: a["message"] for a in obj["alerts"]}


def _dashboard(path: Path) -> tuple[VerdictView, float | None]:
    """The dashboard's verdict of ``path`` and its header's heartbeat age, read as `nsa watch` reads it."""
    m = RunModel(path.name, LocalRunSource(path, force_poll=True), where=str(path))
    try:
        m.pump()
        m.pump()
        return watch_evaluate(m.history, time.time()), heartbeat_age(m.history, time.time())
    finally:
        m.source.close()


def _shift(path: Path, rank: int, by: float, *, last_only: bool = False) -> None:
    """Add ``by`` seconds to the ts of ``rank``'s records (its newest only, with ``last_only``), keeping the mtime."""
    hb = path / schema.heartbeat_name(rank)
    st = hb.stat()
    lines = hb.read_text().splitlines()
    todo = [len(lines) - 1] if last_only else range(len(lines))
    for i in todo:
        rec = json.loads(lines[i])
        rec["ts"] += by
        lines[i] = json.dumps(rec)
    hb.write_text("\n".join(lines) + "\n")
    os.utime(hb, (st.st_atime, st.st_mtime))


def test_a_hung_run_written_by_a_clock_an_hour_ahead_is_stalled(tmp_path):
    """The reviewer's `ahead_stuck` (an NFS mount of a box whose clock is 1 h ahead): silent for 30 min."""
    now = time.time()
    path = tmp_path / "ahead"
    make_v1_run(path, steps=300, now=now + 3600, age_s=1800)  # records on the writer's clock
    _written_at(path, 0, now - 1800)  # the filesystem's: the last append was 30 min ago
    code, v = _status(path)
    assert (code, v["state"], v["health"]) == (2, "stalled", "critical"), v
    assert 1795 < v["last_heartbeat_age_s"] < 1830
    rules = _rules(v)
    assert rules["heartbeat_stale"].startswith("no progress for 30m")
    assert rules["clock_skew"].startswith("clock skew: the records are 60m00s ahead of their file's write time")
    human = invoke("status", str(path)).stdout
    assert "heartbeat 30m" in human and "clock skew: the records are 60m00s ahead" in human, human


def test_a_healthy_run_written_by_a_clock_an_hour_behind_is_running(tmp_path):
    now = time.time()
    path = tmp_path / "behind"
    make_v1_run(path, steps=300, now=now - 3600, age_s=2)
    _written_at(path, 0, now - 2)
    code, v = _status(path)
    assert (code, v["state"], v["health"], list(_rules(v))) == (1, "running", "warning", ["clock_skew"]), v
    assert v["last_heartbeat_age_s"] < 30
    assert "the records are 60m00s behind their file's write time" in _rules(v)["clock_skew"]


def test_one_record_with_a_bad_ts_does_not_make_a_stalled_run_fresh(tmp_path):
    """The reviewer's `glitch_live`: a run silent for an hour whose last record got ts + 1 year."""
    path = tmp_path / "glitch"
    make_v1_run(path, steps=300, state="stalled")
    _shift(path, 0, 365 * 86400, last_only=True)
    code, v = _status(path)
    assert (code, v["state"]) == (2, "stalled"), v
    assert v["last_heartbeat_age_s"] > 3500
    assert set(_rules(v)) == {"heartbeat_stale", "clock_skew"}
    assert _rules(v)["heartbeat_stale"].startswith("no progress for 60m00s")


def test_a_copy_whose_mtimes_agree_with_future_records_gives_no_age(tmp_path):
    """An `rsync -t` copy of runs written 1 h ahead: the files agree with their records, both ahead of now. No
    age can be told: none is given (not `0s`), and the verdict warns rather than says OK."""
    now = time.time()
    path = tmp_path / "copy"
    make_v1_run(path, steps=300, now=now + 3600, age_s=2)  # the fixture stamps each file with its newest ts
    code, v = _status(path)
    assert (code, v["state"], v["health"], v["last_heartbeat_age_s"]) == (1, "running", "warning", None), v
    assert "59m5" in _rules(v)["clock_skew"] and "ahead of this machine's clock" in _rules(v)["clock_skew"]
    assert "heartbeat dated 59m5" in invoke("status", str(path)).stdout  # how far ahead: no age


def test_rank_ones_clock_ahead_does_not_make_it_last_seen_0s_ago(tmp_path):
    """Two ranks, rank 1's clock 1 h ahead, run hung 20 min: the alert said `last seen: rank 1 0s ago` and the
    header `heartbeat 0s ago`."""
    now = time.time()
    path = tmp_path / "two"
    make_v1_run(path, steps=300, n_ranks=2, now=now, age_s=1200)
    _shift(path, 1, 3600)
    code, v = _status(path)
    assert (code, v["state"]) == (2, "stalled"), v
    assert 1195 < v["last_heartbeat_age_s"] < 1230
    stale, skew = _rules(v)["heartbeat_stale"], _rules(v)["clock_skew"]
    assert "last seen: rank 1 20m" in stale and "rank 1 0s" not in stale, stale
    assert skew.startswith("clock skew: rank 1's records are 60m00s ahead of their file's write time"), skew


def test_a_rank_whose_file_agrees_with_its_clock_ahead_is_named_without_an_age(tmp_path):
    """As above, rank 1's file stamped by its own clock too (an rsync -t copy): no age can be told for it. The alert
    left it out of `last seen`, and clock_skew said `a hang is not caught` beside the critical heartbeat_stale that
    caught it, by rank 0's records."""
    now = time.time()
    path = tmp_path / "two"
    make_v1_run(path, steps=300, n_ranks=2, now=now, age_s=1200)
    _shift(path, 1, 3600)
    _written_at(path, 1, now + 2400)
    code, v = _status(path)
    assert (code, v["state"]) == (2, "stalled") and 1195 < v["last_heartbeat_age_s"] < 1230, v
    stale, skew = _rules(v)["heartbeat_stale"], _rules(v)["clock_skew"]
    assert "last seen: rank 1 at a time that cannot be told (its records are 39m5" in stale, stale
    assert "ahead of this clock)" in stale, stale
    assert skew.endswith("rank 1's age cannot be told (a hang is judged by rank 0's)"), skew


def test_the_dashboard_data_layer_judges_a_skewed_run_as_status_does(tmp_path):
    now = time.time()
    path = tmp_path / "ahead"
    make_v1_run(path, steps=300, now=now + 3600, age_s=1800)
    _written_at(path, 0, now - 1800)
    w, age = _dashboard(path)
    assert (w.state, w.health) == ("stalled", "critical")
    assert {a.rule for a in w.alerts} == {"heartbeat_stale", "clock_skew"}
    assert age is not None and 1795 < age < 1830  # the header's `heartbeat ... ago`


@pytest.mark.parametrize("ahead", [0.0, 60.0])
def test_clocks_that_agree_within_the_tolerance_change_nothing(tmp_path, ahead):
    now = time.time()
    path = tmp_path / "ok"
    make_v1_run(path, steps=300, now=now, age_s=2)
    _written_at(path, 0, now - 2 - ahead)  # a write latency, a coarse mtime
    code, v = _status(path)
    assert (code, v["state"], v["health"], v["alerts"]) == (0, "running", "ok", []), v


@pytest.mark.slow
@pytest.mark.parametrize("with_nsa", [False, True])
def test_one_future_record_on_a_host_is_caught_over_ssh(tmp_path, sshd_factory, monkeypatch, with_nsa):
    """`--host` judges on the host's clock, so a writer-wide skew cannot fool it, but one record with a bad ts did:
    `running, health OK, heartbeat 0s ago`. The host's mtimes travel with its files (and its nsa reads its own)."""
    s = sshd_factory(with_nsa=with_nsa)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    path = tmp_path / "glitch"
    make_v1_run(path, steps=300, state="stalled")
    _shift(path, 0, 365 * 86400, last_only=True)
    res = invoke("status", "--json", "--host", s.host, str(path))
    v = json.loads(res.stdout)
    assert (res.exit_code, v["state"], v["via"]) == (2, "stalled", "remote-nsa" if with_nsa else "ssh"), v
    assert set(_rules(v)) == {"heartbeat_stale", "clock_skew"} and v["last_heartbeat_age_s"] > 3500


def _step_clock(path: Path, by: float, after_step: int) -> None:
    """The writer's clock stepped by ``by`` seconds after ``after_step``: every later record's ts (heartbeat and
    training.csv) moves; the trainer's monotonic step times (dt_step_s) do not."""
    hb = path / schema.heartbeat_name(0)
    out, stepped = [], False
    for line in hb.read_text().splitlines():
        rec = json.loads(line)
        stepped = stepped or (rec["kind"] == schema.KIND_PROGRESS and rec["step"] > after_step)
        rec["ts"] += by if stepped else 0.0
        out.append(json.dumps(rec))
    hb.write_text("\n".join(out) + "\n")
    csv = path / schema.TRAINING_CSV
    rows = csv.read_text().splitlines()
    i = rows[0].split(",").index("ts")
    for k, row in enumerate(rows[1:], 1):
        cells = row.split(",")
        if int(cells[0]) > after_step:
            cells[i] = repr(float(cells[i]) + by)
        rows[k] = ",".join(cells)
    csv.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("by", [300.0, 3600.0])
def test_a_forward_clock_step_does_not_inflate_the_eta(tmp_path, by):
    """The reviewer's `jf300`/`jump_fwd`: 600 steps left at 0.4 s a step (4 min) read `ETA 11m41s` and `1h36m`,
    the step counted as training time. The rate now comes from the trainer's dt_step_s."""
    now = time.time()
    path = tmp_path / "fwd"
    make_v1_run(path, steps=400, total_steps=1000, now=now - by, age_s=2)  # the clock then jumps by `by`
    _step_clock(path, by, 380)
    _written_at(path, 0, now - 2)
    code, v = _status(path)
    assert (code, v["state"], v["alerts"]) == (0, "running", []), v
    assert 230 < v["eta_s"] < 250, v["eta_s"]


@pytest.mark.parametrize("hung_s", [2.0, 1200.0])
def test_a_clock_stepped_back_mid_run_is_running_not_starting(tmp_path, hung_s):
    """The reviewer's `jump_back`/`jb_hung`: records up to step 200 written while the clock was 1 h ahead, then
    the clock stepped back. By ts every later record fell before the boot: `starting, health OK, heartbeat 0s ago`
    with the liveness rules off, for the step's hour plus stuck_at_start's 15 min."""
    now = time.time()
    path = tmp_path / "back"
    make_v1_run(path, steps=400, total_steps=1000, now=now, age_s=hung_s)
    _step_clock(path, -3600.0, 200)  # the records up to 200 are 1 h ahead of the later ones
    _shift(path, 0, 3600.0)  # ... and those after 200 back on the true clock: as written
    _written_at(path, 0, now - hung_s)
    code, v = _status(path)
    skew = _rules(v)["clock_skew"]
    assert skew.startswith("the clock stepped back ~59m56s at step 210"), skew  # less the 4 s between records
    assert v["step"] == 400 and abs(v["last_heartbeat_age_s"] - hung_s) < 30
    if hung_s < 100:
        assert (code, v["state"], list(_rules(v))) == (1, "running", ["clock_skew"]), v
        assert 230 < v["eta_s"] < 250
    else:
        assert (code, v["state"], set(_rules(v))) == (2, "stalled", {"clock_skew", "heartbeat_stale"}), v


def test_the_dashboard_reads_a_clock_stepped_back_as_status_does(tmp_path):
    """The dashboard's reader (bulk blocks of progress records, then lines as they come) places the records after
    the step as status does: `running`, with the step said, not `starting` with its ranks row frozen."""
    now = time.time()
    path = tmp_path / "back"
    make_v1_run(path, steps=400, total_steps=1000, now=now, age_s=2)
    _step_clock(path, -3600.0, 200)
    _shift(path, 0, 3600.0)
    _written_at(path, 0, now - 2)
    w, age = _dashboard(path)
    assert (w.state, [a.rule for a in w.alerts]) == ("running", ["clock_skew"]), w
    assert w.alerts[0].message.startswith("the clock stepped back ~59m56s at step 210")
    assert age is not None and age < 30


@pytest.mark.parametrize("state", ["running", "crashed"])
def test_a_forward_clock_step_is_not_training_time_in_the_report(tmp_path, state):
    """The reviewer's `jump_fwd` in `nsa report`: 819k tokens in about 164 s read `wall time 1h02m | mean tok/s 218`
    (no summary.json: a run still going, or one killed before writing it). An interval far longer than its steps'
    own dt_step_s is a clock step, left out of both."""
    now = time.time()
    path = tmp_path / "fwd"
    make_v1_run(path, steps=400, total_steps=1000, state=state, now=now - 3600, age_s=2)
    _step_clock(path, 3600.0, 200)
    nums = final_numbers(load_report_run(path))
    assert 150 < nums["wall_time_s"] < 200, nums["wall_time_s"]
    assert 4500 < nums["mean_toks_per_s"] < 5500, nums["mean_toks_per_s"]


def _launched_before_a_step_back(path: Path, *, session: str | None = None, named: float | None = None) -> float:
    """launch.json dated 30 min after the run's first record, as when the clock stepped back an hour between
    `nsa launch` and the trainer's boot: every record is dated before the launch. The boot names the launch that
    started it (its launch_ts, the NSA_LAUNCH_TIME it was given: ``named``, default this launch's). Returns the
    launch time."""
    hb = path / schema.heartbeat_name(0)
    mtime = hb.stat().st_mtime
    recs = [json.loads(line) for line in hb.read_text().splitlines()]
    launched = recs[0]["ts"] + 1800.0
    for rec in recs:
        if rec["kind"] == schema.KIND_BOOT:
            rec[schema.BOOT_LAUNCH_TS] = launched if named is None else named
    hb.write_text("".join(json.dumps(r) + "\n" for r in recs))
    os.utime(hb, (mtime, mtime))
    record = {"name": path.name, "run_dir": str(path), "ts": launched}
    if session is not None:
        record.update(tmux_session=f"nsa-{path.name}", tmux_socket=session)
    (path / schema.LAUNCH_JSON).write_text(json.dumps(record))
    return launched


def test_a_boot_dated_before_its_launch_by_a_clock_step_is_that_launchs(tmp_path):
    """The reviewer's `launch_after`: a finished run whose launch.json is dated after its records read as a launch
    not booted yet: no end record, no ranks, `resumed`, the attempt's phases gone. Its boot names the launch."""
    path = tmp_path / "fin"
    make_v1_run(path, steps=300, state="finished", age_s=60)
    _launched_before_a_step_back(path)
    h = load_run(path)
    assert not h.unbooted_launch and h.boot_event is not None and list(h.attempt_ranks) == [0]
    v = evaluate(h, time.time())
    assert (v.state, v.end_reason, v.ranks, v.resumed, v.alerts) == ("finished", "completed", 1, False, [])
    w, _ = _dashboard(path)  # the dashboard's reader
    assert (w.state, w.alerts) == ("finished", [])


def test_a_boot_that_names_an_earlier_launch_does_not_end_the_wait(tmp_path):
    """Only the launch's own boot ends it: the records of an attempt an earlier launch started are that attempt's."""
    path = tmp_path / "fin"
    make_v1_run(path, steps=300, state="finished", age_s=60)
    launched = _launched_before_a_step_back(path, named=time.time() - 7200)
    h = load_run(path)
    assert h.unbooted_launch and h.boot_event is None and h.attempt_start_ts == launched


def test_status_of_a_run_booted_after_a_clock_step_back_is_running(tmp_path, tmux_socket):
    """`nsa status` of a live run whose clock stepped back between its launch and its boot: `starting, new attempt
    not booted yet` with the step and loss called the last attempt's, for the hour of the step."""
    import subprocess

    path = tmp_path / "live"
    make_v1_run(path, steps=300, age_s=2)
    _launched_before_a_step_back(path, session=tmux_socket)
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", f"nsa-{path.name}", "sleep 60"], check=True)
    code, v = _status(path)
    assert (code, v["state"], v["health"], v["alerts"], v["step"]) == (0, "running", "ok", [], 300), v
    human = invoke("status", str(path)).stdout
    assert "not booted" not in human and "starting" not in human, human


YEAR_S = 365 * 86400.0


def _rank0_at(*stamps: float) -> RunHistory:
    """A history fed rank 0's liveness records of steps 1, 2, ... dated ``stamps``, in that order."""
    h = RunHistory(schema.FORMAT_NAME)
    lines = [schema.encode(schema.make_record(schema.KIND_LIVENESS, 0, i, 7, t)) for i, t in enumerate(stamps, 1)]
    h.feed(schema.heartbeat_name(0), [line.rstrip("\n") for line in lines])
    return h


def test_one_record_dated_ahead_of_its_neighbours_is_told_from_a_clock_step():
    """A record whose next is back beside the one before it was misdated alone; a return after several is a step."""
    t = 1.8e9
    one = _rank0_at(t, t + 10, t + 20 + YEAR_S, t + 30, t + 40).clock_steps
    assert one == [ClockStep(0, 4, YEAR_S - 10, bad_ts_step=3)] and one[0].one_record
    back = _rank0_at(t, t + 10, t + 20, t + 30 - 3600, t + 40 - 3600).clock_steps
    assert back == [ClockStep(0, 4, 3590.0)] and not back[0].one_record
    several = _rank0_at(t, t + 10 + 3600, t + 20 + 3600, t + 30).clock_steps
    assert several == [ClockStep(0, 4, 3590.0)]


def test_one_record_dated_behind_its_neighbours_is_told_from_a_clock_step():
    """A record dated far behind, whose next is back beside the one before it, was read as a clock step back of its
    size, and every record after it as that far ahead. It was misdated alone: the records after it are read as dated.
    Several records behind before the return are a clock step still."""
    t = 1.8e9
    h = _rank0_at(t, t + 10, t + 20 - YEAR_S, t + 30, t + 40)
    assert h.clock_steps == [ClockStep(0, 3, YEAR_S - 10, bad_ts_step=3, behind=True)], h.clock_steps
    assert h.clock_steps[0].one_record and 0 not in h.clock_offsets
    assert h.ranks[0].last_ts == t + 40
    several = _rank0_at(t, t + 10, t + 20 - 3600, t + 30 - 3600, t + 40)
    assert several.clock_steps == [ClockStep(0, 3, 3590.0)] and several.clock_offsets == {0: 3590.0}


def _glitch_then_records(path: Path, by: float = YEAR_S) -> None:
    """A live run whose record of step 300 got ts + ``by`` (1 year), and whose records went on as before (the
    reviewer's `glitch_mid`)."""
    now = time.time()
    w = make_v1_run(path, steps=300, now=now, age_s=6)
    _shift(path, 0, by, last_only=True)
    w.progress(1)
    w.liveness(advance_s=2)


def test_one_record_with_a_bad_ts_amid_good_ones_is_said_as_such(tmp_path):
    """It read `the clock stepped back ~8759h59m at step 310 ...; clock skew: the records are 8759h59m ahead of
    their file's write time`: a year's clock step for one bad record. The verdict (running, warning) stays."""
    path = tmp_path / "glitch"
    _glitch_then_records(path)
    code, v = _status(path)
    assert (code, v["state"], list(_rules(v))) == (1, "running", ["clock_skew"]), v
    assert v["last_heartbeat_age_s"] < 30
    said = _rules(v)["clock_skew"]
    assert said.startswith(
        "one record (step 300) was dated ~8759h59m ahead of the records before and after it: a bad ts"
    ), said
    assert "stepped back" not in said and "clock skew:" not in said, said
    w, _ = _dashboard(path)  # its reader: blocks of progress records, then lines
    assert [a.message for a in w.alerts] == [said]


def test_one_record_with_a_bad_ts_behind_amid_good_ones_is_said_as_such(tmp_path):
    """It read `the clock stepped back ~8760h00m at step 300 (the records after it are read as continuing the clock
    before it); clock skew: the records are 8760h00m ahead of their file's write time`: every record after the one
    dated a year behind was read a year ahead."""
    path = tmp_path / "glitch"
    _glitch_then_records(path, by=-YEAR_S)
    code, v = _status(path)
    assert (code, v["state"], list(_rules(v))) == (1, "running", ["clock_skew"]), v
    assert v["last_heartbeat_age_s"] < 30
    said = _rules(v)["clock_skew"]
    assert said == (
        "one record (step 300) was dated ~8760h00m behind the records before and after it: a bad ts, not a clock step"
    ), said
    w, _ = _dashboard(path)  # its reader: blocks of progress records, then lines
    assert [a.message for a in w.alerts] == [said]


def test_a_finished_run_dated_a_day_ahead_says_so_rather_than_no_heartbeat(tmp_path):
    """The reviewer's `fin_ahead`: a finished run copied with the mtimes of a writer 1 day ahead. No age can be told
    (none is given, not `0s`), and nothing said why: `heartbeat - ago` in `nsa status`, `heartbeat none yet` in the
    dashboard's header. clock_skew does not judge an ended run: the heartbeat says how far ahead it is dated."""
    now = time.time()
    path = tmp_path / "fin"
    make_v1_run(path, steps=300, state="finished", now=now + 86400, age_s=600)  # files stamped with the records
    h = load_run(path)
    assert heartbeat_age(h, now) is None
    ahead = heartbeat_ahead(h, now)
    assert ahead is not None and 85700 < ahead < 85830, ahead
    code, v = _status(path)
    assert (code, v["state"], v["alerts"], v["last_heartbeat_age_s"]) == (0, "finished", [], None), v
    assert 85700 < v["heartbeat_ahead_s"] < 85830, v
    human = invoke("status", str(path)).stdout
    assert "heartbeat dated 23h5" in human and "ahead of this machine's clock" in human, human


def test_a_finished_run_dated_ahead_whose_files_were_stamped_here_is_aged_by_them(tmp_path):
    """Its files written over NFS, stamped by this side's clock: an age can be told, and nothing is dated ahead."""
    now = time.time()
    path = tmp_path / "fin"
    make_v1_run(path, steps=300, state="finished", now=now + 86400, age_s=600)
    _written_at(path, 0, now - 600)
    h = load_run(path)
    assert heartbeat_ahead(h, now) is None and 595 < heartbeat_age(h, now) < 630


def test_one_bad_record_of_one_rank_names_the_rank(tmp_path):
    now = time.time()
    path = tmp_path / "two"
    w = make_v1_run(path, steps=300, n_ranks=2, now=now, age_s=6)
    _shift(path, 1, YEAR_S, last_only=True)
    w.progress(1)  # rank 1's liveness record of step 310: back beside its records before
    code, v = _status(path)
    assert (code, v["state"], list(_rules(v))) == (1, "running", ["clock_skew"]), v
    said = _rules(v)["clock_skew"]
    assert said.startswith("one of rank 1's records (step 300) was dated ~8759h59m ahead of the records before"), said
