"""Stop requests: the `.HALT` file and SIGTERM/SIGINT/SIGHUP, turned into flags the loop agrees on.

SIGHUP is a stop request too: it is what a killed tmux session (or a dropped terminal) sends, and torchrun
passes it on to its workers, then waits for them (30 s by default) before SIGKILL. Its default action would
end the process mid-step, without a checkpoint or an `end` record.

Only rank 0 looks at `.HALT`; every rank notes its own signals. The loop all-reduces
these flags once per step (see train.py), so all ranks stop after the same step. A rank
that decided alone would leave the others waiting in a collective until it times out.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

from nsa_train.telemetry import schema

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)  # no SIGHUP on Windows


class StopRequests:
    def __init__(self, run_dir: Path, is_main: bool) -> None:
        self.halt_path = Path(run_dir) / schema.HALT_FILE
        self.is_main = is_main
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def install_signal_handlers(self) -> None:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None:
            # a second signal means "now": fall back to the default action
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self.signal_name = signal.Signals(signum).name

    def remove_stale_halt(self) -> bool:
        """Rank 0 at start: a `.HALT` left from an earlier stop must not stop this run at step 1."""
        if self.is_main and self.halt_path.exists():
            self.halt_path.unlink(missing_ok=True)
            return True
        return False

    def halt_requested(self) -> bool:
        return self.is_main and self.halt_path.exists()

    def remove_halt(self) -> None:
        if self.is_main:
            self.halt_path.unlink(missing_ok=True)

    @property
    def signalled(self) -> bool:
        return self.signal_name is not None

    @property
    def exit_signal(self) -> int:
        return int(getattr(signal, self.signal_name)) if self.signal_name else 0
