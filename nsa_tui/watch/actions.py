"""What the `h` and `d` keys do: the very functions behind `nsa halt` and `nsa dump`
(nsa_tui.launch), locally or through `nsa` on the remote host. Blocking; run off the UI thread."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nsa_tui.errors import UserError

# a key's command on the host (halt --wait 0, dump's 15 s for the ranks' stacks) within this, or said
REMOTE_KEY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Target:
    """The run a key acts on: a local run directory, or ``remote_run`` (its path there) on
    ``host``, whose `nsa` is the one in ``remote_dir``'s venv or on the remote PATH."""

    run_dir: Path | None
    host: str | None = None
    remote_run: str | None = None
    remote_dir: str | None = None

    def run_nsa(self, *args: str) -> str:
        """`nsa ARGS -- RUN` on the host: its output, or UserError saying why it failed. Options first, then `--`:
        a run named like an option (`-x`) is still the run."""
        from nsa_tui.launch.remote import run_nsa

        assert self.host is not None
        argv = [*args, "--", self.remote_run or ""]
        rc, out = run_nsa(self.host, self.remote_dir, argv, echo=False, timeout_s=REMOTE_KEY_TIMEOUT_S)
        if rc != 0:
            raise UserError(f"nsa {args[0]} on {self.host} failed (exit {rc}) {_last_line(out)}".strip())
        return out


HALT_REQUESTED = "the trainer stops after the current step and saves a checkpoint"


def halt(target: Target, say: Callable[[str], None]) -> str:
    from nsa_tui.launch.halt import already_ended_reason, halt_run

    if target.host:
        # said as the local halt says it: the host's output ends with its exit status line, not what happened
        reason = already_ended_reason(target.run_nsa("halt", "--wait", "0"))
        return (
            f"run had already ended ({reason})"
            if reason is not None
            else f"halt requested on {target.host}: {HALT_REQUESTED}"
        )
    assert target.run_dir is not None
    out = halt_run(target.run_dir, 0, say)
    if out is not None and out.already_ended:
        return f"run had already ended ({out.reason})"
    return f"halt requested: {HALT_REQUESTED}"


def dump(target: Target, say: Callable[[str], None]) -> str:
    if target.host:
        return f"stack dump on {target.host}: {_last_line(target.run_nsa('dump'))}"
    from nsa_tui.launch.dump import dump_stacks

    assert target.run_dir is not None
    dumps = dump_stacks(target.run_dir, say)
    said = "stack dumps: " + ", ".join(f.name for f in dumps.files)
    return f"{said} ({dumps.short})" if dumps.short else said


def safely(fn: Callable[[], str]) -> tuple[bool, str]:
    """Run an action; a user-facing failure becomes a message, not a crash of the dashboard."""
    try:
        return True, fn()
    except UserError as e:
        return False, str(e)
    except Exception as e:  # a remote or OS failure must not take the dashboard down
        return False, f"{type(e).__name__}: {e}"


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""
