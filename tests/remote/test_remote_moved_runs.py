"""A run renamed or deleted on the host, as a local one is here (nsa_tui.moved_runs, nsa_tui.deleted_runs).

`nsa status --host H OLD-PATH` (or the old name) said `no run directory` where `nsa status OLD-PATH` on the host found
the run under its new name, and a name whose directory was deleted got no word of its launch or its live tmux
session. The host's script now looks for the run as the local lookup does, and says what the host knows in the same
words: the loopback sshd stands for the host.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.cli import invoke, one_error
from fixtures.procs import tmux_session_with_pid
from fixtures.runs import make_v1_run
from launch.test_deleted_run import _renamed, gone_from

from nsa_tui import launched
from nsa_tui.commands.watch import build_models
from nsa_tui.errors import UserError
from nsa_tui.launch import tmux

pytestmark = pytest.mark.slow


def test_a_run_renamed_on_the_host_is_found_by_its_old_path_and_name(sshd, tmp_path, monkeypatch, capsys):
    root = tmp_path / "runs"
    monkeypatch.setenv("NSA_RUNS_DIR", str(root))  # sent to the host: its runs root too
    old, new = root / "exp", root / "exp-lr3e-4"
    make_v1_run(old, steps=100, state="finished")
    old.rename(new)
    note = f"note: {old} on {sshd.host} is not there: the run that started there is {new} (renamed)"

    for run in (str(old), "exp"):
        res = invoke("status", "--json", "--host", sshd.host, run)
        assert res.exit_code == 0, res.stdout + res.stderr
        assert json.loads(res.stdout)["run"] == "exp-lr3e-4"
        assert res.stderr.strip() == note
    capsys.readouterr()
    [model] = build_models([str(old)], sshd.host, False, 0.2, None)  # watch's own lookup (one ssh call)
    assert model.source.run_dir == str(new)
    assert capsys.readouterr().err.strip() == note

    # the same words as here, where the host is this machine
    assert invoke("status", str(old)).stderr.strip() == note.replace(f" on {sshd.host}", "")
    # a relative path, against the directory the host's lookup is in (as the absolute one), not under the runs root
    for run in ("runs/exp", "./runs/exp"):
        res = invoke("status", "--json", "--host", sshd.host, "--remote-dir", str(tmp_path), run)
        assert res.exit_code == 0 and json.loads(res.stdout)["run"] == "exp-lr3e-4", (run, res.stdout, res.stderr)
        assert res.stderr.strip() == note, run

    shutil.copytree(new, root / "exp-copy")  # two that began there: refused, both named
    refusal = f"no run directory {old} on {sshd.host}: runs that started there are {root / 'exp-copy'}; {new}"
    res = invoke("status", "--host", sshd.host, str(old))
    assert res.exit_code == 3 and one_error(res) == f"error: {refusal}"
    with pytest.raises(UserError) as e:
        build_models([str(old)], sshd.host, False, 0.2, None)
    assert e.value.code == 2 and str(e.value) == refusal


def _host_with_tmux(sshd_factory, monkeypatch, tmp_path: Path, socket: str):
    """A loopback host whose default tmux server is this test's own (a tmux on its PATH first)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "tmux").write_text(f'#!/bin/sh\nexec {shutil.which("tmux")} -L {socket} "$@"\n')
    (shadow / "tmux").chmod(0o755)
    sshd = sshd_factory(with_nsa=True, path_prefix=shadow)
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command)
    return sshd


def test_a_run_deleted_on_the_host_says_whether_its_session_runs(sshd_factory, tmp_path, tmux_socket, monkeypatch):
    sshd = _host_with_tmux(sshd_factory, monkeypatch, tmp_path, tmux_socket)
    monkeypatch.delenv("NSA_TMUX_SOCKET")  # the host's lookup asks its default server: this test's
    root = tmp_path / "runs"
    monkeypatch.setenv("NSA_RUNS_DIR", str(root))
    run = root / "d1"
    run.mkdir(parents=True)
    with monkeypatch.context() as m:  # what the host's `nsa launch` writes, in the host's state directory
        m.setenv("XDG_STATE_HOME", str(Path(sshd.key).parent / "xdg-state"))
        launched.record("d1", run, 1.0e9)
    wrapper = [sys.executable, "-c", "import time; time.sleep(60)", "-m", tmux.RUNNER_MODULE, str(run)]
    pid = tmux_session_with_pid(tmux_socket, "nsa-d1", wrapper)
    shutil.rmtree(run)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(1.0e9))
    gone = gone_from(root, status=f"nsa status --host {sshd.host}")
    alive = (
        f": nsa launch started it in {run} ({when}), {gone}, and its tmux session nsa-d1 is still alive (launch "
        f"wrapper pid {pid}): deleted, the trainer stops itself after the step it is in (if the session stays, "
        f"`ssh {sshd.host} 'tmux kill-session -t =nsa-d1'` ends it); moved on its filesystem, it trains on there"
    )
    res = invoke("status", "--host", sshd.host, "d1")
    line = one_error(res)
    assert res.exit_code == 3 and line.startswith(f"error: no run directory 'd1' on {sshd.host} (looked at "), line
    assert line.endswith(alive), line
    with pytest.raises(UserError) as e:
        build_models(["d1"], sshd.host, False, 0.2, None)
    assert str(e.value).endswith(alive), str(e.value)

    subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", "=nsa-d1"], check=True)
    line = one_error(invoke("status", "--host", sshd.host, "d1"))
    assert line.endswith(
        f": nsa launch started it in {run} ({when}), {gone}; its tmux session nsa-d1 is gone: nothing of it runs"
    ), line
    # a name nothing launched keeps the plain error
    line = one_error(invoke("status", "--host", sshd.host, "never"))
    assert line.endswith("or give the full path)"), line


def test_a_report_of_a_run_deleted_on_the_host_says_what_the_host_knows(sshd, tmp_path, monkeypatch):
    """`nsa report --host H NAME` said only `no run directory` where `nsa status --host` says where it was."""
    root = tmp_path / "runs"
    monkeypatch.setenv("NSA_RUNS_DIR", str(root))
    run = root / "d1"
    make_v1_run(run, steps=100, state="finished")
    with monkeypatch.context() as m:  # what the host's `nsa launch` wrote, in the host's state directory
        m.setenv("XDG_STATE_HOME", str(Path(sshd.key).parent / "xdg-state"))
        launched.record("d1", run, 1.0e9)
    shutil.rmtree(run)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(1.0e9))
    res = invoke("report", "--host", sshd.host, "d1")
    line = one_error(res)
    assert res.exit_code == 3 and line.startswith(f"error: no run directory 'd1' on {sshd.host} (looked at "), line
    assert line.endswith(
        f": nsa launch started it in {run} ({when}), {gone_from(root, status=f'nsa status --host {sshd.host}')}; "
        "its tmux session nsa-d1 is gone: nothing of it runs"
    ), line


def test_runs_on_the_host_lists_its_deleted_runs_as_here(sshd, tmp_path, monkeypatch):
    """`nsa runs --host H` left out the runs the host's launch index knows whose directory was deleted, which
    `nsa runs` on the host lists as `deleted`: the same rows and --json lines, their hint with --host."""
    root = tmp_path / "runs"
    monkeypatch.setenv("NSA_RUNS_DIR", str(root))
    monkeypatch.setenv("XDG_STATE_HOME", str(Path(sshd.key).parent / "xdg-state"))  # the host's index, read here too
    make_v1_run(root / "live", steps=20, state="finished")
    for name, ts in (("d1", 1.0e9), ("d2", 1.1e9), ("d3", 1.15e9)):
        (root / name).mkdir(parents=True)
        launched.record(name, root / name, ts)
        shutil.rmtree(root / name)
    launched.record("d3", tmp_path / "kept" / "d3", 1.16e9)  # a run of that name that is there: no hint
    make_v1_run(tmp_path / "kept" / "d3", steps=5, state="finished")
    launched.record("other", tmp_path / "elsewhere" / "other", 1.2e9)  # deleted, but not under this root
    launched.record("r1", root / "r1", 1.3e9)
    _renamed(root / "r1", root / "r2")  # moved, not deleted: listed as r2, not as a deleted r1

    here = [json.loads(line) for line in invoke("runs", "--json").stdout.splitlines()]
    res = invoke("runs", "--json", "--host", sshd.host)
    assert res.exit_code == 0, res.stdout + res.stderr
    there = [json.loads(line) for line in res.stdout.splitlines()]
    deleted = [o for o in there if "deleted" in o]
    assert [o["run"] for o in deleted] == ["d3", "d2", "d1"] == [o["run"] for o in here if "deleted" in o], there
    assert sorted(o["run"] for o in there) == ["d1", "d2", "d3", "live", "r2"], there
    for o, h in zip(deleted, (o for o in here if "deleted" in o), strict=True):
        h["error"] = h["error"].replace("`nsa status ", f"`nsa status --host {sshd.host} ")
        assert o == h, (o, h)
    kept = gone_from(root, status=f"nsa status --host {sshd.host}")  # d3 is there elsewhere: no hint
    assert deleted[0]["error"].endswith(kept), deleted[0]
    assert deleted[2]["error"].endswith(f"`nsa status --host {sshd.host} d1` says if it still runs"), deleted[2]

    monkeypatch.setenv("COLUMNS", "400")  # whole rows
    rows = {ln.split()[0]: ln.split(None, 7) for ln in invoke("runs", "--host", sshd.host).stdout.splitlines()[1:]}
    assert rows["d1"][1:7] == ["gone", "-", "-", "-", "-", "-"], rows
    assert rows["d1"][7].startswith(f"nsa launch started it in {root / 'd1'} ("), rows


def test_a_run_moved_on_the_host_is_not_said_deleted(sshd, tmp_path, monkeypatch):
    """A run moved to another parent on the host read as `a directory deleted since`: the host's lookup says where it
    looked, as here, and finds a launched run renamed beside the directory its index recorded, as here."""
    root, other = tmp_path / "runs", tmp_path / "other"
    monkeypatch.setenv("NSA_RUNS_DIR", str(root))
    root.mkdir()
    make_v1_run(other / "away", steps=20, state="finished")
    with monkeypatch.context() as m:  # what the host's `nsa launch` wrote, in the host's state directory
        m.setenv("XDG_STATE_HOME", str(Path(sshd.key).parent / "xdg-state"))
        for name in ("away", "renamed"):
            launched.record(name, other / name, 1.0e9)
    (tmp_path / "elsewhere").mkdir()
    (other / "away").rename(tmp_path / "elsewhere" / "away")
    _renamed(other / "renamed", other / "renamed-lr3")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(1.0e9))

    line = one_error(invoke("status", "--host", sshd.host, "away"))
    gone = gone_from(other, root, status=f"nsa status --host {sshd.host}")
    assert line.endswith(
        f"started it in {other / 'away'} ({when}), {gone}; its tmux session nsa-away is gone: nothing of it runs"
    ), line
    assert "deleted since" not in line
    res = invoke("status", "--json", "--host", sshd.host, "renamed")
    assert res.exit_code == 0 and json.loads(res.stdout)["run"] == "renamed-lr3", res.stdout + res.stderr
    went = other / "renamed-lr3"
    assert (
        res.stderr.strip()
        == f"note: {other / 'renamed'} on {sshd.host} is not there: the run that started there is {went} (renamed)"
    )


@pytest.mark.parametrize("with_nsa", [True, False])
def test_runs_on_a_host_without_a_runs_root_lists_its_launched_runs_as_here(
    sshd_factory, tmp_path, monkeypatch, with_nsa
):
    """`nsa runs --host H` where H has no runs root failed (`no runs directory ... on H`, exit 3) while `nsa runs` there
    lists the runs its launch index knows, with a note that says so: the host's script lists them the same way, judged
    by the host's nsa or here from their files."""
    sshd = sshd_factory(with_nsa=with_nsa)
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command)
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(Path(sshd.key).parent / "xdg-state"))  # the host's index, read here too
    co = tmp_path / "co"  # no runs/ in it
    co.mkdir()
    monkeypatch.chdir(co)
    for i, name in enumerate(("a", "b")):
        make_v1_run(tmp_path / name / name, steps=10 + i, state="finished")
        launched.record(name, tmp_path / name / name, 1.0e9 + i)
    launched.record("gone", tmp_path / "g" / "gone", 1.2e9)

    here = invoke("runs", "--json")
    res = invoke("runs", "--json", "--host", sshd.host, "--remote-dir", str(co))
    assert res.exit_code == here.exit_code == 0, res.stdout + res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["run"] for o in objs] == ["b", "a", "gone"] == [json.loads(ln)["run"] for ln in here.stdout.splitlines()]
    assert objs[-1]["deleted"] == {"path": str(tmp_path / "g" / "gone"), "launched_at": 1.2e9}, objs[-1]
    index = Path(sshd.key).parent / "xdg-state" / "nsa" / "launched.jsonl"
    note = f"; the runs nsa launch started, newest first, then those gone from there since (at most 20 of each; {index}"
    assert here.stderr == f"note: no runs directory runs here{note}):\n", here.stderr
    assert res.stderr == f"note: no runs directory {co}/runs on {sshd.host}{note} on {sshd.host}):\n", res.stderr

    monkeypatch.setenv("COLUMNS", "400")  # whole rows
    lines = invoke("runs", "--host", sshd.host, "--remote-dir", str(co)).stdout.splitlines()
    assert [ln.split()[:2] for ln in lines[1:4]] == [["b", "finished"], ["a", "finished"], ["gone", "gone"]], lines
    assert lines[4:] == [
        f"  b: {tmp_path / 'b' / 'b'}",
        f"  a: {tmp_path / 'a' / 'a'}",
        f"  gone: {tmp_path / 'g' / 'gone'}",
    ]

    Path(index).unlink()  # nothing recorded: the error it was
    res = invoke("runs", "--host", sshd.host, "--remote-dir", str(co))
    assert res.exit_code == 3 and one_error(res).startswith(f"error: no runs directory {co}/runs on {sshd.host}")
