"""`--remote-dir` on every `--host` command, against a real loopback sshd: a run launched with
`nsa launch --host H --remote-dir DIR` is found by the same RUN name by status, runs, watch, halt,
dump and attach; the remote's ~ works; a directory or run that is not there is one line, exit 3."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from fixtures.cli import invoke, nsa_on_a_terminal, one_error
from fixtures.runs import make_v1_run

from nsa_tui.commands.watch import build_models
from nsa_tui.errors import UserError
from nsa_tui.watch import actions

pytestmark = pytest.mark.slow


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout on the "host" with two runs under its runs/; no NSA_RUNS_DIR (the default root)."""
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    co = tmp_path / "check out"
    make_v1_run(co / "runs" / "older", state="finished", now=1_700_000_000)
    make_v1_run(co / "runs" / "newer", steps=200)
    os.utime(co / "runs" / "older", (1_700_000_000, 1_700_000_000))
    return co


def test_status_and_runs_find_names_under_the_remote_dir(checkout, sshd):
    res = invoke("status", "--json", "--host", sshd.host, "--remote-dir", str(checkout), "newer", "older")
    assert res.exit_code == 0, res.stderr
    got = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(o["run"], o["state"]) for o in got] == [("newer", "running"), ("older", "finished")]

    res = invoke("status", "--json", "--host", sshd.host, "--remote-dir", str(checkout))  # the newest
    assert res.exit_code == 0 and json.loads(res.stdout)["run"] == "newer", res.stderr

    res = invoke("runs", "--json", "--host", sshd.host, "--remote-dir", str(checkout))
    assert res.exit_code == 0, res.stderr
    assert [json.loads(line)["run"] for line in res.stdout.splitlines()] == ["newer", "older"]


def test_without_the_remote_dir_the_error_says_where_it_looked(checkout, sshd):
    res = invoke("status", "--host", sshd.host, "newer")
    assert res.exit_code == 3 and res.stdout == ""  # said once, on stderr, as for a local RUN
    err = one_error(res)
    assert "no run directory 'newer'" in err and "/runs/newer" in err and "--remote-dir" in err


def test_a_remote_dir_that_is_not_there(checkout, sshd):
    said = f"error: cannot cd to {checkout / 'nope'} on {sshd.host} (no such directory there)"
    for cmd in (["status"], ["runs"]):
        res = invoke(*cmd, "--host", sshd.host, "--remote-dir", str(checkout / "nope"))
        assert res.exit_code == 3, (cmd, res.stdout, res.stderr)
        assert one_error(res) == said
    # `nsa watch` without a terminal says it needs one first
    proc = nsa_on_a_terminal("watch", "newer", "--host", sshd.host, "--remote-dir", str(checkout / "nope"))
    assert proc.returncode == 3 and proc.stderr == f"{said}\n", proc.stderr


def test_commands_the_hosts_nsa_runs_name_the_host_as_given(checkout, sshd):
    """`nsa halt --host 127.0.0.1 --remote-dir /x` said "on 127.0.0.1: cannot cd to /x on vm": the host's uname -n
    beside the name the user gave, two machines to the reader."""
    for cmd in (["halt", "r"], ["dump", "r"]):
        res = invoke(*cmd, "--host", sshd.host, "--remote-dir", str(checkout / "nope"))
        assert res.exit_code == 3, (cmd, res.stdout, res.stderr)
        assert one_error(res) == f"error: on {sshd.host}: cannot cd to {checkout / 'nope'} (no such directory there)"


def test_runs_without_a_runs_directory_is_one_line_and_no_table(tmp_path, sshd, monkeypatch):
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    res = invoke("runs", "--host", sshd.host, "--remote-dir", str(tmp_path))
    assert res.exit_code == 3 and res.stdout == ""
    assert one_error(res).startswith(f"error: no runs directory {tmp_path}/runs on {sshd.host}")


def test_our_runs_root_is_the_remote_ones_as_for_launch(tmp_path, sshd, monkeypatch):
    """`nsa launch --host` sends NSA_RUNS_DIR along; status and watch find what it launched there."""
    root = tmp_path / "scratch runs"
    make_v1_run(root / "r", steps=100)
    monkeypatch.setenv("NSA_RUNS_DIR", str(root))
    res = invoke("status", "--json", "--host", sshd.host, "r")
    assert res.exit_code == 0 and json.loads(res.stdout)["run"] == "r", res.stderr
    [model] = build_models(["r"], sshd.host, False, 0.2)
    assert model.source.run_dir == str(root / "r")


def test_watch_finds_the_run_before_the_dashboard_opens(checkout, sshd):
    models = build_models(["newer", str(checkout / "runs" / "older")], sshd.host, False, 0.2, str(checkout))
    assert [(m.name, m.source.run_dir) for m in models] == [
        ("newer", str(checkout / "runs" / "newer")),
        ("older", str(checkout / "runs" / "older")),
    ]
    [newest] = build_models([], sshd.host, False, 0.2, str(checkout))  # no RUN: the newest, as status
    assert newest.source.run_dir == str(checkout / "runs" / "newer")
    with pytest.raises(UserError) as e:
        build_models(["nope"], sshd.host, False, 0.2, str(checkout))
    assert e.value.code == 3 and str(e.value).startswith(f"no run directory 'nope' on {sshd.host} (looked at")
    proc = nsa_on_a_terminal("watch", "--host", sshd.host, "--remote-dir", str(checkout), "nope")
    assert proc.returncode == 3 and proc.stderr.startswith("error: no run directory 'nope'"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_the_remote_home_in_a_quoted_remote_dir(sshd, monkeypatch):
    """`--remote-dir '~/x'` (quoted, so this shell leaves it alone) is x in the remote user's home."""
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    home = Path.home()  # the loopback host's user is this one (root)
    name = f".nsa-test-{os.getpid()}"
    make_v1_run(home / name / "runs" / "r", steps=50)
    try:
        res = invoke("status", "--json", "--host", sshd.host, "--remote-dir", f"~/{name}", "r")
        assert res.exit_code == 0 and json.loads(res.stdout)["run"] == "r", res.stderr
    finally:
        shutil.rmtree(home / name)


@pytest.mark.parametrize("cmd", ["status", "runs", "watch", "halt", "dump", "attach", "check"])
def test_remote_dir_without_host_is_an_error_not_ignored(cmd, tmp_path):
    args = [cmd, "--remote-dir", str(tmp_path)] + (["r"] if cmd in ("halt", "dump", "attach", "watch") else [])
    res = invoke(*args)
    # a usage mistake: Typer's code, never `nsa status`'s 1 (a warning verdict); its own is 3, no verdict
    assert res.exit_code == (3 if cmd == "status" else 2)
    assert one_error(res) == "error: --remote-dir needs --host (it is a directory on that host)"


def test_dashboard_keys_use_the_checkouts_nsa(tmp_path, sshd_factory, monkeypatch):
    """`h` in `nsa watch --host H --remote-dir DIR` runs DIR/.venv/bin/nsa: on a rented box the
    project is often installed in the checkout's venv only, not on the login PATH."""
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    co = tmp_path / "co"
    make_v1_run(co / "runs" / "r", steps=100)
    (co / ".venv" / "bin").mkdir(parents=True)
    (co / ".venv" / "bin" / "nsa").symlink_to(Path(sys.executable).parent / "nsa")
    [model] = build_models(["r"], s.host, False, 0.2, str(co))
    said = actions.halt(actions.Target(None, s.host, model.source.run_dir, str(co)), lambda _: None)
    assert said.startswith(f"halt requested on {s.host}") and (co / "runs" / "r" / ".HALT").exists()
    with pytest.raises(UserError, match="nsa is not installed"):  # without the checkout: nothing on PATH
        actions.halt(actions.Target(None, s.host, model.source.run_dir), lambda _: None)


def test_check_runs_in_the_checkout_with_every_option(tmp_path, sshd_factory, monkeypatch):
    """`nsa check --host H --remote-dir DIR` runs DIR's nsa there, and --run-dir reaches it (it was dropped)."""
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    co = tmp_path / "co"
    (co / ".venv" / "bin").mkdir(parents=True)
    (co / ".venv" / "bin" / "nsa").symlink_to(Path(sys.executable).parent / "nsa")
    probe = tmp_path / "probe dir"
    res = invoke("check", "--host", s.host, "--remote-dir", str(co), "--run-dir", str(probe), "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)["rows"]}
    assert rows["run dir"]["status"] == "pass" and str(probe) in rows["run dir"]["reason"]
    res = invoke("check", "--host", s.host, "--json")  # no checkout, nothing on PATH
    assert res.exit_code == 127 and "nsa is not installed" in res.stderr
    res = invoke("check", "--host", s.host, "--remote-dir", "/", "--json")  # said "no //.venv/bin/nsa"
    assert res.exit_code == 127 and "and no /.venv/bin/nsa;" in res.stderr, res.stderr


@pytest.mark.parametrize("cmd", ["status", "runs", "watch", "halt", "dump", "attach", "check", "report", "launch"])
def test_an_empty_remote_dir_is_an_error_not_the_login_directory(cmd, tmp_path):
    """`--remote-dir "$DIR"` with DIR unset: no command may take it as the login directory (no ssh needed to
    refuse it, so this host is never tried)."""
    args = [cmd, "--host", "nowhere.invalid", "--remote-dir", ""] + (
        ["r"] if cmd not in ("runs", "check", "launch") else []
    )
    res = invoke(*args)
    assert res.exit_code == (3 if cmd == "status" else 2), res.stdout + res.stderr  # status: no verdict
    assert one_error(res) == "error: --remote-dir is empty: give the directory on the host, or leave the option out"


def test_the_commands_a_hosts_error_suggests_are_for_that_host(checkout, sshd):
    """A halt of a run that had ended with NaN suggests `nsa status RUN`: as written, run here, it looked for RUN
    here. Relayed from the host, the suggestion names the host and the remote dir (quoted: it has a space)."""
    make_v1_run(checkout / "runs" / "blown", state="nan")
    res = invoke("halt", "--host", sshd.host, "--remote-dir", str(checkout), "blown", "--wait", "0")
    assert res.exit_code != 0
    where = f"--host {sshd.host} --remote-dir '{checkout}'"
    assert one_error(res).endswith(f"see `nsa status blown {where}`"), res.stderr


def test_the_name_in_use_error_of_a_launch_suggests_commands_for_that_host(checkout, sshd, tmux_socket):
    """It suggested `nsa attach 'r2'` and `nsa halt 'r2'` without backticks, so they went unchanged: typed here they
    looked for r2 here, not on the host the launch went to."""
    import subprocess

    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-r2", "sleep", "300"], check=True)
    res = invoke("launch", "--host", sshd.host, "--remote-dir", str(checkout), "--name", "r2")
    assert res.exit_code == 1, res.stdout + res.stderr
    where = f"--host {sshd.host} --remote-dir '{checkout}'"
    assert one_error(res) == (
        f"error: on {sshd.host}: tmux session nsa-r2 already exists (see it: `nsa attach r2 {where}`; stop it: "
        f"`nsa halt r2 {where}`); pass --force to kill it and start again"
    ), res.stderr
