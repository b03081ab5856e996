"""`holds_run` in sh (nsa_tui.remote.holds_sh), the one the `--host` scripts list and find runs by, says what the
contract's holds_run (nsa_train.telemetry.holds) says of every state of a directory: run by dash with GNU tools, by
busybox sh with busybox's tools only, and through `nsa runs --host` over the loopback sshd, whose table ends with the
same line of the directories left out as a local `nsa runs`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fixtures.cli import invoke
from fixtures.holds_states import STATES
from fixtures.shells import SHELLS, posix_shell

from nsa_train.telemetry import schema
from nsa_train.telemetry.holds import ROWS_READ_BYTES, holds_run
from nsa_tui.remote.checkout import PRELUDE
from nsa_tui.runs.bundle import REMOTE_SCRIPT, MissingRun, RunBundle, parse_frames, remote_args

# beyond the table: how a log's rows and a glob's entries are told, where sh and Python could part
EDGES = {
    "crlf header": (schema.TRAINING_CSV, b"step,loss\r\n"),
    "crlf row": (schema.VAL_CSV, b"step,val_loss\r\n4,2.1\r\n"),
    "cr row": (schema.TRAINING_CSV, b"step,loss\r3,2.5"),  # splitlines ends a line at a bare \r
    "cr cr": (schema.TRAINING_CSV, b"step,loss\r\r"),  # an empty line after the header
    "header unended": (schema.TRAINING_CSV, b"step,loss"),
    "empty row": (schema.TRAINING_CSV, b"step,loss\n\n"),  # splitlines counts an empty line
    "row past the bytes read": (schema.TRAINING_CSV, b"s" * ROWS_READ_BYTES + b"\n3,2.5\n"),
    "a later rank's heartbeat": (schema.heartbeat_name(3), b""),
    "config only": (schema.CONFIG_YAML, b"train: {}\n"),  # a user's configs folder
}


def _states_root(root: Path) -> dict[str, bool]:
    """One directory per state under ``root``; the contract's answer for each, by name."""
    for i, (make, _, _) in enumerate(STATES.values()):
        (root / f"s{i}").mkdir(parents=True)
        make(root / f"s{i}")
    for i, (name, data) in enumerate(EDGES.values()):
        (root / f"e{i}").mkdir()
        (root / f"e{i}" / name).write_bytes(data)
    ckpt = root / "dangling checkpoint" / schema.CHECKPOINT_DIR
    ckpt.mkdir(parents=True)
    (ckpt / "step_00000001.pt").symlink_to(root / "gone")  # Path.glob lists it
    (root / "a file where run.json goes" / schema.RUN_JSON).mkdir(parents=True)
    (root / "it's data").mkdir()
    want = {d.name: holds_run(d) for d in root.iterdir()}
    # the table's own answer: the contract and the script cannot both be wrong the same way unseen
    assert [want[f"s{i}"] for i in range(len(STATES))] == [listed for _, _, listed in STATES.values()]
    return want


def _shell(tmp_path: Path, shell: str) -> tuple[list[str], dict[str, str]]:
    sh, env = posix_shell(shell, tmp_path)
    return sh, {**env, "HOME": str(tmp_path)}


def _remote_answer(tmp_path: Path, shell: str, runs: list[str]):
    """The listing script's answer for ``runs`` under ``shell``, run to its end without a word on stderr."""
    sh, env = _shell(tmp_path, shell)
    out = subprocess.run(
        [*sh, "-c", REMOTE_SCRIPT, "sh", *remote_args("", runs, False)], capture_output=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0 and out.stderr == b"", out.stderr
    answer = parse_frames(out.stdout, "h")
    assert answer.complete
    return answer


@pytest.mark.parametrize("shell", SHELLS)
def test_the_listing_leaves_out_what_holds_run_leaves_out(tmp_path: Path, shell: str) -> None:
    """REMOTE_SCRIPT's listing (`nsa runs --host`): a `run` frame for each directory that holds a run, a `leftout`
    frame naming each other one, as the contract answers for every state."""
    root = tmp_path / "runs"
    want = _states_root(root)
    answer = _remote_answer(tmp_path, shell, [f"@all:{root}"])
    listed = [b.run for b in answer.bundles if isinstance(b, RunBundle)]
    assert len(listed) == len(answer.bundles)
    assert sorted(listed) == sorted(n for n, held in want.items() if held)
    assert sorted(answer.left_out) == sorted(n for n, held in want.items() if not held)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_listing_of_a_directory_that_holds_a_run_is_refused_as_a_run_directory(tmp_path: Path, shell: str) -> None:
    """`nsa runs --host DIR` where DIR is itself a run: refused (a `missing` frame marked `rundir`) exactly when the
    contract's holds_run says DIR holds one: a later rank's heartbeat or a checkpoint alone too, a training.csv with
    only its header not."""
    root = tmp_path / "runs"
    want = _states_root(root)
    listings = {f"@all:{root / name}": name for name in want}
    answer = _remote_answer(tmp_path, shell, list(listings))
    refused = {listings[b.run] for b in answer.bundles if isinstance(b, MissingRun) and b.is_run_dir}
    assert refused == {name for name, held in want.items() if held}


def test_a_local_listing_of_a_directory_that_holds_a_run_is_refused_as_a_run_directory(tmp_path: Path) -> None:
    """`nsa runs DIR` here refuses the same directories as the sh listing above: the contract's holds_run."""
    root = tmp_path / "runs"
    want = _states_root(root)
    for name, held in want.items():
        res = invoke("runs", str(root / name))
        refused = res.exit_code == 3 and "is a run directory, not a directory of runs" in res.stderr
        assert refused == held, (name, res.exit_code, res.stderr)
        assert "Traceback" not in res.stderr


def test_the_newest_run_on_a_host_holds_one(tmp_path: Path) -> None:
    """find_run "" (every `--host` command without a RUN) skips the newer directories that hold no run, as a local
    newest_run does: a training.csv with only its header is none, a checkpoint pointer alone is one."""
    root = tmp_path / "runs"
    for i, name in enumerate(("pointer", "header")):  # the header's directory is the newer
        d = root / name
        d.mkdir(parents=True)
        make = STATES["a checkpoint pointer only" if name == "pointer" else "only training.csv's header"][0]
        make(d)
        for p in (d, *d.rglob("*")):
            os.utime(p, (1_000 + i, 1_000 + i))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # the runs root: ./runs
    out = subprocess.run(
        ["dash", "-c", PRELUDE + 'find_run ""; printf "%s\\n" "$d"'],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.stdout.splitlines() == ["runs/pointer"], out.stderr


def test_runs_over_ssh_says_what_it_left_out_as_a_local_runs(tmp_path: Path, sshd_factory, monkeypatch) -> None:
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    root = tmp_path / "runs"
    want = _states_root(root)
    local = invoke("runs", str(root))
    remote = invoke("runs", "--host", s.host, str(root))
    assert local.exit_code == 0 and remote.exit_code == 0, (local.stderr, remote.stderr)
    n = sum(not held for held in want.values())
    footer = local.stdout.splitlines()[-1]
    assert footer.startswith(f"{n} directories that hold no run left out: ")
    assert remote.stdout.splitlines()[-1] == footer
    res = invoke("runs", "--json", "--host", s.host, str(root))
    assert sorted(json.loads(line)["run"] for line in res.stdout.splitlines()) == sorted(
        n for n, h in want.items() if h
    )
