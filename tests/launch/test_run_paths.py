"""Run names and run directories the file system cannot take, and the runs root as $NSA_RUNS_DIR gives it: each is
one error line (or the documented default), never a traceback nor a directory somewhere unexpected."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fixtures.cli import invoke, nsa_on_a_terminal, one_error

from nsa_train.runtime.start import default_run_dir
from nsa_tui.check_cheap import FAIL, PASS, check_run_dir
from nsa_tui.errors import UserError
from nsa_tui.launch.launcher import LaunchRequest, plan_launch, validate_run_name
from nsa_tui.remote.checkout import PRELUDE
from nsa_tui.rundir import name_max, resolve_run, runs_root

TOO_LONG = "c" * 256  # one byte over ext4's (and tmpfs's) NAME_MAX
TOO_LONG_UTF8 = "é" * 128  # 128 characters, 256 bytes


def test_name_max_is_the_file_systems(tmp_path):
    assert name_max(tmp_path) == os.pathconf(tmp_path, "PC_NAME_MAX")
    assert name_max(tmp_path / "not" / "yet") == name_max(tmp_path)  # its nearest existing ancestor's


@pytest.mark.parametrize("name", [TOO_LONG, TOO_LONG_UTF8])
def test_a_name_over_name_max_is_refused_with_its_byte_count(name, runs_dir):
    assert name_max(runs_dir) == 255, "the test assumes NAME_MAX 255 under tmp"
    with pytest.raises(UserError, match=r"is 256 bytes in UTF-8, and a directory name here is at most 255"):
        validate_run_name(name)
    assert validate_run_name(name[:-1] if name.isascii() else name[:127]) is not None  # 255 and 254 bytes: fine


@pytest.mark.parametrize("dry", [True, False])
def test_launch_refuses_a_name_over_name_max(dry, runs_dir):
    """It was `OSError: [Errno 36] File name too long` with a traceback, dry run or not."""
    res = invoke("launch", *(["--dry-run"] if dry else []), "--name", TOO_LONG)
    assert res.exit_code == 1, res.stdout + res.stderr
    assert "256 bytes in UTF-8" in one_error(res)
    assert list(runs_dir.iterdir()) == []
    res = invoke("launch", "--dry-run", "--resume", "--name", TOO_LONG)
    assert res.exit_code == 1 and "256 bytes in UTF-8" in one_error(res)


@pytest.mark.parametrize("cmd", ["status", "halt", "dump", "attach", "report", "sample", "watch"])
def test_a_run_over_name_max_is_no_such_run(cmd, runs_dir, monkeypatch):
    monkeypatch.chdir(runs_dir.parent)
    for run in (TOO_LONG, f"runs/{TOO_LONG}", f"{TOO_LONG}.pt"):
        if cmd == "watch":  # without a terminal it says it needs one first
            proc = nsa_on_a_terminal(cmd, run)
            assert proc.returncode == 3 and len(proc.stderr.splitlines()) == 1, proc.stderr
            assert proc.stderr.startswith("error: no run directory ") and proc.stderr.endswith("File name too long\n")
            continue
        res = invoke(cmd, run, *(["--wait", "1"] if cmd == "halt" else []))
        assert res.exit_code == 3, res.stdout + res.stderr
        assert one_error(res).startswith("error: no run directory ")
        assert res.stderr.rstrip().endswith("File name too long")


def test_check_fails_a_run_dir_over_name_max(tmp_path):
    row = check_run_dir(tmp_path / TOO_LONG)
    assert row.status == FAIL and row.reason.endswith("File name too long")
    # below a directory not made yet the system never looks at the name: found all the same
    row = check_run_dir(tmp_path / "new" / TOO_LONG / "run")
    assert row.status == FAIL and "is 256 bytes, over NAME_MAX (255)" in row.reason
    assert check_run_dir(tmp_path / "new" / ("c" * 255) / "run").status == PASS


def test_a_dangling_symlink_is_refused_by_check_and_launch(runs_dir, monkeypatch):
    """check passed it (`writable (created under ...)`), then the launch failed with `File exists`."""
    monkeypatch.chdir(runs_dir)
    os.symlink("nowhere", "dangling")
    said = "dangling is a symlink to nowhere, which does not exist"
    row = check_run_dir(Path("dangling"))
    assert row.status == FAIL and row.reason == said
    res = invoke("launch", "--dry-run", "--run-dir", "dangling")
    assert res.exit_code == 1, res.stdout + res.stderr
    assert one_error(res) == f"error: run dir: {runs_dir / said}"
    assert not (runs_dir / "nowhere").exists()


def test_run_dir_dotdot_is_normalised(tmp_path, monkeypatch):
    """`--run-dir ..` was `invalid run name '..'`, `../rr/..` recorded as given, `/` an `invalid run name ''`."""
    sub = tmp_path / "x" / "sub"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    plan = plan_launch(LaunchRequest(run_dir=".."), {})
    assert (plan.name, plan.run_dir) == ("x", tmp_path / "x")
    plan = plan_launch(LaunchRequest(run_dir="../rr/.."), {})
    assert (plan.name, plan.run_dir) == ("x", tmp_path / "x")
    assert str(plan.command.run_dir) == str(tmp_path / "x")
    with pytest.raises(UserError, match=r"^--run-dir / has no name to give the run: add --name NAME"):
        plan_launch(LaunchRequest(run_dir="/"), {})
    assert plan_launch(LaunchRequest(run_dir="/", name="root"), {}).run_dir == Path("/")


def test_a_quoted_tilde_in_nsa_runs_dir_is_home(tmp_path, monkeypatch):
    """NSA_RUNS_DIR='~/runs' (a .env file, a systemd unit) made a directory named ~ in the current one."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NSA_RUNS_DIR", "~/runs")
    assert runs_root() == tmp_path / "home" / "runs"
    assert default_run_dir(None, 1).parent == tmp_path / "home" / "runs"  # the trainer's default --run-dir
    plan = plan_launch(LaunchRequest(name="t"), {})
    assert plan.run_dir == tmp_path / "home" / "runs" / "t"
    # the host's runs root, as the sh prelude of every --host command computes it
    for value, root in (("~/runs", f"{tmp_path}/home/runs"), ("~", f"{tmp_path}/home"), ("", "runs")):
        out = subprocess.run(
            ["sh", "-c", PRELUDE + 'printf %s "$root"'],
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), "NSA_RUNS_DIR": value},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out == root
    assert not (tmp_path / "~").exists()
    # ~user is left as the host's sh leaves it: both sides read the variable alike (review revAZ)
    monkeypatch.setenv("NSA_RUNS_DIR", "~root/runs")
    assert runs_root() == Path("~root/runs")


def test_an_empty_nsa_runs_dir_is_unset(tmp_path, monkeypatch):
    """NSA_RUNS_DIR= was Path(''), the current directory: `nsa runs` listed its subdirectories as runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NSA_RUNS_DIR", "")
    assert runs_root() == Path("runs")
    assert default_run_dir(None, 1).parent == Path("runs")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "run.json").write_text("{}")  # a folder that looks like a run, in the current directory
    res = invoke("runs")
    assert res.exit_code == 3 and "no runs directory runs" in one_error(res)
    with pytest.raises(UserError) as e:
        resolve_run(None)
    assert "no runs under" in str(e.value) and f"{tmp_path}/runs/" in str(e.value)


@pytest.mark.parametrize("cmd", [["runs"], ["status"], ["report"], ["runs", TOO_LONG]])
def test_a_runs_root_over_name_max_is_one_error(cmd, tmp_path, monkeypatch):
    """NSA_RUNS_DIR (or `nsa runs DIR`) over NAME_MAX: `nsa runs`, and `nsa status`/`nsa report` looking for the
    newest run, ended in an OSError traceback (review revAZ)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NSA_RUNS_DIR", TOO_LONG)
    res = invoke(*cmd)
    assert res.exit_code == 3, res.stderr
    assert one_error(res).startswith("error: no runs directory ") and one_error(res).endswith(": File name too long")
