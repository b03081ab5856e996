"""Multi-rank runs (torchrun): the current attempt's ranks decide, and a crash names the rank that caused it.

Every rank writes its own heartbeat file and a run directory keeps them all: after a 2-rank launch, a 1-rank
`nsa launch --force` or `--resume` leaves rank 1's file with its old boot and end records, which decided the state
("finished" while the new attempt ran; "crashed" after a refused 2-rank resume). Under DDP one rank's death makes
the others fail with a gloo "connection reset by peer" a moment later: that error is not the cause. The cases below
are the record sequences of real `torchrun --nproc_per_node 2` runs on CPU (gloo), fabricated to be fast."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fixtures.runs import V1RunWriter, make_v1_run, start_training, write_console, write_exit_status

from nsa_train.telemetry import schema
from nsa_tui.health import build_rules, evaluate
from nsa_tui.launch.runner import trainer_errors
from nsa_tui.runs import RunHistory, load_run
from nsa_tui.runs import bundle as bundle_mod
from nsa_tui.runs import load as load_mod

NOW = 1_800_000_000.0
GLOO_RESET = (
    "RuntimeError: [/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error "
    "[127.0.0.1]:53988: Connection reset by peer. This is typically caused by a remote worker hanging or bugs in "
    "the application. Check the logs of the remote worker before reporting an error. GLHF!"
)
GLOO_CLOSED = (
    "RuntimeError: [/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by "
    "peer [127.0.0.1]:30621. This is typically caused by a remote worker crashing. Check the logs of the remote "
    "worker before reporting an error. GLHF!"
)
# torchrun 2.x's report when rank 1 of 2 was SIGKILLed and rank 0 then failed on the lost connection (2026-12-05)
TORCHRUN_REPORT = [
    "E1205 09:00:13.236000 13858 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: -9) "
    "local_rank: 1 (pid: 15347) of binary: /venv/bin/python3",
    "Traceback (most recent call last):",
    '  File "/venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 383, in launch_agent',
    "    raise ChildFailedError(",
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
    "=" * 60,
    "nsa_train.train FAILED",
    "-" * 60,
    "Failures:",
    "[1]:",
    "  time      : 2026-12-05_09:00:13",
    "  host      : localhost",
    "  rank      : 0 (local_rank: 0)",
    "  exitcode  : 1 (pid: 15346) ",
    "  error_file: <N/A>",
    "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html",
    "-" * 60,
    "Root Cause (first observed failure):",
    "[0]:",
    "  time      : 2026-12-05_09:00:10",
    "  host      : localhost",
    "  rank      : 1 (local_rank: 1)",
    "  exitcode  : -9 (pid: 15347)  (SIGKILL)",
    "  error_file: <N/A>",
    "  traceback : Signal 9 (SIGKILL) received by PID 15347",
    "=" * 60,
]


def record(w: V1RunWriter, rank: int, kind: str, step: int | None = None, **fields: object) -> None:
    """One heartbeat record of ``rank`` at the writer's clock (the fixture writes rank 0's metrics only)."""
    rec = schema.make_record(kind, rank, w.step if step is None else step, w.pid + rank, w.ts, **fields)
    hb = w.path / schema.heartbeat_name(rank)
    with open(hb, "a", encoding="utf-8") as fh:
        fh.write(schema.encode(rec))
    os.utime(hb, (w.ts, w.ts))  # as the trainer's append leaves it (health/clock.py)


def new_attempt(w: V1RunWriter, n_ranks: int, *, resume: bool) -> None:
    """A new torchrun of ``n_ranks`` in the run directory: every rank boots with the command line and world size
    the trainer records."""
    w.ts += 20.0
    w.step = 0
    w.n_ranks = n_ranks
    w.pid += 1000
    argv = ["nsa_train/train.py", "--run-dir", str(w.path), *(["--resume"] if resume else [])]
    for r in range(n_ranks):
        record(w, r, schema.KIND_BOOT, 0, argv=argv, world_size=n_ranks, local_rank=r, host="fixture-host")


def verdict(path: Path, now: float) -> tuple:
    h = load_run(path)
    v = evaluate(h, now, build_rules(h.config))
    return v.state, v.health, [a.rule for a in v.alerts], v.step, v.total_steps, v.ranks


# ---------------------------------------------------------------- 1: whose records decide
def test_a_refused_two_rank_resume_does_not_outlive_the_one_rank_resume_after_it(tmp_path):
    """1 rank finished at step 20; a 2-rank --resume was refused (the checkpoint was written by 1 rank: both ranks
    wrote error and end records); a 1-rank --resume then completed step 40. Status said "crashed, CRITICAL",
    quoting the refusal, with 2 ranks: rank 1's file, read after rank 0's, supplied the last boot and end."""
    path = tmp_path / "w12"
    w = make_v1_run(path, steps=20, total_steps=20, log_every=10, state="finished", now=NOW - 600)
    (path / schema.EXIT_STATUS).unlink()  # started without nsa launch
    new_attempt(w, 2, resume=True)
    w.phase("config")
    w.phase("config", done=True, total_steps=40)
    w.phase("data")
    w.phase("model")
    w.ts += 5
    refusal = "--resume: step_00000020.pt was written by 1 rank, this run has 2; the data position cannot continue"
    for r in (1, 0):
        record(w, r, schema.KIND_ERROR, message=refusal)
        record(w, r, schema.KIND_END, reason=schema.END_ERROR, exit_status=2)
    new_attempt(w, 1, resume=True)
    start_training(w, 40, 20)
    w.progress(2)
    w.eval(3.9)
    w.checkpoint()
    w.end(schema.END_COMPLETED, 0)
    (path / schema.EXIT_STATUS).unlink()
    assert verdict(path, w.ts + 5) == ("finished", "ok", [], 40, 40, 1)
    h = load_run(path)
    assert (h.attempt_world_size, sorted(h.ranks), sorted(h.attempt_ranks)) == (1, [0, 1], [0])


def forced_one_rank_run(path: Path) -> V1RunWriter:
    """`nsa launch --nproc 2` finished step 30 of 30; `nsa launch --force` of the same name with 1 rank and
    train.steps=60, now at step 40."""
    w = make_v1_run(path, steps=30, total_steps=30, log_every=10, state="finished", n_ranks=2, now=NOW - 600)
    (path / schema.EXIT_STATUS).unlink()  # the launcher removes it, keeps every other file
    new_attempt(w, 1, resume=False)
    start_training(w, 60, 0)
    w.progress(4)
    return w


def test_a_forced_one_rank_start_over_a_two_rank_run_is_judged_alone(tmp_path):
    """While the 1-rank attempt ran, status said "finished" (rank 1's old end record) with a spurious lr_mismatch
    (rank 1's total_steps: 30), and after it ended "step 60/30"."""
    path = tmp_path / "L2"
    w = forced_one_rank_run(path)
    assert verdict(path, w.ts + 2) == ("running", "ok", [], 40, 60, 1)
    w.progress(2)
    w.eval(3.5)
    w.checkpoint()
    w.end(schema.END_COMPLETED, 0)
    assert verdict(path, w.ts + 2) == ("finished", "ok", [], 60, 60, 1)


def test_a_long_forced_rerun_whose_boot_is_out_of_the_tail_is_still_judged_alone(tmp_path, monkeypatch):
    """Once rank 0's boot left status's heartbeat window (~1,100 records), the old rank 1's end record was taken
    for the running attempt's: "finished", 2 ranks. Without the boot, another rank's records count only from
    shortly before rank 0's last progress (a DDP step needs every rank)."""
    path = tmp_path / "L3"
    w = forced_one_rank_run(path)
    w.progress(40)
    limits = tuple((p, 4096 if p == schema.heartbeat_name(0) else n) for p, n in bundle_mod.FILE_LIMITS)
    monkeypatch.setattr(bundle_mod, "FILE_LIMITS", limits)  # a window that no longer holds the boot
    h = load_run(path)
    assert h.boot_event is None  # the case at hand
    assert verdict(path, w.ts + 2) == ("running", "ok", [], 440, 60, 1)


def test_odd_ranks_pids_and_world_sizes_cost_nothing(tmp_path):
    """A boot claiming 10**12 ranks hung status (a clause per rank); a negative rank counted as a rank; a pid of
    -1 (kill(-1, 0) succeeds) or 2**70 (OverflowError) judged liveness."""
    path = tmp_path / "odd"
    w = make_v1_run(path, steps=20, total_steps=100, log_every=10, now=NOW - 60)
    record(w, 0, schema.KIND_BOOT, 20, argv=["train.py"], world_size=10**12)
    record(w, 0, schema.KIND_END, 20, reason=schema.END_ERROR, exit_status=2)
    record(w, -3, schema.KIND_LIVENESS, 20)
    h = load_run(path)
    assert h.attempt_world_size is None and sorted(h.ranks) == [0]
    start = time.monotonic()
    v = evaluate(h, NOW, build_rules(h.config))
    assert time.monotonic() - start < 2 and v.state == "crashed" and len(v.alerts[0].message) < 2000
    from nsa_tui.runs.records import normalise_v1

    for pid in (-1, 0, True, 2**70, "7"):
        assert normalise_v1({"kind": "liveness", "pid": pid}, 0).pid is None
    assert normalise_v1({"kind": "liveness", "pid": 4242}, 0).pid == 4242
    assert load_mod.pid_alive(-1) is False and load_mod.pid_alive(2**70) is False


def test_any_feeding_order_of_the_rank_files_gives_the_same_verdict(tmp_path):
    """The dashboard reads the files as they change, status in name order: events are chosen by time."""
    path = tmp_path / "L2"
    w = forced_one_rank_run(path)
    names = [schema.TRAINING_CSV, schema.VAL_CSV, schema.heartbeat_name(0), schema.heartbeat_name(1)]
    seen = set()
    for order in (names, names[::-1], [names[3], names[0], names[2], names[1]]):
        h = RunHistory("nsa-v1")
        load_mod.fill_context(h, load_mod.collect_local(path))
        for name in order:
            h.feed(name, (path / name).read_bytes().splitlines())
        v = evaluate(h, w.ts + 2, build_rules(h.config))
        seen.add((v.state, v.step, v.total_steps, v.ranks, h.attempt_start_ts, h.last_phase, tuple(h.start_warnings)))
    assert len(seen) == 1 and next(iter(seen))[:4] == ("running", 40, 60, 1)


def test_heartbeat_files_are_read_in_rank_order(tmp_path, monkeypatch):
    """As text, heartbeat_rank10.jsonl sorts before heartbeat_rank2.jsonl."""
    path = tmp_path / "r"
    make_v1_run(path, steps=20, n_ranks=11, now=NOW)
    fed: list[str] = []
    real = RunHistory.feed

    def spy(self: RunHistory, source: str, lines: object) -> int:
        fed.append(source)
        return real(self, source, lines)  # type: ignore[arg-type]

    monkeypatch.setattr(RunHistory, "feed", spy)
    load_run(path)
    beats = [n for n in fed if n.startswith("heartbeat_rank")]
    assert beats == [schema.heartbeat_name(r) for r in range(11)]


def test_many_old_events_of_another_rank_do_not_push_out_the_current_boot(tmp_path):
    """Events are capped (MAX_EVENTS); the ones dropped are the oldest by time, not the first file's."""
    path = tmp_path / "r"
    w = make_v1_run(path, steps=20, n_ranks=2, now=NOW - 3600)
    for _ in range(3000):  # an earlier attempt's rank 1, evaluating often
        w.ts += 0.1
        record(w, 1, schema.KIND_EVAL, val_loss=4.0, val_ppl=54.6)
    new_attempt(w, 1, resume=False)
    start_training(w, 100, 0)
    w.progress(1)
    h = load_run(path)
    assert h.boot_event is not None and h.attempt_world_size == 1 and h.latest_step == 10
    assert evaluate(h, w.ts + 1).state == "running"


# ---------------------------------------------------------------- 2: the rank that caused a crash
def two_rank_crash(path: Path) -> V1RunWriter:
    w = make_v1_run(path, steps=90, total_steps=300, log_every=10, n_ranks=2, now=NOW - 60)
    return w


def test_a_killed_rank_is_named_with_the_oom_hint_not_only_the_others_gloo_error(tmp_path):
    """Rank 1 SIGKILLed (the OOM killer): rank 0 fails on the lost connection and writes its error and end records;
    rank 1 writes nothing more. The alert quoted rank 0's gloo error only; torchrun's report, which names rank 1
    and its exit code -9, was cut from the console tail."""
    path = tmp_path / "L3"
    w = two_rank_crash(path)
    w.ts += 5
    record(w, 0, schema.KIND_ERROR, message=GLOO_RESET)
    w.ts += 0.4
    record(w, 0, schema.KIND_END, reason=schema.END_ERROR, exit_status=1)
    write_exit_status(path, 1)
    wrapper = [f"[nsa 2026-12-05 09:00:14] rank 0 error at step 90: {GLOO_RESET}"]
    wrapper.append("[nsa 2026-12-05 09:00:14] torchrun exited with status 1")
    write_console(path, ["Traceback (most recent call last):", GLOO_RESET, *TORCHRUN_REPORT, *wrapper])
    h = load_run(path)
    v = evaluate(h, w.ts + 5, build_rules(h.config))
    assert (v.state, [a.rule for a in v.alerts], v.ranks) == ("crashed", ["process_exited"], 2)
    msg = v.alerts[0].message
    # torchrun's root cause is rank 1: it leads, with the OOM hint; rank 0's error follows
    assert msg.startswith("rank 1 stopped with no end record (its last record: step 90, 5s before the end record)")
    assert "torchrun: exitcode -9 (killed by SIGKILL" in msg and "out-of-memory killer" in msg
    # its whole text is in the console lines quoted after: its first sentence here, not the same 280 characters twice
    assert msg.index("rank 1 stopped") < msg.index(
        "rank 0's error at step 90: RuntimeError: Read error [127.0.0.1]:53988: Connection reset by peer, in full below"
    )
    assert msg.count(GLOO_RESET) == 1
    assert msg.endswith("torchrun exited with status 1 (torchrun's failure report left out; its root cause: "
                        "rank 1, exitcode -9 (SIGKILL))")  # fmt: skip
    assert "ChildFailedError" not in msg


def test_a_killed_rank_without_a_console_log_is_still_named(tmp_path):
    """A run started with torchrun by hand: no console.log, no torchrun report; rank 1's missing end record
    says it."""
    path = tmp_path / "kill1"
    w = two_rank_crash(path)
    w.ts += 0.2
    record(w, 0, schema.KIND_ERROR, message=GLOO_RESET)
    record(w, 0, schema.KIND_END, reason=schema.END_ERROR, exit_status=1)
    h = load_run(path)
    h.process_alive = False
    msg = evaluate(h, w.ts + 5, build_rules(h.config)).alerts[0].message
    assert "; rank 1 stopped with no end record (its last record: step 90, 0s before the end record): killed " in msg


PEER_LOST = (
    "lost the connection to another rank (Connection closed by peer [127.0.0.1]:34229): that rank stopped first, "
    "and its own error (or torchrun's report, when it was killed) says why"
)


def full_disk_on_rank_0(path: Path) -> tuple[V1RunWriter, str, list[str]]:
    """A 2-rank run whose rank 0 met a full disk at step 91 (`dd` filled its tmpfs, 2026-12-07): it printed its error
    but could write no record (the error, the end; its last one cut), then exited with status 2; rank 1 failed on the
    lost connection, wrote both and was SIGTERMed by torchrun. The console as that run's `nsa launch` left it: both
    errors, torchrun's report, then the wrapper's lines."""
    w = two_rank_crash(path)
    w.ts += 0.5
    cause = (
        f"cannot write heartbeat_rank0.jsonl in {path}: no space left on device (0 B free); the run stops at step "
        "91: checkpoints written before are intact. Free space and continue with --resume"
    )
    record(w, 1, schema.KIND_ERROR, step=91, message=PEER_LOST)
    record(w, 1, schema.KIND_END, step=91, reason=schema.END_ERROR, exit_status=1)
    write_exit_status(path, 1)
    with open(path / schema.heartbeat_name(0), "a", encoding="utf-8") as fh:
        fh.write('{"v":1,"ts":1796661525.97,"kind":"progress","rank":0,"step":91,"pid":7419,"loss":2.')  # cut
    report = [
        "E1207 16:38:50.420000 7383 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 2) "
        "local_rank: 0 (pid: 7419) of binary: /venv/bin/python3",
        *TORCHRUN_REPORT[1:9],
        "[1]:",
        "  rank      : 1 (local_rank: 1)",
        "  exitcode  : -15 (pid: 7420)  (SIGTERM)",
        "-" * 60,
        "Root Cause (first observed failure):",
        "[0]:",
        "  rank      : 0 (local_rank: 0)",
        "  exitcode  : 2 (pid: 7419) ",
        "  error_file: <N/A>",
        "=" * 60,
    ]
    head = ["step 90 | loss 2.6612 | lr 2.96e-03 | toks/s 6213", f"error: {cause}", "[end] error at step 91 (exit "
            "status 2)", f"error (rank 1): {PEER_LOST}"]  # fmt: skip
    return w, cause, [*head, *report]


def test_a_rank_that_could_not_write_its_records_is_named_by_its_console_error_not_sigkill(tmp_path):
    """The full disk on rank 0 was blamed on SIGKILL / the OOM killer: torchrun's exitcode 2 for rank 0 failed an
    `exitcode < 0` test, and the alert's error was rank 1's "lost the connection"; the cause only in the console
    lines at the alert's end."""
    path = tmp_path / "dd2"
    w, cause, console = full_disk_on_rank_0(path)
    from nsa_tui.health.console_tail import torchrun_failures

    assert [f.describe() for f in torchrun_failures(console) if f.root_cause] == ["rank 0, exitcode 2"]
    restated = trainer_errors(path, since=NOW - 300, failures=torchrun_failures(console), console=console)
    assert restated == [
        "rank 0 error after step 90 (its console line; its heartbeat has no error record): " + cause,
        f"rank 1 error at step 91: {PEER_LOST}",
        "rank 0 wrote no end record (its last record at step 90): torchrun: rank 0, exitcode 2, an exit with "
        "status 2, not a kill",
    ]
    write_console(path, [*console, *(f"[nsa 2026-12-07 16:28:10] {line}" for line in restated)])
    write_console(path, ["[nsa 2026-12-07 16:28:10] torchrun exited with status 1"])
    h = load_run(path)
    v = evaluate(h, w.ts + 5, build_rules(h.config))
    assert (v.state, [a.rule for a in v.alerts]) == ("crashed", ["process_exited"])
    msg = v.alerts[0].message
    assert msg.startswith(
        "the trainer ended with reason 'error' and exit status 1 (rank 0's error in console.log: cannot write "
        f"heartbeat_rank0.jsonl in {path}: no space left on device (0 B free); the run stops at step 91: "
        "checkpoints written before are intact, in full below; then rank 1: lost the connection to another rank"
    ), msg
    assert "rank 0 stopped with no end record (its last record: step 90" in msg
    assert "torchrun: exitcode 2 (it exited with status 2, not killed: its end record could not be written)" in msg
    assert "SIGKILL" not in msg and "OOM" not in msg and "out-of-memory" not in msg
    assert msg.count(cause) == 1  # the console line once: the wrapper's restatement of it is left out


def error_record_without_end_on_rank_0(path: Path) -> tuple[V1RunWriter, str]:
    """The full disk of full_disk_on_rank_0 where rank 0's error record fitted but its end record did not; rank 1
    lost its peer and ended. -> (the run's writer, rank 0's error)."""
    w = two_rank_crash(path)
    w.ts += 0.5
    cause = f"cannot write training.csv in {path}: no space left on device (0 B free); the run stops at step 91"
    record(w, 0, schema.KIND_ERROR, step=91, message=cause)
    w.ts += 1.4
    record(w, 1, schema.KIND_ERROR, step=91, message=PEER_LOST)
    record(w, 1, schema.KIND_END, step=91, reason=schema.END_ERROR, exit_status=1)
    write_exit_status(path, 1)
    return w, cause


def test_a_rank_whose_error_record_is_its_last_is_not_said_killed(tmp_path):
    """The same full disk where rank 0's error record fitted but its end record did not, and console.log was cut
    before torchrun's report (a real run, 2026-12-07): the alert said rank 0 was "killed without a chance to write
    one (SIGKILL, the OOM killer)" right after quoting its error."""
    from nsa_tui.health.console_tail import rank_console_error

    path = tmp_path / "dd2"
    w, _ = error_record_without_end_on_rank_0(path)
    write_console(path, ["step 90 | loss 2.5834 | lr 2.96e-03", "error: cannot write training.csv in /tmp/h"])
    h = load_run(path)
    msg = evaluate(h, w.ts + 5, build_rules(h.config)).alerts[0].message
    assert "rank 0's error at step 91: cannot write training.csv" in msg
    assert "rank 0 stopped with no end record (its last record: step 91, 1s before the end record): it said its " \
           "error (above), then its end record could not be written (a full disk?)" in msg  # fmt: skip
    assert "SIGKILL" not in msg
    assert rank_console_error([f"error (rank 1): {PEER_LOST}", "step 3"], 1) == PEER_LOST
    assert rank_console_error([f"error (rank 1): {PEER_LOST}"], 0) is None


def test_a_rank_that_said_its_end_record_was_not_written_is_quoted_not_guessed(tmp_path):
    """The same run with the trainer's `[end]` line saying why rank 0's end record is missing: the alert guessed "(a
    full disk?)"; it quotes the line now, and so does the report's row for the rank."""
    from nsa_tui.report.events import run_events

    path = tmp_path / "dd3"
    w, cause = error_record_without_end_on_rank_0(path)
    why = f"cannot write heartbeat_rank0.jsonl in {path}: no space left on device (0 B free)"
    end_line = f"[end] error at step 91 (exit status 2); its end record could not be written: {why}"
    write_console(path, ["step 90 | loss 2.5834 | lr 2.96e-03", f"error: {cause}", end_line])
    h = load_run(path)
    msg = evaluate(h, w.ts + 5, build_rules(h.config)).alerts[0].message
    said = f"rank 0 stopped with no end record (its last record: step 91, 1s before the end record): it said its " \
           f"error (above), then its end record could not be written: {why}"  # fmt: skip
    assert said in msg, msg
    assert "a full disk?" not in msg and "SIGKILL" not in msg
    ended = [e for e in run_events(h, ended=True) if e.what == "ended without an end record"]
    assert len(ended) == 1 and f"; its end record could not be written: {why}" in ended[0].detail, ended


def test_the_first_error_is_quoted_not_the_peer_that_lost_it(tmp_path):
    """Rank 0 raises; two seconds later rank 1 fails on the closed connection. The alert quoted rank 1's (the last
    record read: rank 1's file comes after rank 0's)."""
    path = tmp_path / "raise0"
    w = two_rank_crash(path)
    w.ts += 0.1
    record(w, 0, schema.KIND_ERROR, message="RuntimeError: injected fault on rank 0")
    w.ts += 0.4
    record(w, 0, schema.KIND_END, reason=schema.END_ERROR, exit_status=1)
    w.ts += 1.6
    record(w, 1, schema.KIND_ERROR, message=GLOO_CLOSED)
    w.ts += 0.2
    record(w, 1, schema.KIND_END, reason=schema.END_ERROR, exit_status=1)
    h = load_run(path)
    h.process_alive = False
    msg = evaluate(h, w.ts + 5, build_rules(h.config)).alerts[0].message
    assert msg.startswith(
        "the trainer ended with reason 'error' and exit status 1 (rank 0's error at step 90: RuntimeError: injected "
        "fault on rank 0; then rank 1: RuntimeError: Connection closed by peer [127.0.0.1]:30621); last lines"
    ), msg


def test_the_same_error_on_every_rank_is_said_once(tmp_path):
    path = tmp_path / "div"
    w = make_v1_run(path, steps=0, state="starting", n_ranks=2, now=NOW)
    for r in (0, 1):
        record(w, r, schema.KIND_ERROR, message="train.batch_size: 6 is not divisible by world_size x grad_accum")
        record(w, r, schema.KIND_END, reason=schema.END_ERROR, exit_status=2)
    msg = evaluate(load_run(path), NOW + 1).alerts[0].message
    assert "(rank 0's error at step 0: train.batch_size: 6 is not divisible by world_size x grad_accum; then " \
           "rank 1: the same)" in msg  # fmt: skip


def test_torchruns_report_is_read_for_its_failures():
    from nsa_tui.health.checks import brief_error
    from nsa_tui.health.console_tail import TorchrunFailure, torchrun_failures

    assert torchrun_failures(TORCHRUN_REPORT) == [
        TorchrunFailure(rank=0, exitcode=1),
        TorchrunFailure(rank=1, exitcode=-9, signal="SIGKILL", root_cause=True),
    ]
    older = ["Root Cause (first observed failure):", "[0]:", "  rank      : 3 (local_rank: 3)"]
    older += ["  exitcode  : -9 (pid: 26265)", "  traceback : Signal 9 (SIGKILL) received by PID 26265", "=" * 60]
    assert torchrun_failures(older) == [TorchrunFailure(rank=3, exitcode=-9, signal="SIGKILL", root_cause=True)]
    assert torchrun_failures(["step 40", "Failures:", "  <NO_OTHER_FAILURES>"]) == []
    assert brief_error(GLOO_CLOSED) == "RuntimeError: Connection closed by peer [127.0.0.1]:30621"


def test_the_launch_wrapper_restates_the_first_error_first_and_the_ranks_that_died_silently(tmp_path):
    """After torchrun's report, the wrapper restates what the ranks said (where `tail console.log` and the
    console tail of `nsa status` look): it listed error records by rank number, and nothing of a rank killed
    without one."""
    from nsa_tui.health.console_tail import TorchrunFailure

    path = tmp_path / "r"
    w = make_v1_run(path, steps=40, n_ranks=3, now=NOW - 60)
    started = NOW - 300  # an earlier attempt's error (before this launch) is not restated
    w.ts += 1
    record(w, 2, schema.KIND_ERROR, message="RuntimeError: injected fault on rank 2")
    w.ts += 2
    record(w, 0, schema.KIND_ERROR, message=GLOO_CLOSED)
    record(w, 0, schema.KIND_END, reason=schema.END_ERROR, exit_status=1)
    record(w, 2, schema.KIND_END, reason=schema.END_ERROR, exit_status=1)
    failures = [TorchrunFailure(rank=1, exitcode=-9, signal="SIGKILL", root_cause=True)]
    assert trainer_errors(path, since=started, failures=failures) == [
        "rank 2 error at step 40: RuntimeError: injected fault on rank 2",
        f"rank 0 error at step 40: {GLOO_CLOSED}",
        "rank 1 wrote no end record (its last record at step 40): torchrun: rank 1, exitcode -9 (SIGKILL)",
    ]


# ---------------------------------------------------------------- 3: a stall the trainer reported
@pytest.mark.parametrize("ranks", [(0, 1), (1,)])
def test_a_stall_the_watchdogs_report_makes_the_run_stalled_at_once(tmp_path, ranks):
    """Both ranks' watchdogs wrote a `stall` record (monitor.stall_s: 20 s) and stack dumps; status said "running,
    health OK" until heartbeat_stale's 120 s floor."""
    path = tmp_path / "slow"
    w = make_v1_run(path, steps=100, n_ranks=2, now=NOW - 60, monitor={"stall_s": 20.0})
    last = w.ts
    w.ts += 20.3
    for r in ranks:
        dump = str(path / f"stackdump_rank{r}_{int(w.ts)}.txt")
        record(w, r, schema.KIND_STALL, 100, seconds_since_progress=20.3, dump=dump)
    now = w.ts + 10  # 30 s without progress: heartbeat_stale waits for 120
    h = load_run(path)
    v = evaluate(h, now, build_rules(h.config))
    assert (v.state, v.health, [a.rule for a in v.alerts]) == ("stalled", "critical", ["watchdog_stall"])
    who = "ranks 0, 1" if len(ranks) == 2 else "rank 1"
    assert v.alerts[0].message.startswith(
        f"the watchdog of {who} reported step 100 not advancing for 20s (monitor.stall_s), 10s ago, and no step "
        f"since; stack dumps: stackdump_rank{ranks[0]}_"
    )
    assert v.alerts[0].since_step == 100 and last < v.alerts[0].since_ts
    # the step moves on: a liveness record of a later step, then the next progress record, clear it
    w.ts += 30
    w.step += 1
    w.liveness(1)
    assert verdict(path, w.ts + 1)[:3] == ("running", "ok", [])
    w.progress(1)
    assert verdict(path, w.ts + 1)[:3] == ("running", "ok", [])


def test_a_stall_before_the_last_progress_or_an_earlier_attempts_does_not_count(tmp_path):
    path = tmp_path / "r"
    w = make_v1_run(path, steps=100, n_ranks=2, now=NOW - 60)
    w.ts += 25
    record(w, 0, schema.KIND_STALL, seconds_since_progress=25.0, dump="d")
    w.ts += 5
    record(w, 0, schema.KIND_CHECKPOINT, path="checkpoints/x.pt", seconds=30.0, bytes=1, disk_free_gb=100.0)
    assert verdict(path, w.ts + 1)[:3] == ("running", "ok", [])  # a slow checkpoint, done
    w.progress(1)
    w.end(schema.END_HALT, 0)
    (path / schema.EXIT_STATUS).unlink()  # `nsa launch --resume` removes it
    new_attempt(w, 2, resume=True)
    start_training(w, 1000, 110)
    assert verdict(path, w.ts + 1)[:3] == ("starting", "ok", [])
    h = load_run(path)
    assert h.current_stall is None and h.last_event(schema.KIND_STALL) is not None


def test_a_stall_is_for_a_live_run_only(tmp_path):
    path = tmp_path / "r"
    w = make_v1_run(path, steps=100, n_ranks=2, now=NOW - 60)
    w.ts += 25
    record(w, 0, schema.KIND_STALL, seconds_since_progress=25.0, dump="d")
    w.end(schema.END_SIGNAL, 143)
    assert verdict(path, time.time())[:3] == ("halted", "ok", [])


def test_a_row_logged_twice_is_no_new_attempt_and_an_infinite_stall_age_is_said():
    """Each step written twice to training.csv made every row a new attempt: status went quadratic (2.3 s at
    11,000 rows); a stall record's `seconds_since_progress` of inf made watchdog_stall raise (silently off)."""
    from nsa_tui.health.checks import fmt_age

    h = RunHistory()
    header = b"step,ts,loss"
    rows = [f"{s},{1000.0 + s},{5.0}".encode() for s in range(1, 3001) for _ in range(2)]
    start = time.monotonic()
    h.feed(schema.TRAINING_CSV, [header, *rows])
    assert h.cuts == [] and h.steps[-1] == 3000 and time.monotonic() - start < 2
    assert fmt_age(float("inf")) == fmt_age(float("nan")) == "?"


def test_a_killed_launcher_after_every_rank_completed_is_a_finished_run_with_a_warning(tmp_path):
    """torchrun SIGKILLed while its 2 workers trained on: both wrote `end completed` (exit status 0), final eval and
    checkpoint, then the wrapper recorded 137. Status said "crashed ... the trainer ended with reason 'completed'",
    CRITICAL: a script gating on the exit code threw a whole run away."""
    path = tmp_path / "w2"
    make_v1_run(path, steps=120, total_steps=120, log_every=10, state="finished", n_ranks=2, now=NOW - 60)
    write_exit_status(path, 137)
    state, health, rules, *_ = verdict(path, NOW)
    assert (state, health, rules) == ("finished", "warning", ["launcher_exit"])
    v = evaluate(load_run(path), NOW, build_rules({}))
    said = next(a.message for a in v.alerts if a.rule == "launcher_exit")
    assert said.startswith("every rank completed (end records with exit status 0), but the launcher recorded exit "
                           "status 137 (torchrun itself was killed with SIGKILL")  # fmt: skip
    # torchrun `kill -9`ed mid-run: its ranks trained on to their end; when it died is not known, so not said
    assert "SIGKILL, by hand or the out-of-memory killer; its ranks completed)" in said
    assert "after its workers" not in said
    # a rank that did not complete: the run did crash
    lines = (path / schema.heartbeat_name(1)).read_text().splitlines()
    (path / schema.heartbeat_name(1)).write_text("\n".join(lines[:-1]) + "\n")  # rank 1's end record gone
    assert verdict(path, NOW)[:2] == ("crashed", "critical")
