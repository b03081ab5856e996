"""A crashed run's alert shows the trainer's last lines, not torchrun's failure report after them."""

from __future__ import annotations

from fixtures.runs import make_v1_run, write_console, write_exit_status

from nsa_train.telemetry import schema
from nsa_tui.health import build_rules, evaluate
from nsa_tui.health.console_tail import without_torchrun_report
from nsa_tui.runs import load_run

NOW = 1_800_000_000.0
ERROR = "validation holdout of embedded corpus is too small: raise data.val_docs"
# what torchrun 2.13 printed after a trainer that exited 2 (paths shortened)
AGENT = "E1204 18:19:11.250000 16468 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 2)"
REPORT = [
    AGENT,
    *"""Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/venv/lib/python3.11/site-packages/torch/distributed/run.py", line 1032, in <module>
    main()
  File "/venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 383, in launch_agent
    raise ChildFailedError(
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
nsa_train.train FAILED
------------------------------------------------------------
Failures:
  <NO_OTHER_FAILURES>
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-04_18:19:11
  rank      : 0 (local_rank: 0)
  exitcode  : 2 (pid: 16474)
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
============================================================""".splitlines(),
]
TRAINER = ["step 40 | loss 5.1", f"error: {ERROR}", "[end] error at step 40 (exit status 2)"]
WRAPPER = [
    f"[nsa 2026-12-04 18:19:11] rank 0 error at step 40: {ERROR}",
    "[nsa 2026-12-04 18:19:11] torchrun exited with status 1",
]


def test_the_report_is_cut_out_whole():
    assert without_torchrun_report(TRAINER + REPORT + WRAPPER) == (TRAINER + WRAPPER, True)
    assert without_torchrun_report(TRAINER + REPORT + TRAINER + REPORT) == (TRAINER + TRAINER, True)  # two reports
    assert without_torchrun_report(TRAINER + WRAPPER) == (TRAINER + WRAPPER, False)  # none: unchanged
    # a tail that starts inside a report, or ends inside one
    assert without_torchrun_report(REPORT[4:] + WRAPPER) == (WRAPPER, True)
    assert without_torchrun_report(TRAINER + REPORT[:12]) == (TRAINER, True)
    # an ordinary traceback of the trainer stays
    own = [
        "Traceback (most recent call last):",
        '  File "train.py", line 3',
        "torch.OutOfMemoryError: CUDA out of memory",
    ]
    assert without_torchrun_report(own + REPORT) == (own, True)


def test_crashed_alert_shows_the_trainers_error_and_its_exit_status(tmp_path):
    w = make_v1_run(tmp_path / "c", steps=40, now=NOW)
    w.error(ERROR)
    w.end(schema.END_ERROR, 2)
    write_exit_status(tmp_path / "c", 1)  # torchrun's
    write_console(tmp_path / "c", TRAINER + REPORT + WRAPPER)
    h = load_run(tmp_path / "c")
    v = evaluate(h, NOW + 5, build_rules(h.config))
    assert v.state == "crashed" and [a.rule for a in v.alerts] == ["process_exited"]
    msg = v.alerts[0].message
    assert "reason 'error' and exit status 2" in msg
    tail = msg.split("last lines of console.log: ")[1]
    # the wrapper's restatement of that error line is left out: a line from before takes its place
    assert f" | step 40 | loss 5.1 | error: {ERROR} | [end] error at step 40 (exit status 2) | {WRAPPER[-1]}" in tail
    # what the report says that nothing else does is kept: which rank failed first, and how
    assert tail.endswith("torchrun exited with status 1 (torchrun's failure report left out; its root cause: rank 0, "
                         "exitcode 2)")  # fmt: skip
    assert "ChildFailedError" not in msg and "====" not in msg


# the seeds' hf1: a hub dataset read with HF_DATASETS_OFFLINE=1 (nsa_train.data.sources.hub_hint), ~370 characters
HUB_ERROR = (
    "data: cannot load dataset 'roneneldan/TinyStories' from the Hugging Face Hub (ConnectionError: Couldn't reach "
    "'roneneldan/TinyStories' on the Hub (LocalEntryNotFoundError)). HF_DATASETS_OFFLINE set here: train where the "
    "hub is reachable, or save the data as .parquet or .jsonl files and use data.source=local, data.path=<them> "
    "(docs/data.md)"
)


def _crashed_by(tmp_path, message: str, console: list[str]) -> str:
    w = make_v1_run(tmp_path / "hf1", steps=40, now=NOW)
    w.error(message)
    w.end(schema.END_ERROR, 2)
    write_exit_status(tmp_path / "hf1", 1)
    write_console(tmp_path / "hf1", console)
    h = load_run(tmp_path / "hf1")
    v = evaluate(h, NOW + 5, build_rules(h.config))
    assert v.state == "crashed" and [a.rule for a in v.alerts] == ["process_exited"]
    return v.alerts[0].message


def test_a_long_error_is_said_once_whole_not_cut_mid_word_and_repeated(tmp_path):
    """`nsa status hf1` said `... or save the data as .parquet or .jsonl files a); last lines of console.log: ...`
    and then the same error twice more: the trainer's own line and the wrapper's restatement of it."""
    assert len(HUB_ERROR) > 300
    wrapper = [f"[nsa 2026-12-07 10:00:01] rank 0 error at step 0: {HUB_ERROR}", WRAPPER[-1]]
    msg = _crashed_by(tmp_path, HUB_ERROR, ["[data] loading", f"error: {HUB_ERROR}", *REPORT, *wrapper])
    assert msg.count(HUB_ERROR) == 1, msg  # whole, once: the trainer's line in the console tail
    why, tail = msg.split("; last lines of console.log: ")
    assert why.startswith("the trainer ended with reason 'error' and exit status 2 (error: data: cannot load")
    assert why.endswith(", in full below)") and " files a" not in why
    assert f"[data] loading | error: {HUB_ERROR} | {WRAPPER[-1]} (torchrun's failure report left out" in tail


def test_a_long_error_the_tail_does_not_hold_is_cut_after_a_word(tmp_path):
    msg = _crashed_by(tmp_path, HUB_ERROR, ["[data] loading", "Killed"])
    said = msg.split(" (error: ", 1)[1].split("; last lines of console.log: ")[0]
    assert said.endswith("…)") and len(said) <= 302, said
    cut = said.removesuffix("…)")
    assert HUB_ERROR.startswith(cut) and HUB_ERROR[len(cut)] == " ", said  # after a whole word
