"""`nsa status` and `nsa runs` through Typer's CliRunner and the real executable."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.cli import one_error
from fixtures.runs import make_generic_run, make_v1_run, make_vibe_run
from typer.testing import CliRunner

from nsa_train.telemetry import schema
from nsa_tui.cli import app

REQUIRED = {
    "run", "format", "state", "step", "total_steps", "loss", "lr", "toks_per_s", "gpu_mem_gb",
    "gate_entropy_mean", "gate_collapse_frac", "last_heartbeat_age_s", "eta_s", "health", "alerts",
}  # fmt: skip
NSA = Path(sys.executable).parent / "nsa"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_json_has_every_key_and_exit_codes(runs_dir):
    make_v1_run(runs_dir / "ok", steps=200)
    make_v1_run(runs_dir / "warn", steps=1000, alerts=["data_stall"])
    make_v1_run(runs_dir / "crit", state="crashed")
    for name, code, health in (("ok", 0, "ok"), ("warn", 1, "warning"), ("crit", 2, "critical")):
        res = invoke("status", "--json", name)
        assert res.exit_code == code, res.output
        obj = json.loads(res.stdout)
        assert set(obj) >= REQUIRED and obj["health"] == health and obj["run"] == name
        assert all(set(a) == {"rule", "severity", "message", "since_step"} for a in obj["alerts"])
    res = invoke("status", "--json", "ok", "warn", "crit")
    assert res.exit_code == 2 and [json.loads(x)["run"] for x in res.stdout.splitlines()] == ["ok", "warn", "crit"]


def test_default_is_most_recent_run(runs_dir):
    make_v1_run(runs_dir / "old", steps=100)
    time.sleep(0.02)
    make_v1_run(runs_dir / "new", steps=100)
    os.utime(runs_dir / "old" / "heartbeat_rank0.jsonl", (1, 1))
    os.utime(runs_dir / "old" / "run.json", (1, 1))
    os.utime(runs_dir / "old" / "training.csv", (1, 1))
    res = invoke("status", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["run"] == "new"


def test_no_telemetry_and_missing_run(runs_dir, tmp_path):
    (runs_dir / "empty").mkdir()
    res = invoke("status", "--json", "empty")
    assert res.exit_code == 3 and res.stderr.startswith("error: no telemetry in")
    assert json.loads(res.stdout)["error"].startswith("no telemetry")
    res = invoke("status", "nope")
    assert res.exit_code == 3 and res.stderr.count("\n") == 1 and "no run directory 'nope'" in res.stderr
    absent = str(tmp_path / "gone")
    res = invoke("status", absent)  # an absolute path is the only place looked at: named once, not twice
    assert res.exit_code == 3 and res.stderr == f"error: no run directory {absent!r}\n"
    res = CliRunner().invoke(app, ["status"], env={"NSA_RUNS_DIR": str(tmp_path / "none")})
    assert res.exit_code == 3 and "no runs under" in res.stderr


def test_bad_rules_file_is_one_line_exit_4(runs_dir, tmp_path):
    make_v1_run(runs_dir / "r", steps=100)
    bad = tmp_path / "rules.yaml"
    bad.write_text("gate_collapse: {entropy_minimum: 0.3}\n")
    res = invoke("status", "--rules", str(bad), "r")
    assert res.exit_code == 4 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "unknown setting 'entropy_minimum'" in res.stderr
    res = invoke("status", "--rules", str(tmp_path / "missing.yaml"), "r")
    assert res.exit_code == 4 and "cannot read rules file" in res.stderr


def test_bad_monitor_section_is_exit_4(runs_dir):
    make_v1_run(runs_dir / "r", steps=100, monitor={"rules": {"grad_spike": {"factor": "big"}}})
    res = invoke("status", "r")
    assert res.exit_code == 4 and "config monitor.rules.grad_spike.factor: expected a number" in res.stderr


def test_one_runs_bad_monitor_section_is_that_runs_error_only(runs_dir):
    """A run whose config.yaml has an unusable monitor section (a trainer started by hand, an edited config) used
    to take `nsa runs` and a multi-run `nsa status` down with it (one error line, no table), and `nsa report` down
    with a traceback. Now it is that run's row and error line (exit 4), and the other runs are judged."""
    make_v1_run(runs_dir / "good", steps=200)
    make_v1_run(runs_dir / "bad", steps=100, monitor={"rules": {"loss_spike": {"severity": "warning"}}})
    res = invoke("runs", str(runs_dir))
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line for line in res.stdout.splitlines()[1:] if line.strip() and line[0] != " "}
    assert "running" in rows["good"] or "finished" in rows["good"], res.stdout
    assert "bad rules" in rows["bad"] and "unknown rule 'los" in rows["bad"]  # one line, cut at 80 columns
    res = invoke("status", "good", "bad")
    assert res.exit_code == 4 and "health OK" in res.stdout
    assert res.stderr.count("\n") == 1 and "unknown rule 'loss_spike'" in res.stderr and "run.json" in res.stderr
    lines = [json.loads(x) for x in invoke("status", "--json", "good", "bad").stdout.splitlines()]
    assert lines[0]["health"] == "ok" and lines[1]["exit_code"] == 4 and "loss_spike" in lines[1]["error"]
    res = invoke("report", "bad")
    assert res.exit_code == 4, res.output
    assert isinstance(res.exception, SystemExit) and "unknown rule 'loss_spike'" in res.stderr  # not a crash


def test_human_output(runs_dir):
    make_v1_run(runs_dir / "c", state="crashed")
    make_vibe_run(runs_dir / "v")
    make_generic_run(runs_dir / "g")
    res = invoke("status", "c", "v", "g")
    assert res.exit_code == 2
    out = res.stdout
    assert "crashed" in out and "CRITICAL" in out and "process_exited" in out and "OutOfMemoryError" in out
    assert "(nsa-vibe)" in out and "(generic)" in out and "step 300/1200 (25%)" in out
    assert out.count("attention reference") == 1  # run.json's path, for the v1 run only (the others have none)
    assert json.loads(invoke("status", "--json", "c").stdout)["attention_impl"] == "reference"


def test_cpu_run_shows_host_rss_instead_of_gpu_memory(runs_dir):
    w = make_v1_run(runs_dir / "cpu", steps=0)
    w.progress(20, gpu_mem_alloc_gb=None, gpu_mem_reserved_gb=None, rss_gb=0.71)
    make_v1_run(runs_dir / "gpu", steps=200)
    res = invoke("status", "cpu", "gpu")
    assert res.exit_code == 0, res.output
    cpu, gpu = (line for line in res.stdout.splitlines() if line.lstrip().startswith("step "))
    assert cpu.endswith("tok/s  RSS 0.71 GiB") and gpu.endswith("tok/s  GPU 21.0 GiB")
    obj = json.loads(invoke("status", "--json", "cpu").stdout)
    assert obj["gpu_mem_gb"] is None and obj["rss_gb"] == 0.71


def test_before_the_first_progress_record_no_kind_of_memory_is_claimed(runs_dir):
    """Seen on a CPU run that failed while opening its data: "GPU - GiB". Neither number is known yet."""
    make_v1_run(runs_dir / "new", state="starting")
    line = next(x for x in invoke("status", "new").stdout.splitlines() if x.lstrip().startswith("step "))
    assert line.endswith("tok/s  memory -"), line


def test_runs_table_and_json(runs_dir):
    """A directory beside the runs that holds no run (a data folder, an empty one) was listed as `no telemetry`:
    left out now, counted in one line; a run just launched (no telemetry yet) is still listed."""
    make_v1_run(runs_dir / "alpha", steps=100)
    make_v1_run(runs_dir / "beta", state="halted")
    (runs_dir / "gamma").mkdir()
    (runs_dir / "data").mkdir()
    (runs_dir / "data" / "corpus.txt").write_text("text\n")
    (runs_dir / "delta").mkdir()  # launched a moment ago: launch.json, console.log, no heartbeat yet
    (runs_dir / "delta" / schema.LAUNCH_JSON).write_text("{}\n")
    (runs_dir / "delta" / schema.CONSOLE_LOG).write_text("")
    res = invoke("runs")
    assert res.exit_code == 0
    for word in ("alpha", "beta", "delta", "running", "halted", "100/1000"):
        assert word in res.stdout
    rows = [line.split()[0] for line in res.stdout.splitlines()[1:-1]]
    assert sorted(rows) == ["alpha", "beta", "delta"], res.stdout
    assert res.stdout.splitlines()[-1] == "2 directories that hold no run left out: data, gamma", res.stdout
    res = invoke("runs", "--json", str(runs_dir))
    objs = {o["run"]: o for o in map(json.loads, res.stdout.splitlines())}
    assert objs["alpha"]["health"] == "ok" and objs["beta"]["state"] == "halted"
    assert set(objs) == {"alpha", "beta", "delta"}
    for d in ("alpha", "beta", "delta"):
        shutil.rmtree(runs_dir / d)
    res = invoke("runs")
    assert res.exit_code == 0 and res.stdout.strip() == (
        "no runs under the runs root (2 directories that hold no run left out: data, gamma)"
    )
    res = invoke("runs", str(runs_dir / "nothing"))
    assert res.exit_code == 3 and "no runs directory" in res.stderr
    (runs_dir / "afile").write_text("x")  # said to be no runs directory, as if missing
    res = invoke("runs", str(runs_dir / "afile"))
    assert res.exit_code == 3 and f"{runs_dir / 'afile'} is a file, not a runs directory" in res.stderr, res.stderr


def test_a_nan_loss_reads_the_same_in_runs_and_status(runs_dir):
    """`nsa runs` showed `-` for the loss `nsa status` shows as nan/inf."""
    make_v1_run(runs_dir / "diverged", state="nan")
    [row] = [line for line in invoke("runs").stdout.splitlines() if line.startswith("diverged")]
    assert row.split()[3] == "nan/inf", row
    assert "loss nan/inf" in invoke("status", "diverged").stdout


@pytest.mark.parametrize("columns", [60, 80, 200])
def test_runs_table_never_cuts_names_or_numbers(runs_dir, monkeypatch, columns):
    """Default names differ only in their tail; in a narrow terminal only the state and the alerts may wrap
    (tests/status/test_runs_width.py: a long state, a pipe, a real terminal)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    names = ("tiny-cpu-20261203-085745", "tiny-cpu-20261203-091502")
    make_v1_run(runs_dir / names[0], steps=100)
    make_v1_run(runs_dir / names[1], steps=1000, alerts=["data_stall", "gate_collapse"])
    res = invoke("runs")
    assert res.exit_code == 0, res.output
    assert "…" not in res.stdout
    for word in (*names, "running", "100/1000", "1000/4000", "data_stall", "gate_collapse"):
        assert word in res.stdout


def test_status_imports_neither_torch_nor_textual(tmp_path):
    make_v1_run(tmp_path / "r", steps=100)
    code = (
        "import sys\n"
        "from nsa_tui.commands.status import run_status\n"
        f"rc = run_status([{str(tmp_path / 'r')!r}], host=None, as_json=True, rules_path=None)\n"
        "bad = [m for m in ('torch', 'textual', 'numpy', 'pandas') if m in sys.modules]\n"
        "assert rc == 0 and not bad, (rc, bad)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nsa_tui", "status", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines()}
    assert not {"torch", "textual", "numpy"} & imported


def test_real_executable_end_to_end(tmp_path):
    make_v1_run(tmp_path / "r", steps=1000, alerts=["gate_collapse_severe"])
    t0 = time.perf_counter()
    p = subprocess.run([str(NSA), "status", "--json", str(tmp_path / "r")], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    assert p.returncode == 2, p.stderr
    obj = json.loads(p.stdout)
    assert obj["alerts"][0]["rule"] == "gate_collapse" and obj["alerts"][0]["severity"] == "critical"
    assert elapsed < 3.0  # generous on a shared CI core; bench/status_speed.py measures properly


@pytest.mark.parametrize("args", [["status", "--help"], ["runs", "--help"]])
def test_help(args):
    res = invoke(*args)
    assert res.exit_code == 0 and "--json" in res.stdout and "--host" in res.stdout


def test_the_current_attempts_start_warnings_are_shown_once(runs_dir):
    """What the trainer warned about as this attempt started (config traps, a resume that moves the lr) is in
    the verdict and on screen, without changing the health; an earlier attempt's warnings are not."""
    w = make_v1_run(runs_dir / "r", steps=200)
    w.phase("train", warnings=["removed a stale .HALT left in the run directory"])  # the first attempt's
    w.end("halt", 0)
    w.ts += 5.0
    w.boot()  # the resume
    w.phase("config", done=True, warnings=["bf16 on CPU is about 3x slower than fp32 here"])
    w.phase("train", warnings=["the lr schedule changes with this resume (train.steps 600 -> 800)"])
    w.phase("train", warnings=["the lr schedule changes with this resume (train.steps 600 -> 800)"])  # said twice
    (runs_dir / "r" / "exit_status").unlink()
    w.progress(1)
    res = invoke("status", "--json", "r")
    obj = json.loads(res.stdout)
    assert obj["start_warnings"] == [
        "bf16 on CPU is about 3x slower than fp32 here",
        "the lr schedule changes with this resume (train.steps 600 -> 800)",
    ]
    assert res.exit_code == 0 and obj["health"] == "ok" and obj["state"] == "running"
    res = invoke("status", "r")
    assert "  at start bf16 on CPU is about 3x slower than fp32 here\n" in res.stdout
    assert "stale .HALT" not in res.stdout


def test_a_long_runs_start_warnings_come_from_run_json_when_its_phase_records_left_the_tail(runs_dir):
    """The `at start` lines vanished once a run grew: its phase records were no longer in the heartbeat tail status
    reads (docs/health.md, Speed). run.json keeps them; the records, while in view, still say them."""
    w = make_v1_run(runs_dir / "r", steps=20, log_every=10)
    said = ["resharded from 2 ranks to 1: 3 documents (153 tokens) read before the checkpoint are read again"]
    w.phase("train", warnings=said)
    info = json.loads((runs_dir / "r" / "run.json").read_text())
    (runs_dir / "r" / "run.json").write_text(json.dumps({**info, "start_warnings": said}))
    assert json.loads(invoke("status", "--json", "r").stdout)["start_warnings"] == said
    w.progress(1200)  # ~700 KB of progress records after them
    heartbeat = (runs_dir / "r" / "heartbeat_rank0.jsonl").read_text()
    boots = [line for line in heartbeat.splitlines() if json.loads(line)["kind"] == "boot"]
    assert len(heartbeat.encode()) > 600_000 and len(boots) == 1 and heartbeat.startswith(boots[0])
    obj = json.loads(invoke("status", "--json", "r").stdout)
    assert obj["step"] == 20 + 1200 * 10 and obj["start_warnings"] == said
    assert "  at start resharded from 2 ranks to 1" in invoke("status", "r").stdout


def _summary(path: Path, steps: int, mean: float) -> None:
    (path / "summary.json").write_text(json.dumps({"v": 1, "steps_completed": steps, "mean_toks_per_s": mean}))


def test_an_ended_run_shows_its_mean_throughput_not_its_last_window(runs_dir):
    """A finished run showed its last 10 steps' tok/s (slowed by a test suite on the same cores) as if it were
    the run's; its summary.json has the mean over the whole attempt."""
    w = make_v1_run(runs_dir / "done", steps=400, state="finished")
    _summary(runs_dir / "done", w.step, 5346.6)
    make_v1_run(runs_dir / "live", steps=200)
    _summary(runs_dir / "live", 100, 1.0)  # an earlier attempt's: the run is running again
    w = make_v1_run(runs_dir / "old", steps=300, state="crashed")
    _summary(runs_dir / "old", 200, 2.0)  # not where this attempt ended
    lines = {
        run: next(x for x in invoke("status", run).stdout.splitlines() if x.lstrip().startswith("step "))
        for run in ("done", "live", "old")
    }
    assert "  5,347 tok/s mean  " in lines["done"]
    assert " tok/s mean" not in lines["live"] and " tok/s mean" not in lines["old"]
    objs = {o["run"]: o for o in map(json.loads, invoke("runs", "--json").stdout.splitlines())}
    assert objs["done"]["mean_toks_per_s"] == 5346.6 and objs["done"]["toks_per_s"] > 0
    assert objs["live"]["mean_toks_per_s"] is None and objs["old"]["mean_toks_per_s"] is None
    table = invoke("runs").stdout
    assert "5,347 mean" in table and table.count(" mean") == 1


def test_runs_pointed_at_a_run_directory_says_so(runs_dir):
    make_v1_run(runs_dir / "one", steps=100)
    (runs_dir / "one" / "checkpoints").mkdir()
    res = invoke("runs", str(runs_dir / "one"))
    assert res.exit_code == 3
    assert res.stderr.strip() == (
        f"error: {runs_dir / 'one'} is a run directory, not a directory of runs: `nsa status {runs_dir / 'one'}`, "
        f"or `nsa runs {runs_dir}`"
    )


def test_a_bad_monitor_section_names_the_file_it_was_read_from(runs_dir):
    """The tools read the config in run.json and config.yaml only when run.json has none (a run before its model
    is built): the error said "(its config.yaml)" either way, sending the user to the wrong file."""
    bad = {"rules": {"loss_spike": {"severity": "warning"}}}
    make_v1_run(runs_dir / "json", steps=100, monitor=bad)
    early = runs_dir / "yaml"
    make_v1_run(early, steps=100, monitor=bad)
    info = json.loads((early / "run.json").read_text())
    (early / "config.yaml").write_text(json.dumps(info.pop("config")))  # JSON is YAML
    (early / "run.json").write_text(json.dumps(info))
    for run, read in (("json", "run.json"), ("yaml", "config.yaml")):
        res = invoke("status", run)
        assert res.exit_code == 4 and one_error(res).endswith(f"unknown rule 'loss_spike' (built-in: {BUILT_IN}) "
                                                              f"(in its {read})"), res.stderr  # fmt: skip
    res = invoke("report", "json")  # the report is written, judged with the default rules: it says so
    said = "(in its run.json); the report judges it with the default rules"
    assert res.exit_code == 4 and one_error(res).endswith(said)


BUILT_IN = (
    "nan_loss, loss_increase, loss_plateau, throughput_low, throughput_drop, memory_high, heartbeat_stale, "
    "watchdog_stall, stuck_at_start, gate_collapse, fallbacks_rising, data_stall, lr_mismatch, grad_spike, "
    "val_rising, val_suspicious, disk_low, process_exited, launcher_exit, launcher_gone, rank_stopped, run_dir_gone, "
    "clock_skew; a new rule needs `metric`"
)


def test_runs_bad_rules_hint_is_a_command_that_works_outside_the_runs_root(runs_dir, tmp_path, monkeypatch):
    """`nsa runs DIR` said "`nsa status bad` says why" for a run in DIR, not under the runs root, where that
    command finds no run. It names the run's path now."""
    monkeypatch.setenv("COLUMNS", "300")
    elsewhere = tmp_path / "elsewhere"
    make_v1_run(elsewhere / "bad", steps=100, monitor={"rules": {"loss_spike": {"severity": "warning"}}})
    res = invoke("runs", str(elsewhere))
    assert res.exit_code == 0, res.output
    [hint] = re.findall(r"`(nsa status [^`]*)` says why", res.stdout)
    assert hint == f"nsa status {elsewhere / 'bad'}"
    res = invoke(*shlex.split(hint)[1:])
    assert res.exit_code == 4 and "unknown rule 'loss_spike'" in one_error(res)


def test_a_missing_run_does_not_cost_the_others_their_verdicts(runs_dir):
    """`nsa status t1 nope` printed only nope's error, t1 got no verdict (with --host both were judged): now a
    verdict for each run found, one error line for each missing one, and the exit code the worst (missing: 3)."""
    make_v1_run(runs_dir / "t1", steps=200)
    make_v1_run(runs_dir / "warn", steps=1000, alerts=["data_stall"])
    res = invoke("status", "t1", "nope")
    assert res.exit_code == 3 and "health OK" in res.stdout
    assert one_error(res).startswith("error: no run directory 'nope'")
    res = invoke("status", "nope", "warn", "gone")
    assert res.exit_code == 3 and "health WARNING" in res.stdout and "nope" not in res.stdout
    assert [line.split("'")[1] for line in res.stderr.splitlines()] == ["nope", "gone"]
    res = invoke("status", "--json", "t1", "nope")
    assert res.exit_code == 3
    ok, missing = (json.loads(line) for line in res.stdout.splitlines())
    assert ok["health"] == "ok" and missing["run"] == "nope" and missing["exit_code"] == 3


def test_a_crashed_run_outranks_a_missing_or_misconfigured_one(runs_dir):
    """The exit code of several runs was the largest number: a crashed run (2) named beside a missing one (3) or one
    with a bad monitor section (4) exited 3 or 4, and a script gating on 2 never heard of the crash."""
    make_v1_run(runs_dir / "crit", state="crashed")
    make_v1_run(runs_dir / "warn", steps=1000, alerts=["data_stall"])
    make_v1_run(runs_dir / "bad", steps=100, monitor={"rules": {"loss_spike": {"severity": "warning"}}})
    assert invoke("status", "nope", "crit").exit_code == 2
    assert invoke("status", "--json", "crit", "bad", "nope").exit_code == 2
    assert invoke("status", "warn", "nope").exit_code == 3  # an unknown answer still outranks a warning
    assert invoke("status", "nope", "bad", "warn").exit_code == 4


def test_a_runs_error_is_printed_once(runs_dir):
    """Human `nsa status` printed a run's error on stdout and again on stderr: one line, on stderr."""
    (runs_dir / "empty").mkdir()
    make_v1_run(runs_dir / "bad", steps=100, monitor={"rules": {"loss_spike": {"severity": "warning"}}})
    for run in ("empty", "bad"):
        res = invoke("status", run)
        assert res.exit_code in (3, 4) and res.stdout == "", res.stdout
        one_error(res)


def test_the_runs_root_given_as_a_run_points_to_nsa_runs(runs_dir, tmp_path, monkeypatch):
    """`nsa status runs` said only "no telemetry in runs": a directory of runs gets a hint to list it."""
    make_v1_run(runs_dir / "a", steps=100)
    res = invoke("status", str(runs_dir))
    assert res.exit_code == 3 and one_error(res).endswith("; it holds run directories: `nsa runs` lists them")
    make_v1_run(tmp_path / "other runs" / "b", steps=100)
    res = invoke("status", str(tmp_path / "other runs"))
    assert one_error(res).endswith(f"`nsa runs '{tmp_path / 'other runs'}'` lists them")
    (runs_dir / "empty").mkdir()  # no run directories in it: no hint
    res = invoke("status", "empty")
    assert res.exit_code == 3 and "nsa runs" not in one_error(res)


def test_a_run_given_as_dot_is_named_by_its_directory(tmp_path, monkeypatch):
    """`nsa status .` inside a run named the run '.'."""
    from fixtures.runs import make_v1_run

    make_v1_run(tmp_path / "myrun", steps=100)
    monkeypatch.chdir(tmp_path / "myrun")
    assert json.loads(invoke("status", "--json", ".").stdout)["run"] == "myrun"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (59.9, "59s"), (119, "119s"), (599, "9m59s"), (600, "10m00s"), (3599, "59m59s"), (3600, "1h00m")],
)
def test_durations_keep_their_seconds_below_an_hour(seconds, text):
    """A heartbeat 9m59s old is a second from heartbeat_stale's 600 s: `9m` hid how close."""
    from nsa_tui.commands.status import fmt_duration

    assert fmt_duration(seconds) == text


def test_a_json_caller_gets_a_line_for_a_whole_command_error(runs_dir, tmp_path):
    """`status --json --rules bad.yaml` and `runs --json /nope` printed nothing on stdout: a script parsing it had
    nothing to parse (a missing run had its `{"run", "error", "exit_code"}` line already)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("heartbeat_stale: {nope: 1}\n")
    for args, code in ((["status", "--json", "--rules", str(bad)], 4), (["runs", "--json", str(tmp_path / "nope")], 3)):
        res = subprocess.run([sys.executable, "-m", "nsa_tui", *args], capture_output=True, text=True, timeout=60)
        assert res.returncode == code, res.stderr
        obj = json.loads(res.stdout)
        assert obj["run"] is None and obj["exit_code"] == code and res.stderr == f"error: {obj['error']}\n"


def test_an_age_that_is_not_a_number_is_a_dash():
    """A remote answer's NaN (Python's json reads it) made int() raise in the table."""
    from nsa_tui.commands.status import fmt_duration

    assert [fmt_duration(x) for x in (float("nan"), float("inf"), None, 130.0)] == ["-", "-", "-", "2m10s"]


def test_a_run_name_is_the_run_not_a_folder_of_that_name_here(runs_dir, tmp_path, monkeypatch):
    """`nsa status rep` next to a data folder `rep` judged the folder ("unknown, health OK", exit 0) while the run
    runs/rep trained on; a folder here that holds a run is still taken first (the documented order)."""
    make_v1_run(runs_dir / "rep", state="crashed")
    here = tmp_path / "cwd"
    (here / "rep").mkdir(parents=True)
    (here / "rep" / "notes.jsonl").write_text('{"a": 1}\n')
    monkeypatch.chdir(here)
    res = invoke("status", "--json", "rep")
    assert res.exit_code == 2 and json.loads(res.stdout)["path"] == str(runs_dir / "rep")
    make_v1_run(here / "rep", steps=100)
    res = invoke("status", "--json", "rep")
    assert res.exit_code == 0 and json.loads(res.stdout)["path"] == "rep"


def test_the_lr_says_when_it_is_still_warming_up(runs_dir):
    """Seed reports took warmup's tiny lr for a bug ("lr 6.00e-05" at step 30 of a 3e-3 run): status says where the
    lr is in the schedule, as the dashboard does."""
    w = make_v1_run(runs_dir / "early", steps=20)
    warmup = w.config["train"]["warmup_steps"]
    assert warmup >= 20
    res = invoke("status", "--json", "early")
    assert json.loads(res.stdout)["lr_phase"] == "warmup"
    assert re.search(r"lr \S+ \(warmup\)", invoke("status", "early").stdout)
    make_v1_run(runs_dir / "later", steps=warmup + 100)
    assert json.loads(invoke("status", "--json", "later").stdout)["lr_phase"] == "cosine"
    assert "(warmup)" not in invoke("status", "later").stdout
    make_v1_run(runs_dir / "booting", state="starting")  # no lr yet: nothing to mark
    assert "lr -  " in invoke("status", "booting").stdout and "(warmup)" not in invoke("status", "booting").stdout


def test_status_gives_mfu_and_the_model_size_when_the_gpu_is_known(runs_dir):
    """MFU after the tokens/s (a bare tokens/s said nothing to the seed report that accepted 38 of them), the
    parameter count after the attention path; no MFU for a run whose run.json has no peak (a CPU, an unknown
    card: the fixture's default)."""
    gpu = {"param_count": 142_000_000, "flops_per_token": 8.5e8, "peak_flops": 312e12, "device_name": "NVIDIA A100"}
    make_v1_run(runs_dir / "gpu", steps=100, run_info=gpu)
    out = invoke("status", "gpu").stdout
    v = json.loads(invoke("status", "--json", "gpu").stdout)
    mfu = v["toks_per_s"] * 8.5e8 / 312e12
    assert v["mfu"] == pytest.approx(mfu) and v["param_count"] == 142_000_000
    assert f"{v['toks_per_s']:,.0f} tok/s (MFU {mfu * 100:.1f}%)" in out, out
    assert "attention reference   142M params" in out, out
    make_v1_run(runs_dir / "cpu", steps=100)
    out = invoke("status", "cpu").stdout
    assert "(MFU" not in out and "attention reference   1.00M params" in out, out
    assert json.loads(invoke("status", "--json", "cpu").stdout)["mfu"] is None


def test_status_and_report_say_what_the_run_trains_on(runs_dir, tmp_path):
    """run.json's data_summary: the source and how much data (a 10-document corpus trained 93 times over said
    nothing); a run.json from before it shows no data line."""
    data = dict.fromkeys(schema.DATA_SUMMARY_FIELDS)
    data.update(source="local", path="/d/notes", description="local files /d/notes", files=2)
    data.update(train_documents=8, val_documents=2, train_bytes=12_310, train_tokens=12_318)
    data.update(planned_tokens=1_228_800, epochs=99.75)
    make_v1_run(runs_dir / "small", steps=10, run_info={schema.RUN_DATA_SUMMARY: data})
    said = "local files /d/notes: 2 files, 8 training documents (2 held out), 12,310 bytes = 12,318 tokens, "
    said += "99.75 epochs planned"
    assert f"  data {said}" in invoke("status", "small").stdout
    assert json.loads(invoke("status", "--json", "small").stdout)["data"] == data
    out = tmp_path / "report"
    assert invoke("report", "small", "--out", str(out)).exit_code == 0
    assert f"## Data\n\n- **small**: {said}\n" in (out / "report.md").read_text()
    make_v1_run(runs_dir / "older", steps=10)
    assert "  data " not in invoke("status", "older").stdout
    assert json.loads(invoke("status", "--json", "older").stdout)["data"] is None


EMPTY_PATHS = [(["report", "--out", ""], "--out"), (["status", "--rules", " "], "--rules")]


@pytest.mark.parametrize(("args", "flag"), EMPTY_PATHS)
def test_an_empty_path_option_is_a_usage_error(runs_dir, args, flag):
    """`--out "$DIR"` with DIR unset wrote the report into the working directory; `--rules ''` read '.'."""
    make_v1_run(runs_dir / "r", steps=100)
    res = invoke(*args, "r")
    usage_exit = 3 if args[0] == "status" else 2  # `nsa status`: no verdict (its 2 is a critical run)
    assert res.exit_code == usage_exit and f"{flag} is empty: give a path" in res.output, res.output
    assert not (runs_dir.parent / "report.md").exists()


def test_sample_refuses_an_infinite_temperature():
    res = invoke("sample", "-t", "inf")
    assert res.exit_code == 2 and "--temperature" in res.output, res.output
