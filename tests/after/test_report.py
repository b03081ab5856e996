"""`nsa report`: charts and markdown for a tiny trained run, two runs overlaid, and the other formats."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fixtures.runs import make_generic_run, make_v1_run, make_vibe_run
from PIL import Image
from typer.testing import CliRunner

from nsa_train.telemetry import schema
from nsa_tui.cli import app
from nsa_tui.report import build_report

SECTIONS = ("## Runs", "## Charts", "## Alerts", "## Checkpoints")


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 10_000, path
    with Image.open(path) as im:
        im.load()  # decodes the whole image
        assert im.width >= 800 and im.height >= 400


@pytest.mark.slow
def test_tiny_run_default_out_dir(tiny_run: Path) -> None:
    res = CliRunner().invoke(app, ["report", str(tiny_run)])
    assert res.exit_code == 0, res.output
    out = tiny_run / "report"
    for name in ("loss", "lr", "throughput", "memory", "gates"):
        assert_png(out / f"{name}.png")
    md = (out / "report.md").read_text()
    for s in (*SECTIONS, "## Config"):
        assert s in md
    assert "| tiny | nsa-v1 | finished | 30/30 |" in md
    assert "step_00000030.pt" in md and "latest" in md and "best" in md
    # the order file beside them (the write order pruning goes by) is no checkpoint
    assert (tiny_run / schema.CHECKPOINT_DIR / schema.CHECKPOINT_ORDER).is_file()
    listed = re.findall(r"^  - `([^`]+)`", md, flags=re.M)
    assert listed and all(schema.checkpoint_step(n) is not None for n in listed), listed
    import json

    summary = json.loads((tiny_run / "summary.json").read_text())
    assert f"{summary['best_val_loss']:.4f} @ {summary['best_step']}" in md


def test_two_runs_overlaid_with_config_difference_and_alert(tmp_path: Path) -> None:
    make_v1_run(tmp_path / "base", steps=200, state="finished")
    make_v1_run(tmp_path / "collapsed", steps=300, state="finished", alerts=["gate_collapse"], total_steps=300)
    paths = build_report([tmp_path / "base", tmp_path / "collapsed"], tmp_path / "out")
    assert_png(paths["loss"])
    assert_png(paths["gates"])
    md = paths["report"].read_text()
    for s in (*SECTIONS, "## Config differences"):
        assert s in md
    assert "| base | nsa-v1 | finished | 200/200 |" in md
    assert "| collapsed | nsa-v1 | finished | 300/300 |" in md
    assert "| train.steps | 200 | 300 |" in md
    assert "| collapsed | gate_collapse | warning |" in md


def test_resumed_run_counts_every_attempt(tmp_path: Path) -> None:
    """Halted at step 100, resumed an hour later: wall time and speed cover both processes, not the pause and not
    only the last process (whose summary.json speaks for itself alone)."""
    w = make_v1_run(tmp_path / "r", steps=100, total_steps=300, state="running")
    w.end("halt", 0)
    w.ts += 3600
    w.boot()
    for phase in schema.PHASES:
        w.phase(phase, **({"start_step": 100} if phase == "train" else {}))
    w.progress(20)
    w.end("completed", 0)
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps({"wall_time_s": 90.0, "mean_toks_per_s": 1.0}))
    # expected from the rank-0 records themselves: each attempt runs from its boot to its last record
    recs = [json.loads(x) for x in (w.path / schema.heartbeat_name(0)).read_text().splitlines()]
    starts = [i for i, r in enumerate(recs) if r["kind"] == schema.KIND_BOOT]
    parts = [recs[a:b] for a, b in zip(starts, [*starts[1:], len(recs)], strict=True)]
    wall = sum(p[-1]["ts"] - p[0]["ts"] for p in parts)
    train = sum(p[-1]["ts"] - next(r["ts"] for r in p if r.get("phase") == "train") for p in parts)
    tokens = recs[-2]["tokens_seen"]  # the last progress record
    md = build_report([w.path], tmp_path / "out")["report"].read_text()
    row = next(line for line in md.splitlines() if line.startswith("| r |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[9] == f"{int(wall) // 60}m{int(wall) % 60:02d}s (2 attempts, resumed at step 100)" and wall < 3600
    assert cells[10] == f"{tokens / train:.0f}"


def test_a_summary_without_val_numbers_does_not_hide_the_evals(tmp_path: Path) -> None:
    """A process that stopped before evaluating (a refused resume, before that was fixed in the trainer) wrote
    nulls: the report showed '-' for the final and best val loss of a run whose val.csv had them."""
    w = make_v1_run(tmp_path / "r", steps=300, total_steps=300, state="finished")
    nulls = {"final_val_loss": None, "best_val_loss": None, "best_step": None, "end_reason": "error"}
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps(nulls))
    vals = [line.split(",") for line in (w.path / schema.VAL_CSV).read_text().splitlines()[1:]]
    best = min(vals, key=lambda v: float(v[1]))
    md = build_report([w.path], tmp_path / "out")["report"].read_text()
    cells = [c.strip() for c in next(x for x in md.splitlines() if x.startswith("| r |")).strip("|").split("|")]
    assert cells[7].startswith(f"{float(vals[-1][1]):.4f}") and cells[8] == f"{float(best[1]):.4f} @ {best[0]}"


def test_a_summary_number_that_is_not_finite_is_not_reported(tmp_path: Path) -> None:
    """NaN written into summary.json (by hand) was the report's "best val loss: nan" and "mean tok/s: nan" though
    val.csv held finite values; status made them null."""
    w = make_v1_run(tmp_path / "r", steps=300, total_steps=300, state="finished")
    (w.path / schema.SUMMARY_JSON).write_text('{"best_val_loss": NaN, "best_step": 300, "mean_toks_per_s": Infinity}')
    vals = [line.split(",") for line in (w.path / schema.VAL_CSV).read_text().splitlines()[1:]]
    best = min(vals, key=lambda v: float(v[1]))
    md = build_report([w.path], tmp_path / "out")["report"].read_text()
    cells = [c.strip() for c in next(x for x in md.splitlines() if x.startswith("| r |")).strip("|").split("|")]
    assert cells[8] == f"{float(best[1]):.4f} @ {best[0]}" and cells[10] not in ("nan", "inf", "-"), cells


def test_the_mean_tokens_per_s_gives_its_mfu_when_the_gpu_is_known(tmp_path: Path) -> None:
    gpu = {"flops_per_token": 8.5e8, "peak_flops": 312e12}
    w = make_v1_run(tmp_path / "r", steps=300, total_steps=300, state="finished", run_info=gpu)
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps({"end_reason": "completed", "mean_toks_per_s": 40000.0}))
    md = build_report([w.path], tmp_path / "out")["report"].read_text()
    cells = [c.strip() for c in next(x for x in md.splitlines() if x.startswith("| r |")).strip("|").split("|")]
    assert cells[10] == "40000 (MFU 10.9%)", cells  # 40,000 x 8.5e8 / 312e12
    v = make_v1_run(tmp_path / "cpu", steps=300, total_steps=300, state="finished")  # no peak in its run.json
    (v.path / schema.SUMMARY_JSON).write_text(json.dumps({"end_reason": "completed", "mean_toks_per_s": 40000.0}))
    md = build_report([v.path], tmp_path / "out2")["report"].read_text()
    cells = [c.strip() for c in next(x for x in md.splitlines() if x.startswith("| cpu |")).strip("|").split("|")]
    assert cells[10] == "40000", cells


def test_a_run_that_stopped_before_its_first_step(tmp_path: Path) -> None:
    """Its summary.json says 0 tokens and how long it lived: the report shows both, not '-'."""
    w = make_v1_run(tmp_path / "r", steps=0, state="starting")
    w.error("cannot open hf dataset x")
    w.end(reason="error", exit_status=2)
    summary = {"end_reason": "error", "steps_completed": 0, "tokens_seen": 0, "wall_time_s": 25.998}  # 0m25s was said
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps({**summary, "param_count": None}))
    md = build_report([w.path], tmp_path / "out")["report"].read_text()
    cells = [c.strip() for c in next(x for x in md.splitlines() if x.startswith("| r |")).strip("|").split("|")]
    assert (cells[2], cells[5], cells[9], cells[11]) == ("crashed", "0.000M", "0m26s", "error"), cells


@pytest.mark.parametrize("fmt", ["vibe", "generic"])
def test_other_formats(tmp_path: Path, fmt: str) -> None:
    run = tmp_path / fmt
    if fmt == "vibe":
        make_vibe_run(run, steps=400, state="halted")
    else:
        make_generic_run(run, steps=500, finished=True)
    paths = build_report([run], tmp_path / "out")
    assert_png(paths["loss"])
    md = paths["report"].read_text()
    assert f"| {fmt} | {'nsa-vibe' if fmt == 'vibe' else 'generic'} |" in md
    for s in SECTIONS:
        assert s in md


def test_no_telemetry_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(app, ["report", str(tmp_path / "empty")])
    assert res.exit_code == 3
    assert "no telemetry" in res.output and "Traceback" not in res.output


def test_no_run_argument_means_the_newest_run(runs_dir: Path, tmp_path: Path) -> None:
    import os

    make_v1_run(runs_dir / "old", steps=100, state="finished")
    make_v1_run(runs_dir / "new", steps=50)
    os.utime(runs_dir / "old", (1_700_000_000, 1_700_000_000))
    res = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.startswith("# Report: new\n")


def test_resume_steps_are_rank_0s_train_phases_after_the_first(tmp_path: Path) -> None:
    from nsa_tui.report.load import resume_steps
    from nsa_tui.runs import load_run

    w = make_v1_run(tmp_path / "r", steps=100, total_steps=300, n_ranks=2)  # a fresh start: start_step absent
    for start in (0, 100, 200):
        w.boot()
        w.phase("train", start_step=start)  # every rank writes it: counted once
    assert resume_steps(load_run(tmp_path / "r")) == [100, 200]


def test_a_run_killed_without_a_summary_has_its_wall_time_and_tokens_per_second(tmp_path: Path) -> None:
    """A process killed by SIGKILL writes no summary.json: the numbers come from its records, computed as the
    summary would (tokens over the training loop's time), not as the mean of the windows' rates."""
    from nsa_tui.report.load import final_numbers, load_report_run

    w = make_v1_run(tmp_path / "r", steps=300, step_time_s=2.0, now=1_800_000_000.0)
    r = load_report_run(w.path)
    assert r is not None and not r.summary
    nums = final_numbers(r)
    boot = next(e.ts for e in r.history.events if e.kind == schema.KIND_BOOT)
    train = next(e.ts for e in r.history.events if e.kind == schema.KIND_PHASE and e.fields.get("phase") == "train")
    assert nums["wall_time_s"] == pytest.approx(w.ts - boot)
    assert nums["mean_toks_per_s"] == pytest.approx(r.history.last_value("tokens_seen") / (w.ts - train))


def test_a_line_of_one_point_is_drawn_as_a_marker() -> None:
    """A run with one progress record (a short run, a crash after its first log): its lines had no length, and
    lr, throughput, memory and gate charts came out blank."""
    from nsa_tui.report.charts import _mark_lone_points, _plt

    fig, ax = _plt().subplots()
    one = ax.plot([10], [3e-4])[0]
    two = ax.plot([10, 20], [3e-4, 2e-4])[0]
    _mark_lone_points(fig)
    assert one.get_marker() == "o" and two.get_marker() in (None, "None", "")
    _plt().close(fig)


def test_a_resumed_run_still_going_is_not_reported_with_the_halted_attempts_summary(tmp_path: Path) -> None:
    """summary.json is written at an attempt's end: while the resumed attempt runs, the file is the halted
    one's, and its numbers (steps, tokens, end reason) are not the run's."""
    from nsa_tui.report.load import final_numbers, load_report_run

    w = make_v1_run(tmp_path / "r", steps=200, state="halted", now=1_800_000_000.0)
    halted = {"end_reason": "halt", "steps_completed": 200, "tokens_seen": 1, "final_val_loss": 9.0}
    (w.path / schema.SUMMARY_JSON).write_text(json.dumps(halted))
    assert final_numbers(load_report_run(w.path))["end_reason"] == "halt"  # the attempt's own, while it is the last
    w.ts += 60
    w.boot()
    w.phase("train", start_step=200)
    w.progress(10)
    nums = final_numbers(load_report_run(w.path))
    assert nums["end_reason"] != "halt" and nums["tokens_seen"] != 1 and nums["final_val_loss"] != 9.0, nums


def test_a_run_named_with_markdown_characters_is_text_in_the_report(tmp_path: Path) -> None:
    """A directory may be named `a_b*c*`, with backticks or `<img ...>`: the report shows the name, it does not
    format it (emphasis, a broken code span, raw HTML)."""
    from nsa_tui.report.markdown import _code, _name

    name = "a_b*c*`x`<img src=x>"
    w = make_v1_run(tmp_path / name, steps=50, state="finished")
    md = build_report([w.path], tmp_path / "out")["report"].read_text()
    assert not re.search(r"(?<!\\)<img", md) and "*c*" not in md
    assert _name(name) in md and md.count(_name(name)) >= 2  # the title and the runs table
    assert _name(name) == "a\\_b\\*c\\*\\`x\\`\\<img src=x\\>"
    assert _code("step_1.pt") == "`step_1.pt`" and _code("a`b") == "``a`b``" and _code("`x") == "`` `x ``"


def test_a_long_line_is_drawn_thinned_but_keeps_its_one_step_spike_and_dip() -> None:
    """A 1M-step run's charts took most of the report's time in matplotlib, for pixels a 900-px chart cannot show:
    each bucket keeps its lowest and highest point, so a loss spike of one step is still drawn."""
    from nsa_tui.report.charts import BUCKETS, thin

    n = 100_000
    xs = list(range(0, 10 * n, 10))
    ys = [2.0 + 0.001 * (i % 7) for i in range(n)]
    ys[54_321], ys[7] = 100.0, -5.0
    tx, ty = thin(xs, ys)
    assert len(tx) == len(ty) <= 2 * BUCKETS + 2
    assert tx == sorted(tx) and set(tx) <= set(xs)
    points = set(zip(tx, ty, strict=True))
    assert (xs[54_321], 100.0) in points and (xs[7], -5.0) in points
    assert tx[0] == xs[0] and tx[-1] == xs[-1]  # the line spans the whole run
    short = (xs[: 2 * BUCKETS], ys[: 2 * BUCKETS])
    assert thin(*short) == (list(short[0]), list(short[1]))  # a line that fits is drawn point for point


def test_every_chart_line_of_a_long_run_is_thinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nsa_tui.report import charts, load_runs

    make_v1_run(tmp_path / "long", steps=40_000, log_every=4, state="finished")
    monkeypatch.setattr(charts, "BUCKETS", 500)
    drawn: list[int] = []
    save = charts._save

    def count_then_save(fig, path):
        drawn.extend(len(line.get_xdata()) for ax in fig.axes for line in ax.get_lines())
        return save(fig, path)

    monkeypatch.setattr(charts, "_save", count_then_save)
    made = charts.write_charts(load_runs([tmp_path / "long"]), tmp_path / "out")
    assert {"loss", "lr", "throughput", "gates"} <= set(made)
    assert 900 <= max(drawn) <= 1002  # 10,000 points per metric: 500 buckets of two, and the ends


def test_several_runs_need_an_out_dir_and_leave_the_first_runs_report_alone(tmp_path: Path) -> None:
    """`nsa report a b` wrote the comparison into a/report/, over a's own report (its report.md said "a, b")."""
    make_v1_run(tmp_path / "a", steps=200, state="finished")
    make_v1_run(tmp_path / "b", steps=200, state="finished")
    assert CliRunner().invoke(app, ["report", str(tmp_path / "a")]).exit_code == 0
    own = (tmp_path / "a" / "report" / "report.md").read_text()
    res = CliRunner().invoke(app, ["report", str(tmp_path / "a"), str(tmp_path / "b")])
    assert res.exit_code == 2 and "several runs are reported together into --out DIR" in res.output, res.output
    assert (tmp_path / "a" / "report" / "report.md").read_text() == own
    res = CliRunner().invoke(app, ["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")])
    assert res.exit_code == 0 and (tmp_path / "c" / "report.md").is_file(), res.output


def test_a_chart_an_earlier_report_left_in_the_out_dir_is_removed(tmp_path: Path) -> None:
    """The gates chart of an NSA run stayed beside the report of a run without gate metrics, whose report.md said
    "No data for: Gates"."""
    make_v1_run(tmp_path / "nsa", steps=200, state="finished")
    make_generic_run(tmp_path / "plain")
    assert "gates" in build_report([tmp_path / "nsa"], tmp_path / "out")
    paths = build_report([tmp_path / "plain"], tmp_path / "out")
    assert "gates" not in paths and not (tmp_path / "out" / "gates.png").exists()
    assert {p.name for p in (tmp_path / "out").iterdir()} == {p.name for p in paths.values()}
