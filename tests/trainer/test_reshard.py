"""--resume --reshard: a checkpoint written by one number of ranks continues on another (real torchrun, 2 gloo
processes on CPU), the documents read again counted as the saved positions say."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from trainer_helpers import REPO, clean_env, train_cmd

from nsa_train.config.loader import load_config
from nsa_train.data import build_tokenizer
from nsa_train.data.sources import open_source
from nsa_train.runtime import checkpoint as ck
from nsa_train.telemetry import schema

pytestmark = pytest.mark.slow

LINE = re.compile(
    r"\[reshard\] (\d+) ranks? -> (\d+): the data continues from position (\d+) of epoch (\d+)'s shuffled order \(of "
    r"(\d+) documents dealt per epoch(?:, the \d+ not trained on among them)?\); "
    r"(\d+) documents? \(([\d,]+) tokens\) read by some ranks before the checkpoint are "
    r"read again; each "
    r"rank's RNG is seeded from train.seed \d+, step (\d+) and its rank"
)


# the tests that copy the module's one finished 1-rank run: one worker trains it for all of them (three tests each
# trained their own, of 9, 3 and 2 steps)
SHARES_THE_ONE_RANK_RUN = pytest.mark.xdist_group("reshard-one-rank-run")


@pytest.fixture(scope="module")
def one_rank_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1-rank run of 9 steps (its checkpoint step_00000009.pt), trained once: each test resumes a copy."""
    run = tmp_path_factory.mktemp("one-rank") / "run"
    proc = train(run, 1, "train.steps=9")
    assert proc.returncode == 0, proc.stderr
    return run


def copy_of(run: Path, to: Path) -> Path:
    """A copy of ``run`` at ``to``, mtimes kept."""
    shutil.copytree(run, to)
    return to


def train(run_dir: Path, ranks: int, *overrides: str, resume: bool = False, reshard: bool = False):
    cmd = train_cmd(run_dir, *overrides, resume=resume, torchrun=ranks if ranks > 1 else 0)
    cmd += ["--reshard"] if reshard else []
    return subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=300)


def expected(run_dir: Path, step: int) -> tuple[int, int, int, int]:
    """(epoch, document, documents read again, their tokens), worked out from the checkpoint's saved positions by
    brute force: the frontier is the least of the ranks' global entries (document x ranks + rank), and read again is
    every entry a rank had begun at or past it."""
    state = torch.load(run_dir / "checkpoints" / ck.checkpoint_file_name(step), weights_only=True)
    world = len(state["data"])
    at = [(d["epoch"], d["doc"] * world + r, d["offset"]) for r, d in enumerate(state["data"])]
    frontier = min((e, g) for e, g, _ in at)
    cfg = load_config(run_dir / schema.CONFIG_YAML, [])
    source, tok = open_source(cfg, 0, 1), build_tokenizer(cfg.data)
    n = source.n_train
    again = []
    for r, (e_r, g_r, off) in enumerate(at):
        for e in range(frontier[0], e_r + 1):
            again += [(e, g, 0) for g in range(r, n, world) if frontier <= (e, g) < (e_r, g_r)]
        if off:
            again.append((e_r, g_r, off))
    documents = tokens = 0
    for e, g, off in again:  # a document begun: its offset; one read whole: its tokens and EOS; one skipped: none
        text = source.trained_text(int(source.epoch_order(e)[g]))
        documents += bool(off or text)
        tokens += off or (len(tok.encode_array(text)) + 1 if text else 0)
    return frontier[0], frontier[1], documents, tokens


def status(run_dir: Path) -> dict:
    nsa = str(Path(sys.executable).parent / "nsa")
    res = subprocess.run([nsa, "status", "--json", str(run_dir)], env=clean_env(), capture_output=True, text=True)
    return json.loads(res.stdout.splitlines()[0])


@pytest.mark.parametrize("old, new", [(2, 1), pytest.param(1, 2, marks=SHARES_THE_ONE_RANK_RUN)])
def test_a_run_continues_on_another_number_of_ranks_with_reshard(
    request: pytest.FixtureRequest, tmp_path: Path, old: int, new: int
) -> None:
    run = tmp_path / "run"
    if old == 1:
        copy_of(request.getfixturevalue("one_rank_run"), run)
    else:
        proc = train(run, old, "train.steps=9")
        assert proc.returncode == 0, proc.stderr
    # without the flag: refused, naming it
    proc = train(run, new, "train.steps=14", resume=True)
    assert proc.returncode != 0 and "error: --resume: " in proc.stderr  # torchrun's own status is 1
    assert f"step_00000009.pt was written by {old} rank" in proc.stderr and "add --reshard to continue on" in (
        proc.stderr
    )
    proc = train(run, new, "train.steps=14", resume=True, reshard=True)
    assert proc.returncode == 0, proc.stderr
    said = LINE.search(proc.stdout)
    assert said, proc.stdout
    epoch, doc, again, tokens = expected(run, 9)
    assert said.groups() == (str(old), str(new), str(doc), str(epoch), said[5], str(again), f"{tokens:,}", "9")
    assert proc.stdout.count("[reshard]") == 1  # rank 0's line only
    run_json = json.loads((run / schema.RUN_JSON).read_text())
    assert run_json["world_size"] == new and run_json["resumed_from_step"] == 9
    assert run_json["resharded"]["from_world_size"] == old and run_json["resharded"]["reread_documents"] == again
    seen = status(run)
    assert (seen["state"], seen["step"], seen["total_steps"], seen["ranks"]) == ("finished", 14, 14, new)
    assert seen["health"] == "ok" and not seen["refused_resume"]
    reshard_said = [w for w in seen["start_warnings"] if w.startswith("resharded from")]
    docs = f"{again} document{'s' * (again != 1)}"
    assert reshard_said == [f"resharded from {old} rank{'s' * (old > 1)} to {new}: {docs} ({tokens:,} tokens) read "
                            "before the checkpoint are read again (docs/data.md)"]  # fmt: skip
    # the resharded run's own checkpoints continue exactly on its new number of ranks, without the flag
    proc = train(run, new, "train.steps=16", resume=True)
    assert proc.returncode == 0 and "[reshard]" not in proc.stdout, proc.stderr
    assert status(run)["step"] == 16


@SHARES_THE_ONE_RANK_RUN
def test_reshard_on_the_same_number_of_ranks_is_an_exact_resume(one_rank_run: Path, tmp_path: Path) -> None:
    run = copy_of(one_rank_run, tmp_path / "run")
    proc = train(run, 1, "train.steps=11", resume=True, reshard=True)
    assert proc.returncode == 0, proc.stderr
    assert "[reshard] step_00000009.pt was written by 1 rank, as many as this run has: it continues exactly" in (
        proc.stdout
    )


@SHARES_THE_ONE_RANK_RUN
def test_reshard_refuses_ranks_that_cannot_split_the_batch(one_rank_run: Path, tmp_path: Path) -> None:
    run = copy_of(one_rank_run, tmp_path / "run")
    heartbeat = (run / "heartbeat_rank0.jsonl").read_bytes()
    # refused before any process group: rank 0 of a world of 3 is enough to meet it
    cmd = [*train_cmd(run, "train.steps=11", resume=True), "--reshard"]
    env = clean_env(WORLD_SIZE="3", RANK="0", LOCAL_RANK="0")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --reshard: train.batch_size: 4 is not divisible by world_size x grad_accum")
    assert "The global batch stays train.batch_size=4 on a reshard" in proc.stderr
    assert (run / "heartbeat_rank0.jsonl").read_bytes() == heartbeat


def test_reshard_goes_with_resume(tmp_path: Path) -> None:
    proc = subprocess.run([*train_cmd(tmp_path / "r"), "--reshard"], cwd=REPO, env=clean_env(), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "--reshard goes with --resume" in proc.stderr
