"""A launched run whose directory was deleted under it: `nsa status NAME` and `nsa halt NAME` said only `no run
directory 'NAME'`, though the launch index knew the run and its tmux session trained on (hours of GPU time written
into a deleted inode, and no command said so or how to stop it). They say that its directory is gone, whether its
session still runs, and how to end it. A real tmux session on this test's server stands for the live launch."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from fixtures.cli import invoke, one_error
from fixtures.procs import tmux_session_with_pid
from fixtures.runs import make_v1_run

from nsa_train.telemetry import schema
from nsa_tui import launched


def gone_from(*searched: Path, status: str = "nsa status") -> str:
    """How every command says a run directory is not at its recorded path: never `deleted` as a fact."""
    return (
        f"gone from there since (deleted, or moved outside {' and '.join(map(str, searched))}, where it was looked "
        f"for; if moved: `{status} NEW_PATH`)"
    )


def test_status_and_halt_of_a_deleted_run_say_whether_its_session_runs(runs_dir, tmux_socket, own_state_dir):
    run = runs_dir / "d1"
    run.mkdir(parents=True)
    launched.record("d1", run, 1.0e9)
    pid = tmux_session_with_pid(tmux_socket, "nsa-d1", ["sleep 600"])
    shutil.rmtree(run)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(1.0e9))
    for cmd in ("status", "halt"):
        res = invoke(cmd, "d1")
        assert res.exit_code == 3, (cmd, res.stdout, res.stderr)
        line = one_error(res)
        assert line.startswith("error: no run directory 'd1' (looked at "), line
        assert line.endswith(
            f": nsa launch started it in {run} ({when}), {gone_from(run.parent)}, and its tmux session nsa-d1 is "
            f"still alive (launch wrapper pid {pid}): deleted, the trainer stops itself after the step it is in (if "
            f"the session stays, `tmux -L {tmux_socket} kill-session -t =nsa-d1` ends it); moved on its filesystem, "
            "it trains on there"
        ), line
    subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", "=nsa-d1"], check=True)
    line = one_error(invoke("halt", "d1"))
    assert line.endswith(
        f": nsa launch started it in {run} ({when}), {gone_from(run.parent)}; its tmux session nsa-d1 is gone: "
        "nothing of it runs"
    ), line


def test_a_run_moved_to_another_parent_is_not_said_deleted(runs_dir, tmp_path, tmux_socket, own_state_dir):
    """`mv runs/exp /elsewhere/exp` read as `a directory deleted since` in `nsa status`, `nsa runs` and `nsa report`:
    no lookup searches the whole disk, so the words say where it was looked for and how to point at it."""
    run, moved = runs_dir / "exp", tmp_path / "elsewhere" / "exp"
    make_v1_run(run, steps=20, state="finished")
    launched.record("exp", run, 1.0e9)
    moved.parent.mkdir()
    run.rename(moved)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(1.0e9))
    said = f"nsa launch started it in {run} ({when}), {gone_from(runs_dir)}"
    for cmd in ("status", "report"):
        res = invoke(cmd, "exp")
        assert res.exit_code == 3 and one_error(res).endswith(
            f": {said}; its tmux session nsa-exp is gone: nothing of it runs"
        ), (cmd, res.stderr)
        assert "deleted since" not in res.stderr
    [obj] = [json.loads(line) for line in invoke("runs", "--json").stdout.splitlines()]
    assert obj["error"] == f"{said}: `nsa status exp` says if it still runs", obj
    res = invoke("status", "--json", str(moved))  # pointed at where it went, as the words say
    assert res.exit_code == 0 and json.loads(res.stdout)["state"] == "finished", res.stdout + res.stderr

    # launched outside the runs root: looked for beside its recorded directory too, and found there when renamed
    other = tmp_path / "other"
    for name in ("away", "renamed"):
        make_v1_run(other / name, steps=20, state="finished")
        launched.record(name, other / name, 1.0e9)
    (other / "away").rename(moved.parent / "away")
    line = one_error(invoke("status", "away"))
    assert f"started it in {other / 'away'} ({when}), {gone_from(other, runs_dir)}; its tmux" in line, line
    _renamed(other / "renamed", other / "renamed-lr3")
    res = invoke("status", "--json", "renamed")
    assert res.exit_code == 0 and json.loads(res.stdout)["run"] == "renamed-lr3", res.stdout + res.stderr
    went = other / "renamed-lr3"
    assert res.stderr == f"note: {other / 'renamed'} is not there: the run that started there is {went} (renamed)\n"


def test_a_name_nothing_launched_keeps_the_plain_error(tmp_path, tmux_socket, own_state_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_error(invoke("status", "never"))
    assert line.startswith("error: no run directory 'never' (looked at ") and line.endswith(")"), line


def _renamed(old: Path, new: Path) -> None:
    """A run renamed since it was launched: its rank 0 heartbeat's first boot record names ``old``, as the trainer's."""
    make_v1_run(old, steps=20, state="finished")
    hb = old / schema.heartbeat_name(0)
    boot = schema.encode(schema.make_record(schema.KIND_BOOT, 0, 0, 4242, 1.0, run_dir=str(old.resolve())))
    hb.write_text(boot + hb.read_text())
    old.rename(new)


def test_runs_lists_a_deleted_run_after_the_runs_there(runs_dir, monkeypatch):
    """`rm -rf runs/d1` made the run vanish from `nsa runs` though the launch index knew it: it is listed, last, as
    `deleted`, with where it was and when it was launched; in --json an error line with `deleted`."""
    make_v1_run(runs_dir / "live", steps=20, state="finished")
    for name, ts in (("d1", 1.0e9), ("d2", 1.1e9)):
        (runs_dir / name).mkdir()
        launched.record(name, runs_dir / name, ts)
        shutil.rmtree(runs_dir / name)
    launched.record("other", runs_dir.parent / "elsewhere" / "other", 1.2e9)  # deleted, but not under this root
    launched.record("r1", runs_dir / "r1", 1.3e9)
    _renamed(runs_dir / "r1", runs_dir / "r2")  # moved, not deleted: listed as r2, not as a deleted r1

    res = invoke("runs", "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["run"] for o in objs] == ["r2", "live", "d2", "d1"], objs  # (the order of the first two: activity)
    d1 = objs[-1]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(1.0e9))
    said = f"nsa launch started it in {runs_dir / 'd1'} ({when}), {gone_from(runs_dir)}"
    assert d1 == {
        "run": "d1",
        "error": f"{said}: `nsa status d1` says if it still runs",
        "exit_code": 3,
        "judge_version": d1["judge_version"],
        "deleted": {"path": str(runs_dir / "d1"), "launched_at": 1.0e9},
    }, d1
    assert "deleted" not in objs[0] and "deleted" not in objs[1]

    monkeypatch.delenv("COLUMNS", raising=False)  # whole rows
    rows = {ln.split()[0]: ln.split(None, 7) for ln in invoke("runs").stdout.splitlines()[1:]}
    assert set(rows) == {"r2", "live", "d1", "d2"}, rows
    assert rows["d1"][1:7] == ["gone", "-", "-", "-", "-", "-"] and rows["d1"][7].startswith(said), rows
