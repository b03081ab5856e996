"""Which charts the dashboard shows and how each is built from a RunModel (no Textual)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nsa_train.telemetry import schema
from nsa_train.telemetry.mfu import fmt_mfu, run_mfu
from nsa_tui import fmt
from nsa_tui.health.engine import MEAN_OF_LAST_ATTEMPT, lr_phase
from nsa_tui.runs.warmup import run_warmup_marks
from nsa_tui.watch.chart_render import ChartSpec, Line
from nsa_tui.watch.downsample import moving_average, nice_ceil
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.series import Series

SMOOTHING_STEPS = (0, 10, 50, 200)  # moving-average window in points; `s` cycles
RUN_COLORS = ("cyan", "magenta", "yellow", "green", "bright_blue", "red")


@dataclass
class ViewSettings:
    smoothing: int = 10
    log_y: bool = False
    x_axis: str = "step"  # step | time | tokens
    compare: bool = False

    def cycle_smoothing(self) -> None:
        i = SMOOTHING_STEPS.index(self.smoothing) if self.smoothing in SMOOTHING_STEPS else 0
        self.smoothing = SMOOTHING_STEPS[(i + 1) % len(SMOOTHING_STEPS)]

    def cycle_x(self) -> None:
        axes = ("step", "time", "tokens")
        self.x_axis = axes[(axes.index(self.x_axis) + 1) % len(axes)]


def x_formatter(axis: str):
    if axis == "time":
        return fmt.duration
    if axis == "step":
        return _step_label  # steps are whole: the middle label of 0..25 read "12.5"
    return fmt.num


def _step_label(x: float) -> str:
    return fmt.num(round(x))


@dataclass
class SmoothCache:
    """Moving average of a loss column, extended incrementally as points arrive (a full
    recompute only when the window or the underlying column changes)."""

    key: tuple = ()
    done: int = 0
    series: Series = field(default_factory=Series)

    def get(self, xs: np.ndarray, ys: np.ndarray, k: int, generation) -> Series:
        key = (k, generation)
        if key != self.key or len(xs) < self.done:
            self.key, self.done = key, 0
            self.series.clear()
        n = len(xs)
        if n > self.done:
            start = max(0, self.done - k + 1)  # the window of the first new point reaches back k-1
            avg = moving_average(ys[start:n], k)[self.done - start :]
            self.series.extend(xs[self.done : n], avg)
            self.done = n
        return self.series


class RunCharts:
    """The per-run chart set; keeps caches between redraws."""

    def __init__(self, model: RunModel) -> None:
        self.model = model
        self._lines: dict[str, Line] = {}
        self._smooth: dict[str, SmoothCache] = {}  # per x axis: each axis' points have x values of their own
        self._val = Series()
        self._val_key: tuple = ()
        self._x_key: tuple = ()
        self._x_done = 0
        self._x_hi = -np.inf

    def _line(self, key: str, label: str, color: str, series, markers: bool = False) -> Line:
        ln = self._lines.get(key)
        if ln is None or ln.series is not series:
            ln = self._lines[key] = Line(label, color, series, markers=markers)
        return ln

    def x_range(self, view: ViewSettings) -> tuple[float, float]:
        """0 to a round number past the newest point: the axis (and the chart caches) only
        change when the data outgrows it, not on every step; never past the planned end."""
        col = self.model.table.cols[view.x_axis]
        key = (view.x_axis, col.generation)
        if key != self._x_key or col.n < self._x_done:
            self._x_key, self._x_done, self._x_hi = key, 0, -np.inf
        if col.n > self._x_done:  # only the new points: the x columns only grow
            new = col.y[self._x_done : col.n]
            new = new[np.isfinite(new)]
            if len(new):
                self._x_hi = max(self._x_hi, float(new.max()))
            self._x_done = col.n
        hi = self._x_hi if np.isfinite(self._x_hi) else 1.0
        top = nice_ceil(hi * 1.02)
        total = self.model.history.total_steps
        if view.x_axis == "step" and total and hi <= total:
            top = min(top, float(total))
        return 0.0, max(top, 1.0)

    def empty_text(self) -> str:
        """What an empty chart says: a run that has ended (its end record or exit status is in) sends no more."""
        h = self.model.history
        ended = h.end_event is not None or h.exit_status is not None
        return "no data: the run has ended" if ended else "waiting for data"

    def spec(self, chart: str, view: ViewSettings) -> ChartSpec:
        t = self.model.table
        ax = view.x_axis
        x_lo, x_hi = self.x_range(view)
        base = dict(x_lo=x_lo, x_hi=x_hi, log_y=view.log_y, x_format=x_formatter(ax), empty=self.empty_text())
        if chart == "loss":
            raw = t.view("loss", ax)
            lines = [self._line(f"loss/{ax}", "loss", "grey50" if view.smoothing else "cyan", raw)]
            if view.smoothing:
                sm = self._smooth.setdefault(ax, SmoothCache()).get(raw.x, raw.y, view.smoothing, raw.generation)
                lines.append(self._line(f"smooth/{ax}", f"ma{view.smoothing}", "cyan", sm))
            lines.append(self._line(f"val/{ax}", "val", "yellow", self._val_series(ax), markers=True))
            return ChartSpec(lines, **base)
        if chart == "lr":
            h = self.model.history
            # each attempt's own warmup end, as the report marks them (nsa_tui.runs.warmup)
            vlines = tuple(map(float, run_warmup_marks(h, h.latest_step).ends)) if ax == "step" else ()
            return ChartSpec([self._line(f"lr/{ax}", "lr", "green", t.view("lr", ax))], vlines=vlines, **base)
        if chart == "toks":
            return ChartSpec([self._line(f"toks/{ax}", "tok/s", "bright_blue", t.view("toks_per_s", ax))], **base)
        if chart == "mem":
            if self.cpu_run():  # no GPU memory will ever come: the host's resident memory instead
                return ChartSpec([self._line(f"rss/{ax}", "host RSS", "magenta", t.view("rss_gb", ax))], **base)
            limit = self.memory_limit_gb()
            return ChartSpec(
                [
                    self._line(f"alloc/{ax}", "alloc", "magenta", t.view("gpu_mem_alloc_gb", ax)),
                    self._line(f"resv/{ax}", "reserved", "bright_magenta", t.view("gpu_mem_reserved_gb", ax)),
                ],
                hline=limit,
                **base,
            )
        if chart == "gate":
            return ChartSpec(
                [
                    self._line(f"gmean/{ax}", "mean H", "green", t.view("gate_entropy_mean", ax)),
                    self._line(f"gmin/{ax}", "min H", "yellow", t.view("gate_entropy_min", ax)),
                    self._line(f"gcol/{ax}", "collapse", "red", t.view("gate_collapse_frac", ax)),
                ],
                hline=self._monitor_float("gate_entropy_min"),  # the gate_collapse threshold
                **{**base, "log_y": False},
            )
        if chart == "shares":
            return ChartSpec(
                [
                    self._line(f"cmp/{ax}", "cmp", "cyan", t.view("gate_share_cmp", ax)),
                    self._line(f"sel/{ax}", "sel", "magenta", t.view("gate_share_sel", ax)),
                    self._line(f"win/{ax}", "win", "yellow", t.view("gate_share_win", ax)),
                ],
                y_fixed=(0.0, 1.0),
                **{**base, "log_y": False},
            )
        raise KeyError(chart)

    def _val_series(self, ax: str) -> Series:
        t = self.model.table
        # on time/token axes val points are placed by interpolation: redo when points arrive
        key = (ax, t.val_step.n, t.val_step.generation, t.cols["step"].n if ax != "step" else 0)
        if key != self._val_key:
            self._val_key = key
            self._val.clear()
            steps = t.val_step.y
            self._val.extend(t.x_of(ax, steps, val=True), t.val_loss.y)
        return self._val

    def _monitor_float(self, key: str) -> float | None:
        v = (self.model.history.config.get("monitor") or {}).get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def cpu_run(self) -> bool:
        """The run logs its host RSS and never any GPU memory (a CPU run leaves those columns null). A log with
        no memory at all (a foreign format) is not called a CPU run: it may well have run on a GPU."""
        h = self.model.history
        if not h.has_progress:  # before its first step: the device its config phase record names (the title said
            # "GPU mem" for a CPU run until its first progress record)
            done = [e for e in h.attempt_events(schema.KIND_PHASE) if e.fields.get("device") is not None]
            return bool(done) and str(done[-1].fields["device"]).startswith("cpu")
        if h.last_value("rss_gb") is None:
            return False
        return all(h.last_value(k) is None for k in ("gpu_mem_alloc_gb", "gpu_mem_reserved_gb"))

    def memory_limit_gb(self) -> float | None:
        mon = self.model.history.config.get("monitor") or {}
        v = mon.get("max_gpu_mem_gb")
        return float(v) if isinstance(v, (int, float)) and v > 0 else None

    def title(self, chart: str, view: ViewSettings, mean_toks_per_s: float | None = None, resumed: bool = False) -> str:
        return "".join(self.title_fields(chart, view, mean_toks_per_s, resumed))

    def title_fields(
        self, chart: str, view: ViewSettings, mean_toks_per_s: float | None = None, resumed: bool = False
    ) -> list[str]:
        """The title in pieces, each with its leading separator: a narrow chart shows the pieces that fit
        whole, never a number cut short. ``mean_toks_per_s``: an ended run's mean (the engine's, as `nsa
        status` shows it), which says more of a whole run than its last window; of its last attempt only when
        the run was ``resumed``, and said so."""
        h = self.model.history
        last = h.latest
        if chart == "loss":
            vl = last.get("val_loss")
            loss = [f"loss {fmt.num(last.get('loss'), keep_zeros=True)}"]
            val = [f"  val {fmt.num(vl, keep_zeros=True)}"] if vl is not None else []
            # the moving average drawn over the raw curve (`s` cycles it), named as its legend names it (which has no
            # room for three lines on most screens): nothing said the curve was smoothed. Last: the first to give way
            smoothed = view.smoothing and last.get("loss") is not None
            return loss + val + ([f"  ma{view.smoothing}"] if smoothed else [])
        if chart == "lr":
            # the verdict's rule (`nsa status` said warmup where this title said cosine, at the last warmup step)
            phase = lr_phase(h)
            return [f"lr {fmt.num(last.get('lr'))}", *([f"  {phase}"] if phase else [])]
        if chart == "toks":
            toks = mean_toks_per_s if mean_toks_per_s is not None else last.get("toks_per_s")
            utilisation = run_mfu(h.run_info, toks)  # none on CPU, for an unknown card, or an older run.json
            return [
                f"tok/s {fmt.num(toks)}" + (" mean" if mean_toks_per_s is not None else ""),
                *([MEAN_OF_LAST_ATTEMPT] if mean_toks_per_s is not None and resumed else []),
                *([f"  MFU {fmt_mfu(utilisation)}"] if utilisation is not None else []),
            ]
        if chart == "mem":
            if self.cpu_run():
                return [f"RSS GiB {fmt.num(last.get('rss_gb'))}", " (CPU run)"]
            a, r = last.get("gpu_mem_alloc_gb"), last.get("gpu_mem_reserved_gb")
            lim = self.memory_limit_gb()
            if a is None and r is None:
                return ["GPU mem —"]
            return [f"GPU GiB {fmt.num(a)}/{fmt.num(r)}"] + ([f" lim {fmt.num(lim)}"] if lim else [])
        if chart == "gate":
            return [
                f"gate H {fmt.num(last.get('gate_entropy_mean'))}",
                f" min {fmt.num(last.get('gate_entropy_min'))}",
                f" col {fmt.num(last.get('gate_collapse_frac'))}",
            ]
        if chart == "shares":
            return [
                f"shares c{fmt.num(last.get('gate_share_cmp'), 2)}",
                f" s{fmt.num(last.get('gate_share_sel'), 2)}",
                f" w{fmt.num(last.get('gate_share_win'), 2)}",
            ]
        return [chart]


CHARTS = ("loss", "lr", "toks", "mem", "gate", "shares")
