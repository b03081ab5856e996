"""A RUN argument as every command resolves it (nsa_tui.rundir): an empty one, a file, its name in --help."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.cli import invoke, nsa_on_a_terminal, one_error

from nsa_tui.errors import UserError
from nsa_tui.rundir import resolve_run

EMPTY = "error: RUN is empty: give a run directory or a run name"
STATUS_UNKNOWN = 3  # `nsa status`'s usage mistakes: no verdict (its 2 is a critical run's)


@pytest.mark.parametrize("cmd", ["halt", "dump", "attach", "status", "report"])
def test_an_empty_run_is_a_usage_error(cmd, runs_dir, tmp_path, monkeypatch):
    """'' was Path(''), the current directory: `nsa halt ''` wrote ./.HALT and waited 600 s for an end record,
    `nsa attach ''` looked for the session `nsa-` of run ''."""
    monkeypatch.chdir(tmp_path)
    for run in ("", " "):
        res = invoke(cmd, run, *(["--wait", "1"] if cmd == "halt" else []))
        assert res.exit_code == (STATUS_UNKNOWN if cmd == "status" else 2), res.stdout + res.stderr
        assert one_error(res) == EMPTY
    assert not (tmp_path / ".HALT").exists()


@pytest.mark.parametrize("cmd", ["halt", "dump", "attach", "status", "report", "watch"])
def test_an_empty_run_is_refused_before_ssh(cmd):
    """With --host it went to the host (whose nsa may predate the check): refused here, no ssh tried."""
    res = invoke(cmd, "--host", "nowhere.invalid", "")
    assert res.exit_code == (STATUS_UNKNOWN if cmd == "status" else 2), res.stdout + res.stderr
    assert one_error(res) == EMPTY


def test_a_file_is_not_a_run_directory(runs_dir, monkeypatch):
    """A run's own file was reported as a missing run directory: `no run directory 'runs/fin/run.json' (looked
    at .../runs/fin/run.json and ...)`, which sends the user looking for something that is there."""
    run = runs_dir / "fin"
    run.mkdir()
    (run / "run.json").write_text("{}")
    monkeypatch.chdir(runs_dir.parent)
    for cmd in ("status", "halt", "dump", "attach", "report"):
        res = invoke(cmd, "runs/fin/run.json")
        assert res.exit_code == 3, res.stdout + res.stderr
        assert one_error(res) == (
            f"error: {run / 'run.json'} is a file, not a run directory (its directory {run} is a run)"
        )
    (runs_dir / "notes.txt").write_text("a file in the runs root, named as a run\n")
    with pytest.raises(UserError, match=r"notes\.txt is a file, not a run directory$") as e:
        resolve_run("notes.txt")
    assert e.value.code == 3 and str(runs_dir / "notes.txt") in str(e.value)


@pytest.mark.parametrize("cmd", ["halt", "dump", "attach"])
def test_help_calls_the_argument_RUN(cmd):
    """They showed `{run}` (the parameter's name) where the docs and `nsa report --help` say RUN."""
    res = invoke(cmd, "--help")
    assert res.exit_code == 0, res.stdout
    usage = next(line for line in res.stdout.splitlines() if "Usage:" in line)
    assert usage.split()[-1] == "{RUN}"  # the braces are Typer's mark of a required argument


def test_watch_of_the_runs_root_says_it_holds_runs(runs_dir, monkeypatch):
    """It opened a dashboard of a run "runs" that waited for data forever, health ok; `nsa status` exits 3."""
    from fixtures.runs import make_v1_run

    make_v1_run(runs_dir / "a", steps=10, state="finished")
    monkeypatch.chdir(runs_dir.parent)
    res = nsa_on_a_terminal("watch", str(runs_dir))
    assert res.returncode == 3
    assert res.stderr == f"error: {runs_dir} is not a run: it holds run directories; `nsa runs` lists them\n"
    (runs_dir / "fresh").mkdir()  # an empty directory may be a run about to start: watched, as before
    from nsa_tui.commands.watch import build_models

    assert [m.name for m in build_models([str(runs_dir / "fresh")], None, True, 1.0)] == ["fresh"]


def test_watch_of_a_directory_of_no_run_is_one_error(runs_dir, monkeypatch):
    """`nsa watch runs/a/checkpoints` (or /etc) opened a dashboard saying "ok, waiting for data" forever, where `nsa
    status` and `nsa halt` said there was no run. A directory with a log of another format is still watched."""
    from fixtures.runs import make_generic_run, make_v1_run

    make_v1_run(runs_dir / "a", steps=10, state="finished")
    ckpts = runs_dir / "a" / "checkpoints"
    ckpts.mkdir(exist_ok=True)
    (ckpts / "step_00000010.pt").write_bytes(b"weights")
    monkeypatch.chdir(runs_dir.parent)
    res = nsa_on_a_terminal("watch", str(ckpts))
    assert res.returncode == 3
    assert res.stderr.rstrip("\n") == (
        f"error: no run in {ckpts} (none of run.json, launch.json, console.log, exit_status, heartbeat_rank*.jsonl, "
        "a row in training.csv or val.csv, a checkpoint (checkpoints/step_*.pt or a pointer)), "
        f"nor a training log of another format; its directory {runs_dir / 'a'} is a run"
    )
    other = runs_dir.parent / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("not a run\n")
    res = nsa_on_a_terminal("watch", str(other))
    assert res.returncode == 3 and res.stderr.endswith("nor a training log of another format\n"), res.stderr
    from nsa_tui.commands.watch import build_models

    make_generic_run(runs_dir / "old")  # another trainer's *_log.jsonl alone
    assert [m.name for m in build_models([str(runs_dir / "old")], None, True, 1.0)] == ["old"]


def test_watch_of_one_run_named_twice_has_one_tab(runs_dir, monkeypatch):
    """`nsa watch a runs/a b` showed tabs 1:a 2:a 3:b."""
    from fixtures.runs import make_v1_run

    from nsa_tui.commands.watch import build_models

    for name in ("a", "b"):
        make_v1_run(runs_dir / name, steps=10, state="finished")
    monkeypatch.chdir(runs_dir.parent)
    models = build_models(["a", str(runs_dir / "a"), "b", "runs/b"], None, True, 1.0)
    assert [m.name for m in models] == ["a", "b"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["launch", "--dry-run", "--config", "a.yaml", "--config=b.yaml"], "--config given 2 times (a.yaml, b.yaml)"),
        (["launch", "--dry-run", "--name", "x", "--name", "y"], "--name given 2 times (x, y)"),
        (["check", "--config", "a.yaml", "--config", "b.yaml"], "--config given 2 times (a.yaml, b.yaml)"),
        (["status", "--rules", "r1.yaml", "--rules", "r2.yaml", "x"], "--rules given 2 times (r1.yaml, r2.yaml)"),
    ],
)
def test_a_one_value_option_given_twice_is_a_usage_error(args, says):
    """The last one won without a word: `--config big.yaml --config small.yaml` launched small.yaml."""
    res = invoke(*args)
    assert res.exit_code == (STATUS_UNKNOWN if args[0] == "status" else 2), res.stdout + res.stderr
    assert one_error(res) == f"error: {says}: only one would be used; give it once"


def test_options_that_repeat_or_repeat_alike_are_fine():
    from typer.main import get_command

    from nsa_tui.cli import app, repeated_option

    launch = get_command(app).commands["launch"]  # type: ignore[attr-defined]
    assert repeated_option(launch, ["--set", "a=1", "--set", "b=2", "--name", "x", "--name=x"]) is None
    assert repeated_option(launch, ["--name", "--config", "--config", "c.yaml"]) is None  # a value, then one option
    assert repeated_option(launch, ["--", "--name", "a", "--name", "b"]) is None  # after '--': arguments


def test_the_next_steps_say_how_to_reach_this_nsa_when_path_has_none(monkeypatch, tmp_path):
    """README command 1 runs .venv/bin/nsa from a shell without it on PATH; the launch's next steps said `nsa watch
    RUN`, and typed as shown it was "command not found"."""
    import sys

    from nsa_tui.commands.launch import path_hint

    ours = Path(sys.executable).parent / "nsa"
    monkeypatch.setenv("PATH", str(tmp_path))
    assert path_hint() == (
        f"  (nsa is not on this shell's PATH: `. {ours.parent.parent}/bin/activate` first, or type {ours})"
    )
    other = tmp_path / "nsa"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    assert path_hint().startswith(f"  (the nsa on this shell's PATH is another ({other}): ")
    monkeypatch.setenv("PATH", f"{ours.parent}:{tmp_path}")
    assert path_hint() is None


def test_watch_without_a_terminal_is_one_error(runs_dir):
    """`nsa watch` from a script (stdin /dev/null, output to a file) drew its dashboard into the file and spun a core
    for as long as nobody killed it; `nsa launch --watch` would start the run and then fail to open it."""
    import subprocess
    import sys

    from fixtures.runs import make_v1_run

    make_v1_run(runs_dir / "a", steps=10, state="finished")
    res = subprocess.run(
        [sys.executable, "-m", "nsa_tui", "watch", "a"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert res.returncode == 1 and res.stdout == "", res.stdout[-500:]
    assert res.stderr == (
        "error: nsa watch needs a terminal (run from a script or a pipe here): type it in an interactive shell, or "
        "use `nsa status` (--json for scripts) or `nsa runs`\n"
    )
    res = invoke("launch", "--watch", "--name", "b")  # the CLI runner's stdin and stdout are no terminal
    assert res.exit_code == 1 and one_error(res).startswith(
        "error: --watch needs a terminal (run from a script or a pipe here): leave it out and open `nsa watch` from "
        "a terminal"
    ), res.stderr
    assert not (runs_dir / "b").exists()  # nothing started
