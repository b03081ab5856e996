"""The report's mean tok/s of a resumed run: the tokens its training loops trained on over their time, as
summary.json (and so `nsa status` and `nsa runs`) counts one attempt's, the steps a resume did again included."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fixtures.cli import invoke
from fixtures.runs import V1RunWriter, make_v1_run, start_training

from nsa_train.telemetry import schema
from nsa_train.telemetry.writer import truncate_csv_after
from nsa_tui.report.load import final_numbers, load_report_run

STEP_S = 0.5  # each step's time, in every attempt: a steady run's mean is its one speed


def boot(w: V1RunWriter, *, resume: bool) -> float:
    """A new process (its own pid) booting in ``w``'s run; returns its boot time."""
    w.ts += 30.0
    w.step = 0
    w.pid += 100
    argv = ["nsa_train/train.py", "--run-dir", str(w.path), *(["--resume"] if resume else [])]
    rec = schema.make_record(schema.KIND_BOOT, 0, 0, w.pid, w.ts, argv=argv, world_size=1)
    with open(w.path / schema.heartbeat_name(0), "a", encoding="utf-8") as fh:
        fh.write(schema.encode(rec))
    return w.ts


def train_phase_ts(path: Path) -> list[float]:
    recs = [json.loads(line) for line in (path / schema.heartbeat_name(0)).read_text().splitlines()]
    return [r["ts"] for r in recs if r["kind"] == schema.KIND_PHASE and r.get("phase") == "train"]


def killed_at_55_resumed_from_40(path: Path, second_batch: int | None = None) -> tuple[V1RunWriter, float]:
    """Checkpoint at 40, a progress record at 50, alive at 55, SIGKILL; resumed from 40 (with ``second_batch`` as
    train.batch_size), finished at 100 with the summary the trainer writes (its own process: steps 41..100 over its
    loop's time). Returns (writer, the second attempt's tokens per step)."""
    w = make_v1_run(path, steps=40, total_steps=100, log_every=10, step_time_s=STEP_S, state="running")
    w.checkpoint()
    w.progress(1)  # step 50
    w.step = 55
    w.liveness(advance_s=5 * STEP_S)  # the last sign of the killed process: no end record, no summary
    boot(w, resume=True)
    start_training(w, 100, 40)
    if second_batch is not None:
        w.config["train"]["batch_size"] = second_batch
    truncate_csv_after(path / schema.TRAINING_CSV, 40)
    w.progress(6)  # 50 .. 100
    w.checkpoint()
    w.end(schema.END_COMPLETED, 0)
    tr = w.config["train"]
    per_step = tr["seq_len"] * tr["batch_size"] * tr["grad_accum"]
    loop_s = w.ts - train_phase_ts(path)[-1]
    summary = {
        "v": 1,
        "run": path.name,
        "end_reason": "completed",
        "steps_completed": 100,
        "total_steps": 100,
        "tokens_seen": 100 * per_step,
        "train_time_s": loop_s,
        "mean_toks_per_s": 60 * per_step / loop_s,
    }
    (path / schema.SUMMARY_JSON).write_text(json.dumps(summary))
    return w, per_step


def test_a_resumed_runs_mean_counts_the_steps_done_again(tmp_path):
    """The report said 4177 tok/s where status said 4,521 mean: it divided the final tokens_seen (100 steps) by the
    loop time of both attempts, which trained 55 + 60 steps."""
    path = tmp_path / "r"
    w, per_step = killed_at_55_resumed_from_40(path)
    nums = final_numbers(load_report_run(path))
    assert nums["attempts"] == 2 and nums["resumed_at"] == [40]
    recs = [json.loads(line) for line in (path / schema.heartbeat_name(0)).read_text().splitlines()]
    killed = next(r["ts"] for r in recs if r["kind"] == schema.KIND_LIVENESS and r["step"] == 55)
    first_train, second_train = train_phase_ts(path)
    loops = (killed - first_train) + (w.ts - second_train)  # each loop's time, not the boots before them
    expected = (55 + 60) * per_step / loops
    assert nums["mean_toks_per_s"] == pytest.approx(expected)
    assert nums["mean_toks_per_s"] == pytest.approx(per_step / STEP_S, rel=0.05)  # the run's one speed
    # status and runs say the last attempt's mean (its summary): a steady run's two means agree
    status = json.loads(invoke("status", "--json", str(path)).stdout)
    assert status["mean_toks_per_s"] == pytest.approx(nums["mean_toks_per_s"], rel=0.1)


def test_status_runs_and_watch_say_a_resumed_runs_mean_is_its_last_attempts(tmp_path):
    """`nsa status` printed a resumed run's summary mean as "tok/s mean", the whole run's to a reader, where it is
    the last attempt's (the report's is the whole run's); a run never resumed says "mean" alone."""
    from nsa_tui.tail.local import LocalRunSource
    from nsa_tui.watch.charts import RunCharts, ViewSettings
    from nsa_tui.watch.model import RunModel
    from nsa_tui.watch.verdict import evaluate

    resumed = tmp_path / "resumed"
    killed_at_55_resumed_from_40(resumed)
    once = make_v1_run(tmp_path / "once", steps=100, total_steps=100, log_every=10, state="finished").path
    (once / schema.SUMMARY_JSON).write_text(json.dumps({"v": 1, "steps_completed": 100, "mean_toks_per_s": 425.3}))
    for path, was_resumed in ((resumed, True), (once, False)):
        status = json.loads(invoke("status", "--json", str(path)).stdout)
        assert status["resumed"] is was_resumed and status["mean_toks_per_s"] is not None
        text = invoke("status", str(path)).stdout
        assert ("tok/s mean (last attempt)" in text) is was_resumed and "tok/s mean" in text
        m = RunModel(path.name, LocalRunSource(path, force_poll=True))
        m.pump()
        m.source.close()
        v = evaluate(m.history, time.time(), path)
        fields = RunCharts(m).title_fields("toks", ViewSettings(), v.mean_toks_per_s, m.history.resumed)
        assert (fields[1:2] == [" (last attempt)"]) is was_resumed, fields
    # `nsa runs` marks the resumed run's mean and says what the mark means under the table, once
    lines = invoke("runs", str(tmp_path)).stdout.splitlines()
    row = {line.split()[0]: line for line in lines[1:3]}
    assert " mean* " in row["resumed"] and " mean " in row["once"] and "*" not in row["once"], lines
    assert lines[3:] == [
        "* the mean of the run's last attempt: it was resumed (`nsa report RUN` gives the whole run's)"
    ]


def test_an_attempts_loop_time_is_its_end_records_as_the_summary_counts_it(tmp_path):
    """Each loop's time ran from its train record to its last record, the end's final bookkeeping included (1.69 s
    where the summary's train_time_s said 1.28 on a tiny run): the report's mean was not the summary's measure. The
    end record's train_time_s is used where there is one; a killed process has none and keeps the old measure."""
    path = tmp_path / "r"
    w, per_step = killed_at_55_resumed_from_40(path)
    lines = (path / schema.heartbeat_name(0)).read_text().splitlines(keepends=True)
    end = json.loads(lines[-1])
    assert end["kind"] == schema.KIND_END
    recs = [json.loads(line) for line in lines]
    killed = next(r["ts"] for r in recs if r["kind"] == schema.KIND_LIVENESS and r["step"] == 55)
    first_train, second_train = train_phase_ts(path)
    second_loop = (w.ts - second_train) * 0.8  # the loop proper: less than train record -> end record
    (path / schema.heartbeat_name(0)).write_text(
        "".join(lines[:-1]) + json.dumps({**end, "train_time_s": second_loop}) + "\n"
    )
    nums = final_numbers(load_report_run(path))
    assert nums["attempts"] == 2
    assert nums["mean_toks_per_s"] == pytest.approx((55 + 60) * per_step / ((killed - first_train) + second_loop))


def test_each_attempts_tokens_come_from_its_own_points(tmp_path):
    """A resume may change train.batch_size: each attempt's tokens per step are its own records'."""
    from nsa_tui.report.load import attempts

    path = tmp_path / "r"
    make_v1_run(tmp_path / "probe", steps=10)
    first_per_step = json.loads((tmp_path / "probe" / schema.RUN_JSON).read_text())["tokens_per_step"]
    _, per_step = killed_at_55_resumed_from_40(path, second_batch=2)
    h = load_report_run(path).history
    first, second = attempts(h)
    assert (first.start_step, first.last_step, second.start_step, second.last_step) == (0, 55, 40, 100)
    assert first.tokens_per_step == first_per_step and second.tokens_per_step == per_step != first_per_step
    assert first.trained_tokens == 55 * first_per_step and second.trained_tokens == 60 * per_step


def test_a_ddp_resume_whose_rank_1_boots_first_does_not_count_the_pause(tmp_path):
    """A 2-rank run halted, resumed an hour later: rank 1 booted 16 ms before rank 0, and that boot ended the halted
    attempt, so the report's wall time held the hour and its mean tok/s fell to a tenth."""
    from status.test_ddp import record

    from nsa_tui.report.load import attempts

    w = make_v1_run(tmp_path / "r2", steps=40, total_steps=100, log_every=10, step_time_s=STEP_S, n_ranks=2,
                    state="halted")  # fmt: skip
    halted_at = w.ts
    w.ts += 3600.0
    w.pid += 1000
    argv = ["nsa_train/train.py", "--run-dir", str(w.path), "--resume"]
    w.ts -= 0.016
    record(w, 1, schema.KIND_BOOT, 0, argv=argv, world_size=2, local_rank=1)
    w.ts += 0.016
    record(w, 0, schema.KIND_BOOT, 0, argv=argv, world_size=2, local_rank=0)
    resumed = w.ts
    start_training(w, 100, 40)
    w.progress(6)
    w.end(schema.END_COMPLETED, 0)
    h = load_report_run(w.path).history
    first, second = attempts(h)
    assert first.last == pytest.approx(halted_at, abs=1.0) and second.boot == pytest.approx(resumed)
    nums = final_numbers(load_report_run(w.path))
    assert nums["attempts"] == 2 and nums["wall_time_s"] < 600, nums["wall_time_s"]
