"""Reading run directories of every supported format into one RunHistory.

Public API (used by `nsa status`, `nsa runs` and `nsa watch`):

- ``detect_format(run_dir) -> 'nsa-v1' | 'nsa-vibe' | 'generic' | None``
- ``load_run(run_dir) -> RunHistory``: a snapshot from bounded file tails (fast on huge runs).
- ``RunHistory``: ``feed(source_name, lines)`` for incremental reading (watch feeds appended
  lines per file name: heartbeat_rank{r}.jsonl, training.csv, val.csv, fallback_counters.csv,
  or a generic ``*.jsonl``/``*.csv`` log); column arrays via ``column(name)``, ``steps``,
  ``ts``, ``val_steps``/``val_loss``; ``events``; ``ranks``; ``corrupt``; ``latest``.
- ``fill_context(history, collect_local(run_dir))`` refreshes exit status, console tail,
  tmux liveness etc. for a history that is fed incrementally.
"""

from nsa_tui.runs.bundle import RunBundle, collect_local
from nsa_tui.runs.history import (
    FORMAT_GENERIC,
    FORMAT_V1,
    FORMAT_VIBE,
    FORMATS,
    Event,
    RankState,
    RunHistory,
    source_kind,
)
from nsa_tui.runs.load import detect_format, fill_context, history_from_bundle, load_run, local_tmux_sessions
from nsa_tui.runs.tail import read_tail_lines

__all__ = [
    "FORMATS",
    "FORMAT_GENERIC",
    "FORMAT_V1",
    "FORMAT_VIBE",
    "Event",
    "RankState",
    "RunBundle",
    "RunHistory",
    "collect_local",
    "detect_format",
    "fill_context",
    "history_from_bundle",
    "load_run",
    "local_tmux_sessions",
    "read_tail_lines",
    "source_kind",
]
