"""`nsa report --host`: the runs' whole files fetched in one ssh call from a real loopback sshd, the
report drawn here; it says what the local report says of the same directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fixtures.runs import make_v1_run
from typer.testing import CliRunner

from nsa_tui.cli import app
from nsa_tui.report.load import load_report_run
from nsa_tui.report.remote import fetch_report_runs
from nsa_tui.runs.bundle import file_limit

pytestmark = pytest.mark.slow


def _report(*args: str):
    return CliRunner().invoke(app, ["report", *args])


def _comparable(md: str) -> str:
    """report.md without what names the machine or the moment: the generation time, the run's location."""
    md = re.sub(r"^Generated .*$", "", md, flags=re.M)
    return re.sub(r"^(- \*\*[^*]+\*\*) \(`[^`]+`\):$", r"\1", md, flags=re.M)


def test_remote_report_says_what_the_local_one_says(tiny_run: Path, sshd, tmp_path: Path) -> None:
    local = _report(str(tiny_run), "--out", str(tmp_path / "local"))
    assert local.exit_code == 0, local.output
    out = str(tmp_path / "r")
    res = _report("--host", sshd.host, "--remote-dir", str(tiny_run.parent), tiny_run.name, "--out", out)
    assert res.exit_code == 0, res.output
    md = (tmp_path / "r" / "report.md").read_text()
    # the checkpoints, sizes and pointers came over as names (the files themselves never do)
    assert f"- **tiny** (`{sshd.host}:{tiny_run.parent}/tiny/checkpoints`):" in md
    assert "step_00000030.pt" in md and "← latest, best" in md
    assert _comparable(md) == _comparable((tmp_path / "local" / "report.md").read_text())
    for name in ("loss", "lr", "throughput", "memory", "gates"):
        assert (tmp_path / "r" / f"{name}.png").stat().st_size > 10_000


def test_whole_files_not_the_status_tails(tmp_path: Path, sshd, monkeypatch) -> None:
    # a long run: rank 0's heartbeat is past the tail `nsa status` reads, so only whole files give every step
    run = tmp_path / "host" / "runs" / "long"
    make_v1_run(run, steps=20_000, total_steps=20_000, state="finished", log_every=5)
    heartbeat = run / "heartbeat_rank0.jsonl"
    assert heartbeat.stat().st_size > file_limit(heartbeat.name) * 2
    (fetched,) = fetch_report_runs(sshd.host, ["long"], str(tmp_path / "host"))
    local = load_report_run(run)
    assert local is not None and local.history.steps[0] == 5 and len(local.history.steps) == 4000
    assert fetched.history.steps == local.history.steps
    assert fetched.history.column("loss") == local.history.column("loss")
    assert [e.kind for e in fetched.history.events] == [e.kind for e in local.history.events]

    monkeypatch.chdir(tmp_path)
    res = _report("--host", sshd.host, "--remote-dir", str(tmp_path / "host"), "long")  # default --out
    assert res.exit_code == 0, res.output
    md = (tmp_path / "long-report" / "report.md").read_text()
    assert "| long | nsa-v1 | finished | 20000/20000 |" in md
    assert "- **long**: no checkpoints" in md


def test_mistakes_are_one_line(tmp_path: Path, sshd) -> None:
    make_v1_run(tmp_path / "runs" / "a", steps=50)
    (tmp_path / "runs" / "empty").mkdir()
    cases = [
        (["--host", sshd.host, "--remote-dir", str(tmp_path), "nope"], 3, "no run directory 'nope' on"),
        (["--host", sshd.host, "--remote-dir", str(tmp_path / "x"), "a"], 3, "cannot cd to"),
        (["--host", sshd.host, "--remote-dir", str(tmp_path), "runs/empty"], 3, "no telemetry in"),
        (["--remote-dir", str(tmp_path), "a"], 2, "--remote-dir needs --host"),
        (["--host", "root@127.0.0.1:1", "a"], 3, "cannot reach"),
    ]
    for args, code, message in cases:
        res = _report(*args, "--out", str(tmp_path / "out"))
        lines = res.stderr.strip().splitlines()
        assert res.exit_code == code and len(lines) == 1 and message in lines[0], (args, res.output)
    assert not (tmp_path / "out").exists()
