"""A launched run is found by its name from any directory: `nsa launch` records it in the per-user index
(nsa_tui.launched), and the commands fall back to it, then to the run's live tmux session, when the name is not
found where they look. Field report: the
user launched from ~/proj, opened a new shell in ~, and `nsa status main` / `nsa runs` said there was no such run
while its tmux session trained on."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

from fixtures.cli import invoke, nsa_on_a_terminal, one_error

from nsa_tui import launched

from .helpers import TINY, nsa, wait_for
from .test_deleted_run import gone_from


def _env_without_runs_root() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NSA_RUNS_DIR", None)  # runs go to ./runs of the launch's directory, as for the user
    return env


def test_a_run_launched_elsewhere_is_found_by_name(tmp_path, tmux_socket, own_state_dir):
    proj, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    proj.mkdir()
    elsewhere.mkdir()
    env = _env_without_runs_root()
    res = nsa("launch", "--name", "main", *TINY, env=env, cwd=proj)
    assert res.returncode == 0, res.stdout + res.stderr
    run_dir = proj / "runs" / "main"
    index = own_state_dir / "nsa" / "launched.jsonl"
    (entry,) = [json.loads(line) for line in index.read_text().splitlines()]
    assert entry["name"] == "main" and entry["run_dir"] == str(run_dir) and entry["host"]
    try:
        # from another directory: no ./runs there, no NSA_RUNS_DIR
        res = nsa("status", "main", "--json", env=env, cwd=elsewhere)
        assert res.returncode != 3, res.stdout + res.stderr
        verdict = json.loads(res.stdout)
        assert verdict["run"] == "main"
        notes = res.stderr.strip().splitlines()
        assert len(notes) == 1 and notes[0].startswith(f"note: run 'main' is {run_dir} (launched "), res.stderr

        res = nsa("runs", env=env, cwd=elsewhere)
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"main: {run_dir}" in res.stdout
        assert "note: no runs directory runs here; the runs nsa launch started, newest first" in res.stderr
        res = nsa("runs", "--json", env=env, cwd=elsewhere)
        assert [json.loads(line)["run"] for line in res.stdout.splitlines()] == ["main"]
        _resume_names(run_dir, env, elsewhere)

        # a run launched before the index (or with it lost): its live tmux session says where it runs
        index.unlink()
        res = nsa("status", "main", "--json", env=env, cwd=elsewhere)
        assert res.returncode != 3 and json.loads(res.stdout)["run"] == "main", res.stdout + res.stderr
        assert res.stderr.strip() == f"note: run 'main' is {run_dir} (its tmux session nsa-main runs there)"
        _resume_names(run_dir, env, elsewhere)
    finally:
        res = nsa("halt", "main", "--wait", "120", env=env, cwd=elsewhere, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    wait_for(lambda: (run_dir / "exit_status").exists(), 60, "the halted run's exit_status")


def _resume_names(run_dir: Path, env: dict[str, str], cwd: Path) -> None:
    """`nsa launch --name main --resume` from ``cwd`` refuses, as before (it never resumes elsewhere unasked), but
    names the run of that name it knows and the exact command that resumes it."""
    for how in (["--name", "main"], ["--run-dir", "runs/main"]):  # the same mistake, by its directory
        res = nsa("launch", *how, "--resume", env=env, cwd=cwd)
        assert res.returncode == 1, res.stdout + res.stderr
        # it is live (the tmux session trains on): said, so that nobody resumes it; its ranks' pids once started
        assert re.fullmatch(
            re.escape(
                f"error: --resume: no run directory {cwd / 'runs' / 'main'}; nsa launch started a run 'main' in "
                f"{run_dir}; it is running now (tmux session nsa-main"
            )
            + r"(, rank 0 pid \d+)?"
            + re.escape(f"): `nsa watch {run_dir}`, and once it stops, `nsa launch --run-dir {run_dir} --resume`"),
            res.stderr.strip(),
        ), res.stderr
    assert not (cwd / "runs").exists()


def test_resume_by_name_elsewhere_names_each_run_of_that_name(tmp_path):
    a, b = _run(tmp_path / "a", "main"), _run(tmp_path / "b", "main")
    launched.record("main", a, 1.0)
    launched.record("main", b, 2.0)
    here = tmp_path / "here"
    here.mkdir()
    res = nsa("launch", "--name", "main", "--resume", env=_env_without_runs_root(), cwd=here)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.strip() == (
        f"error: --resume: no run directory {here / 'runs' / 'main'}; nsa launch started 2 runs 'main': {b}; {a}; "
        f"to resume one, `nsa launch --run-dir {b} --resume` or `nsa launch --run-dir {a} --resume`"
    ), res.stderr
    # a name nothing knows: the error it was
    res = nsa("launch", "--name", "other", "--resume", env=_env_without_runs_root(), cwd=here)
    assert res.returncode == 1 and res.stderr.strip() == f"error: --resume: no run directory {here / 'runs' / 'other'}"


def test_resume_by_name_elsewhere_says_which_run_of_that_name_is_running_now(tmp_path, tmux_socket):
    """The refusal named the run's directory and the command that resumes it, not that the run was still running
    (its tmux session alive): a live run resumed by that command is one more trainer on its directory. A real tmux
    session on this test's server stands for the live run (no trainer: its ranks have no pids to name)."""
    a, b, solo = _run(tmp_path / "a", "main"), _run(tmp_path / "b", "main"), _run(tmp_path / "s", "solo")
    for d, name in ((a, "main"), (solo, "solo")):
        launch = {"host": socket.gethostname(), "tmux_session": f"nsa-{name}", "tmux_socket": tmux_socket}
        (d / "launch.json").write_text(json.dumps({**launch, "run_dir": str(d)}))
        subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", f"nsa-{name}", "sleep 600"], check=True)
    launched.record("main", a, 1.0)
    launched.record("main", b, 2.0)
    launched.record("solo", solo, 3.0)
    here = tmp_path / "here"
    here.mkdir()
    env = _env_without_runs_root()
    res = nsa("launch", "--name", "main", "--resume", env=env, cwd=here)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.strip() == (
        f"error: --resume: no run directory {here / 'runs' / 'main'}; nsa launch started 2 runs 'main': {b}; "
        f"{a} (running now: tmux session nsa-main); "
        f"to resume one, `nsa launch --run-dir {b} --resume` or `nsa launch --run-dir {a} --resume`"
    ), res.stderr
    for how in (["--name", "solo"], ["--run-dir", "runs/solo"]):
        res = nsa("launch", *how, "--resume", env=env, cwd=here)
        assert res.returncode == 1, res.stdout + res.stderr
        assert res.stderr.strip() == (
            f"error: --resume: no run directory {here / 'runs' / 'solo'}; nsa launch started a run 'solo' in {solo}; "
            f"it is running now (tmux session nsa-solo): `nsa watch {solo}`, and once it stops, "
            f"`nsa launch --run-dir {solo} --resume`"
        ), res.stderr
    # its session gone: the plain hint, as for a run that stopped
    subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", "=nsa-solo"], check=True)
    res = nsa("launch", "--name", "solo", "--resume", env=env, cwd=here)
    assert res.stderr.strip() == (
        f"error: --resume: no run directory {here / 'runs' / 'solo'}; nsa launch started a run 'solo' in {solo}: "
        f"to resume it, `nsa launch --run-dir {solo} --resume`"
    ), res.stderr


def _run(root: Path, name: str) -> Path:
    d = root / "runs" / name
    d.mkdir(parents=True)
    (d / "launch.json").write_text("{}")
    return d


def test_two_runs_of_one_name_are_refused_both_named(tmp_path, monkeypatch):
    a, b = _run(tmp_path / "a", "main"), _run(tmp_path / "b", "main")
    launched.record("main", a, 1.0)
    launched.record("main", b, 2.0)
    launched.record("main", b, 3.0)  # a --resume of the same run: still one run
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    for cmd in ("status", "dump", "attach", "report", "sample"):
        res = invoke(cmd, "main")
        # `nsa status` has no verdict (3, its UNKNOWN): its 2 is a critical run's
        assert res.exit_code == (3 if cmd == "status" else 2), (cmd, res.stdout, res.stderr)
        line = one_error(res)
        assert "nsa launch started 2 runs of that name" in line and str(a) in line and str(b) in line
    res = nsa_on_a_terminal("watch", "main")  # without a terminal it says it needs one first
    assert res.returncode == 2 and "nsa launch started 2 runs of that name" in res.stderr, res.stderr
    assert len(res.stderr.splitlines()) == 1


def test_corrupt_lines_and_gone_runs_are_skipped(tmp_path, own_state_dir, monkeypatch):
    gone = tmp_path / "gone" / "runs" / "main"
    kept = _run(tmp_path / "k", "main")
    index = own_state_dir / "nsa" / "launched.jsonl"
    index.parent.mkdir(parents=True)
    index.write_text(
        '{"name": "main", "run_dir": "' + str(gone) + '", "host": "h", "ts": 5}\n'
        "not json\n"
        '{"name": "main", "run_dir": "relative/path", "ts": 6}\n'
        '{"name": "main", "run_dir": "' + str(kept) + '", "host": "h", "ts": 4}\n'
        '{"name": "main", "run_dir": "' + str(kept)  # cut by a full disk
    )
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    res = invoke("status", "main")
    assert f"note: run 'main' is {kept}" in res.stderr, res.stderr
    assert "no run directory" not in res.stderr


def test_a_name_the_index_does_not_know_is_the_same_error(tmp_path, monkeypatch):
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    res = invoke("status", "nope")
    assert res.exit_code == 3 and one_error(res).startswith("error: no run directory 'nope' (looked at ")
    res = invoke("runs")
    assert res.exit_code == 3 and one_error(res) == "error: no runs directory runs (pass DIR or set NSA_RUNS_DIR)"


def test_a_path_is_never_looked_up_by_name(tmp_path, monkeypatch):
    launched.record("main", _run(tmp_path / "a", "main"), 1.0)
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    res = invoke("status", "x/main")
    assert res.exit_code == 3 and "no run directory 'x/main'" in one_error(res)


def test_the_index_stays_bounded(own_state_dir, tmp_path):
    index = own_state_dir / "nsa" / "launched.jsonl"
    index.parent.mkdir(parents=True)
    old = json.dumps({"name": "old", "run_dir": str(tmp_path), "host": "h", "ts": 1.0}) + "\n"
    index.write_text(old * (launched.MAX_BYTES // len(old) + 1))
    launched.record("new", tmp_path / "new", 2.0)
    assert index.stat().st_size <= launched.MAX_BYTES // 2 + len(old) * 2
    assert launched.entries()[-1].name == "new"


def test_a_relative_xdg_state_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", "rel")
    assert launched.index_path() == tmp_path / ".local" / "state" / "nsa" / "launched.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert launched.index_path() == tmp_path / ".local" / "state" / "nsa" / "launched.jsonl"


def test_a_launch_that_cannot_record_the_run_still_starts_it(tmp_path, tmux_socket, monkeypatch):
    blocked = tmp_path / "state-is-a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))  # nsa/ cannot be made under a file
    env = _env_without_runs_root()
    res = nsa("launch", "--name", "rec", *TINY, "--set", "train.steps=2", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    warned = [line for line in res.stdout.splitlines() if line.startswith("warning: could not record the run in ")]
    assert len(warned) == 1 and str(blocked / "nsa") in warned[0], res.stdout
    assert "started tmux session nsa-rec" in res.stdout
    wait_for(lambda: (tmp_path / "runs" / "rec" / "exit_status").exists(), 120, "the 2-step run's exit_status")


def test_runs_without_a_runs_root_lists_the_launched_runs_newest_first(tmp_path, monkeypatch):
    a, b, c = (_run(tmp_path / p, n) for p, n in (("p", "a"), ("q", "b"), ("r", "c")))
    for i, d in enumerate((a, b, c, a)):  # a launched again (a --resume): once, as its latest launch
        launched.record(d.name, d, float(i))
    launched.record("gone", tmp_path / "gone", 9.0)
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    res = invoke("runs", "--json")
    assert res.exit_code == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["run"] for o in objs] == ["a", "c", "b", "gone"]  # a run deleted since: last, marked
    assert objs[-1]["deleted"] == {"path": str(tmp_path / "gone"), "launched_at": 9.0}, objs[-1]
    assert "then those gone from there since (at most 20 of each; " in res.stderr, res.stderr


def test_runs_without_a_runs_root_lists_runs_deleted_since_rather_than_fail(tmp_path, monkeypatch):
    """Every run the index knows was deleted: `nsa runs` lists them, where it said there was no runs directory."""
    launched.record("gone", tmp_path / "p" / "runs" / "gone", 9.0)
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    res = invoke("runs")
    assert res.exit_code == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[1].split()[:2] == ["gone", "gone"] and lines[2] == f"  gone: {tmp_path}/p/runs/gone", lines
    assert json.loads(invoke("runs", "--json").stdout)["error"].endswith("`nsa status gone` says if it still runs")

    launched.record("gone", _run(tmp_path / "q", "gone"), 10.0)  # a run of that name is there now
    objs = [json.loads(line) for line in invoke("runs", "--json").stdout.splitlines()]
    assert [o["run"] for o in objs] == ["gone", "gone"] and "deleted" in objs[1], objs
    assert objs[1]["error"].endswith(gone_from(tmp_path / "p" / "runs")), objs  # `nsa status gone` judges the other
