"""PNG charts of one or more runs (matplotlib, Agg backend: no display needed).

One colour per run across every chart; raw values thin and faint, an exponential moving
average on top, validation points as markers. A chart no run has data for is not written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nsa_tui.report.load import ReportRun, finite, resume_steps
from nsa_tui.runs.warmup import WarmupMarks, run_warmup_marks

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
BRANCH_STYLES = (
    ("gate_share_cmp", "compressed", "-"),
    ("gate_share_sel", "selected", "--"),
    ("gate_share_win", "window", ":"),
)
FIGSIZE = (9, 4.8)
DPI = 110
# the most points one line is drawn with: a chart is about 900 px wide, so more change no pixel, while a 1M-step
# run's lines took most of the report's time in matplotlib. Each of the buckets keeps its lowest and highest point
BUCKETS = 1500


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11, "axes.titlesize": 13, "axes.titleweight": "bold", "legend.fontsize": 9})
    return plt


def ema(values: Sequence[float], span: float) -> list[float]:
    """Exponential moving average with alpha = 2 / (span + 1); NaN/inf points are skipped."""
    alpha = 2.0 / (span + 1.0)
    out, acc = [], None
    for v in values:
        if math.isfinite(v):
            acc = v if acc is None else acc + alpha * (v - acc)
        out.append(acc if acc is not None else float("nan"))
    return out


def series(r: ReportRun, name: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric with the missing and non-finite points dropped (kept per run: the charts ask
    for each several times)."""
    got = r.series.get(name)
    if got is None:
        steps, col = r.history.steps, r.history.column(name)  # floats and None (the history's columns)
        if None not in col and all(map(math.isfinite, col)):  # the usual column: every point, without a loop here
            got = r.series[name] = (list(steps), list(map(float, col)))
        else:
            keep = [i for i, v in enumerate(col) if v is not None and math.isfinite(v)]
            got = r.series[name] = ([steps[i] for i in keep], [float(col[i]) for i in keep])
    return got


def thin(xs: Sequence[int], ys: Sequence[float], buckets: int | None = None) -> tuple[list[int], list[float]]:
    """The points a line is drawn with: all of them up to 2 x ``buckets`` (default BUCKETS), else each of
    ``buckets`` equal runs of points gives its lowest and highest (in step order), so a spike or a dip of one step
    still shows, and the line keeps its first and last point (it spans the run)."""
    buckets = buckets or BUCKETS
    n = len(xs)
    if n <= 2 * buckets:
        return list(xs), list(ys)
    keep = {0, n - 1}
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        chunk = ys[lo:hi]
        keep.add(lo + min(range(len(chunk)), key=chunk.__getitem__))
        keep.add(lo + max(range(len(chunk)), key=chunk.__getitem__))
    order = sorted(keep)
    return [xs[i] for i in order], [ys[i] for i in order]


def _line(ax: Any, xs: Sequence[int], ys: Sequence[float], **style: Any) -> None:
    ax.plot(*thin(xs, ys), **style)


def _span(n: int) -> float:
    return max(2.0, n / 25)


def _finish(ax: Any, title: str, ylabel: str, runs: Sequence[ReportRun]) -> None:
    for i, r in enumerate(runs):  # where an attempt resumed: explains a jump (lr schedule, loss) at that step
        for k, step in enumerate(resume_steps(r.history)):
            ax.axvline(step, color=COLORS[i % len(COLORS)], linewidth=1, linestyle=(0, (1, 3)), alpha=0.7,
                       label=_label(r, runs, "resumed") if k == 0 else None)  # fmt: skip
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="best", framealpha=0.85)


def _mark_lone_points(fig: Any) -> None:
    """A line of one point draws nothing: a run with a single progress record (a short run, or one that crashed
    after its first log) would leave its charts blank. Such lines get a marker."""
    for ax in fig.axes:
        for line in ax.get_lines():
            if len(line.get_xdata()) == 1 and line.get_marker() in (None, "", "None", " "):
                line.set_marker("o")
                line.set_markersize(max(4.0, line.get_linewidth() * 2.5))


def _save(fig: Any, path: Path) -> Path:
    _mark_lone_points(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return path


def _label(r: ReportRun, runs: Sequence[ReportRun], what: str) -> str:
    return f"{r.name} {what}" if len(runs) > 1 else what


def loss_chart(runs: Sequence[ReportRun], path: Path) -> Path | None:
    plt = _plt()
    if not any(series(r, "loss")[0] or r.history.val_steps for r in runs):
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for i, r in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        xs, ys = series(r, "loss")
        if xs:
            _line(ax, xs, ys, color=c, alpha=0.25, linewidth=0.8)
            _line(ax, xs, ema(ys, _span(len(ys))), color=c, linewidth=2, label=_label(r, runs, "train loss (EMA)"))
        vals = [(s, finite(v)) for s, v in zip(r.history.val_steps, r.history.val_loss, strict=False)]
        vals = [(s, v) for s, v in vals if v is not None]
        if vals:
            ax.plot(*zip(*vals, strict=True), color=c, linestyle="--", marker="o", markersize=5,
                    label=_label(r, runs, "val loss"))  # fmt: skip
    _finish(ax, "Loss", "cross-entropy (nats/token)", runs)
    return _save(fig, path)


def warmup_marks(runs: Sequence[ReportRun]) -> list[tuple[ReportRun, WarmupMarks]]:
    """(run, its marks) for each run: the lr chart's dashed lines at the warmup ends of the attempts whose steps it
    shows, each attempt's own (nsa_tui.runs.warmup), as the dashboard draws them (a tiny lr early on is warmup, not
    a bug; the report's text names them, and the attempts whose warmup is not recorded)."""
    out = []
    for r in runs:
        steps = series(r, "lr")[0]
        out.append((r, run_warmup_marks(r.history, steps[-1] if steps else None)))
    return out


def _draw_warmup(ax: Any, runs: Sequence[ReportRun]) -> None:
    for i, (r, marks) in enumerate(warmup_marks(runs)):
        c = COLORS[i % len(COLORS)]
        for w in marks.ends:
            ax.axvline(w, color=c, linewidth=1, linestyle="--", alpha=0.7, label=_label(r, runs, f"warmup end ({w})"))


def _metric_chart(
    runs: Sequence[ReportRun],
    path: Path,
    names: Sequence[tuple[str, str]],
    title: str,
    ylabel: str,
    smooth: bool,
    warmup: bool = False,
) -> Path | None:
    plt = _plt()
    if not any(series(r, n)[0] for r in runs for n, _ in names):
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    styles = ("-", "--", ":")
    for i, r in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        for j, (name, what) in enumerate(names):
            xs, ys = series(r, name)
            if not xs:
                continue
            if smooth:
                _line(ax, xs, ys, color=c, alpha=0.25, linewidth=0.8, linestyle=styles[j % 3])
                ys = ema(ys, _span(len(ys)))
            _line(ax, xs, ys, color=c, linewidth=2, linestyle=styles[j % 3], label=_label(r, runs, what))
    if warmup:
        _draw_warmup(ax, runs)
    _finish(ax, title, ylabel, runs)
    return _save(fig, path)


def gates_chart(runs: Sequence[ReportRun], path: Path) -> Path | None:
    plt = _plt()
    if not any(series(r, "gate_entropy_mean")[0] or series(r, "gate_share_cmp")[0] for r in runs):
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(FIGSIZE[0] * 1.4, FIGSIZE[1]))
    for i, r in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        xs, ys = series(r, "gate_entropy_mean")
        if xs:
            _line(ax1, xs, ys, color=c, linewidth=2, label=_label(r, runs, "mean"))
        xs, ys = series(r, "gate_entropy_min")
        if xs:
            _line(ax1, xs, ys, color=c, linewidth=1, linestyle=":", label=_label(r, runs, "min"))
        for name, what, style in BRANCH_STYLES:
            xs, ys = series(r, name)
            if xs:
                _line(ax2, xs, ys, color=c, linewidth=2, linestyle=style, label=_label(r, runs, what))
    ax1.axhline(math.log(3), color="grey", linewidth=1, linestyle="-.", label="uniform (ln 3)")
    _finish(ax1, "Gate entropy", "entropy (nats)", runs)
    _finish(ax2, "Gate branch shares", "mean normalised share", runs)
    ax2.set_ylim(0, 1)
    return _save(fig, path)


def write_charts(runs: Sequence[ReportRun], out_dir: Path) -> dict[str, Path]:
    """{chart name: PNG path} for the charts that have data."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made = {
        "loss": loss_chart(runs, out_dir / "loss.png"),
        "lr": _metric_chart(
            runs, out_dir / "lr.png", [("lr", "lr")], "Learning rate", "learning rate", False, warmup=True
        ),
        "throughput": _metric_chart(
            runs, out_dir / "throughput.png", [("toks_per_s", "tokens/s")], "Throughput", "tokens / second", True
        ),
        "memory": _metric_chart(
            runs,
            out_dir / "memory.png",
            [("gpu_mem_reserved_gb", "GPU reserved"), ("gpu_mem_alloc_gb", "GPU allocated"), ("rss_gb", "host RSS")],
            "Memory",
            "GiB",
            False,
        ),
        "gates": gates_chart(runs, out_dir / "gates.png"),
    }
    for name, path in made.items():
        if path is None:  # a chart an earlier report left in this --out (a gates chart beside a dense run's report)
            (out_dir / f"{name}.png").unlink(missing_ok=True)
    return {k: v for k, v in made.items() if v is not None}
