"""`nsa report`: PNG charts and a Markdown post-mortem of one or more runs (any format the
status readers understand). No torch; matplotlib is imported only when charts are drawn.

    from nsa_tui.report import build_report, load_runs, write_report
    from nsa_tui.report.remote import fetch_report_runs
    paths = build_report([Path("runs/a"), Path("runs/b")], out_dir)   # {"report": .../report.md, "loss": ...png}
    paths = write_report(fetch_report_runs("gpu-box", ["m7c"], "nsa"), out_dir)   # runs on a host, one ssh call
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nsa_tui.errors import UserError

if TYPE_CHECKING:
    from nsa_tui.report.load import ReportRun

REPORT_MD = "report.md"


def load_runs(run_dirs: list[Path]) -> list[ReportRun]:
    """Local run directories read whole for a report (UserError, exit 3, for one without telemetry)."""
    from nsa_tui.report.load import load_report_run

    return [load_report_run(d) for d in run_dirs]


def build_report(run_dirs: list[Path], out_dir: Path) -> dict[str, Path]:
    """The report of local run directories."""
    return write_report(load_runs(run_dirs), out_dir)


def write_report(runs: list[ReportRun], out_dir: Path) -> dict[str, Path]:
    """Charts and report.md of loaded runs (local or fetched from a host) in ``out_dir``."""
    from nsa_tui.report.charts import write_charts
    from nsa_tui.report.markdown import render

    names = [r.name for r in runs]
    for i, r in enumerate(runs):  # two runs of the same name (a/run, b/run) need telling apart
        if names.count(r.name) > 1:
            r.name = f"{r.parent}/{r.name}#{i + 1}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        charts = write_charts(runs, out_dir)
        md = out_dir / REPORT_MD
        md.write_text(render(runs, charts, out_dir), encoding="utf-8")
    except OSError as e:
        from nsa_train.runtime.rundir import file_in_the_way

        # the file that failed, when it is not the directory itself (a directory named report.md inside it)
        failed = f" ({e.filename})" if e.filename and Path(e.filename) != out_dir else ""
        raise UserError(
            f"cannot write the report to {out_dir}: {file_in_the_way(out_dir) or e.strerror or e}{failed}", 1
        ) from None
    return {"report": md, **charts}
