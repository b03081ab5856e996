"""The default health rules, as data. docs/health.md gives the reason for every number.

Each entry: severity, persistence (``for``: an int is steps, a string such as "300s",
"5m" or "200 steps" is explicit), and the rule's thresholds (``params``). A run's config
``monitor`` section and ``nsa status --rules FILE`` override any of these per rule.
"""

from __future__ import annotations

from typing import Any

# The rules window: every history rule judges the last RULES_WINDOW_POINTS points of each series (progress
# points; evaluations for the val rules), never more, whatever else a reader holds. `nsa status` reads bounded
# file tails and `nsa watch` keeps a whole session: judged on the same points they give the same verdict,
# "since step" included. 4000 lets every rule fire with its defaults at log_every=1: loss_plateau needs its
# 3000 steps plus 20 smoothing points; throughput_drop its 500-point baseline plus a 300 s stretch (3500 points
# at >= 0.09 s a step); the others need a few hundred. Readers must hold at least this much
# (nsa_tui.runs.bundle's FILE_LIMITS, the dashboard's first read).
RULES_WINDOW_POINTS = 4000

DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "nan_loss": {"severity": "critical", "for": 0, "params": {}},
    "loss_increase": {
        "severity": "warning",
        "for": "200 steps",
        "params": {"smooth_points": 10, "rise_frac": 0.05},
    },
    "loss_plateau": {
        "severity": "warning",
        "for": 0,
        "params": {"smooth_points": 20, "min_improvement_frac": 0.01, "patience_steps": 3000},
    },
    "throughput_low": {
        "severity": "warning",
        "for": "300s",
        # min_mfu judges a model of min_params or more on a GPU whose peak is known (nsa_train.telemetry.mfu)
        "params": {"min_toks_per_s": None, "min_mfu": 0.005, "min_params": 50_000_000},
    },
    "throughput_drop": {
        "severity": "warning",
        "for": "300s",
        "params": {"drop_frac": 0.5, "window_points": 500, "skip_first_points": 5},
    },
    "memory_high": {"severity": "warning", "for": 0, "params": {"max_gpu_mem_gb": None}},
    "heartbeat_stale": {
        "severity": "critical",
        "for": 0,
        # stale_s: a fixed limit when set; null: 10 x the progress interval, within [min_stale_s, max_stale_s]
        "params": {"stale_s": None, "interval_factor": 10.0, "min_stale_s": 120.0, "max_stale_s": 600.0},
    },
    # the trainer's own monitor.stall_s decides (its `stall` record): no threshold of ours
    "watchdog_stall": {"severity": "critical", "for": 0, "params": {}},
    "stuck_at_start": {"severity": "critical", "for": 0, "params": {"start_timeout_s": 900.0}},
    "gate_collapse": {
        "severity": "warning",
        "for": "100 steps",
        "params": {
            "entropy_min": 0.5,
            "collapse_max": 0.1,
            "entropy_severe": 0.25,
            "collapse_severe": 0.3,
            "layer_entropy_min": 0.15,
        },
    },
    "fallbacks_rising": {"severity": "warning", "for": 0, "params": {"window_steps": 500}},
    "data_stall": {
        "severity": "warning",
        "for": "100 steps",
        "params": {"fetch_frac": 0.3, "min_fetch_s": 0.05},
    },
    "lr_mismatch": {"severity": "warning", "for": "20 steps", "params": {"rel_tol": 0.05}},
    "grad_spike": {
        "severity": "warning",
        "for": 0,
        "params": {"factor": 10.0, "window_points": 200, "recent_points": 5, "min_points": 20},
    },
    "val_rising": {"severity": "warning", "for": 0, "params": {"rise_frac": 0.03, "evals": 2}},
    "val_suspicious": {
        "severity": "warning",
        "for": 0,
        "params": {"train_ratio": 0.5, "min_loss": 0.05, "train_points": 5},
    },
    "disk_low": {"severity": "warning", "for": 0, "params": {"checkpoints": 2.0}},
    "process_exited": {"severity": "critical", "for": 0, "params": {"console_lines": 5}},
    "launcher_exit": {"severity": "warning", "for": 0, "params": {}},
    "launcher_gone": {"severity": "warning", "for": 0, "params": {}},
    # a rank's process stopped (SIGSTOP, ctrl-z): the whole DDP run waits on it. 60 s from its newest record, so
    # at least 30 s after the stop with records every 30 s (monitor.liveness_every_s): a passing pause does not fire
    "rank_stopped": {"severity": "critical", "for": "60s", "params": {}},
    "run_dir_gone": {"severity": "critical", "for": 0, "params": {}},
    # a live run's records off this machine's clock (an NFS mount or a copy of another box's runs, a bad ts)
    "clock_skew": {"severity": "warning", "for": 0, "params": {}},
}

# monitor.<key> in a run's config -> (rule, param)
MONITOR_KEYS: dict[str, tuple[str, str]] = {
    "min_toks_per_s": ("throughput_low", "min_toks_per_s"),
    "min_mfu": ("throughput_low", "min_mfu"),
    "max_gpu_mem_gb": ("memory_high", "max_gpu_mem_gb"),
    "stale_s": ("heartbeat_stale", "stale_s"),
    "start_timeout_s": ("stuck_at_start", "start_timeout_s"),
    "gate_entropy_min": ("gate_collapse", "entropy_min"),
    "gate_collapse_max": ("gate_collapse", "collapse_max"),
}
