"""`nsa report`: PNG charts and a Markdown post-mortem of one or more runs (any format the
status readers understand). No torch; matplotlib is imported only when charts are drawn.

    from nsa_tui.report import build_report
    paths = build_report([Path("runs/a"), Path("runs/b")], out_dir)   # {"report": .../report.md, "loss": ...png}
"""

from __future__ import annotations

from pathlib import Path

from nsa_tui.errors import UserError

REPORT_MD = "report.md"
EXIT_NO_TELEMETRY = 3


def build_report(run_dirs: list[Path], out_dir: Path) -> dict[str, Path]:
    from nsa_tui.report.charts import write_charts
    from nsa_tui.report.load import load_report_run
    from nsa_tui.report.markdown import render

    runs = []
    for d in run_dirs:
        r = load_report_run(d)
        if r is None:
            raise UserError(f"no telemetry in {d} (no heartbeat_rank*.jsonl, training.csv or *_log.jsonl)", 3)
        runs.append(r)
    names = [r.name for r in runs]
    for i, r in enumerate(runs):  # two runs of the same name (a/run, b/run) need telling apart
        if names.count(r.name) > 1:
            r.name = f"{r.path.resolve().parent.name}/{r.name}#{i + 1}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        charts = write_charts(runs, out_dir)
        md = out_dir / REPORT_MD
        md.write_text(render(runs, charts, out_dir), encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write the report to {out_dir}: {e.strerror or e}", 1) from None
    return {"report": md, **charts}
