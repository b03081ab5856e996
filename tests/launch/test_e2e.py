"""The whole lifecycle with the real trainer, real torchrun and real tmux (and real sshd)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nsa_train.config import load_config
from nsa_tui.check_cheap import CheckRow, cheap_checks
from nsa_tui.launch.preflight import occupancy
from nsa_tui.launch.tmux import session_name

from .helpers import REPO, TINY, exit_status, later_sets_win, nsa, records, tmux_sessions, wait_for

pytestmark = pytest.mark.slow


def _progress(run_dir: Path) -> list[dict]:
    return [r for r in records(run_dir) if r.get("kind") == "progress"]


def _assert_clean_halt(run_dir: Path, halt: subprocess.CompletedProcess) -> None:
    assert halt.returncode == 0, halt.stdout + halt.stderr
    assert "reason halt" in halt.stdout
    end = [r for r in records(run_dir) if r.get("kind") == "end"]
    assert end and end[-1]["reason"] == "halt"
    ckpts = [r for r in records(run_dir) if r.get("kind") == "checkpoint"]
    assert ckpts and Path(ckpts[-1]["path"]).exists()
    assert f"checkpoint: {ckpts[-1]['path']}" in halt.stdout
    assert wait_for(lambda: exit_status(run_dir) is not None, 60, "exit_status") and exit_status(run_dir) == 0
    assert not (run_dir / ".HALT").exists()
    wait_for(lambda: tmux_sessions() == [], 30, "the tmux session to close")


def test_launch_progress_dump_halt_locally(runs_dir, tmux_socket):
    res = nsa("launch", "--name", "e2e", *TINY)
    assert res.returncode == 0, res.stderr
    assert "  watch: nsa watch e2e   attach: nsa attach e2e   stop: nsa halt e2e\n" in res.stdout
    run_dir = runs_dir / "e2e"
    assert "nsa-e2e" in tmux_sessions()
    launch = json.loads((run_dir / "launch.json").read_text())
    assert launch["tmux_session"] == "nsa-e2e" and launch["nproc"] == 1
    assert launch["argv"][1:4] == ["-P", "-m", "torch.distributed.run"] and "--standalone" in launch["argv"]
    assert launch["env"]["PYTHONUNBUFFERED"] == "1" and launch["env"]["PYTHONSAFEPATH"] == "1"
    assert abs(float(launch["env"]["NSA_LAUNCH_TIME"]) - launch["ts"]) < 1e-5 and launch["code_dir"] == str(REPO)
    assert len(launch["config_hash"]) == 16 and launch["config_path"].endswith("tiny-cpu.yaml")
    assert launch["host"] and launch["time"] and "git_sha" in launch

    wait_for(lambda: len(_progress(run_dir)) >= 2, 60, "progress records")
    # `nsa check --run-dir` on it says it runs now (it said "holds an earlier run"), as `nsa launch` refuses it
    pid = _progress(run_dir)[-1]["pid"]
    row = _run_dir_row(run_dir)
    assert row.status == "fail" and f"holds a run that is running now (tmux session nsa-e2e, rank 0 pid {pid})" in (
        row.reason
    )
    assert f"`nsa halt {run_dir}`" in row.reason and "earlier run" not in row.reason
    # a copy of it (`cp -r` of a live run: its launch.json names that run's session, its heartbeat is fresh, rank 0's
    # pid is that run's trainer) runs nothing: halting the copy would not stop the run
    copy = shutil.copytree(run_dir, runs_dir / "e2e-copy", ignore=shutil.ignore_patterns("*.tmp*"))
    assert "holds an earlier run" in _run_dir_row(copy).reason
    # and `nsa launch` into it refuses it as any used directory, not as a live run (the original's session and the
    # copied heartbeat read as live)
    occ = occupancy(copy, session_name("e2e-copy"), load_config(None))
    assert (occ.session_live, occ.heartbeat_age_s, occ.previous_run) == (False, None, True)
    refused = nsa("launch", "--run-dir", str(copy), *TINY)
    assert refused.returncode == 1 and f"run dir {copy} already holds an earlier run" in refused.stderr, refused.stderr
    # status, halt and attach do not take the original's session for the copy's (it read `running`, a halt wrote
    # a .HALT no trainer reads and waited, attach went to the original)
    status = nsa("status", str(copy))
    assert " crashed " in status.stdout.splitlines()[0], status.stdout
    assert f"its launch.json was written for {run_dir}, so it is a copy of that run" in status.stdout
    import time

    from nsa_tui.health import build_rules, evaluate
    from nsa_tui.tail.local import LocalRunSource
    from nsa_tui.watch.model import TMUX_EVERY_S, RunModel

    m = RunModel("e2e-copy", LocalRunSource(copy, force_poll=True), where=str(copy), check_liveness=True)
    try:  # the dashboard's view of it: as status's
        m.pump(now=0.0)
        m.pump(now=TMUX_EVERY_S + 1)
        m.pump(now=2 * TMUX_EVERY_S + 2)  # the liveness check with launch.json read
        assert evaluate(m.history, time.time(), build_rules(m.history.config)).state == "crashed"
    finally:
        m.source.close()
    halted = nsa("halt", str(copy), "--wait", "5")
    assert halted.returncode == 1 and "is not running: no process of its trainer is alive" in halted.stderr
    assert not (copy / ".HALT").exists()
    attached = nsa("attach", str(copy))
    assert attached.returncode == 1 and attached.stderr == (
        f"error: {copy} is a copy of the run in {run_dir} (its launch.json was written there) and has no tmux session "
        f"of its own; that run's is `nsa attach {run_dir}`\n"
    )

    dump = nsa("dump", "e2e")
    assert dump.returncode == 0, dump.stderr
    dumped = [Path(line) for line in dump.stdout.splitlines() if "stackdump_rank0_" in line]
    assert dumped and dumped[0].exists() and dumped[0].stat().st_size > 0

    _assert_clean_halt(run_dir, nsa("halt", "e2e", "--wait", "120", timeout=180))
    assert "step" in (run_dir / "console.log").read_text()

    again = nsa("launch", "--name", "e2e", "--dry-run")  # refused as the launch is: a preflight a script can trust
    refused = nsa("launch", "--name", "e2e")
    assert refused.returncode == 1 and "earlier run" in refused.stderr
    assert (again.returncode, again.stderr) == (1, refused.stderr), again.stderr
    assert "holds an earlier run" in _run_dir_row(run_dir).reason  # halted: no longer running


def _run_dir_row(run_dir: Path) -> CheckRow:
    """`nsa check --run-dir RUN_DIR`'s run dir row (the torch-free part of the check, in this process)."""
    return {r.name: r for r in cheap_checks(load_config(None), run_dir, fresh_start=True)}["run dir"]


def test_launch_and_halt_over_ssh_with_a_hostile_name(runs_dir, tmux_socket, sshd, tmp_path):
    name = 'it\'s "q"; $(touch pwned) `touch pwned2`'
    remote_dir = tmp_path / "remote dir; $(touch pwned3)"
    remote_dir.mkdir()
    res = nsa("launch", "--host", sshd.host, "--remote-dir", str(remote_dir), "--name", name, *TINY)
    assert res.returncode == 0, res.stdout + res.stderr
    run_dir = runs_dir / name  # NSA_RUNS_DIR travels as an explicit `env` argument
    assert run_dir.is_dir()
    assert session_name(name) in tmux_sessions()
    wait_for(lambda: len(_progress(run_dir)) >= 2, 60, "progress records")
    assert json.loads((run_dir / "launch.json").read_text())["cwd"] == str(remote_dir)

    # what to type next, from here: the host and the checkout in every command, quoted for a shell
    where = ["--host", sshd.host, "--remote-dir", str(remote_dir)]
    hint = [line for line in res.stdout.splitlines() if line.startswith("  watch: ")]
    assert hint == [
        f"  watch: {shlex.join(['nsa', 'watch', *where, name])}   attach: {shlex.join(['nsa', 'attach', *where, name])}"
        f"   stop: {shlex.join(['nsa', 'halt', *where, name])}"
    ]
    # our NSA_RUNS_DIR is the remote's runs root too: the run is found and judged running (a health warning is
    # the tiny run's own business: one fired once in a fresh-clone suite on the busy 2-core box)
    status = nsa("status", "--json", "--host", sshd.host, name)
    assert status.returncode in (0, 1) and json.loads(status.stdout)["state"] == "running", status.stdout

    dump = nsa("dump", "--host", sshd.host, name)
    assert dump.returncode == 0, dump.stderr
    assert "stackdump_rank0_" in dump.stdout

    stop = shlex.split(hint[0].split("   stop: ", 1)[1])  # the printed command itself stops the run
    halt = nsa(*stop[1:], "--wait", "120", timeout=180)
    _assert_clean_halt(run_dir, halt)
    for marker in ("pwned", "pwned2", "pwned3"):
        assert not list(tmp_path.rglob(marker)), f"{marker} was executed by a shell"
        assert not (Path.cwd() / marker).exists()


def test_hostile_run_dir_locally(tmux_socket, tmp_path):
    marker = tmp_path / "pwned"
    run_dir = tmp_path / f"runs $(touch {marker}) x" / 'it\'s "q"; `touch pwned2`'
    res = nsa("launch", "--run-dir", str(run_dir), *TINY, "--set", "train.steps=2",
              cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    # its name is not under the runs root: the next steps name the directory
    assert f"   stop: {shlex.join(['nsa', 'halt', str(run_dir)])}\n" in res.stdout
    assert wait_for(lambda: exit_status(run_dir) is not None, 90, "the short run to end") is not None
    assert exit_status(run_dir) == 0, (run_dir / "console.log").read_text()[-2000:]
    assert json.loads((run_dir / "launch.json").read_text())["name"] == run_dir.name
    assert not marker.exists() and not (tmp_path / "pwned2").exists()


def test_missing_data_path_is_caught_before_anything_starts(runs_dir, tmux_socket):
    res = nsa(
        "launch", "--name", "nodata", *TINY, "--set", "data.source=local", "--set", "data.path=/nonexistent/x.txt"
    )
    assert res.returncode == 1
    assert "data.path '/nonexistent/x.txt' does not exist" in res.stderr
    assert tmux_sessions() == [] and not (runs_dir / "nodata" / "launch.json").exists()


def test_crashing_trainer_leaves_status_and_console(runs_dir, tmux_socket, tmp_path):
    # The preflight passes (the file exists, its first record has 'text'), but the file holds 2 documents and
    # 8 are held out for validation: the trainer fails at runtime, once it has read them all.
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "a fine first record"}\n{"text": "and a second one"}\n')
    bad_data = ["--set", "data.source=local", "--set", f"data.path={corpus}"]
    res = nsa("launch", "--name", "crash", *TINY, *bad_data)
    assert res.returncode == 0, res.stderr
    run_dir = runs_dir / "crash"
    status = wait_for(lambda: exit_status(run_dir), 90, "exit_status of the crashed run")
    assert status != 0
    # The trainer's own error is restated last, after torchrun's traceback.
    tail = (run_dir / "console.log").read_text().splitlines()[-2:]
    assert "rank 0 error at step 0:" in tail[0] and "none left to train on" in tail[0], tail
    assert tail[-1].endswith(f"exited with status {status}")
    wait_for(lambda: tmux_sessions() == [], 30, "the tmux session to close")
    status_cmd = nsa("status", "crash")
    if "No such command" not in status_cmd.stderr:  # `nsa status` is written in parallel
        assert "crashed" in status_cmd.stdout + status_cmd.stderr


def test_force_replaces_a_session_and_halt_during_boot_still_stops(runs_dir, tmux_socket):
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-forced", "sleep", "300"], check=True)
    res = nsa("launch", "--name", "forced", "--force", *TINY)
    assert res.returncode == 0, res.stderr
    assert "--force: killing tmux session nsa-forced" in res.stdout
    run_dir = runs_dir / "forced"
    # Halt at once, while the trainer is still booting: it clears leftover .HALT files at
    # start, so `nsa halt` must notice and ask again.
    _assert_clean_halt(run_dir, nsa("halt", "forced", "--wait", "120", timeout=180))


def test_two_node_recipe_on_one_machine(runs_dir, tmux_socket):
    # docs/launch.md's two-call recipe, both "nodes" on loopback: static rendezvous, 1 process each.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    short = [*TINY, "--set", "train.steps=5"]
    for rank in (0, 1):
        res = nsa("launch", "--name", f"node{rank}", "--nnodes", "2", "--node-rank", str(rank),
                  "--rdzv-endpoint", f"127.0.0.1:{port}", "--nproc", "1", *short)  # fmt: skip
        assert res.returncode == 0, res.stderr
    for rank in (0, 1):
        run_dir = runs_dir / f"node{rank}"
        wait_for(lambda d=run_dir: exit_status(d) is not None, 120, f"node {rank} to finish")
        assert exit_status(run_dir) == 0, (run_dir / "console.log").read_text()[-2000:]
        assert (run_dir / f"heartbeat_rank{rank}.jsonl").exists()  # node R runs global rank R
    assert json.loads((runs_dir / "node0" / "run.json").read_text())["world_size"] == 2


def test_resume_a_halted_run_continues_from_its_checkpoint(runs_dir, tmux_socket):
    assert nsa("launch", "--name", "again", *TINY).returncode == 0
    run_dir = runs_dir / "again"
    wait_for(lambda: len(_progress(run_dir)) >= 3, 90, "progress records")
    _assert_clean_halt(run_dir, nsa("halt", "again", "--wait", "120", timeout=180))
    halted_at = [r for r in records(run_dir) if r.get("kind") == "end"][-1]["step"]
    # Without --resume the dir is refused; with it the run continues from the checkpoint,
    # using the run's own saved config (not the default).
    assert nsa("launch", "--name", "again").returncode == 1
    res = nsa("launch", "--name", "again", "--resume")
    assert res.returncode == 0, res.stderr
    assert "--resume" in json.loads((run_dir / "launch.json").read_text())["argv"]
    wait_for(lambda: any(r["step"] > halted_at for r in _progress(run_dir)), 90, "progress after the resume")
    resumed = [r["step"] for r in _progress(run_dir) if r["step"] > halted_at]
    assert resumed[0] == halted_at + 1
    _assert_clean_halt(run_dir, nsa("halt", "again", "--wait", "120", timeout=180))
    # resuming with train.steps at the checkpoint's step: refused before anything starts
    done_at = [r for r in records(run_dir) if r.get("kind") == "end"][-1]["step"]
    res = nsa("launch", "--name", "again", "--resume", "--set", f"train.steps={done_at}")
    assert res.returncode == 1 and "nothing to do" in res.stderr, res.stdout + res.stderr
    assert tmux_sessions() == [] and exit_status(run_dir) == 0


def test_resume_without_a_checkpoint_is_one_error(runs_dir, tmux_socket):
    res = nsa("launch", "--name", "nothing-here", "--resume")
    assert res.returncode == 1
    assert "--resume: no run directory" in res.stderr  # no directory at all: not "has no checkpoint"
    (runs_dir / "nothing-here").mkdir()
    res = nsa("launch", "--name", "nothing-here", "--resume")
    assert res.returncode == 1
    assert "has no checkpoint to continue" in res.stderr


def test_killing_the_tmux_session_stops_the_run_gracefully(runs_dir, tmux_socket):
    """`tmux kill-session` hangs up torchrun, which passes SIGHUP on to the trainer; its default action ended
    the trainer mid-step (tried 2026-12-03: no checkpoint since the last save, no end record, "crashed"). The
    trainer takes it as a stop request: it finishes the step, saves, ends with reason signal, and resumes."""
    assert nsa("launch", "--name", "hup", *TINY).returncode == 0
    run_dir = runs_dir / "hup"
    wait_for(lambda: len(_progress(run_dir)) >= 2, 90, "progress records")
    subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", "=nsa-hup"], check=True)
    wait_for(lambda: exit_status(run_dir) is not None, 60, "exit_status after kill-session")
    end = [r for r in records(run_dir) if r.get("kind") == "end"]
    assert end and end[-1]["reason"] == "signal", (run_dir / "console.log").read_text()[-3000:]
    ckpts = [r for r in records(run_dir) if r.get("kind") == "checkpoint"]
    assert ckpts and ckpts[-1]["step"] == end[-1]["step"] and Path(ckpts[-1]["path"]).exists()
    status = nsa("status", "hup", "--json")
    # halted, and said not to be a requested halt: the SIGHUP is named by the end record's exit status 128 + 1
    assert json.loads(status.stdout)["state"] == "halted", status.stdout
    assert json.loads(status.stdout)["stop_signal"] == "SIGHUP", (status.stdout, end)
    # saved like a halt, recorded like one: torchrun's own status (1, a traceback after the hang-up) is said beside it
    assert (status.returncode, exit_status(run_dir)) == (0, 0), (run_dir / "console.log").read_text()[-3000:]
    assert nsa("launch", "--name", "hup", "--resume").returncode == 0
    wait_for(lambda: any(r["step"] > end[-1]["step"] for r in _progress(run_dir)), 90, "progress after the resume")
    _assert_clean_halt(run_dir, nsa("halt", "hup", "--wait", "120", timeout=180))


def test_a_sigterm_to_the_trainer_stops_the_run_like_a_halt_with_exit_status_0(runs_dir, tmux_socket):
    """A SIGTERM to the trainer (a scheduler's preemption) saves and ends it with reason signal and its own status
    143; torchrun then exited 1, which the wrapper recorded: `nsa halt` said `halted by SIGTERM ...` then `exit status:
    1`, where docs/launch.md promised 0."""
    assert nsa("launch", "--name", "term", *TINY).returncode == 0
    run_dir = runs_dir / "term"
    wait_for(lambda: len(_progress(run_dir)) >= 2, 90, "progress records")
    os.kill(_progress(run_dir)[-1]["pid"], signal.SIGTERM)
    wait_for(lambda: exit_status(run_dir) is not None, 60, "exit_status after the SIGTERM")
    end = [r for r in records(run_dir) if r.get("kind") == "end"]
    assert (end[-1]["reason"], end[-1]["exit_status"]) == ("signal", 143), end
    assert exit_status(run_dir) == 0, (run_dir / "console.log").read_text()[-3000:]
    last = (run_dir / "console.log").read_text().splitlines()[-1]
    assert last.endswith("; exit_status 0, as for a halt: every rank stopped on SIGTERM"), last
    halt = nsa("halt", "term")
    assert halt.returncode == 0 and halt.stdout.splitlines()[-1] == "exit status: 0", halt.stdout
    assert "halted by SIGTERM" in halt.stdout


def test_halt_at_once_after_launch_is_honoured(runs_dir, tmux_socket):
    """`nsa halt --wait 0` right after `nsa launch` printed 'created .HALT', and the booting trainer then removed
    it as stale ('warning: removed a stale .HALT') and trained on. A .HALT newer than the launch is a request."""
    assert nsa("launch", "--name", "quick", *TINY).returncode == 0
    run_dir = runs_dir / "quick"
    res = nsa("halt", "quick", "--wait", "0")
    assert res.returncode == 0 and "created" in res.stdout, res.stderr
    wait_for(lambda: exit_status(run_dir) is not None, 120, "the run to stop")
    end = [r for r in records(run_dir) if r.get("kind") == "end"]
    assert end and end[-1]["reason"] == "halt" and end[-1]["step"] <= 3, (run_dir / "console.log").read_text()[-3000:]
    train = [r for r in records(run_dir) if r.get("kind") == "phase" and r.get("phase") == "train"]
    assert not any(".HALT" in w for w in train[-1]["warnings"])
    assert exit_status(run_dir) == 0 and not (run_dir / ".HALT").exists()


def test_the_code_that_runs_is_the_installed_one_not_the_current_directorys(runs_dir, tmux_socket, tmp_path):
    """`python -m` puts the current directory first on sys.path: an nsa_train (or nsa_tui) where `nsa launch` was
    typed ran instead of the checkout whose git sha launch.json records."""
    marker = tmp_path / "impostor-ran"
    for pkg, module in (("nsa_train", "train.py"), ("nsa_tui/launch", "runner.py")):
        (tmp_path / pkg).mkdir(parents=True)
        (tmp_path / pkg / module).write_text(f"open({str(marker)!r}, 'a').write({module!r}); raise SystemExit(42)\n")
    for init in ("nsa_train", "nsa_tui", "nsa_tui/launch"):
        (tmp_path / init / "__init__.py").touch()
    # the `nsa` console script's way (no current directory on sys.path), from that directory
    short = later_sets_win([*TINY, "--set", "train.steps=2"])
    res = subprocess.run(
        [sys.executable, "-P", "-m", "nsa_tui", "launch", "--name", "safe", *short],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    run_dir = runs_dir / "safe"
    wait_for(lambda: exit_status(run_dir) is not None, 120, "the short run to end")
    assert exit_status(run_dir) == 0 and not marker.exists(), (run_dir / "console.log").read_text()[-2000:]
    assert json.loads((run_dir / "launch.json").read_text())["code_dir"] == str(REPO)
