"""A run NAME given with --host is looked up in the host user's launch index, as a local name is here.

`nsa launch --host gpu --run-dir /data/x` records the run in the host's index (its `nsa launch` runs there), but
`nsa status x --host gpu` resolved the name with the remote script alone (./x, then <runs root>/x) and said there
was no such run, where `nsa status x` on the host found it. The script now reads the host's index (JSON lines, by
awk: no python assumed there) after the runs root, with the same note and the same refusal of a shared name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.cli import invoke, one_error
from fixtures.runs import make_v1_run

from nsa_tui import launched
from nsa_tui.commands._status_exit import error_line
from nsa_tui.commands.watch import build_models
from nsa_tui.errors import UserError
from nsa_tui.launch import tmux

pytestmark = pytest.mark.slow


def _host_state(sshd) -> Path:
    """The host's XDG_STATE_HOME (the fixture's sshd sets it for its sessions), not this side's own."""
    return Path(sshd.key).parent / "xdg-state"


def _record_on_host(sshd, monkeypatch, name: str, run_dir: Path, ts: float) -> None:
    """What the host's `nsa launch` writes: the index's own writer, pointed at the host's state directory."""
    with monkeypatch.context() as m:
        m.setenv("XDG_STATE_HOME", str(_host_state(sshd)))
        launched.record(name, run_dir, ts)


def _recorded_run(sshd, monkeypatch, name: str, run_dir: Path) -> tuple[float, Path]:
    """A run at ``run_dir`` the host's index records as ``name`` a minute ago: when, and the index."""
    make_v1_run(run_dir, steps=50)
    ts = time.time() - 60
    _record_on_host(sshd, monkeypatch, name, run_dir, ts)
    return ts, _host_state(sshd) / "nsa" / "launched.jsonl"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def test_a_name_launched_elsewhere_on_the_host_is_found_there(sshd, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    run_dir = tmp_path / "some where" / "é" / "x"  # a space and a non-ASCII name: \u escapes in the index
    make_v1_run(run_dir, steps=200)
    ts = time.time() - 60
    _record_on_host(sshd, monkeypatch, "x", run_dir, ts)
    index = _host_state(sshd) / "nsa" / "launched.jsonl"
    note = f"note: run 'x' is {run_dir} on {sshd.host} (launched {_when(ts)}; from {index})"

    res = invoke("status", "--json", "--host", sshd.host, "x")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["run"] == "x"
    assert res.stderr.strip() == note

    # watch finds it before its dashboard opens (its own ssh call), with the same note
    capsys.readouterr()
    [model] = build_models(["x"], sshd.host, False, 0.2, None)
    assert model.source.run_dir == str(run_dir)
    assert capsys.readouterr().err.strip() == note

    # the runs root first, as here: a run of that name there wins, without a note
    root = tmp_path / "co"
    make_v1_run(root / "runs" / "x", steps=100)
    res = invoke("status", "--json", "--host", sshd.host, "--remote-dir", str(root), "x")
    assert res.exit_code == 0 and res.stderr == "", res.stderr

    # a path is never looked up by name; nor a name the index does not know
    res = invoke("status", "--host", sshd.host, "nope")
    assert res.exit_code == 3 and one_error(res).startswith(f"error: no run directory 'nope' on {sshd.host}")
    res = invoke("status", "--host", sshd.host, "sub/x")
    assert res.exit_code == 3 and one_error(res).startswith(f"error: no run directory 'sub/x' on {sshd.host}")


def test_a_name_the_hosts_index_knows_twice_is_refused_both_named(sshd, tmp_path, monkeypatch):
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    a, b, gone = tmp_path / "a" / "main", tmp_path / "b" / "main", tmp_path / "gone" / "main"
    make_v1_run(a)
    make_v1_run(b)
    _record_on_host(sshd, monkeypatch, "main", a, 1_700_000_000.0)
    _record_on_host(sshd, monkeypatch, "main", gone, 1_700_000_100.0)  # its directory is gone: skipped
    _record_on_host(sshd, monkeypatch, "main", b, 1_700_000_200.0)
    refusal = (
        f"no run directory 'main' on {sshd.host}, and nsa launch started 2 runs of that name: "
        f"{b} (launched {_when(1_700_000_200.0)}); {a} (launched {_when(1_700_000_000.0)}); "
        "pass the run directory of the one you mean"
    )
    res = invoke("status", "--host", sshd.host, "main")
    # no verdict: 3, nsa status's UNKNOWN (its 2 is a critical run, which a script gating on it pages about)
    assert res.exit_code == 3 and one_error(res) == f"error: {refusal}"
    res = invoke("status", "--json", "--host", sshd.host, "main")
    assert res.exit_code == 3 and json.loads(res.stdout) == error_line("main", refusal, 3), res.stdout
    with pytest.raises(UserError) as e:
        build_models(["main"], sshd.host, False, 0.2, None)
    assert e.value.code == 2 and str(e.value) == refusal
    # this side's own index is not the host's: nothing recorded here, and nothing found by it
    assert launched.entries() == []


def _host_with(sshd_factory, monkeypatch, tmp_path: Path, tool: str, script: str):
    """A loopback host whose PATH finds ``tool`` as ``script`` (a sh script) first."""
    shadow = tmp_path / "shadow"
    shadow.mkdir(exist_ok=True)
    (shadow / tool).write_text(f"#!/bin/sh\n{script}\n")
    (shadow / tool).chmod(0o755)
    sshd = sshd_factory(with_nsa=True, path_prefix=shadow)
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command)
    return sshd


def test_a_name_found_nowhere_else_on_the_host_is_its_live_tmux_session(
    sshd_factory, tmp_path, tmux_socket, monkeypatch, capsys
):
    """A run launched there before the index (or with it lost): found locally by its live tmux session nsa-NAME, and
    on the host it was `no run directory`. The host's default tmux server is this test's own (a tmux on its PATH)."""
    sshd = _host_with(sshd_factory, monkeypatch, tmp_path, "tmux", f'exec {shutil.which("tmux")} -L {tmux_socket} "$@"')
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    monkeypatch.delenv("NSA_TMUX_SOCKET")  # the host's nsa and script ask its default server
    run_dir = tmp_path / "else" / "x"
    make_v1_run(run_dir, steps=200)
    (run_dir / "launch.json").write_text(json.dumps({"v": 1, "name": "x", "tmux_session": "nsa-x"}, indent=2))
    wrapper = [sys.executable, "-c", "import time; time.sleep(60)", "-m", tmux.RUNNER_MODULE, str(run_dir)]
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-x", *wrapper], check=True)
    note = f"note: run 'x' is {run_dir} on {sshd.host} (its tmux session nsa-x runs there)"

    res = invoke("status", "--json", "--host", sshd.host, "x")
    assert res.exit_code != 3 and json.loads(res.stdout)["run"] == "x", res.stdout + res.stderr
    assert res.stderr.strip() == note
    capsys.readouterr()
    [model] = build_models(["x"], sshd.host, False, 0.2, None)  # watch's own lookup (one ssh call)
    assert model.source.run_dir == str(run_dir)
    assert capsys.readouterr().err.strip() == note


def test_a_name_the_hosts_index_puts_in_a_directory_that_cannot_be_read_is_refused(sshd_factory, tmp_path, monkeypatch):
    """As locally (`error: cannot read DIR: permission denied (...)`, exit 3): the host's script took it for a run, a
    run with no telemetry. The host's shell runs without root's power to read anything (setpriv)."""
    drop = "--bounding-set=-dac_override,-dac_read_search"
    sshd = _host_with(sshd_factory, monkeypatch, tmp_path, "sh", f'exec {shutil.which("setpriv")} {drop} /bin/sh "$@"')
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    locked = tmp_path / "locked" / "x"
    make_v1_run(locked, steps=50)
    _record_on_host(sshd, monkeypatch, "x", locked, time.time())
    locked.chmod(0o711)  # searchable, not listable
    os.chown(locked, 65534, -1)
    said = f"error: cannot read {locked} on {sshd.host}: permission denied (drwx--x--x, owner nobody)"
    for command in ("status", "report"):
        res = invoke(command, "--host", sshd.host, "x")
        assert res.exit_code == 3 and one_error(res) == said, (command, res.stdout + res.stderr)
    res = invoke("status", "--json", "--host", sshd.host, "x")
    assert res.exit_code == 3 and json.loads(res.stdout) == error_line("x", said[len("error: ") :], 3), res.stdout
    with pytest.raises(UserError) as e:
        build_models(["x"], sshd.host, False, 0.2, None)
    assert e.value.code == 3 and f"error: {e.value}" == said


def test_the_hosts_index_reads_a_name_with_a_backslash_and_skips_a_torn_line(sshd, tmp_path, monkeypatch, capsys):
    """The name reached awk through `-v`, which reads its backslashes as escapes (`a\\b` became `a`, backspace): a run
    so named was not found. A last line cut after its last value (a launch that died writing it) was taken for a
    whole one, which the local reader (json.loads) skips."""
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    run_dir = tmp_path / "w" / "a\\b"
    ts, index = _recorded_run(sshd, monkeypatch, "a\\b", run_dir)
    res = invoke("status", "--json", "--host", sshd.host, "a\\b")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert res.stderr.strip() == f"note: run 'a\\\\b' is {run_dir} on {sshd.host} (launched {_when(ts)}; from {index})"

    torn = tmp_path / "w" / "torn"
    make_v1_run(torn, steps=50)
    with open(_host_state(sshd) / "nsa" / "launched.jsonl", "a") as f:
        f.write(json.dumps({"name": "torn", "run_dir": str(torn), "host": "h", "ts": ts})[:-1])  # no closing }
    res = invoke("status", "--host", sshd.host, "torn")
    assert res.exit_code == 3 and one_error(res).startswith(f"error: no run directory 'torn' on {sshd.host} ("), res
    monkeypatch.setenv("XDG_STATE_HOME", str(_host_state(sshd)))  # the same index read here: skipped alike
    assert launched.named("torn") == []


def test_the_hosts_session_lookup_asks_the_server_set_here(sshd, tmp_path, tmux_socket, monkeypatch):
    """`nsa launch --host` starts its session on the server NSA_TMUX_SOCKET names here (it is sent); the lookup of a
    run by its live session asked the host's own (unset there: its default server) and did not find it."""
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    run_dir = tmp_path / "else" / "x"
    make_v1_run(run_dir, steps=50)
    (run_dir / "launch.json").write_text(json.dumps({"v": 1, "name": "x", "tmux_session": "nsa-x"}))
    wrapper = [sys.executable, "-c", "import time; time.sleep(60)", "-m", tmux.RUNNER_MODULE, str(run_dir)]
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-x", *wrapper], check=True)
    res = invoke("status", "--json", "--host", sshd.host, "x")
    assert json.loads(res.stdout)["run"] == "x", res.stdout + res.stderr
    assert res.stderr.strip() == f"note: run 'x' is {run_dir} on {sshd.host} (its tmux session nsa-x runs there)"


def test_a_run_the_hosts_index_records_through_a_link_is_named_as_recorded(sshd, tmp_path, monkeypatch, capsys):
    """As here (launched.named: the recorded path), not its physical path: the note and watch's path said another
    directory than the one launched, and than `nsa status x` on the host says."""
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    run_dir = tmp_path / "link" / "x"
    ts, index = _recorded_run(sshd, monkeypatch, "x", run_dir)
    note = f"note: run 'x' is {run_dir} (launched {_when(ts)}; from {index})"
    res = invoke("status", "--json", "--host", sshd.host, "x")
    assert res.exit_code == 0 and res.stderr.strip() == note.replace(" (launched", f" on {sshd.host} (launched")
    capsys.readouterr()
    [model] = build_models(["x"], sshd.host, False, 0.2, None)
    assert model.source.run_dir == str(run_dir)
    monkeypatch.setenv("XDG_STATE_HOME", str(_host_state(sshd)))  # here, reading the same index
    monkeypatch.chdir(tmp_path)
    assert invoke("status", "--json", "x").stderr.strip() == note
