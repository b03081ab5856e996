"""`nsa status --host` / `nsa runs --host` against a real loopback sshd."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fixtures.runs import make_generic_run, make_v1_run, make_vibe_run
from typer.testing import CliRunner

from nsa_tui.cli import app
from nsa_tui.health.engine import JUDGE_VERSION

# fields that legitimately differ between a local and a remote reading
VOLATILE = ("last_heartbeat_age_s", "host", "path", "via")

pytestmark = pytest.mark.slow


def _status(args: list[str]) -> tuple[int, list[dict], str]:
    res = CliRunner().invoke(app, ["status", "--json", *args])
    objs = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    return res.exit_code, objs, res.stderr


def _stable(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in VOLATILE}


@pytest.mark.parametrize("with_nsa", [False, True])
def test_remote_json_equals_local(tmp_path, sshd_factory, monkeypatch, with_nsa):
    s = sshd_factory(with_nsa=with_nsa)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    runs = [tmp_path / "v1", tmp_path / "crashed", tmp_path / "vibe", tmp_path / "gen"]
    make_v1_run(runs[0], steps=400, alerts=["gate_collapse"])
    make_v1_run(runs[1], state="crashed")
    make_vibe_run(runs[2], steps=200)
    make_generic_run(runs[3])
    code_l, local, _ = _status([str(p) for p in runs])
    code_r, remote, err = _status(["--host", s.host, *[str(p) for p in runs]])
    assert code_l == code_r == 2, err
    assert [_stable(o) for o in remote] == [_stable(o) for o in local]
    assert all(o["host"] == s.host and o["via"] == ("remote-nsa" if with_nsa else "ssh") for o in remote)
    assert remote[0]["format"] == "nsa-v1" and remote[2]["format"] == "nsa-vibe" and remote[3]["format"] == "generic"


def test_remote_uses_remote_nsa_when_present(tmp_path, sshd_factory, monkeypatch):
    """With `nsa` on the remote PATH the remote judges; a rules file forces local judging."""
    s = sshd_factory(with_nsa=True)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    run = tmp_path / "r"
    make_v1_run(run, steps=200, monitor={"min_toks_per_s": 1e9})
    rules = tmp_path / "rules.yaml"
    rules.write_text("throughput_low: {for: 0}\n")
    code, objs, _ = _status(["--host", s.host, str(run)])
    assert code == 0 and objs[0]["alerts"] == [] and objs[0]["via"] == "remote-nsa"  # throughput_low needs 300 s
    code, objs, _ = _status(["--host", s.host, "--rules", str(rules), str(run)])
    assert code == 1 and [a["rule"] for a in objs[0]["alerts"]] == ["throughput_low"] and objs[0]["via"] == "ssh"


def test_remote_missing_directory(tmp_path, sshd):
    code, objs, err = _status(["--host", sshd.host, str(tmp_path / "nope")])
    assert code == 3
    error = f"no run directory '{tmp_path / 'nope'}' on {sshd.host}"
    assert objs == [{"run": str(tmp_path / "nope"), "error": error, "exit_code": 3, "judge_version": JUDGE_VERSION}]
    code, objs, err = _status(["--host", sshd.host, "nope"])  # a name: where it looked, and what would help
    assert code == 3 and objs[0]["error"].startswith(f"no run directory 'nope' on {sshd.host} (looked at ")
    assert "--remote-dir" in err and err.count("\n") == 1
    assert err.strip().count("\n") == 0 and err.startswith("error: no run directory")


def test_refused_connection(tmp_path, sshd, monkeypatch):
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command.replace(f"-p {sshd.port}", "-p 1"))
    code, objs, err = _status(["--host", sshd.host, str(tmp_path)])
    said = f"cannot reach {sshd.host}: connection refused (is sshd running, is the port right?)"
    assert code == 3 and objs == [
        {"run": None, "error": said, "exit_code": 3, "judge_version": JUDGE_VERSION}
    ]  # a line for a script, too
    assert err.strip() == f"error: {said}"


def test_failed_auth(tmp_path, sshd, monkeypatch):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command.replace(str(sshd.key), str(other)))
    code, _, err = _status(["--host", sshd.host, str(tmp_path)])
    assert code == 3 and err.count("\n") == 1 and "authentication failed" in err


def test_unknown_host_key(tmp_path, sshd, monkeypatch):
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command.replace(str(sshd.known_hosts), str(empty)))
    code, _, err = _status(["--host", sshd.host, str(tmp_path)])
    assert code == 3 and err.count("\n") == 1 and "host key verification failed" in err


def test_remote_tmux_liveness(tmp_path, sshd, tmux_socket):
    """A launched run whose tmux session is gone is crashed; with the session alive it runs. The remote
    asks the tmux server recorded in launch.json, as `nsa launch` writes it."""
    run = tmp_path / "live"
    make_v1_run(run, steps=200, launch=True, name="live")
    launch = json.loads((run / "launch.json").read_text())
    (run / "launch.json").write_text(json.dumps({**launch, "tmux_socket": tmux_socket}))
    code, objs, _ = _status(["--host", sshd.host, str(run)])
    assert code == 2 and objs[0]["state"] == "crashed" and objs[0]["alerts"][0]["rule"] == "process_exited"
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-live", "sleep 60"], check=True)
    code, objs, _ = _status(["--host", sshd.host, str(run)])
    assert code == 0 and objs[0]["state"] == "running"


def test_runs_remote(tmp_path, sshd_factory, monkeypatch):
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    make_v1_run(tmp_path / "a", steps=100)
    make_v1_run(tmp_path / "b", state="finished")
    res = CliRunner().invoke(app, ["runs", "--json", "--host", s.host, str(tmp_path)])
    assert res.exit_code == 0, res.stderr
    objs = {o["run"]: o for o in map(json.loads, res.stdout.splitlines())}
    assert objs["a"]["state"] == "running" and objs["b"]["state"] == "finished"
    res = CliRunner().invoke(app, ["runs", "--host", s.host, str(tmp_path / "missing")])
    assert res.exit_code == 3 and res.stderr.startswith(f"error: no runs directory {tmp_path / 'missing'} on")
    assert res.stdout == ""  # one line, not a table with a "no telemetry" row for it
    # a run directory given as DIR (its checkpoints/ and tb/ are no runs): said in one line, as locally
    (tmp_path / "a" / "checkpoints").mkdir()
    res = CliRunner().invoke(app, ["runs", "--host", s.host, str(tmp_path / "a")])
    assert res.exit_code == 3 and res.stdout == ""
    assert res.stderr.strip() == (
        f"error: {tmp_path / 'a'} on {s.host} is a run directory, not a directory of runs: "
        f"`nsa status --host {s.host} {tmp_path / 'a'}`, or `nsa runs --host {s.host} {tmp_path}`"
    )


def test_runs_remote_of_a_run_directory_with_nsa_there(tmp_path, sshd_factory, monkeypatch):
    s = sshd_factory(with_nsa=True)  # the listing is the script's either way; the remote nsa judges the runs
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    make_v1_run(tmp_path / "a", steps=100)
    (tmp_path / "a" / "tb").mkdir()
    res = CliRunner().invoke(app, ["runs", "--host", s.host, str(tmp_path / "a")])
    assert res.exit_code == 3 and "is a run directory, not a directory of runs" in res.stderr
    res = CliRunner().invoke(app, ["runs", "--json", "--host", s.host, str(tmp_path)])
    assert res.exit_code == 0 and [json.loads(x)["run"] for x in res.stdout.splitlines()] == ["a"]


@pytest.mark.parametrize("with_nsa", [True, False], ids=["remote-nsa", "remote-script"])
def test_remote_tmux_socket_comes_from_the_runs_launch_json(tmp_path, sshd_factory, monkeypatch, with_nsa):
    """A run launched on another tmux server than ours: its launch.json names the socket, and liveness is
    checked there (ours has no such session), with or without `nsa` on the remote."""
    s = sshd_factory(with_nsa=with_nsa)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    monkeypatch.setenv("NSA_TMUX_SOCKET", f"nsa-test-empty-{uuid.uuid4().hex[:6]}")
    other = f"nsa-test-other-{uuid.uuid4().hex[:6]}"
    run = tmp_path / "elsewhere"
    make_v1_run(run, steps=200, launch=True, name="elsewhere")
    launch = json.loads((run / "launch.json").read_text())
    launch["tmux_socket"] = other
    (run / "launch.json").write_text(json.dumps(launch, indent=2) + "\n")
    subprocess.run(["tmux", "-L", other, "new-session", "-d", "-s", launch["tmux_session"], "sleep 60"], check=True)
    try:
        code, objs, _ = _status(["--host", s.host, str(run)])
        assert code == 0 and objs[0]["state"] == "running"
        subprocess.run(["tmux", "-L", other, "kill-server"], check=False)
        code, objs, _ = _status(["--host", s.host, str(run)])
        assert code == 2 and objs[0]["state"] == "crashed"
    finally:
        subprocess.run(["tmux", "-L", other, "kill-server"], check=False, capture_output=True)


def _remote_nsa_wrapper(tmp_path, body: str):
    """A directory to put first on the remote PATH whose `nsa` logs each start, then runs ``body``."""
    bin_dir = tmp_path / "wrapper-bin"
    bin_dir.mkdir()
    log = tmp_path / "nsa-starts.log"
    wrapper = bin_dir / "nsa"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(log))}\n{body}\n')
    wrapper.chmod(0o755)
    return bin_dir, log


@pytest.mark.parametrize("remote_nsa", ["works", "says-nothing"])
def test_remote_nsa_judges_all_runs_in_one_process(tmp_path, sshd_factory, monkeypatch, remote_nsa):
    """`nsa runs --host` on a box with nsa: one `nsa status` for all the runs (each start costs ~0.4 s), in
    the listing's order; when that nsa says nothing, the files are read instead, and the answer is the same."""
    real = shlex.quote(str(Path(sys.executable).parent / "nsa"))
    body = f'exec {real} "$@"' if remote_nsa == "works" else "exit 1"
    bin_dir, log = _remote_nsa_wrapper(tmp_path, body)
    s = sshd_factory(with_nsa=False, path_prefix=bin_dir)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    root = tmp_path / "runs"
    for i, name in enumerate(["a", "-dash", "it's", "d"]):
        make_v1_run(root / name, steps=50 + i, state="finished")
        os.utime(root / name, (1_700_000_000 + i, 1_700_000_000 + i))
    local = CliRunner().invoke(app, ["runs", "--json", str(root)])
    res = CliRunner().invoke(app, ["runs", "--json", "--host", s.host, str(root)])
    assert res.exit_code == 0, res.stderr
    remote = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["run"] for o in remote] == ["d", "it's", "-dash", "a"]  # newest first, as here
    assert [_stable(o) for o in remote] == [_stable(json.loads(line)) for line in local.stdout.splitlines()]
    assert {o["via"] for o in remote} == {"remote-nsa" if remote_nsa == "works" else "ssh"}
    assert len(log.read_text().splitlines()) == 1


def test_remote_run_with_a_bad_monitor_section_is_its_own_error(tmp_path, sshd):
    """The remote nsa judges the good run and reports the bad one's monitor section (exit 4), as locally."""
    make_v1_run(tmp_path / "good", steps=200)
    make_v1_run(tmp_path / "bad", steps=100, monitor={"rules": {"loss_spike": {"severity": "warning"}}})
    code, objs, _ = _status(["--host", sshd.host, str(tmp_path / "good"), str(tmp_path / "bad")])
    assert code == 4 and objs[0]["health"] == "ok" and objs[0]["via"] == "remote-nsa"
    assert objs[1]["exit_code"] == 4 and "unknown rule 'loss_spike'" in objs[1]["error"]


@pytest.mark.parametrize("with_nsa", [True, False], ids=["remote-nsa", "remote-script"])
def test_runs_remote_bad_rules_hint_is_a_command_that_works(tmp_path, sshd_factory, monkeypatch, with_nsa):
    """`nsa runs --host H DIR` said "`nsa status bad` says why": here that looks for a local run. It is the
    `nsa status --host H ...` that judges that run now, with or without nsa on the host."""
    s = sshd_factory(with_nsa=with_nsa)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    monkeypatch.setenv("COLUMNS", "400")
    make_v1_run(tmp_path / "d" / "bad", steps=100, monitor={"rules": {"loss_spike": {"severity": "warning"}}})
    res = CliRunner().invoke(app, ["runs", "--host", s.host, str(tmp_path / "d")])
    assert res.exit_code == 0, res.stderr
    [hint] = re.findall(r"`(nsa status [^`]*)` says why", res.stdout)
    assert hint.startswith(f"nsa status --host {s.host} ") and hint.endswith("/d/bad"), hint
    res = CliRunner().invoke(app, shlex.split(hint)[1:])
    assert res.exit_code == 4 and res.stdout == "" and "unknown rule 'loss_spike'" in res.stderr
    assert res.stderr.count("\n") == 1 and "(in its run.json)" in res.stderr  # printed once, naming what was read


def test_remote_runs_root_given_as_a_run_points_to_nsa_runs_there(tmp_path, sshd, monkeypatch):
    """The remote nsa's hint to list a directory of runs is the command to type here: with --host."""
    make_v1_run(tmp_path / "runs" / "a", steps=100)
    res = CliRunner().invoke(app, ["status", "--host", sshd.host, str(tmp_path / "runs")])
    assert res.exit_code == 3 and res.stdout == "" and res.stderr.count("\n") == 1
    assert res.stderr.strip().endswith(
        f" on {sshd.host}; it holds run directories: `nsa runs --host {sshd.host} {tmp_path / 'runs'}` lists them"
    ), res.stderr


# a host's nsa that runs this one and rewrites its verdicts: an older engine (no judge_version, as every nsa before
# it) that took a finished run for halted (as 1c59469 did of a run that completed 70/70), or a newer one
HALTED = r"""-e 's/"state": "finished"/"state": "halted"/'"""
HOST_NSA = {
    "older": rf"""sed -e 's/, "judge_version": [0-9]*//' {HALTED}""",
    "newer": rf"""sed -e 's/"judge_version": [0-9]*/"judge_version": 99/' {HALTED}""",
}


@pytest.mark.parametrize("host_nsa", ["older", "newer"])
def test_an_older_hosts_verdict_is_not_taken(tmp_path, sshd_factory, monkeypatch, host_nsa):
    """`nsa status --host` took an older host nsa's verdict (`halted 70/60` of a run that completed 70/70, and
    without the keys docs/health.md names), and nothing said which version judged. Now an older one's runs are
    judged here from their files, said on stderr; a newer one's verdict is taken as it is."""
    real = shlex.quote(str(Path(sys.executable).parent / "nsa"))
    bin_dir, log = _remote_nsa_wrapper(tmp_path, f'{real} "$@" | {HOST_NSA[host_nsa]}')
    s = sshd_factory(with_nsa=False, path_prefix=bin_dir)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    run = tmp_path / "runs" / "done"
    make_v1_run(run, steps=70, state="finished")
    code_l, [local], _ = _status([str(run)])
    code, [obj], err = _status(["--host", s.host, str(run)])
    runs = CliRunner().invoke(app, ["runs", "--json", "--host", s.host, str(run.parent)])
    [listed] = [json.loads(line) for line in runs.stdout.splitlines()]
    if host_nsa == "older":
        assert (obj["state"], obj["via"]) == ("finished", "ssh"), (obj, err)  # judged here, as locally
        assert (code, _stable(obj)) == (code_l, _stable(local)) and local["judge_version"] >= 1
        assert err.strip() == (
            f"note: the nsa on {s.host} is older than this one (judge version 0, this one's {local['judge_version']}):"
            " its runs were judged here from their files (`via: ssh`); update nsa there to have it judge them"
        )
        assert _stable(listed) == _stable(local) and listed["via"] == "ssh" and "is older" in runs.stderr
    else:
        assert obj["state"] == listed["state"] == "halted" and obj["via"] == listed["via"] == "remote-nsa"
        assert obj["judge_version"] == 99 and err == "" and runs.stderr == ""
    assert len(log.read_text().splitlines()) == 2  # asked once per command: the files are read by the script


# a host's nsa whose engine cannot judge the run (newer telemetry, a rule it does not know): its verdict line
# becomes an error line of the judge version named
CANNOT_JUDGE = (
    r"""sed -e 's|^{.*"health".*$|{"run": "done", "error": "this nsa cannot judge it", "exit_code": 3, """
    r""""judge_version": VERSION}|'"""
)


@pytest.mark.parametrize("version", [0, 99])
def test_a_host_answering_with_errors_only_says_its_judge_version(tmp_path, sshd_factory, monkeypatch, version):
    """Error lines carried no judge_version, so a host whose older nsa answered only with errors was taken at its
    word (exit 3 for a run this nsa judges finished). Now they carry it as verdicts do: an older one's runs are judged
    here from their files, with the note that says why; a newer one's error is taken as it is."""
    real = shlex.quote(str(Path(sys.executable).parent / "nsa"))
    wrap = CANNOT_JUDGE.replace("VERSION", str(version))
    bin_dir, _ = _remote_nsa_wrapper(
        tmp_path, f'{real} "$@" | sed -e \'s/"judge_version": [0-9]*/"judge_version": {version}/\' | {wrap}'
    )
    s = sshd_factory(with_nsa=False, path_prefix=bin_dir)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    run = tmp_path / "runs" / "done"
    make_v1_run(run, steps=70, state="finished")
    code_l, [local], _ = _status([str(run)])
    _, [missing], _ = _status([str(tmp_path / "not-there")])  # an error line here has the verdict's version too
    assert missing["exit_code"] == 3 and missing["judge_version"] == local["judge_version"] >= 1, missing
    code, [obj], err = _status(["--host", s.host, str(run)])
    runs = CliRunner().invoke(app, ["runs", "--json", "--host", s.host, str(run.parent)])
    [listed] = [json.loads(line) for line in runs.stdout.splitlines()]
    if version == 0:
        assert (code, _stable(obj)) == (code_l, _stable(local)) and obj["via"] == "ssh", (obj, err)
        assert err.strip() == (
            f"note: the nsa on {s.host} is older than this one (judge version 0, this one's {local['judge_version']}):"
            " its runs were judged here from their files (`via: ssh`); update nsa there to have it judge them"
        )
        assert _stable(listed) == _stable(local) and "is older" in runs.stderr
    else:
        assert code == 3 and obj["error"] == f"this nsa cannot judge it on {s.host}" and "older" not in err, (obj, err)
        assert listed["error"] == obj["error"] and runs.stderr == ""


def test_newer_telemetry_judged_by_the_hosts_nsa_names_that_nsa(tmp_path, sshd):
    """The host's nsa read the newer records: it is the one to update, not the one here ("update nsa here")."""
    run = tmp_path / "r"
    make_v1_run(run, steps=50, state="finished")
    hb = run / "heartbeat_rank0.jsonl"
    hb.write_text("".join(json.dumps({**json.loads(ln), "v": 2}) + "\n" for ln in hb.read_text().splitlines()))
    res = CliRunner().invoke(app, ["status", "--host", sshd.host, str(run)])
    assert res.exit_code == 0, res.stderr
    assert f"heartbeat_rank0.jsonl: newer telemetry (v2): read as v1; update nsa on {sshd.host}" in res.stdout
    assert "update nsa here" not in res.stdout and "unreadable" not in res.stdout
