"""`nsa status`'s exit codes are a monitoring plugin's (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; 4 a bad rules file):
whatever keeps it from a verdict is 3, so a script gating on 2 hears of a crashed run and of nothing else. It exited 2
for a name two launched runs share and for every usage mistake, click's included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.runs import make_v1_run

from nsa_tui import launched

NSA = str(Path(sys.executable).parent / "nsa")
UNKNOWN = 3


def nsa(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NSA, *args], capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL, timeout=60)


def test_a_name_two_launched_runs_share_is_unknown_not_critical(tmp_path, monkeypatch):
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    for where, ts in (("a", 1.0), ("b", 2.0)):
        make_v1_run(tmp_path / where / "runs" / "fin", state="crashed")  # either one would be critical
        launched.record("fin", tmp_path / where / "runs" / "fin", ts)
    here = tmp_path / "elsewhere"
    here.mkdir()
    res = nsa("status", "fin", cwd=here)
    assert res.returncode == UNKNOWN and res.stdout == "", res.stderr
    assert res.stderr.startswith("error: no run directory 'fin' here, and nsa launch started 2 runs of that name")
    res = nsa("status", "--json", "fin", cwd=here)
    assert res.returncode == UNKNOWN, res.stderr
    line = json.loads(res.stdout)
    assert (line["run"], line["exit_code"]) == ("fin", UNKNOWN) and "2 runs of that name" in line["error"]
    # the runs themselves, named by their directories, are judged: critical, 2
    assert nsa("status", str(tmp_path / "a" / "runs" / "fin"), cwd=here).returncode == 2


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", "", "fin"], "error: invalid host ''"),
        (["--remote-dir", "x", "fin"], "error: --remote-dir needs --host"),
        (["--host", "gpu", "--remote-dir", " ", "fin"], "error: --remote-dir is empty"),
        (["--rules", "", "fin"], "error: --rules is empty"),
        (["--rules", "a.yaml", "--rules", "b.yaml", "fin"], "error: --rules given 2 times (a.yaml, b.yaml)"),
        (["--host", "gpu", ""], "error: RUN is empty"),
    ],
    ids=["empty-host", "remote-dir-without-host", "empty-remote-dir", "empty-rules", "rules-twice", "empty-run"],
)
def test_our_usage_mistakes_are_unknown_with_a_json_line(tmp_path, args, says):
    res = nsa("status", *args, cwd=tmp_path)
    assert res.returncode == UNKNOWN and res.stderr.startswith(says) and len(res.stderr.splitlines()) == 1, res.stderr
    res = nsa("status", "--json", *args, cwd=tmp_path)
    assert res.returncode == UNKNOWN, res.stderr
    line = json.loads(res.stdout)
    assert line["run"] is None and line["exit_code"] == UNKNOWN and f"error: {line['error']}".startswith(says)


@pytest.mark.parametrize("args", [["--bogus"], ["--host"], ["--json", "--bogus"], ["--bogus", "--", "--json"]])
def test_clicks_usage_errors_are_unknown_too(tmp_path, args):
    res = nsa("status", *args, cwd=tmp_path)
    assert res.returncode == UNKNOWN and "Traceback" not in res.stderr, res.stderr
    says = "'--host' requires an argument" if args == ["--host"] else "No such option: --bogus"
    assert says in res.stderr, res.stderr  # click's own message, as for every command
    if args[0] == "--json":  # a script reading stdout has a line to parse (not after `--`: a RUN named --json)
        line = json.loads(res.stdout)
        assert line["run"] is None and line["exit_code"] == UNKNOWN and "--bogus" in line["error"], res.stdout
    else:
        assert res.stdout == ""


@pytest.mark.parametrize("args", [["--host", "--json", "--bogus"], ["--host", "--json", "--host", "gpu", "r"]])
def test_a_json_that_is_an_options_value_asks_for_no_json_line(tmp_path, args):
    """`--host --json`: a host named --json (click takes the word after --host as its value, whatever it looks
    like), not --json given: the usage error (click's, or ours for --host given twice) printed a JSON line too."""
    res = nsa("status", *args, cwd=tmp_path)
    assert res.returncode == UNKNOWN and "Traceback" not in res.stderr, res.stderr
    assert ("No such option: --bogus" in res.stderr) if "--bogus" in args else ("--host given 2 times" in res.stderr)
    assert res.stdout == ""


def test_other_commands_keep_clicks_usage_exit(tmp_path):
    for cmd in ("runs", "report", "watch"):
        res = nsa(cmd, "--bogus", cwd=tmp_path)
        assert res.returncode == 2 and "--bogus" in res.stderr, (cmd, res.stderr)


def test_an_error_of_the_whole_command_says_run_null(tmp_path, monkeypatch):
    """docs/health.md: `"run"` is null for an error of the whole command; with no RUN it said `"(newest)"`."""
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    res = nsa("status", "--json", cwd=tmp_path)
    assert res.returncode == UNKNOWN, res.stderr
    line = json.loads(res.stdout)
    assert line["run"] is None and line["error"].startswith("no runs under ") and line["exit_code"] == UNKNOWN
    res = nsa("status", "--json", "", cwd=tmp_path)  # an empty RUN is one run named, and said as given
    assert res.returncode == UNKNOWN and json.loads(res.stdout)["run"] == "", res.stdout
