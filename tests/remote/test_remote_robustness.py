"""What a real host does to the `--host` scripts besides answering: a full or unwritable /tmp, a login shell
that cannot run them (csh) or that greets first, an exported CDPATH, runs directories holding plain files and
runs whose activity is newer than their directory, symlinked telemetry, `.` as a RUN. Against the loopback
sshd, or a fake ssh (NSA_SSH_COMMAND) that plays the remote's login shell here."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from fixtures.cli import invoke, nsa_on_a_terminal, one_error
from fixtures.runs import make_v1_run
from fixtures.shells import SHELLS, posix_shell

from nsa_train.runtime.control import process_start_time
from nsa_tui.commands.watch import build_models
from nsa_tui.remote.checkout import PRELUDE
from nsa_tui.rundir import list_runs
from nsa_tui.runs.bundle import REMOTE_SCRIPT, collect_local, parse_frames, remote_args
from nsa_tui.tail.remote import RemoteRunSource

VOLATILE = ("last_heartbeat_age_s", "host", "path", "via")


def _stable(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in VOLATILE}


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _fake_ssh(tmp_path: Path, login: str) -> str:
    """An NSA_SSH_COMMAND whose "host" is this machine: ``login`` runs first, then the command string is given to
    sh, as sshd gives it to the user's login shell."""
    fake = _script(tmp_path / "bin" / "fake-ssh", f'for a; do cmd=$a; done\n{login}\nexec sh -c "$cmd"\n')
    return str(fake)


# ---------------------------------------------------------------- 1: nothing is written on the host
def test_a_full_or_unwritable_remote_tmp_changes_no_verdict(tmp_path, sshd_factory, monkeypatch):
    """A mktemp whose file cannot be written (a full or read-only /tmp) once made every window empty
    (`unknown health OK`), or killed the script after its first frame. The status script writes no file."""
    asked = tmp_path / "mktemp-asked"
    broken = tmp_path / "broken-tmp"
    _script(broken / "mktemp", f'echo called >>"{asked}"\necho /nonexistent-full-tmp/nsa.XXXX\n')
    s = sshd_factory(with_nsa=False, path_prefix=broken)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    run = tmp_path / "v1run"
    make_v1_run(run, steps=300, total_steps=1200)
    local = invoke("status", "--json", str(run))
    remote = invoke("status", "--json", "--host", s.host, str(run))
    assert remote.exit_code == local.exit_code == 0, remote.stderr
    got = json.loads(remote.stdout)
    assert (got["state"], got["step"], got["total_steps"]) == ("running", 300, 1200)
    assert _stable(got) == _stable(json.loads(local.stdout))
    assert not asked.exists()  # no temp file was even asked for


@pytest.mark.parametrize("shell", SHELLS)
def test_the_status_script_reads_what_a_local_status_reads(tmp_path, shell):
    """REMOTE_SCRIPT run by dash with GNU tools, or by busybox sh with busybox's tools only: the same windows,
    sizes, CSV header and (followed) mtimes as collect_local."""
    sh, env = posix_shell(shell, tmp_path)
    env["HOME"] = str(tmp_path)
    run = tmp_path / "runs" / "r"
    make_v1_run(run, steps=60_000, total_steps=120_000, log_every=5)  # windows from the middle of big files
    elsewhere = tmp_path / "elsewhere" / "training.csv"
    elsewhere.parent.mkdir()
    (run / "training.csv").rename(elsewhere)
    os.utime(elsewhere, (1_700_000_000, 1_700_000_000))
    (run / "training.csv").symlink_to(elsewhere)  # followed, mtime included, as a local stat does
    out = subprocess.run(
        [*sh, "-c", REMOTE_SCRIPT, "sh", *remote_args("", [str(run)], False)],
        capture_output=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0 and out.stderr == b"", out.stderr
    answer = parse_frames(out.stdout, "h")
    assert answer.complete
    [got] = answer.bundles
    want = collect_local(run)
    assert sorted(got.files) == sorted(want.files) and "training.csv" in got.files
    for name, w in want.files.items():
        g = got.files[name]
        assert (g.data, g.size, g.head, int(g.mtime or 0)) == (w.data, w.size, w.head, int(w.mtime or 0)), name
    assert got.files["training.csv"].from_middle and got.files["training.csv"].mtime == 1_700_000_000
    # the host's processes with their starts (a reused pid is told from the run's by them), as a local check sees
    start, real = (got.live_pids or {}).get(os.getpid()), process_start_time(os.getpid())
    assert start is not None and real is not None and abs(start - real) < 3, (start, real)


# ---------------------------------------------------------------- 2: a shell that cannot run the script
@pytest.mark.parametrize(
    ("login", "why"),
    [
        ('echo "Unmatched \'." >&2; exit 1', "(exit status 1: Unmatched '.)"),  # what tcsh says of it
        ("exit 1", "(exit status 1: nothing on stderr)"),
    ],
    ids=["csh", "false"],
)
@pytest.mark.parametrize("cmd", ["status", "runs", "report", "watch"])
def test_a_shell_that_runs_nothing_is_one_line_and_exit_3(tmp_path, monkeypatch, cmd, login, why):
    monkeypatch.setenv("NSA_SSH_COMMAND", _fake_ssh(tmp_path, login))
    monkeypatch.chdir(tmp_path)
    if cmd == "watch":  # without a terminal it says it needs one first
        proc = nsa_on_a_terminal(cmd, "--host", "gpu")
        assert proc.returncode == 3 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert proc.stderr == f"error: could not locate the runs on gpu: no answer from its shell {why}\n"
        return
    res = invoke(cmd, "--host", "gpu")
    assert res.exit_code == 3 and res.stdout == "", (res.stdout, res.stderr)
    err = one_error(res)
    what = "read the runs"
    assert err == f"error: could not {what} on gpu: no answer from its shell {why}"


def test_a_script_cut_short_is_no_answer_not_fewer_runs(tmp_path, monkeypatch):
    """The shell dies after the first frames (as a special builtin's failed redirect ends it): not an empty
    listing (`no runs under ...`, exit 0), nor a status that prints nothing."""
    make_v1_run(tmp_path / "runs" / "r", steps=50)
    login = "cmd=$(printf '%s' \"$cmd\" | sed 's/^frame now 0.*/&; echo killed >\\&2; exit 2/')"
    monkeypatch.setenv("NSA_SSH_COMMAND", _fake_ssh(tmp_path, login))
    monkeypatch.setenv("NSA_RUNS_DIR", str(tmp_path / "runs"))
    for cmd in ("status", "runs"):
        res = invoke(cmd, "--host", "gpu")
        assert res.exit_code == 3 and res.stdout == "", (cmd, res.stdout, res.stderr)
        assert (
            one_error(res) == "error: could not read the runs on gpu: no answer from its shell (exit status 2: killed)"
        )


# ---------------------------------------------------------------- 3: the newest run, as locally
def test_newest_run_and_the_order_of_runs_are_the_local_ones(tmp_path, sshd_factory, monkeypatch):
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    root = tmp_path / "runs"
    monkeypatch.setenv("NSA_RUNS_DIR", str(root))
    t = time.time() - 1000
    for name in ("quiet", "active", "old"):
        make_v1_run(root / name, steps=100, state="finished")
        for p in (root / name).iterdir():
            os.utime(p, (t - 500, t - 500))
    os.utime(root / "old", (t - 900, t - 900))
    os.utime(root / "active", (t - 800, t - 800))  # an old directory ...
    os.utime(root / "active" / "heartbeat_rank0.jsonl", (t + 600, t + 600))  # ... whose run is the newest
    os.utime(root / "quiet", (t + 300, t + 300))  # a newer directory entry, older activity
    (root / ".trash").mkdir()
    (root / "notes.txt").write_text("plain files are no runs\n")  # the newest entry of all
    res = invoke("runs", "--json")
    local = [json.loads(line)["run"] for line in res.stdout.splitlines()]
    assert local == ["active", "quiet", "old"], res.stderr
    res = invoke("runs", "--json", "--host", s.host)
    assert res.exit_code == 0 and [json.loads(line)["run"] for line in res.stdout.splitlines()] == local
    for cmd in (["status", "--json"], ["status", "--json", "--host", s.host]):
        res = invoke(*cmd)
        assert res.exit_code == 0 and json.loads(res.stdout)["run"] == "active", (cmd, res.stderr)
    [model] = build_models([], s.host, False, 0.2)
    assert model.source.run_dir == str(root / "active")


def test_list_runs_in_sh(tmp_path):
    """The prelude's list_runs: directories only (also through a link), not hidden ones, by newest activity."""
    root = tmp_path / "runs"
    for i, name in enumerate(("a", "b", "c")):
        (root / name).mkdir(parents=True)
        (root / name / "run.json").write_text("{}")
        os.utime(root / name / "run.json", (1_000 + i, 1_000 + i))
        os.utime(root / name, (1_000, 1_000))
    os.utime(root / "a" / "run.json", (5_000, 5_000))
    (root / "z.txt").write_text("")
    (root / ".hidden").mkdir()
    (root / "linked").symlink_to(root / "b")
    # `nsa report d` made d/report/: the directory is the newest entry, its run is not (as locally: rundir.py)
    (root / "d" / "report").mkdir(parents=True)
    (root / "d" / "run.json").write_text("{}")
    os.utime(root / "d" / "run.json", (1_500, 1_500))
    os.utime(root / "d", (9_000, 9_000))
    (root / "empty").mkdir()  # no activity files: its own time stands in
    os.utime(root / "empty", (3_000, 3_000))
    out = subprocess.run(["sh", "-c", PRELUDE + 'list_runs "$1"', "sh", str(root)], capture_output=True, text=True)
    assert out.stderr == ""
    # a tie (the same run): by name, as sort -r has it
    assert out.stdout.splitlines() == ["a", "empty", "d", "c", "linked", "b"]
    assert [p.name for p in list_runs(root)][:4] == ["a", "empty", "d", "c"]  # the local order (ties aside)


def test_watch_over_a_host_whose_tmp_cannot_be_written_says_so_and_recovers(tmp_path, monkeypatch):
    """`nsa watch --host` keeps its listing and copies in a temp file on the host: with /tmp full or read-only
    the rounds came back empty, so the run's whole files read as deleted and the log as idle, without a word."""
    later = tmp_path / "later"  # not there yet: no file can be written in it
    broken = _script(tmp_path / "broken" / "mktemp", f'echo "{later}/nsa.tmp"\n').parent
    monkeypatch.setenv("NSA_SSH_COMMAND", _fake_ssh(tmp_path, f'PATH="{broken}:$PATH"'))
    run = tmp_path / "r"
    make_v1_run(run, steps=30)
    src = RemoteRunSource("gpu", str(run), interval=0.2)
    try:
        got = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and src.rounds < 3:
            got += src.read()
            src.wait(0.2)
        assert src.rounds >= 3 and src.connected
        assert got == [] and src.mtimes == {}  # nothing read, nothing taken for deleted
        assert f"cannot write a temporary file there ({later}/nsa.tmp)" in src.trouble()
        assert "/tmp full or read-only" in src.describe()
        later.mkdir()  # space again

        def read_again() -> bool:
            return any(u.name == "heartbeat_rank0.jsonl" and u.lines for u in got) and any(
                u.name == "run.json" and u.content for u in got
            )

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not read_again():
            got += src.read()
            src.wait(0.2)
        assert read_again() and src.trouble() == ""
        # and gone again mid-watch: the files known stay known. Renamed away, at once: an rmtree raced the script's
        # next temp file in it ("Directory not empty")
        later.rename(tmp_path / "later-gone")
        rounds, got = src.rounds, []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (src.rounds < rounds + 3 or not src.tmp_blocked):
            got += src.read()
            src.wait(0.2)
        assert src.tmp_blocked and not any(u.deleted for u in got) and "heartbeat_rank0.jsonl" in src.mtimes
    finally:
        src.close()


# ---------------------------------------------------------------- 4: a chatty login shell, CDPATH
GREETING = 'echo "Welcome to host"; echo "  last login: yesterday"; export CDPATH=".:/tmp"'


def test_a_greeting_and_cdpath_do_not_break_locating_or_watching(tmp_path, monkeypatch):
    monkeypatch.setenv("NSA_SSH_COMMAND", _fake_ssh(tmp_path, GREETING))
    co = tmp_path / "co"
    make_v1_run(co / "runs" / "r", steps=40)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    [model] = build_models(["runs/r"], "gpu", False, 0.2, "co")  # relative: CDPATH is looked at
    assert model.source.run_dir == str(co / "runs" / "r")
    model.source.close()
    src = RemoteRunSource("gpu", str(co / "runs" / "r"), interval=0.2)
    try:
        deadline = time.monotonic() + 15
        got = []
        while time.monotonic() < deadline and src.rounds < 2:
            got += src.read()
            src.wait(0.2)
        assert src.rounds >= 2 and src.connected, src.describe()
        assert any(u.name == "heartbeat_rank0.jsonl" and u.lines for u in got + src.read())
    finally:
        src.close()
    res = invoke("status", "--json", "--host", "gpu", "--remote-dir", "co", "runs/r")
    assert res.exit_code == 0 and json.loads(res.stdout)["step"] == 40, res.stderr


def test_a_greeting_over_real_ssh_before_the_watch_stream(tmp_path, sshd, monkeypatch):
    greeter = _script(tmp_path / "greeting-ssh", 'echo "Welcome to host"\nexec ssh "$@"\n')
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command.replace("ssh ", f"{greeter} ", 1))
    run = tmp_path / "r"
    make_v1_run(run, steps=30)
    [model] = build_models([str(run)], sshd.host, False, 0.2)
    src = model.source
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and src.rounds < 1:
            src.wait(0.2)
        assert src.rounds >= 1 and src.connected and src.last_error == "", src.describe()
    finally:
        src.close()


# ---------------------------------------------------------------- 5: symlinked telemetry in watch --host
def test_watch_follows_symlinked_files(tmp_path, sshd):
    run = tmp_path / "run"
    run.mkdir()
    store = tmp_path / "store"
    store.mkdir()
    (store / "hb.jsonl").write_bytes(b'{"s":1}\n{"s":2}\n')
    (store / "run.json").write_text('{"run": "r"}')
    os.utime(store / "hb.jsonl", (1_700_000_000, 1_700_000_000))
    (run / "heartbeat_rank0.jsonl").symlink_to(store / "hb.jsonl")
    (run / "run.json").symlink_to(store / "run.json")
    (run / "heartbeat_rank1.jsonl").symlink_to(store / "gone.jsonl")  # a dangling link: nothing, no error
    src = RemoteRunSource(sshd.host, str(run), interval=0.2)
    try:
        got = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(u.name == "heartbeat_rank0.jsonl" and u.lines for u in got):
            got += src.read()
            src.wait(0.2)
        assert [ln for u in got if u.name == "heartbeat_rank0.jsonl" for ln in u.lines] == [b'{"s":1}', b'{"s":2}']
        rounds = src.rounds
        while time.monotonic() < deadline and src.rounds <= rounds:
            src.wait(0.2)
        # the target's mtime, not the link's (just made)
        assert src.clock_offset_s is not None
        assert abs(src.mtimes["heartbeat_rank0.jsonl"] - src.clock_offset_s - 1_700_000_000) < 2
        with open(store / "hb.jsonl", "ab") as f:
            f.write(b'{"s":3}\n')
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(b'{"s":3}' in u.lines for u in got):
            got += src.read()
            src.wait(0.2)
        assert any(b'{"s":3}' in u.lines for u in got)
        assert [u.content for u in got if u.name == "run.json"] == [b'{"run": "r"}']
    finally:
        src.close()


# ---------------------------------------------------------------- 6: `.` as a RUN in report --host
def test_report_of_dot_is_named_by_the_directory(tmp_path, sshd, monkeypatch):
    run = tmp_path / "host" / "runs" / "x"
    make_v1_run(run, steps=200, state="finished")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    res = invoke("report", "--host", sshd.host, "--remote-dir", str(run), ".")
    assert res.exit_code == 0, res.output
    assert (here / "x-report" / "report.md").is_file()
    assert not (here / ".-report").exists()


# ---------------------------------------------------------------- 7: an invalid host
@pytest.mark.parametrize(
    "cmd", ["status", "runs", "watch", "report", "check", "launch", "halt r", "dump r", "sample r"]
)
@pytest.mark.parametrize("host", ["-oX", "", "a b"])
def test_an_invalid_host_is_a_usage_error_in_every_command(cmd, host):
    """Exit 3 (`nsa status --host ''`), where a script reads "the host could not be reached"."""
    res = invoke(*cmd.split(), f"--host={host}")
    assert res.exit_code == (3 if cmd == "status" else 2), res.output  # `nsa status`: no verdict, its 3
    assert one_error(res).startswith(f"error: invalid host {host!r}: expected an OpenSSH destination")


def test_the_watch_parser_skips_what_comes_before_the_start_line():
    """Byte by byte, with a greeting that looks like frames and a start line cut anywhere."""
    from nsa_tui.tail.frames import START, FrameParser

    stream = b"Welcome\nE 1 2\n@@nsa-watch@@ not it\n" + START + b"\nF run.json\nE 1 5\n"
    for step in (1, 3, len(stream)):
        parser = FrameParser(wait_for_start=True)
        frames = [f for i in range(0, len(stream), step) for f in parser.feed(stream[i : i + step])]
        assert [(f.kind, f.name, f.now) for f in frames] == [("F", "run.json", 0), ("E", "", 5)]
    assert FrameParser(wait_for_start=True).feed(START + b"\nE 1 5\n")[0].now == 5  # the first line


# ---------------------------------------------------------------- a host that connects, then is slow to answer
def test_a_slow_answer_after_connecting_is_not_an_unreachable_host(tmp_path, monkeypatch):
    """A login shell whose rc file takes longer than the limit (60 s for status/runs) said "cannot reach HOST: no
    answer within 60s", though the host had answered the connection: ssh gives up by itself when it cannot connect
    within ConnectTimeout (10 s), so past that the host is only slow. Exit 3 still."""
    from nsa_tui.errors import UserError
    from nsa_tui.remote.ssh import SSHError, run_remote
    from nsa_tui.runs.remote import fetch_remote

    monkeypatch.setenv("NSA_SSH_COMMAND", _fake_ssh(tmp_path, "sleep 3"))  # a slow rc file, run before our command
    monkeypatch.setenv("NSA_SSH_CONNECT_TIMEOUT", "1")
    with pytest.raises(UserError) as e:
        fetch_remote("gpu", [str(tmp_path)], timeout=2)
    assert e.value.code == 3
    assert (
        str(e.value)
        == "no answer from gpu within 2s after connecting (a slow login shell, e.g. its rc files, or a busy host)"
    )
    monkeypatch.setenv("NSA_SSH_CONNECT_TIMEOUT", "10")  # ssh may still be connecting: both are possible
    with pytest.raises(SSHError) as e2:
        run_remote("gpu", "true", timeout=2)
    assert str(e2.value) == "no answer from gpu within 2s (not connected yet, a slow login shell, or a busy host)"


def test_a_dashboard_key_on_a_host_that_never_answers_ends(tmp_path, monkeypatch):
    """`h`/`d` in `nsa watch --host` ran the host's nsa with no time limit: a host that took the connection and said
    nothing left the key's thread waiting forever, and the dashboard said nothing."""
    from nsa_tui.watch import actions

    silent = tmp_path / "silent-ssh"
    silent.write_text("#!/bin/sh\nexec sleep 60\n")
    silent.chmod(0o755)
    monkeypatch.setenv("NSA_SSH_COMMAND", str(silent))
    monkeypatch.setattr(actions, "REMOTE_KEY_TIMEOUT_S", 1.0)
    target = actions.Target(None, host="gpu-box", remote_run="runs/r")
    t0 = time.monotonic()
    ok, said = actions.safely(lambda: actions.halt(target, lambda line: None))
    assert not ok and said == "no answer from gpu-box within 1s (`nsa halt` there)"
    assert time.monotonic() - t0 < 10
