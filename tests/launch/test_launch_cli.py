"""`nsa launch` refusals and preflight, through the real CLI (no trainer started)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile

import pytest

from nsa_train.config import load_config
from nsa_train.config.loader import dump_yaml
from nsa_train.runtime.resumable import nothing_to_do

from .helpers import REPO, nsa, tmux_sessions


def _latest(run_dir, name: str) -> None:
    """checkpoints/latest naming ``name``, and a stand-in for that file: a zip archive, as torch.save writes (what
    `nsa launch --resume` looks at: its header and its checksums; the trainer would load the rest). The run's
    config.yaml, as every run has, unless the test wrote its own: the default config."""
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.yaml").exists():
        (run_dir / "config.yaml").write_text(dump_yaml(load_config(None)))
    (run_dir / "checkpoints" / "latest").write_text(name + "\n")
    with zipfile.ZipFile(run_dir / "checkpoints" / name, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", bytes(range(256)) * 4)


def _damage(path) -> None:
    """One byte of the stored data changed after the save: the archive stays readable, its CRC no longer matches."""
    data = bytearray(path.read_bytes())
    at = data.index(bytes(range(256)))
    data[at + 100] ^= 0xFF
    path.write_bytes(bytes(data))


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in res.stderr
    return lines[0]


def test_dry_run_prints_command_and_env_and_starts_nothing(runs_dir, tmux_socket):
    res = nsa("launch", "--name", "dry", "--set", "runtime.env.NCCL_ALGO=Ring", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "-m torch.distributed.run --standalone --nproc-per-node 1 -m nsa_train.train" in res.stdout
    assert "NCCL_ALGO=Ring" in res.stdout and "PYTHONUNBUFFERED=1" in res.stdout
    assert "dry run: nothing started" in res.stdout
    assert not (runs_dir / "dry").exists()
    assert tmux_sessions() == []


def test_the_plan_gives_the_trainers_start_warnings(runs_dir, tmux_socket):
    """A 5000-step run without checkpoints, in bf16 on a CPU, logging every 1000 steps: `nsa check` warned of all
    three, the launch of none (they came in the trainer's console, once the run was going). On a GPU (visible or
    asked for), fp32 is the slow one."""
    sets = ["train.steps=5000", "train.save_every=0", "train.log_every=1000", "runtime.precision=bf16"]
    args = [a for s in sets for a in ("--set", s)]
    res = nsa("launch", "--name", "w", *args, "--dry-run", env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 0, res.stderr
    said = res.stdout + res.stderr
    for w in ("a 5000-step run with no periodic checkpoints", "bf16 on CPU is about 3x slower", "log_every=1000"):
        assert f"warning: {w}" in said or f"warning: train.{w}" in said, said
    gpu = nsa("launch", "--name", "w", "--set", "runtime.precision=fp32", "--dry-run",
              env={**os.environ, "CUDA_VISIBLE_DEVICES": "0"})  # fmt: skip
    assert "warning: fp32 on a GPU" in gpu.stdout + gpu.stderr, gpu.stdout + gpu.stderr
    quiet = nsa("launch", "--name", "w", "--dry-run", env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert "warning:" not in quiet.stdout + quiet.stderr


def test_a_dry_run_with_force_says_what_force_would_do(runs_dir, tmux_socket):
    """`--dry-run --force` over an earlier run said "a real launch needs --force": what it would do instead."""
    old = runs_dir / "used"
    (old / "checkpoints").mkdir(parents=True)
    (old / "heartbeat_rank0.jsonl").write_text(json.dumps({"v": 1, "kind": "end", "ts": 1.0, "rank": 0}) + "\n")
    (old / "exit_status").write_text("0\n")
    res = nsa("launch", "--name", "used", "--dry-run", "--force")
    assert res.returncode == 0, res.stderr
    notes = [line for line in res.stdout.splitlines() if line.startswith("note: --force")]
    assert notes == [
        f"note: --force would reuse run dir {old} (earlier files kept, console.log appended; old exit_status removed)",
        "note: --force would start afresh there, the trainer removing the earlier run's checkpoints/latest and "
        "checkpoints/best",
    ], res.stdout
    assert "needs --force" not in res.stdout and (old / "exit_status").exists()


@pytest.mark.parametrize("taken", ["earlier-run", "live-session"])
def test_a_dry_run_refuses_as_the_real_launch_would(runs_dir, tmux_socket, taken):
    """`nsa launch --dry-run` as a preflight: over a taken run dir or a live session it printed a note and exited 0,
    where the launch exits 1; now the plan, then the launch's own error line, exit 1, and nothing changed."""
    old = runs_dir / "fin"
    if taken == "earlier-run":
        (old / "checkpoints").mkdir(parents=True)
        (old / "heartbeat_rank0.jsonl").write_text(json.dumps({"v": 1, "kind": "end", "ts": 1.0, "rank": 0}) + "\n")
        (old / "exit_status").write_text("0\n")
    else:
        subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-fin", "sleep", "300"], check=True)
    before = sorted(p.name for p in runs_dir.rglob("*"))
    dry = nsa("launch", "--name", "fin", "--dry-run")
    assert dry.returncode == 1 and f"run dir: {old}" in dry.stdout, dry.stdout + dry.stderr
    assert "dry run: nothing started" not in dry.stdout
    said = _one_error_line(dry)
    real = nsa("launch", "--name", "fin")
    assert real.returncode == 1 and _one_error_line(real) == said, (said, real.stderr)
    assert sorted(p.name for p in runs_dir.rglob("*")) == before and tmux_sessions() == ["nsa-fin"] * (
        taken != "earlier-run"
    )


def test_a_rank_without_a_gpu_is_refused_before_anything_starts(runs_dir, tmux_socket):
    """runtime.device cuda on a box that shows no GPU (the 2-GPU config on a CPU box started tmux, and the
    trainer failed 10 s later), or more ranks than GPUs: one line, nothing started. The GPUs are counted
    from CUDA_VISIBLE_DEVICES here, as on a real box."""
    cases = [
        ("", ["--set", "runtime.device=cuda"], "runtime.device is 'cuda' but no GPU is visible here"),
        ("0", ["--nproc", "2"], "--nproc 2 but 1 GPU visible here"),
        ("0,1", ["--nproc", "3", "--set", "runtime.device=cuda"], "--nproc 3 but 2 GPUs visible here"),
    ]
    for cvd, args, says in cases:
        for dry in ([], ["--dry-run"]):
            res = nsa("launch", "--name", "gpu", *args, *dry, env={**os.environ, "CUDA_VISIBLE_DEVICES": cvd})
            assert res.returncode == 1 and says in _one_error_line(res), (cvd, args, res.stderr)
    assert not (runs_dir / "gpu").exists() and tmux_sessions() == []
    ok = nsa("launch", "--name", "gpu", "--nproc", "2", "--set", "runtime.device=cuda", "--dry-run",
             env={**os.environ, "CUDA_VISIBLE_DEVICES": "0,1"})  # fmt: skip
    assert ok.returncode == 0 and "--nproc-per-node 2" in ok.stdout, ok.stderr
    cpu = nsa("launch", "--name", "gpu", "--nproc", "2", "--dry-run", env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert cpu.returncode == 0, cpu.stderr  # no GPU, device auto: two CPU ranks (gloo) are fine


def test_a_misspelt_health_rule_is_refused_at_launch(runs_dir, tmux_socket):
    """monitor.rules is read by the tools, not the trainer: misspelt, it surfaced only when `nsa status` first read
    the running run (exit 4, for as long as the run lasted). The launch refuses it now, dry run or not."""
    cases = [
        ("monitor.rules.loss_spike.severity=warning", "health rules: config monitor.rules.loss_spike: unknown rule"),
        ("monitor.rules.loss_plateau.severty=warning", "unknown setting 'severty'"),
    ]
    for setting, says in cases:
        for dry in ([], ["--dry-run"]):
            res = nsa("launch", "--name", "rules", "--set", setting, *dry)
            assert res.returncode == 1 and says in _one_error_line(res), (setting, res.stderr)
    assert not (runs_dir / "rules").exists() and tmux_sessions() == []
    ok = nsa("launch", "--name", "rules", "--set", "monitor.rules.loss_plateau.severity=critical", "--dry-run")
    assert ok.returncode == 0, ok.stderr


def test_invalid_config_fails_before_anything_starts(runs_dir, tmux_socket):
    res = nsa("launch", "--name", "bad", "--set", "model.dim=33")
    assert res.returncode == 1
    assert "model.dim" in _one_error_line(res)
    res = nsa("launch", "--name", "bad", "--set", "model.no_such_key=1")
    assert res.returncode == 1
    assert "unknown key 'model.no_such_key'" in _one_error_line(res)
    res = nsa("launch", "--name", "bad", "--config", "does/not/exist.yaml")
    assert res.returncode == 1
    assert "config file not found" in _one_error_line(res)
    assert list(runs_dir.iterdir()) == []
    assert tmux_sessions() == []


def test_what_the_trainer_would_refuse_from_the_config_alone_is_refused_before_starting(runs_dir, tmux_socket):
    """A batch that does not split over the ranks and a vocabulary smaller than the tokenizer's passed launch (and
    --dry-run): the session started, the trainer refused within seconds, and the run read crashed, CRITICAL."""
    res = nsa("launch", "--name", "b", "--set", "train.batch_size=6", "--set", "train.grad_accum=4")
    assert res.returncode == 1
    assert _one_error_line(res) == (
        "error: train.batch_size: 6 is not divisible by world_size x grad_accum = 1 x 4 = 4; the global batch must "
        "split evenly across ranks (--nproc 1 x 1 node(s))"
    )
    res = nsa("launch", "--name", "v", "--set", "model.vocab_size=100", "--dry-run")
    assert res.returncode == 1
    assert "model.vocab_size: 100 is smaller than data.tokenizer byte's vocabulary (257)" in _one_error_line(res)
    assert list(runs_dir.iterdir()) == [] and tmux_sessions() == []


def test_an_earlier_trainers_environment_switches_are_said_to_do_nothing(runs_dir, tmux_socket):
    """NSA_DDP_COMPRESS=bf16 (the seed reports' export) was passed to the trainer and listed under env: as if in
    effect; neither nsa nor the trainer reads it."""
    env = {**os.environ, "NSA_DDP_COMPRESS": "bf16", "NSA_PREFILL_BATCHED": "1"}
    res = nsa("launch", "--name", "old", "--dry-run", env=env)
    assert res.returncode == 0, res.stderr
    assert (
        "warning: NSA_DDP_COMPRESS=bf16 is an earlier trainer's switch, not read by this one: its setting is the "
        "config's runtime.ddp_compress (--set runtime.ddp_compress=...)"
    ) in res.stdout + res.stderr
    assert "warning: NSA_PREFILL_BATCHED=1 is an earlier trainer's switch, not read by this one: " in res.stdout


def test_an_earlier_trainers_switch_in_runtime_env_is_said_before_the_start(runs_dir, tmux_socket):
    """`--set runtime.env.NSA_DDP_BUCKET_MB=25` (or the same in the config file) was passed to the trainer without a
    word from nsa launch or --dry-run: only the trainer's start warned. The config's value is the one the trainer
    gets, so a shell's value of the same name is not said twice."""
    env = {**os.environ, "NSA_DDP_BUCKET_MB": "50", "NSA_PREFILL_BATCHED": "1"}
    res = nsa("launch", "--name", "rt", "--dry-run", "--set", "runtime.env.NSA_DDP_BUCKET_MB=25", env=env)
    assert res.returncode == 0, res.stderr
    said = [line for line in res.stdout.splitlines() if "earlier trainer's switch" in line]
    assert said == [
        "warning: NSA_PREFILL_BATCHED=1 is an earlier trainer's switch, not read by this one: nsa has no such switch, "
        "its NSA attention always runs batched over the batch, heads and tokens, in query tiles (nsa.impl auto, the "
        "default, fast and triton; only reference, the slow oracle, does not)",
        "warning: runtime.env.NSA_DDP_BUCKET_MB=25 is an earlier trainer's switch, not read by this one: its setting "
        "is the config's runtime.ddp_bucket_mb (--set runtime.ddp_bucket_mb=...)",
    ], res.stdout


def test_a_credential_in_runtime_env_is_said_to_be_recorded(runs_dir, tmux_socket):
    """The caller's HF_TOKEN is never copied into launch.json; `--set runtime.env.HF_TOKEN=...` was, and into
    config.yaml, without a word."""
    res = nsa("launch", "--name", "tok", "--dry-run", "--set", "runtime.env.HF_TOKEN=abc", "--set", "runtime.env.X=1")
    assert res.returncode == 0, res.stderr
    said = [line for line in (res.stdout + res.stderr).splitlines() if "looks like a credential" in line]
    assert said == [
        "warning: runtime.env.HF_TOKEN looks like a credential: it is written to the run's config.yaml and "
        "launch.json, which are meant to be shared; give it to the trainer another way (HF_TOKEN: "
        "~/.cache/huggingface/token)"
    ]


def test_tmux_missing_is_one_clear_error(runs_dir, tmux_socket, tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**os.environ, "PATH": str(empty_bin)}
    res = nsa("launch", "--name", "notmux", env=env)
    assert res.returncode == 1
    assert "tmux is not installed" in _one_error_line(res)
    assert not (runs_dir / "notmux").exists()


def test_existing_session_is_refused(runs_dir, tmux_socket):
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-busy", "sleep", "300"], check=True)
    res = nsa("launch", "--name", "busy")
    assert res.returncode == 1
    msg = _one_error_line(res)
    assert "tmux session nsa-busy already exists" in msg and "--force" in msg
    assert not (runs_dir / "busy").exists()
    assert tmux_sessions() == ["nsa-busy"]


def test_session_match_is_exact_not_a_prefix(runs_dir, tmux_socket):
    # tmux matches `-t name` by prefix; nsa-ab must not make nsa-a look taken.
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-ab", "sleep", "300"], check=True)
    res = nsa("launch", "--name", "a", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "is taken" not in res.stdout


def test_earlier_run_in_dir_is_refused(runs_dir, tmux_socket):
    old = runs_dir / "old"
    old.mkdir()
    (old / "launch.json").write_text("{}")
    (old / "exit_status").write_text("0\n")
    res = nsa("launch", "--name", "old")
    assert res.returncode == 1
    assert "already holds an earlier run" in _one_error_line(res) and "--resume" not in _one_error_line(res)
    assert "(launch.json, exit_status)" in _one_error_line(res)  # what it holds, as the trainer and nsa check say
    # a .pt that is no checkpoint (an export), or a hidden one: nothing --resume goes on from (schema.CHECKPOINT_GLOB)
    (old / "checkpoints").mkdir()
    (old / "checkpoints" / "exported.pt").write_bytes(b"")
    (old / "checkpoints" / ".step_00000300.pt").write_bytes(b"")
    res = nsa("launch", "--name", "old")
    assert res.returncode == 1
    assert "already holds an earlier run" in _one_error_line(res) and "--resume" not in _one_error_line(res)
    # with a checkpoint it can go on from, the refusal names --resume too
    (old / "checkpoints" / "step_00000200.pt").write_bytes(b"")
    res = nsa("launch", "--name", "old")
    assert res.returncode == 1
    assert _one_error_line(res).endswith("or continue it from its last checkpoint with --resume")
    # one that trained to its train.steps: --resume alone has nothing to do (advised, then refused, in review)
    (old / "checkpoints" / "latest").write_text("step_00000200.pt\n")
    (old / "run.json").write_text('{"total_steps": 200}')
    res = nsa("launch", "--name", "old")
    assert res.returncode == 1
    assert _one_error_line(res).endswith("or train it on past step 200 (its train.steps 200) with --resume --set "
                                         "train.steps=N, N > 200")  # fmt: skip


def test_resume_of_a_run_that_reached_its_steps_is_refused_before_starting(runs_dir, tmux_socket):
    """Else the trainer starts, finds nothing to do and fails: a finished run would then read 'crashed'."""
    done = runs_dir / "done"
    (done / "checkpoints").mkdir(parents=True)
    _latest(done, "step_00000600.pt")  # the tiny default's train.steps is 600
    (done / "exit_status").write_text("0\n")
    res = nsa("launch", "--name", "done", "--resume")
    assert res.returncode == 1
    line = _one_error_line(res)
    # the trainer's own words (it said them its own way): one refusal, whichever of the two meets it first
    assert line == "error: " + nothing_to_do(done / "checkpoints" / "step_00000600.pt", 600, 600)
    assert tmux_sessions() == [] and (done / "exit_status").read_text() == "0\n"
    res = nsa("launch", "--name", "done", "--resume", "--set", "train.steps=800", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "is taken" not in res.stdout  # a resume reuses its run dir: no note that a real launch would refuse


def test_resume_that_changes_the_model_or_data_position_is_refused_before_starting(runs_dir, tmux_socket):
    """The trainer refuses such a resume too, but only after tmux has started it, and that failed attempt marks a
    finished run as crashed: found on the next `nsa status`. The run's config.yaml says what its checkpoint
    was made under; what a resume may change (steps, lr, batch) still goes through."""
    run = runs_dir / "done"
    (run / "checkpoints").mkdir(parents=True)
    _latest(run, "step_00000600.pt")
    (run / "config.yaml").write_text(dump_yaml(load_config(None)))
    (run / "exit_status").write_text("0\n")
    res = nsa("launch", "--name", "done", "--resume", "--set", "train.steps=800", "--set", "model.n_layers=8")
    assert res.returncode == 1
    line = _one_error_line(res)
    assert f"--resume: {run} cannot continue with model.n_layers 4 -> 8: its checkpoint's weights depend on it" in line
    assert "leave this key out of --set and --config" in line
    other = runs_dir / "other.yaml"
    other.write_text("train:\n  seq_len: 512\n  steps: 800\n")
    res = nsa("launch", "--name", "done", "--resume", "--config", str(other))
    assert res.returncode == 1 and "train.seq_len 256 -> 512: its checkpoint's data position depends on it" in (
        _one_error_line(res)
    )
    assert tmux_sessions() == [] and (run / "exit_status").read_text() == "0\n"
    ok = ["--set", "train.steps=800", "--set", "train.lr=1e-3", "--set", "train.batch_size=16", "--dry-run"]
    res = nsa("launch", "--name", "done", "--resume", *ok)
    assert res.returncode == 0, res.stderr


def test_a_resume_plan_names_its_checkpoint_and_a_newer_one_latest_does_not(runs_dir, tmux_socket):
    """A kill between a checkpoint file and its pointer left a whole step_10 beside `latest` -> step_5: the resume
    continued from step 5 without a word, and the plan named no checkpoint at all."""
    run = runs_dir / "cut"
    _latest(run, "step_00000005.pt")
    res = nsa("launch", "--name", "cut", "--resume", "--set", "train.steps=800", "--dry-run")
    assert res.returncode == 0, res.stderr
    ckpts = run.absolute() / "checkpoints"
    notes = [ln for ln in res.stdout.splitlines() if ln.startswith("note: ")]
    assert notes[0] == f"note: continues from {ckpts / 'step_00000005.pt'} (step 5)", notes
    assert not any("written after it" in n for n in notes)
    # with --force, a session still running saves a newer one as it is stopped: named as what it is now (review)
    res = nsa("launch", "--name", "cut", "--resume", "--force", "--set", "train.steps=800", "--dry-run")
    assert f"note: continues from the latest checkpoint: now {ckpts / 'step_00000005.pt'} (step 5), or the one a " in (
        res.stdout
    )
    newer = ckpts / "step_00000010.pt"
    newer.write_bytes((ckpts / "step_00000005.pt").read_bytes())
    os.utime(newer, (time.time() + 5, time.time() + 5))
    res = nsa("launch", "--name", "cut", "--resume", "--set", "train.steps=800", "--dry-run")
    notes = [ln for ln in res.stdout.splitlines() if ln.startswith("note: ")]
    assert notes[1] == (
        "note: step_00000010.pt was written after it (a save cut between its file and its pointer?): to continue from "
        f"that one instead, `echo step_00000010.pt > {ckpts / 'latest'}` first"
    ), notes
    # an earlier run's checkpoints, older than this run's (a fresh start over them with --force), are not named
    os.utime(newer, (1, 1))
    res = nsa("launch", "--name", "cut", "--resume", "--set", "train.steps=800", "--dry-run")
    assert "written after it" not in res.stdout
    # a lower step's file whose mtime is newest (a copy without -p gives new mtimes): mtimes alone never say so
    older = ckpts / "step_00000002.pt"
    older.write_bytes((ckpts / "step_00000005.pt").read_bytes())
    os.utime(older, (time.time() + 5, time.time() + 5))
    res = nsa("launch", "--name", "cut", "--resume", "--set", "train.steps=800", "--dry-run")
    assert "written after it" not in res.stdout
    # the order the trainer records its saves in (checkpoints/order) goes before the mtimes, as the trainer's does
    (ckpts / "order").write_text("step_00000002.pt\nstep_00000005.pt\nstep_00000010.pt\n")
    res = nsa("launch", "--name", "cut", "--resume", "--set", "train.steps=800", "--dry-run")
    assert "note: step_00000010.pt was written after it" in res.stdout, res.stdout


def test_resume_that_moves_the_lr_says_so_before_starting(runs_dir, tmux_socket):
    """Extending a finished run's steps restarts its cosine from higher up: the plan says so (and how to keep the
    lr it ended with), and says nothing when that is what the user asked for."""
    run = runs_dir / "done"
    (run / "checkpoints").mkdir(parents=True)
    _latest(run, "step_00000600.pt")
    (run / "config.yaml").write_text(dump_yaml(load_config(None)))  # lr 3e-3 -> 3e-4 over 600 steps
    res = nsa("launch", "--name", "done", "--resume", "--set", "train.steps=800", "--dry-run")
    assert res.returncode == 0, res.stderr
    note = [ln for ln in res.stdout.splitlines() if ln.startswith("note: the lr schedule")]
    assert note == [
        "note: the lr schedule changes with this resume (train.steps 600 -> 800): step 601 trains at lr 7.42e-04, "
        "where the run's schedule had 3.00e-04 (2.47x). To go on at the lr it ended with instead: "
        "--set train.lr=3.00e-04 --set train.min_lr=3.00e-04"
    ]
    keep = ["--set", "train.lr=3.00e-04", "--set", "train.min_lr=3.00e-04"]
    res = nsa("launch", "--name", "done", "--resume", "--set", "train.steps=800", *keep, "--dry-run")
    assert res.returncode == 0 and "lr schedule" not in res.stdout, res.stdout
    assert "validation set" not in res.stdout
    # another batch size scores another validation set: said too (the best checkpoint compares across both)
    res = nsa("launch", "--name", "done", "--resume", "--set", "train.steps=800", "--set", "train.batch_size=16",
              *keep, "--dry-run")  # fmt: skip
    note = [ln for ln in res.stdout.splitlines() if ln.startswith("note: the validation set changes")]
    assert res.returncode == 0 and len(note) == 1 and note[0].endswith("--set train.eval_batches=4"), res.stdout


def _heartbeat(run_dir, records: list[dict]) -> None:
    with open(run_dir / "heartbeat_rank0.jsonl", "w") as fh:
        for i, r in enumerate(records):
            fh.write(json.dumps({"v": 1, "ts": 1_700_000_000 + i, "rank": 0, "pid": 100, **r}) + "\n")


def _checkpointed_run(runs_dir, name: str) -> tuple:
    """A run dir whose `latest` pointer names step_00000200.pt: (its path, that checkpoint's path)."""
    run = runs_dir / name
    (run / "checkpoints").mkdir(parents=True)
    _latest(run, "step_00000200.pt")
    return run, str(run / "checkpoints" / "step_00000200.pt")


def test_resume_starts_as_many_ranks_as_wrote_the_checkpoint(runs_dir, tmux_socket):
    """A 2-rank run resumed with --nproc 1 started torchrun, the trainer refused ('written by 2 ranks'), and
    that attempt marked the finished run crashed. The world size comes from rank 0's heartbeat: the boot
    before the checkpoint's record (not the failed 1-rank attempt after it)."""
    run, ckpt = _checkpointed_run(runs_dir, "two")
    _heartbeat(run, [
        {"kind": "boot", "step": 0, "world_size": 2},
        {"kind": "checkpoint", "step": 100, "path": ckpt.replace("200", "100"), "seconds": 0.1},
        {"kind": "checkpoint", "step": 200, "path": ckpt, "seconds": 0.1},
        {"kind": "end", "step": 200, "reason": "completed", "exit_status": 0},
        {"kind": "boot", "step": 0, "world_size": 1},  # a failed resume with one rank
        {"kind": "error", "step": 0, "message": "written by 2 ranks"},
    ])  # fmt: skip
    res = nsa("launch", "--name", "two", "--resume", "--nproc", "1", "--set", "train.steps=300")
    assert res.returncode == 1 and tmux_sessions() == []
    assert "step_00000200.pt was written by 2 ranks and --nproc 1 x 1 node(s) would start 1" in _one_error_line(res)
    assert "or add --reshard to continue on 1" in _one_error_line(res)
    # the failed attempt's heartbeat, just written, would read as a live run, which the launch (and so its dry run)
    # refuses: as it is once that attempt is a while gone
    old = time.time() - 3600
    for hb in run.glob("heartbeat_rank*.jsonl"):
        os.utime(hb, (old, old))
    res = nsa("launch", "--name", "two", "--resume", "--set", "train.steps=300", "--dry-run")
    assert res.returncode == 0 and "--nproc-per-node 2 " in res.stdout, res.stderr


def test_reshard_resumes_on_the_ranks_asked_for_and_passes_the_flag(runs_dir, tmux_socket):
    run, ckpt = _checkpointed_run(runs_dir, "two")
    _heartbeat(run, [
        {"kind": "boot", "step": 0, "world_size": 2},
        {"kind": "checkpoint", "step": 200, "path": ckpt, "seconds": 0.1},
        {"kind": "end", "step": 200, "reason": "completed", "exit_status": 0},
    ])  # fmt: skip
    res = nsa("launch", "--name", "two", "--resume", "--reshard", "--nproc", "1", "--set", "train.steps=300",
              "--dry-run")  # fmt: skip
    assert res.returncode == 0 and tmux_sessions() == [], res.stderr
    assert "--nproc-per-node 1 " in res.stdout and " --resume --reshard" in res.stdout, res.stdout
    assert "note: --reshard: step_00000200.pt was written by 2 ranks, 1 start now" in res.stdout
    res = nsa("launch", "--name", "two", "--reshard", "--dry-run")
    assert res.returncode == 2 and "--reshard goes with --resume" in _one_error_line(res)
    # a streamed source: refused here, not by the trainer after a session started and it booted
    from nsa_train.config.loader import dump_yaml

    (run / "config.yaml").write_text(dump_yaml(load_config(None, ["data.source=hf"])))
    res = nsa("launch", "--name", "two", "--resume", "--reshard", "--nproc", "1", "--set", "train.steps=300")
    assert res.returncode == 1 and tmux_sessions() == [], res.stderr
    assert "--reshard: data.source is hf, streamed" in _one_error_line(res)


def test_live_heartbeat_is_refused(runs_dir, tmux_socket):
    live = runs_dir / "live"
    live.mkdir()
    rec = {"v": 1, "ts": time.time(), "kind": "progress", "rank": 0, "step": 5, "pid": 1}
    (live / "heartbeat_rank0.jsonl").write_text(json.dumps(rec) + "\n")
    res = nsa("launch", "--name", "live")
    assert res.returncode == 1
    assert "holds a live run" in _one_error_line(res)


def test_a_recent_heartbeat_of_a_rank_0_that_is_gone_is_not_a_live_run(runs_dir, tmux_socket):
    """A full disk cut the end record and kept the launcher from writing exit_status: `--resume`, the remedy the
    error names, was refused as "holds a live run" for minutes, while `nsa status` said crashed."""
    import socket

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = runs_dir / "full"
    (run / "checkpoints").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"v": 1, "host": socket.gethostname()}))
    rec = {"v": 1, "ts": time.time(), "kind": "progress", "rank": 0, "step": 5, "pid": gone.pid}
    (run / "heartbeat_rank0.jsonl").write_text(json.dumps(rec) + "\n" + '{"v":1,"ts":1796')
    from nsa_tui.launch.preflight import occupancy

    occ = occupancy(run, "nsa-full", load_config(None), resume=True)
    assert not occ.live and occ.heartbeat_age_s is None
    # its pid another program's (this test's own process: no nsa_train), as in a `cp -r` copy of a live run whose pid
    # is the original's trainer: not this directory's trainer, so not live either (as `nsa check` says it)
    rec["pid"] = os.getpid()
    (run / "heartbeat_rank0.jsonl").write_text(json.dumps(rec) + "\n")
    res = nsa("launch", "--name", "full")
    assert res.returncode == 1 and "already holds an earlier run" in _one_error_line(res)
    # the same heartbeat with rank 0 alive as this directory's trainer (a stand-in whose command line is one) is
    # still refused
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "nsa_train", "--run-dir", run])
    try:
        time.sleep(0.05)  # its record comes after its start: a pid that started later is a reused one
        rec.update(pid=trainer.pid, ts=time.time())
        (run / "heartbeat_rank0.jsonl").write_text(json.dumps(rec) + "\n")
        res = nsa("launch", "--name", "full")
        assert res.returncode == 1 and "holds a live run" in _one_error_line(res), res.stderr
    finally:
        trainer.kill()
        trainer.wait()


def test_a_start_killed_before_run_json_is_no_live_run(runs_dir, tmux_socket):
    """A trainer started by hand and killed before it wrote run.json: its boot record names the host (the rule
    `nsa status` and `nsa halt` use), so a launch over it is not refused as "holds a live run" for minutes."""
    import socket

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = runs_dir / "early"
    run.mkdir()
    boot = {"v": 1, "ts": time.time(), "kind": "boot", "rank": 0, "step": 0, "pid": gone.pid}
    (run / "heartbeat_rank0.jsonl").write_text(json.dumps({**boot, "host": socket.gethostname()}) + "\n")
    from nsa_tui.launch.preflight import occupancy

    occ = occupancy(run, "nsa-early", load_config(None), resume=False)
    assert not occ.live and occ.heartbeat_age_s is None
    # another machine's boot: its pid means nothing here, so the recent heartbeat stands
    (run / "heartbeat_rank0.jsonl").write_text(json.dumps({**boot, "host": "elsewhere.example"}) + "\n")
    assert occupancy(run, "nsa-early", load_config(None), resume=False).live


def test_not_enough_disk_for_checkpoints(runs_dir, tmux_socket):
    res = nsa("launch", "--name", "huge", "--set", "model.vocab_size=4000000000", "--dry-run")
    assert res.returncode == 1
    line = _one_error_line(res)
    assert line.startswith("error: disk: not enough") and "GiB for checkpoints" in line


def test_unwritable_run_dir(tmux_socket, tmp_path):
    target = "/proc/nsa-run" if os.geteuid() == 0 else "/nsa-run"  # root may write anywhere but /proc
    res = nsa("launch", "--run-dir", target, "--dry-run")
    assert res.returncode == 1
    assert "not writable" in _one_error_line(res) or "cannot create" in res.stderr


def test_stale_halt_is_reported(runs_dir, tmux_socket):
    """Made by `touch`, as here, it was said to be "left by an earlier `nsa halt`": only its age is known."""
    d = runs_dir / "halted"
    d.mkdir()
    (d / ".HALT").write_text("")
    res = nsa("launch", "--name", "halted", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"stale .HALT in {d} (written before this launch: by `nsa halt` or by hand)" in res.stdout, res.stdout


def test_option_mistakes_are_one_line(runs_dir, tmux_socket):
    res = nsa("launch", "--remote-dir", "/x")
    assert res.returncode == 2 and "--remote-dir needs --host" in _one_error_line(res)
    res = nsa("launch", "--nnodes", "2", "--dry-run")
    assert res.returncode == 2 and "--rdzv-endpoint" in _one_error_line(res)
    res = nsa("launch", "--name", "a/b", "--dry-run")
    assert res.returncode == 1 and "invalid run name" in _one_error_line(res)


def test_multi_node_dry_run_passes_rendezvous_through(runs_dir, tmux_socket):
    res = nsa(
        "launch", "--name", "mn", "--nproc", "2", "--nnodes", "2", "--node-rank", "1",
        "--rdzv-endpoint", "10.1.2.3:29500", "--dry-run",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rdzv = "--nnodes 2 --node-rank 1 --rdzv-backend static --rdzv-endpoint 10.1.2.3:29500 --nproc-per-node 2"
    assert rdzv in res.stdout


def test_tools_do_not_import_torch():
    code = "import sys, nsa_tui.cli, nsa_tui.launch.launcher, nsa_tui.launch.runner; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_empty_option_values_are_one_error_not_the_default(runs_dir, tmux_socket, tmp_path):
    """`--run-dir ''` planned the current directory, `--config ''` the default config, `--name ''` a made-up name
    (over --host it was refused: the same here now)."""
    for flag in ("--run-dir", "--config", "--name"):
        res = nsa("launch", flag, "", "--dry-run", cwd=tmp_path)
        assert res.returncode == 2 and f"{flag} is empty" in _one_error_line(res), (flag, res.stdout)
    assert list(runs_dir.iterdir()) == [] and list(tmp_path.iterdir()) == [runs_dir] and tmux_sessions() == []


def test_a_one_rank_checkpoint_is_written_by_1_rank(runs_dir, tmux_socket):
    """The refusal said "written by 1 ranks"."""
    run, ckpt = _checkpointed_run(runs_dir, "one")
    _heartbeat(run, [
        {"kind": "boot", "step": 0, "world_size": 1},
        {"kind": "checkpoint", "step": 200, "path": ckpt, "seconds": 0.1},
        {"kind": "end", "step": 200, "reason": "completed", "exit_status": 0},
    ])  # fmt: skip
    res = nsa("launch", "--name", "one", "--resume", "--nproc", "2", "--set", "train.steps=300", "--dry-run")
    assert res.returncode == 1 and tmux_sessions() == []
    assert "step_00000200.pt was written by 1 rank and --nproc 2 x 1 node(s) would start 2" in _one_error_line(res)
    res = nsa("launch", "--name", "one", "--resume", "--nnodes", "2", "--rdzv-endpoint", "node0:29500",
              "--set", "train.steps=300", "--dry-run")  # fmt: skip
    assert res.returncode == 1 and "step_00000200.pt was written by 1 rank, which 2 nodes cannot share" in (
        _one_error_line(res)
    )


def test_a_config_from_the_config_variable_says_so(runs_dir, tmux_socket, tmp_path):
    """An exported CONFIG picked the config without a word (the plan showed the path only): the config line says
    `(from $CONFIG, ...)` now. And a resume with CONFIG set (no --config) used to fail with "--config
    <run>/config.yaml disagrees with the CONFIG environment variable", a --config never given: CONFIG is used, as
    the trainer does."""
    cfg = tmp_path / "x.yaml"
    cfg.write_text((REPO / "configs" / "tiny-cpu.yaml").read_text())
    env = {**os.environ, "CONFIG": str(cfg)}
    line = next(x for x in nsa("launch", "--name", "a", "--dry-run", env=env).stdout.splitlines() if "config:" in x)
    assert line.startswith(f"config:  {cfg} (from $CONFIG, hash "), line
    res = nsa("launch", "--name", "a", "--config", str(cfg), "--dry-run", env=env)  # --config: nothing to say
    assert res.returncode == 0 and "$CONFIG" not in res.stdout, res.stderr
    run = runs_dir / "done"
    (run / "checkpoints").mkdir(parents=True)
    _latest(run, "step_00000600.pt")
    (run / "config.yaml").write_text(dump_yaml(load_config(None)))
    res = nsa("launch", "--name", "done", "--resume", "--set", "train.steps=800", "--dry-run", env=env)
    assert res.returncode == 0, res.stderr
    assert f"config:  {cfg} (from $CONFIG, hash " in res.stdout and f"--config {cfg} " in res.stdout
    res = nsa("launch", "--name", "done", "--resume", "--set", "train.steps=800", "--dry-run")  # no CONFIG
    assert res.returncode == 0 and f"config:  {run / 'config.yaml'} (hash " in res.stdout, res.stdout


def test_a_resume_whose_config_comes_from_the_config_variable_warns_of_what_it_changes(runs_dir, tmux_socket):
    """`CONFIG=configs/tiny-cpu.yaml nsa launch --name main --resume` changed train.steps 150 -> 600 said only as a
    `note:` among the plan's lines: a CONFIG exported for another run picks the config without the user typing it.
    A --config typed on the resume stays a note (test_a_resume_names_the_config_keys_...)."""
    run = runs_dir / "main"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(dump_yaml(load_config(None, ["train.steps=150"])))
    _latest(run, "step_00000100.pt")
    shipped = REPO / "configs" / "tiny-cpu.yaml"
    steps = load_config(shipped).train.steps
    res = nsa("launch", "--name", "main", "--resume", "--dry-run", env={**os.environ, "CONFIG": str(shipped)})
    assert res.returncode == 0, res.stderr
    said = [ln for ln in res.stdout.splitlines() if "this resume's config changes" in ln]
    assert len(said) == 1 and said[0].startswith(
        f"warning: CONFIG={shipped} in this shell picks this resume's config; this resume's config changes the "
        f"run's beyond --set: train.steps 150 -> {steps}"
    ), res.stdout
    res = nsa("launch", "--name", "main", "--resume", "--config", str(shipped), "--dry-run")
    assert res.returncode == 0, res.stderr
    said = [ln for ln in res.stdout.splitlines() if "this resume's config changes" in ln]
    assert len(said) == 1 and said[0].startswith("note: this resume's config changes the run's beyond --set: "), said


def test_the_config_options_help_names_the_config_variable():
    for cmd in ("launch", "check"):
        res = nsa(cmd, "--help", env={**os.environ, "COLUMNS": "250"})
        assert res.returncode == 0 and "YAML config (default: $CONFIG, else configs/tiny-cpu.yaml" in res.stdout, (
            res.stdout
        )


@pytest.mark.parametrize("damage", ["empty", "missing", "foreign", "crc"])
def test_resume_of_an_unusable_latest_checkpoint_is_refused_before_starting(runs_dir, tmux_socket, damage):
    """The session started, the trainer failed at once, and that attempt marked the finished run crashed: a latest
    checkpoint that is empty, missing or no torch file is refused here, naming the checkpoints that are left."""
    run, _ = _checkpointed_run(runs_dir, "hurt")
    _latest(run, "step_00000100.pt")
    _latest(run, "step_00000200.pt")
    target = run / "checkpoints" / "step_00000200.pt"
    spoil = {
        "empty": lambda: target.write_bytes(b""),
        "missing": target.unlink,
        "foreign": lambda: target.write_text("x"),
    }
    spoil["crc"] = lambda: _damage(target)  # a disk or copy error: a dry run passed it, the trainer refused it
    spoil[damage]()
    res = nsa("launch", "--name", "hurt", "--resume", "--set", "train.steps=300")
    assert res.returncode == 1 and tmux_sessions() == [] and "Traceback" not in res.stderr
    line = _one_error_line(res)
    said = {"empty": "is an empty file", "missing": "cannot be read", "foreign": "is not a file torch.save wrote"}
    if damage == "crc":
        assert f"checkpoint {target} is damaged: its part archive/data.pkl does not match the checksum" in line, line
    else:
        assert f"its latest checkpoint {target} {said[damage]}" in line, line
    assert "holds step_00000100.pt: to continue from one, write its name into" in line


def test_resume_without_a_latest_pointer_names_the_checkpoints_left(runs_dir, tmux_socket):
    run, _ = _checkpointed_run(runs_dir, "nolatest")
    (run / "checkpoints" / "latest").unlink()
    res = nsa("launch", "--name", "nolatest", "--resume", "--set", "train.steps=300")
    line = _one_error_line(res)
    assert res.returncode == 1 and tmux_sessions() == []
    assert "has no checkpoint to continue (no checkpoints/latest). " in line
    assert f"holds step_00000200.pt: to continue from one, write its name into {run / 'checkpoints' / 'latest'}" in line


def test_a_copy_without_latest_and_order_is_hinted_its_highest_whole_step_not_its_newest_mtime(runs_dir, tmux_socket):
    """The reviewer's `cp` of *.pt alone, touched so step 50 looks newest: the hint said to continue from step 50,
    10 steps back (and the resume cuts training.csv back to it); with step 60 cut short it named the cut file.
    Without an order file the highest step is the newest, and a file that is no whole archive is stepped over."""
    run = runs_dir / "scrambled"
    ckpts = run / "checkpoints"
    for step in (50, 56, 60):
        _latest(run, f"step_{step:08d}.pt")
    (ckpts / "latest").unlink()
    t = time.time()
    for step, at in ((60, t - 1200), (56, t - 600), (50, t)):  # the reviewer's touch -d 13:00, 13:10, 13:20
        os.utime(ckpts / f"step_{step:08d}.pt", (at, at))
    res = nsa("launch", "--run-dir", str(run), "--resume", "--dry-run")
    line = _one_error_line(res)
    assert res.returncode == 1 and "has no checkpoint to continue (no checkpoints/latest). " in line, line
    assert f"(echo step_00000060.pt > {ckpts / 'latest'}) and resume again" in line, line
    whole = (ckpts / "step_00000060.pt").read_bytes()
    (ckpts / "step_00000060.pt").write_bytes(whole[: len(whole) // 2])  # a copy cut short: no end record
    line = _one_error_line(nsa("launch", "--run-dir", str(run), "--resume", "--dry-run"))
    assert (
        f"(echo step_00000056.pt > {ckpts / 'latest'}: the newest whole one; step_00000060.pt is cut short or "
        "damaged) and resume again"
    ) in line, line
    for step in (50, 56):
        (ckpts / f"step_{step:08d}.pt").write_bytes(b"")
    line = _one_error_line(nsa("launch", "--run-dir", str(run), "--resume", "--dry-run"))
    assert "none of them whole (each is cut short or damaged): start a new run instead" in line, line
    assert "echo " not in line, line


def test_a_resume_names_the_config_keys_a_config_file_changes_and_needs_the_runs_config(runs_dir, tmux_socket):
    """`--config` (or an exported CONFIG) on a resume replaces the run's whole config: the plan names each key it
    changes beyond --set. Without the run's config.yaml the default config would continue the run: refused."""
    run = runs_dir / "done"
    (run / "checkpoints").mkdir(parents=True)
    _latest(run, "step_00000600.pt")
    (run / "config.yaml").write_text(dump_yaml(load_config(None, ["train.grad_clip=0.5"])))
    other = runs_dir / "other.yaml"
    other.write_text("train:\n  steps: 800\n")
    res = nsa("launch", "--name", "done", "--resume", "--config", str(other), "--set", "train.lr=3e-3", "--dry-run")
    assert res.returncode == 0, res.stderr
    note = [ln for ln in res.stdout.splitlines() if ln.startswith("note: this resume's config changes")]
    assert len(note) == 1 and "train.steps 600 -> 800, train.grad_clip 0.5 -> 1.0;" in note[0], res.stdout
    (run / "config.yaml").unlink()
    res = nsa("launch", "--name", "done", "--resume", "--set", "train.steps=800", "--dry-run")
    assert res.returncode == 1 and _one_error_line(res) == (
        f"error: --resume: {run / 'config.yaml'} is missing, and it is the config this run continues with: put it "
        "back, or pass the run's config with --config FILE"
    )


def test_an_init_from_that_names_no_checkpoint_is_refused_before_tmux(runs_dir, tmux_socket, tmp_path):
    """A mistyped train.init_from failed only in the trainer, after the session had started; a --resume of such a
    run does not read it (the run continues its own checkpoint), so a source gone since is no reason to refuse."""
    gone = tmp_path / "runs-typo" / "a"
    res = nsa("launch", "--name", "b", "--set", f"train.init_from={gone}")
    assert res.returncode == 1
    assert _one_error_line(res) == (
        f"error: init from: train.init_from: {gone} does not exist (give a checkpoint file, or a run directory: its "
        "checkpoints/latest)"
    )
    assert tmux_sessions() == [] and not (runs_dir / "b").exists()
    run = runs_dir / "b"
    _latest(run, "step_00000005.pt")
    (run / "config.yaml").write_text(dump_yaml(load_config(None, [f"train.init_from={gone}"])))
    res = nsa("launch", "--name", "b", "--resume", "--dry-run")
    assert res.returncode == 0, res.stderr


@pytest.fixture
def read_only_bind(tmp_path):
    """ro(dir): ``dir`` bind-mounted read-only onto itself (checkpoints/ on another volume), unmounted at the end."""
    mounted: list = []

    def ro(where) -> None:
        proc = subprocess.run(["mount", "--bind", str(where), str(where)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot bind-mount here ({proc.stderr.strip() or proc.returncode}): needs root")
        mounted.append(where)
        proc = subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot remount read-only here ({proc.stderr.strip() or proc.returncode})")

    yield ro
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], check=True)


def test_resume_onto_read_only_checkpoints_is_refused_before_starting(runs_dir, tmux_socket, read_only_bind):
    """checkpoints/ mounted read-only under a writable run dir: the launch probed the run dir only, started a
    session (exit 0) and the trainer failed at step 0, "checkpoints cannot be written to ...": a run marked crashed."""
    run = runs_dir / "rockpt"
    _latest(run, "step_00000200.pt")
    read_only_bind(run / "checkpoints")
    with pytest.raises(OSError):  # really read-only, root or not
        (run / "checkpoints" / "probe").write_bytes(b"")
    res = nsa("launch", "--name", "rockpt", "--resume")
    assert res.returncode == 1, res.stdout
    line = _one_error_line(res)
    # the trainer's own words (runtime/checkpoint.check_writable)
    assert line == f"error: run dir: checkpoints cannot be written to {run / 'checkpoints'}: Read-only file system"
    assert tmux_sessions() == [] and not (run / "console.log").exists()
    res = nsa("check", "--run-dir", str(run))
    assert res.returncode != 0 and "checkpoints cannot be written to" in res.stdout + res.stderr
