"""What the `h` and `d` keys do: the very functions behind `nsa halt` and `nsa dump`
(nsa_tui.launch), locally or through `nsa` on the remote host. Blocking; run off the UI thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nsa_tui.errors import UserError


def halt(run_dir: Path | None, host: str | None, remote_run: str | None, say: Callable[[str], None]) -> str:
    if host:
        from nsa_tui.launch.remote import run_nsa

        rc, out = run_nsa(host, None, ["halt", remote_run or "", "--wait", "0"], echo=False)
        if rc != 0:
            raise UserError(f"nsa halt on {host} failed (exit {rc}) {_last_line(out)}".strip())
        return f"halt requested on {host} {_last_line(out)}".strip()
    from nsa_tui.launch.halt import halt_run

    assert run_dir is not None
    out = halt_run(run_dir, 0, say)
    if out is not None and out.already_ended:
        return f"run had already ended ({out.reason})"
    return "halt requested: the trainer stops after the current step and saves a checkpoint"


def dump(run_dir: Path | None, host: str | None, remote_run: str | None, say: Callable[[str], None]) -> str:
    if host:
        from nsa_tui.launch.remote import run_nsa

        rc, out = run_nsa(host, None, ["dump", remote_run or ""], echo=False)
        if rc != 0:
            raise UserError(f"nsa dump on {host} failed (exit {rc}) {_last_line(out)}".strip())
        return f"stack dump on {host}: {_last_line(out)}"
    from nsa_tui.launch.dump import dump_stacks

    assert run_dir is not None
    files = dump_stacks(run_dir, say)
    return "stack dumps: " + ", ".join(f.name for f in files)


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
