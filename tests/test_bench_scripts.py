"""Bench scripts started by an interpreter without the project's packages say so in one line (no traceback)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
NEEDS_PROJECT = [
    "attention",
    "attention_phases",
    "attention_triton",
    "corpus_entropy",
    "file_checks",
    "layer_profile",
    "remote_tail_cost",
    "selection_ab",
    "selection_short",
    "start_cost",
    "train_throughput",
    "triton_vs_fast",
    "watch_fixture",
    "watch_live",
]


def bench(script: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run bench/<script> with this interpreter (the project's venv), capturing its text output."""
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", NEEDS_PROJECT)
def test_wrong_interpreter_is_one_clear_line(name):
    # -S: no site-packages, so neither torch nor the project is importable (like a system python)
    res = subprocess.run(
        [sys.executable, "-S", str(BENCH / f"{name}.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "project's venv" in lines[0], res.stderr


def test_attention_phases_reports_every_branch_of_the_nsa_layer():
    # 800 tokens: 8 heads x 800^2 scores are past the masked selection's bound, so selection is a phase
    res = bench("attention_phases.py", "--seq-len", "800", "--timed-passes", "2")
    assert res.returncode == 0, res.stderr
    memory, _, times = res.stdout.partition("wall seconds per phase")
    branches = {"fwd.other", "bwd.other", "cmp.fwd", "cmp.bwd", "sel.fwd", "sel.bwd", "win.fwd", "win.bwd"}
    peaks = {line.split()[0]: float(line.split()[1]) for line in memory.splitlines() if line.startswith("  ")}
    assert branches <= set(peaks) and all(mb > 0 for mb in peaks.values())
    seconds = {line.split()[0]: float(line.split()[1]) for line in times.splitlines() if line.startswith("  ")}
    assert set(seconds) == branches | {"total"}
    # every branch was timed, "other" is what is left of each direction, and nothing is negative
    assert all(seconds[b] > 0 for b in branches - {"fwd.other", "bwd.other"})
    assert min(seconds.values()) >= 0 and sum(v for k, v in seconds.items() if k != "total") == pytest.approx(
        seconds["total"], abs=0.01
    )
    assert "masked SDPA" not in res.stdout


def test_file_checks_measures_each_check_it_names(tmp_path):
    # 0.01 GiB: less than its 64 MiB write chunk (the file was left empty); --dir not there yet: made
    res = bench("file_checks.py", "--gib", "0.01", "--repeat", "1", "--dir", str(tmp_path / "new"), timeout=300)
    assert res.returncode == 0, res.stderr
    assert "content sample of a 0.01 GiB file" in res.stdout and "blake2b of the whole 0.01 GiB file" in res.stdout
    rows = [line.split("|")[1:3] for line in res.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    costs = {what.strip(): cost.strip() for what, cost in rows[1:]}  # after the header row
    assert len(costs) == 7, res.stdout
    units = sorted(cost.split(" ", 1)[1] for cost in costs.values())
    assert units == ["MiB", "MiB", "ms", "ms", "s", "s", "s per GiB"], units
    assert all(float(cost.split()[0]) >= 0 for cost in costs.values())
    assert "(783 documents, fresh process)" in res.stdout
    assert list((tmp_path / "new").iterdir()) == []  # its files are removed


def test_attention_phases_says_where_a_masked_selection_went():
    res = bench("attention_phases.py", "--seq-len", "300", "--timed-passes", "0")
    assert res.returncode == 0, res.stderr
    assert "sel.fwd" not in res.stdout
    assert "the selection branch is one masked SDPA call" in res.stdout


def test_selection_ab_compares_a_revision_with_the_working_tree():
    res = bench("selection_ab.py", "--ref", "HEAD", "--seq-len", "256", "--rounds", "1", "--check")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    # the file at HEAD against itself: the same numbers to the bit
    assert "T=256 largest |new - old|: output 0.0, dq 0.0, dk 0.0, dv 0.0, dgate 0.0" in lines, res.stdout
    timed = [ln for ln in lines if ln.startswith(("T=256 fwd ", "T=256 fwd+bwd "))]
    assert len(timed) == 2 and all("(new/old " in ln for ln in timed), res.stdout
    bad = bench("selection_ab.py", "--ref", "no-such-revision", "--seq-len", "64")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert bad.stderr.startswith("error: cannot read nsa_train/nsa/fast_selection.py at no-such-revision"), bad.stderr


def test_layer_profile_smoke_run_on_cpu():
    args = shlex.split("--device cpu --seq-lens 300 --warmup 0 --reps 1 --top 3 --sweep-cmp-tile 64")
    res = bench("layer_profile.py", *args, "--sweep-window-group", "128")
    assert res.returncode == 0, res.stderr
    assert "## B=1 T=300: forward+backward" in res.stdout and "top 3 by host time" in res.stdout
    rows = [line.split("|")[1:3] for line in res.stdout.splitlines() if line.startswith("| ") and "ms" not in line]
    assert [[c.strip() for c in r] for r in rows] == [["256 (default)", "2048 (default)"], ["64", "128"]]
    assert res.stdout.strip().endswith("fallbacks during the run: none")  # impl auto on CPU: the fast path by design


def test_attention_phases_lists_what_backward_keeps():
    res = bench("attention_phases.py", "--seq-len", "600", "--saved")
    assert res.returncode == 0, res.stderr
    rows = [line for line in res.stdout.splitlines() if line.startswith("  ")]
    *kept, total = rows
    assert total.endswith("total without parameters and input")
    kinds = [next((k for k in ("input", "parameter") if f" {k} " in row), "") for row in kept]
    assert kinds.count("input") == 1 and "parameter" in kinds  # x and the weights, saved by the projections
    # the total is the listed rows without parameters and input (rows under 0.05 MiB are not listed)
    ours = [float(row.split()[0]) for row, kind in zip(kept, kinds, strict=True) if not kind]
    listed = sum(ours)
    assert float(total.split()[0]) == pytest.approx(listed, abs=0.5) and listed > 0
    assert any("fast" in row for row in kept)  # the branch ops' own saves are attributed to them


def test_attention_phases_recompute_backward_keeps_less():
    """--recompute-backward takes the window and compressed branches off the CPU flash backward: they keep
    no output (at T=600: two [1, 600, 8, 64] fp32 outputs, 2.3 MiB) and the kept total drops by that."""

    def kept_total(*flags: str) -> float:
        res = bench("attention_phases.py", "--seq-len", "600", "--saved", *flags)
        assert res.returncode == 0, res.stderr
        return float(res.stdout.strip().splitlines()[-1].split()[0])

    outputs_mb = 2 * 600 * 8 * 64 * 4 / 2**20
    assert kept_total() - kept_total("--recompute-backward") == pytest.approx(outputs_mb, abs=0.15)


def test_train_throughput_reports_the_fallbacks_of_a_kernel_path_that_cannot_run():
    """nsa.impl=triton where no kernel can run (CPU, no interpreter): the row says the fast path ran and how
    many kernel calls it stood in for, rather than passing the numbers off as the kernels'."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    res = subprocess.run(
        [sys.executable, str(BENCH / "train_throughput.py"), "--steps", "1", "--warmup", "0", "--nsa-impls", "triton"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = {
        cells[0]: cells[1:]
        for line in res.stdout.splitlines()
        if line.startswith("| nsa ") or line.startswith("| dense ")
        for cells in [[c.strip() for c in line.split("|")[1:-1]]]
    }
    assert rows["nsa"][:3] == ["triton", "fast", "no"] and int(rows["nsa"][3]) > 0, rows
    assert rows["dense"][:4] == ["-", "dense-sdpa", "no", "0"], rows


def _table_rows(stdout: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("|")[1:-1]] for line in stdout.splitlines() if line.startswith("| nsa ")
            or line.startswith("| dense ")]  # fmt: skip


@pytest.mark.slow
def test_train_throughput_compares_eager_and_compiled_rows():
    """--compare-compile: every row twice, the second compiled the way train.compile compiles the model."""
    res = subprocess.run(
        [sys.executable, str(BENCH / "train_throughput.py"), "--steps", "1", "--warmup", "1", "--compare-compile",
         "--nsa-impls", "fast", "--set", "model.n_layers=1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = _table_rows(res.stdout)
    assert [(r[0], r[3]) for r in rows] == [("nsa", "no"), ("nsa", "yes"), ("dense", "no"), ("dense", "yes")]
    assert all(float(r[5].replace(",", "")) > 0 for r in rows)


def test_train_throughput_compare_compile_refuses_a_compiled_config():
    res = subprocess.run(
        [sys.executable, str(BENCH / "train_throughput.py"), "--compare-compile", "--set", "train.compile=true"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "drop --set train.compile=true" in res.stderr.strip().splitlines()[-1]


# each one fails while its arguments are parsed: one usage line and one error line, nothing run, no traceback
BAD_NUMBERS = [
    ("train_throughput.py", "--steps 0", "argument --steps: must be at least 1, not 0"),
    ("attention_phases.py", "--timed-passes -1", "argument --timed-passes: must be 0 or more, not -1"),
    ("status_speed.py", "--repeat 0", "argument --repeat: must be at least 1, not 0"),
    ("report_speed.py", "--lines 100 0", "argument --lines: must be at least 1, not 0"),
    ("watch_load.py", "--n 0", "argument --n: must be at least 1, not 0"),
    ("watch_live.py", "--rate 0", "argument --rate: must be a finite number above 0, not 0"),
    ("watch_live.py", "--seconds inf", "argument --seconds: must be a finite number above 0, not inf"),
    ("file_checks.py", "--gib 0", "argument --gib: must be a finite number above 0, not 0"),
    ("attention.py", "--time-limit-s nan", "argument --time-limit-s: must be above 0, not nan"),
    ("remote_tail_cost.py", "--rounds 0", "argument --rounds: must be at least 1, not 0"),
    ("remote_tail_cost.py", "--tools auto,sta", "--tools: sta is not one of auto, stat, perl, ls"),
]


@pytest.mark.parametrize(("script", "args", "said"), BAD_NUMBERS, ids=[f"{s} {a}" for s, a, _ in BAD_NUMBERS])
def test_a_bad_number_is_refused_before_any_work(script, args, said):
    res = bench(script, *shlex.split(args), timeout=60)
    assert res.returncode == 2 and res.stdout == "" and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().splitlines()[-1] == f"{script}: error: {said}"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ("--config nope.yaml", "error: config file not found: nope.yaml"),
        ("--set data.source=local --set data.path=/nonexistent/corpus.txt", "error: data.path '/nonexistent"),
    ],
)
def test_train_throughput_says_a_config_or_data_mistake_in_one_line(args, said):
    res = bench("train_throughput.py", *shlex.split(args), timeout=120)
    assert res.returncode == 2 and res.stdout == "" and "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and said in lines[0], res.stderr


@pytest.mark.parametrize("script", ["corpus_entropy.py", "watch_fixture.py"])
def test_help_is_help_not_a_run(script, tmp_path):
    res = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and res.stdout.startswith("usage: "), res.stdout + res.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", ["gpu_wheels.sh", "peer_env.sh"])
def test_shell_scripts_help_is_help_not_a_run(script, tmp_path):
    # were --help taken as an argument: PYTHON=false and no index make the venv or the download fail at once
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHON": "false", "PIP_NO_INDEX": "1"}
    res = subprocess.run(["bash", str(BENCH / script), "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.startswith(f"usage: bash bench/{script}"), res.stdout + res.stderr


def test_remote_tail_cost_runs_the_watch_loop_with_its_arguments():
    """The bench runs nsa watch --host's remote sh loop with the argument list the watch builds: a list that fell
    behind the script's (a 6th, the liveness period) ended the loop at once (`shift: can't shift that many`)."""
    res = bench("remote_tail_cost.py", "--ranks", "1", "--rounds", "2", "--append", "1", timeout=60)
    assert res.returncode == 0, res.stderr
    rows = [line for line in res.stdout.splitlines() if line.startswith("mtime tool ")]
    assert [r.split()[2] for r in rows] == ["auto", "ls"], res.stdout
    assert all(float(r.split(":")[1].split()[0]) >= 0 for r in rows)


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_wheels.sh"])
def test_gpu_scripts_parse(script):
    res = subprocess.run(["bash", "-n", str(BENCH / script)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr


def test_gpu_check_without_a_gpu_says_so_and_runs_nothing(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this is the check's answer on a machine without CUDA; on a GPU it runs its parts")
    out = tmp_path / "out"
    res = subprocess.run(
        ["bash", str(BENCH / "gpu_check.sh")],
        cwd=tmp_path,  # OUT is relative to where the check was called from, not to the checkout
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OUT": "out", "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no CUDA device"), res.stderr
    env = (out / "env.txt").read_text()
    assert f"torch {torch.__version__}" in env and "no CUDA device" in env
    assert not (out / "summary.txt").exists()  # no part ran


def _gpu_check(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "OUT": "out", "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(BENCH / "gpu_check.sh"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_gpu_check_refuses_an_unknown_part_on_any_machine(tmp_path):
    """A misspelt part ran nothing and passed; it is refused before the CUDA check, so on this CPU box too."""
    res = _gpu_check("ops", "trainer-12m", cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == "", res.stdout + res.stderr
    parts = "gpu-tests ops attention-layers train-125m trainer-125m layer-profile"
    assert res.stderr == f"error: no part named 'trainer-12m'; the parts: {parts}\n"
    assert not (tmp_path / "out").exists()  # nothing was started


def test_gpu_check_help_lists_the_parts_it_runs(tmp_path):
    res = _gpu_check("--help", cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.startswith("usage: "), res.stdout + res.stderr
    listed = res.stdout.split("parts: ")[1].rstrip(")\n").split()
    # the names the script runs: `part NAME ...` lines and the ones recorded when datasets does not import
    text = (BENCH / "gpu_check.sh").read_text()
    run = re.findall(r"^\s*part ([a-z0-9-]+) ", text, re.M)
    run += re.findall(r"^\s*for name in ([a-z0-9 -]+); do", text, re.M)[0].split()
    assert sorted(listed) == sorted(set(run)) and len(listed) == 6
    assert not (tmp_path / "out").exists()


def _just() -> str:
    found = Path(sys.executable).parent / "just"  # rust-just, a dev extra
    if not found.exists():
        found = shutil.which("just")  # type: ignore[assignment]
    if not found:
        pytest.skip("no just (the dev extras install rust-just)")
    return str(found)


def _just_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_just(), *args], cwd=BENCH.parent, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("recipe", "var", "args", "before"),
    [
        ("test", "py", ["-m", "not slow"], ["-m", "pytest", "-q"]),
        ("train", "py", ["--set", "data.path=/data/my corpus.txt"], ["-m", "nsa_train.train", "--run-dir"]),
        ("run", "nsa", ["--name", "a b"], ["launch", "--watch"]),
    ],
)
def test_just_passes_each_argument_as_one_word(recipe, var, args, before):
    """`just test -m "not slow"` ran pytest with `-m not slow`: the recipe's interpreter is swapped for printf,
    which prints each word it is given in brackets."""
    res = _just_run("--set", var, "printf '[%s]\\n'", recipe, *args)
    assert res.returncode == 0, res.stderr
    words = [w[1:-1] for w in res.stdout.splitlines()]
    assert words[: len(before)] == before and words[-len(args) :] == args, words


def test_just_gpu_check_passes_the_part_names():
    res = _just_run("gpu-check", "nosuch")
    assert res.returncode == 2 and "error: no part named 'nosuch'" in res.stderr, res.stderr


def test_just_list_gives_each_recipe_its_whole_doc():
    """`just --list` shows a recipe's last comment line only: a doc over two lines was half a sentence."""
    lines = (BENCH.parent / "justfile").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z][a-z-]*( \*[A-Z]+)?:", line):
            assert lines[i - 1].startswith("# ") and not lines[i - 2].startswith("#"), line
    listed = _just_run("--list").stdout
    assert "python -m nsa_train.train --run-dir DIR --resume" in listed


def test_selection_short_times_both_routes_and_names_the_fast_paths():
    res = bench("selection_short.py", "--reps", "1", "--shapes", "3")
    assert res.returncode == 0, res.stderr
    rows = [line.split("|")[1:-1] for line in res.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 4 and rows[0][0].strip() == "B"  # the header, then the three shapes
    for row in rows[1:]:
        assert float(row[6]) > 0 and float(row[7]) > 0
        assert row[9].strip() == "masked"  # the three shortest shapes are within the bounds


def test_report_speed_times_the_real_report_of_a_written_run():
    res = bench("report_speed.py", "--lines", "300", "--repeat", "1")
    assert res.returncode == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if line.startswith("| 300 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    wall, rss = float(cells[2].split()[0]), float(cells[3])
    assert 0 < wall < 120 and rss > 30  # a real process: python, matplotlib, the run's history


def test_watch_load_times_the_scan_of_events_before_the_window():
    """The README's older-events numbers (the grep's time and CPU, the events parsed) come from watch_load.py; its
    fixture heartbeat at 5,000 lines (~2.3 MiB) is past the 1 MiB window, with two evals before it."""
    res = bench("watch_load.py", "--n", "5000", timeout=180)
    assert res.returncode == 0, res.stderr
    line = next(s for s in res.stdout.splitlines() if s.startswith("older events:"))
    m = re.search(r"(\d+) MiB before the window scanned in ([\d.]+)s \(([\d.]+)s CPU .* (\d+) events parsed", line)
    assert m is not None, line
    assert float(m.group(2)) > 0 and int(m.group(4)) > 0, line  # the fixture writes an eval every few hundred steps


def test_start_cost_times_a_real_trainer_start_to_its_first_step():
    res = bench("start_cost.py", "--repeat", "1", timeout=300)
    assert res.returncode == 0, res.stderr
    row = next(
        line for line in res.stdout.splitlines() if line.startswith("| ") and "code" not in line and "---" not in line
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    # wall and CPU seconds to [data], [model], step 1: each later than the one before, CPU below wall * cores
    walls = [float(cells[i].split(",")[0].split()[0]) for i in (1, 2, 4)]
    cpus = [float(cells[i].split(",")[1].split()[0]) for i in (1, 2, 4)]
    assert 0 < walls[0] <= walls[1] <= walls[2] < 300 and 0 < cpus[0] <= cpus[1] <= cpus[2]
    assert float(cells[3].split()[0]) > 100  # RSS at [model], MiB: torch and a model are resident


def test_start_cost_refuses_a_directory_that_is_no_checkout(tmp_path):
    res = bench("start_cost.py", "--against", str(tmp_path), timeout=60)
    assert res.returncode == 2 and res.stdout == "" and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().splitlines()[-1].endswith("not a checkout of this repository (no nsa_train/train.py)")
