"""The lr charts marked warmup's end at the run's config's train.warmup_steps, the newest attempt's, also over the
steps an earlier attempt trained with another warmup (a resume with `--set train.warmup_steps=...`): a line where
the lr still rose. Each attempt's own end is marked now (its config-done record says it), in the report and the
dashboard alike, and an attempt whose warmup is not recorded (an older trainer's) is said unmarked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fixtures.runs import boot, make_v1_run, start_training

from nsa_train.telemetry import schema
from nsa_tui.report import build_report
from nsa_tui.runs.warmup import AttemptWarmup, WarmupMarks, warmup_marks
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.charts import RunCharts, ViewSettings
from nsa_tui.watch.model import RunModel

from .conftest import TINY_OVERRIDES

REPO = Path(__file__).resolve().parents[2]
# the tiny model and data of these tests, each run setting its own steps and warmup; no eval (it is not looked at)
TINY = [o for o in TINY_OVERRIDES if not o.startswith(("train.steps", "train.warmup_steps", "train.eval_every"))]
TINY += ["train.eval_every=0", "runtime.threads=1"]


def _train(run: Path, *sets: str, resume: bool = False) -> None:
    argv = [sys.executable, "-m", "nsa_train.train", "--run-dir", str(run)]
    for o in (*TINY, *sets):
        argv += ["--set", o]
    proc = subprocess.run([*argv, *(["--resume"] if resume else [])], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _lr_said(md: str) -> str:
    return md.split("### Learning rate\n", 1)[1].split("\n### ", 1)[0]


def test_a_resume_that_changed_the_warmup_marks_each_attempts_own_end(tmp_path: Path) -> None:
    """Steps 1-6 warmed up over 6 steps; the resume to step 12 with warmup 3 starts past its warmup. The line was
    drawn at step 3, where the lr was half way up."""
    run = tmp_path / "w"
    _train(run, "train.steps=6", "train.warmup_steps=6")
    _train(run, "train.steps=12", "train.warmup_steps=3", resume=True)
    md = build_report([run], tmp_path / "out")["report"].read_text()
    assert "The dashed line is the end of warmup (step 6, `train.warmup_steps`)." in _lr_said(md), _lr_said(md)
    model = RunModel(run.name, LocalRunSource(run, force_poll=True))
    model.pump()
    model.source.close()
    assert RunCharts(model).spec("lr", ViewSettings()).vlines == (6.0,)


def test_an_attempt_whose_warmup_is_not_recorded_is_said_unmarked(tmp_path: Path) -> None:
    """An older trainer's records (no warmup_steps in the config-done record): the newest attempt's warmup is the
    run's config's (it resumed past it), the first attempt's is unknown, so no line is drawn and the text says so."""
    w = make_v1_run(tmp_path / "old", steps=100, log_every=10)
    boot(w, resume=True)
    start_training(w, 200, 100)
    w.progress(5)
    w.end(schema.END_COMPLETED, 0)
    md = build_report([w.path], tmp_path / "out")["report"].read_text()
    said = _lr_said(md)
    assert "dashed line" not in said, said
    assert "The warmup of steps 1-100 is not marked: the attempt that trained them did not record its " in said


def test_the_marks_follow_the_steps_each_attempt_shows() -> None:
    def marks(*attempts: tuple[int, int | None], last: int | None = 300) -> WarmupMarks:
        return warmup_marks([AttemptWarmup(s, w) for s, w in attempts], last)

    assert marks((0, 50), (100, 200)) == WarmupMarks([50, 200], [])
    assert marks((0, 50), (100, 200), last=150) == WarmupMarks([50], [])  # not reached yet
    assert marks((0, 8), (4, 3), last=12) == WarmupMarks([], [])  # 8 not reached, 3 before the resume
    assert marks((0, 110), (100, 110)) == WarmupMarks([110], [])  # steps 101-110 trained again: the later's
    assert marks((0, 20), (100, 20), (100, 0)) == WarmupMarks([20], [])  # a resume that trained nothing new
    assert marks((0, None), (100, 20), (150, 400)) == WarmupMarks([], [(1, 100)])
    assert marks((0, 0)) == WarmupMarks([], [])  # no warmup
    assert marks((0, 50), last=None) == WarmupMarks([], [])  # no lr point


def test_a_damaged_config_section_marks_nothing(tmp_path: Path) -> None:
    """config.yaml's train section not a mapping (a hand edit): no warmup known, no line, no traceback."""
    from nsa_tui.runs import load_run
    from nsa_tui.runs.warmup import run_warmup_marks

    w = make_v1_run(tmp_path / "r", steps=100, log_every=10)
    h = load_run(w.path)
    h.config = {"train": 5}
    assert run_warmup_marks(h, 100) == WarmupMarks([], [(1, 100)])
