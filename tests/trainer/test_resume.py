"""--resume continues exactly: on CPU the losses after resuming equal an uninterrupted run's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from trainer_helpers import records, run_train, trained_once

from nsa_train.config.loader import default_config_path
from nsa_train.runtime import checkpoint as ck
from nsa_train.telemetry import schema

pytestmark = pytest.mark.slow

RUN = ("train.steps=8", "train.save_every=4", "train.keep_last=5", "train.eval_every=4")
# the tests that copy the module's one finished 2-step run: one worker trains it for all of them
SHARES_THE_FINISHED_RUN = pytest.mark.xdist_group("resume-finished-run")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-step run (evaluated at its end), trained once: read-only, each test resumes its own copy."""
    run = tmp_path_factory.mktemp("finished") / "run"
    proc = run_train(run, "train.steps=2", "train.eval_every=2")
    assert proc.returncode == 0, proc.stderr
    return run


# the tests that copy the module's one finished 4-step run (checkpoints at steps 2 and 4, evaluated at both; grad_clip
# and keep_last off their defaults): one worker trains it for all of them (three tests each trained their own)
SHARES_THE_FOUR_STEP_RUN = pytest.mark.xdist_group("resume-four-step-run")
FOUR_STEPS = ("train.steps=4", "train.save_every=2", "train.eval_every=2", "train.grad_clip=0.5", "train.keep_last=9")


@pytest.fixture(scope="module")
def four_step_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run named `r` (FOUR_STEPS), trained once: read-only, each test works on its own copy."""
    return trained_once(tmp_path_factory, "four-steps", "r", *FOUR_STEPS)


def copy_of(run: Path, to: Path) -> Path:
    """A copy of ``run`` at ``to`` (named as it, `run`, which the messages of a run's name say), mtimes kept."""
    shutil.copytree(run, to)
    return to


def losses(run_dir: Path) -> dict[int, float]:
    out: dict[int, float] = {}
    for r in records(run_dir):
        if r["kind"] == "progress":
            out[r["step"]] = r["loss"]  # a resumed run rewrites later steps: the last one wins
    return out


def test_resume_from_mid_checkpoint_matches_uninterrupted(tmp_path: Path) -> None:
    full = tmp_path / "full"
    proc = run_train(full, *RUN)
    assert proc.returncode == 0, proc.stderr

    # a copy of the run as it was at step 4: the step-4 checkpoint is the latest
    cut = tmp_path / "cut"
    (cut / "checkpoints").mkdir(parents=True)
    shutil.copy(full / "checkpoints" / ck.checkpoint_file_name(4), cut / "checkpoints")
    shutil.copy(full / schema.CONFIG_YAML, cut)
    ck.write_pointer(cut / "checkpoints", schema.LATEST_POINTER, ck.checkpoint_file_name(4))
    # step 8's file written after step 4's, its pointer never moved (a kill between the two): said, not taken
    shutil.copy(full / "checkpoints" / ck.checkpoint_file_name(8), cut / "checkpoints")
    proc = run_train(cut, *RUN, resume=True)
    assert proc.returncode == 0, proc.stderr
    assert "[resume]" in proc.stdout
    newer = cut / "checkpoints" / ck.checkpoint_file_name(8)
    assert f"warning: {newer} was written after the checkpoint `latest` names" in proc.stderr
    assert "this run continues from step 4" in proc.stderr
    assert "lr schedule" not in proc.stderr  # the same schedule: nothing to say

    a, b = losses(full), losses(cut)
    assert sorted(b) == [5, 6, 7, 8]
    for step in b:
        assert b[step] == a[step], (step, a, b)  # bit-exact on CPU
    evals_a = {r["step"]: r["val_loss"] for r in records(full) if r["kind"] == "eval"}
    evals_b = {r["step"]: r["val_loss"] for r in records(cut) if r["kind"] == "eval"}
    assert evals_b[8] == evals_a[8]
    summary = json.loads((cut / schema.SUMMARY_JSON).read_text())
    assert summary["tokens_seen"] == 8 * 128 and summary["steps_completed"] == 8


def test_resume_without_checkpoint_is_one_error(tmp_path: Path) -> None:
    proc = run_train(tmp_path / "empty", "train.steps=4", resume=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # no such directory: said as such, and none is left behind (an empty one was)
    assert proc.stderr.strip() == f"error: --resume: no run directory {tmp_path / 'empty'}"
    assert not (tmp_path / "empty").exists()
    (tmp_path / "afile").write_text("x")  # said to be no directory at all, as if missing
    proc = run_train(tmp_path / "afile", "train.steps=4", resume=True)
    assert proc.stderr.strip() == f"error: --resume: {tmp_path / 'afile'} is a file, not a run directory"
    (tmp_path / "empty").mkdir()
    proc = run_train(tmp_path / "empty", "train.steps=4", resume=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no checkpoint" in proc.stderr


@SHARES_THE_FINISHED_RUN
def test_resume_into_a_different_model_is_one_error_naming_the_key(tmp_path: Path, finished_run: Path) -> None:
    run = copy_of(finished_run, tmp_path / "run")
    proc = run_train(run, "train.steps=4", "model.dim=48", resume=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "[data]" not in proc.stdout  # refused before the data and the model
    assert "cannot continue with model.dim 32 -> 48: its checkpoint's weights depend on it" in proc.stderr
    # a config given without the run's config.yaml to compare with: the strict load of the weights still refuses,
    # by tensor name
    (run / schema.CONFIG_YAML).unlink()
    proc = run_train(run, "train.steps=4", "model.dim=48", resume=True, CONFIG=str(default_config_path()))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "does not fit this model" in proc.stderr


@SHARES_THE_FINISHED_RUN
def test_a_resume_trains_with_its_configs_weight_decay_and_betas(tmp_path: Path, finished_run: Path) -> None:
    """Review revBP: the optimizer's state restored each group's weight_decay and betas as the checkpoint saved
    them, so a resume's train.weight_decay=0.5 and beta2=0.5 (in its config.yaml, and said by its warnings as what
    the run goes on with) were never used."""
    import torch

    run = copy_of(finished_run, tmp_path / "run")
    proc = run_train(run, "train.steps=3", "train.weight_decay=0.5", "train.beta1=0.8", "train.beta2=0.5", resume=True)
    assert proc.returncode == 0, proc.stderr
    state = torch.load(run / "checkpoints" / ck.checkpoint_file_name(3), map_location="cpu", weights_only=True)
    groups = [(g["weight_decay"], tuple(g["betas"])) for g in state["optimizer"]["param_groups"]]
    assert groups == [(0.5, (0.8, 0.5)), (0.0, (0.8, 0.5))], groups  # decay on matrices only, as at a start
    # what the run had before stays: the moments and each parameter's step count (2 steps, then the third)
    assert all(int(s["step"]) == 3 for s in state["optimizer"]["state"].values())


@SHARES_THE_FINISHED_RUN
def test_a_resume_at_another_batch_size_plans_the_tokens_the_run_trains(tmp_path: Path, finished_run: Path) -> None:
    """Review revBF: resumed at another train.batch_size, run.json's data_summary, the [data] line and `nsa status`
    planned every step at the new size (0.83 epochs where the run trained 1.62): the tokens trained so far, then
    the rest of the steps at the new size."""
    run = copy_of(finished_run, tmp_path / "run")
    proc = run_train(run, "train.steps=4", "train.batch_size=2", resume=True)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((run / schema.RUN_JSON).read_text())["data_summary"]
    planned = 2 * 4 * 32 + 2 * 2 * 32  # steps 1-2 at batch 4, steps 3-4 at batch 2, seq 32
    assert s["planned_tokens"] == planned and s["epochs"] == round(planned / s["train_tokens"], 2), s
    assert "[data] 256 tokens trained to step 2, then 64 a step to step 4: " in proc.stdout, proc.stdout


@SHARES_THE_FINISHED_RUN
def test_a_refused_resume_leaves_the_runs_config_and_summary_as_they_were(tmp_path: Path, finished_run: Path) -> None:
    """A resume with another seq_len is refused (by the config comparison, and behind it by the data stream). It
    used to rewrite config.yaml first, so the next plain --resume (which reads config.yaml) failed the same way
    until the user guessed the old value, and to replace summary.json with one of 0 steps and no val loss, which
    `nsa report` then showed."""
    run = copy_of(finished_run, tmp_path / "run")
    before = (run / schema.CONFIG_YAML).read_text()
    summary = (run / schema.SUMMARY_JSON).read_text()
    heartbeat = (run / "heartbeat_rank0.jsonl").read_bytes()
    assert json.loads(summary)["final_val_loss"] is not None
    proc = run_train(run, "train.steps=4", "train.seq_len=48", resume=True)
    assert proc.returncode == 2 and "train.seq_len 32 -> 48: its checkpoint's data position" in proc.stderr
    assert (run / schema.CONFIG_YAML).read_text() == before
    # told before the boot record: the finished run's records are as they were (its boot and error records made
    # `nsa status` call the finished run crashed, CRITICAL)
    assert (run / "heartbeat_rank0.jsonl").read_bytes() == heartbeat and "[boot]" not in proc.stdout
    assert (run / schema.SUMMARY_JSON).read_text() == summary
    # a config given without config.yaml to compare with (the same config, from the defaults and the overrides):
    # the data position's own check refuses, and still writes neither file
    (run / schema.CONFIG_YAML).unlink()
    default = str(default_config_path())
    proc = run_train(run, "train.steps=4", "train.seq_len=48", resume=True, CONFIG=default)
    assert proc.returncode == 2 and "cannot resume exactly" in proc.stderr, proc.stderr
    assert not (run / schema.CONFIG_YAML).exists()
    assert (run / schema.SUMMARY_JSON).read_text() == summary
    assert [r["reason"] for r in records(run) if r["kind"] == "end"][-1] == "error"  # the attempt is still on record
    again = run_train(run, "train.steps=4", resume=True, CONFIG=default)  # the run's settings again
    assert again.returncode == 0, again.stderr
    after = (run / schema.CONFIG_YAML).read_text()  # recorded once the checkpoint accepted it
    assert "  steps: 4\n" in after and "seq_len: 48" not in after


@SHARES_THE_FINISHED_RUN
def test_a_resume_by_another_number_of_ranks_is_refused_before_its_boot_record(
    tmp_path: Path, finished_run: Path
) -> None:
    """A finished 1-rank run resumed by 2 ranks (torchrun by hand) was refused only once the checkpoint loaded, after
    the attempt's boot record: the finished run then read `crashed`, CRITICAL. Rank 0's heartbeat tells which ranks
    wrote the checkpoint, so it is refused before anything is written."""
    run = copy_of(finished_run, tmp_path / "run")
    heartbeat = (run / "heartbeat_rank0.jsonl").read_bytes()
    # the refusal comes before any process group: rank 0 of a world of 2 is enough to meet it
    proc = run_train(run, "train.steps=4", resume=True, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0")
    assert proc.returncode == 2, proc.stderr
    assert "error: --resume: " in proc.stderr
    assert "step_00000002.pt was written by 1 rank, this run has 2" in proc.stderr
    assert (run / "heartbeat_rank0.jsonl").read_bytes() == heartbeat and "[boot]" not in proc.stdout
    assert not (run / "heartbeat_rank1.jsonl").exists()


def test_a_resume_on_changed_data_files_is_refused_before_its_boot_record(tmp_path: Path) -> None:
    """A file added to data.path: the resume was refused once the data opened, after its boot record, and the
    finished run read `crashed`, CRITICAL. run.json lists the files the run's start read (names, sizes), and a
    resume on others is refused before anything is written; nsa launch --resume refuses it too."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b"):
        (data / f"{name}.jsonl").write_text(
            "".join(json.dumps({"text": f"{name} document {i} " * 40}) + "\n" for i in range(30))
        )
    run = tmp_path / "run"
    sets = ("data.source=local", f"data.path={data}", "data.val_docs=4")
    assert run_train(run, "train.steps=2", *sets).returncode == 0
    listing = json.loads((run / schema.RUN_JSON).read_text())["data_listing"]
    assert [e[:2] for e in listing] == [["a.jsonl", 16790], ["b.jsonl", 16790]]
    heartbeat = (run / "heartbeat_rank0.jsonl").read_bytes()
    shutil.copy(data / "a.jsonl", data / "zz.jsonl")
    proc = run_train(run, "train.steps=4", *sets, resume=True)
    assert proc.returncode == 2, proc.stderr
    assert f"error: --resume: data.path {data} changed since the run's last start: 2 files then, 3 files now " in (
        proc.stderr
    )
    assert "(zz.jsonl added)" in proc.stderr and "Restore the files or start a new run" in proc.stderr
    # the run directory whose weights a new run would start from, named, not a placeholder
    assert f"weights (--set train.init_from={run}, in another --run-dir)" in proc.stderr
    assert (run / "heartbeat_rank0.jsonl").read_bytes() == heartbeat and "[boot]" not in proc.stdout
    from nsa_tui.errors import UserError
    from nsa_tui.launch.launcher import LaunchRequest, plan_launch

    with pytest.raises(UserError, match=r"--resume: data.path .* changed since the run's last start"):
        plan_launch(LaunchRequest(run_dir=str(run), resume=True, overrides=["train.steps=4"]), environ={})
    (data / "zz.jsonl").unlink()
    assert run_train(run, "train.steps=4", *sets, resume=True).returncode == 0  # the same files again


def test_a_resume_on_a_file_edited_at_the_same_size_is_refused_before_its_boot_record(tmp_path: Path) -> None:
    """A .txt file edited in place, its size and its paragraphs kept: run.json listed names and sizes only, so the
    resume passed the early check and trained on the changed text without a word (with another document count, it
    was refused only after its boot record). Each listed file carries a digest of a sample of its bytes: refused
    before anything is written, by the trainer and nsa launch alike. A run.json of the previous version, whose
    listing is [name, bytes] pairs, resumes as before."""
    data = tmp_path / "data"
    data.mkdir()
    for name in "ab":
        (data / f"{name}.txt").write_text("\n\n".join(f"{name} {i} " + "the quick brown fox " * 12 for i in range(40)))
    run = tmp_path / "run"
    sets = ("data.source=local", f"data.path={data}", "data.val_docs=4")
    assert run_train(run, "train.steps=2", *sets).returncode == 0
    listing = json.loads((run / schema.RUN_JSON).read_text())["data_listing"]
    assert [e[0] for e in listing] == ["a.txt", "b.txt"]
    assert all(len(e) == len(schema.DATA_LISTING_ENTRY) and len(e[2]) == 16 for e in listing)
    heartbeat = (run / "heartbeat_rank0.jsonl").read_bytes()
    nsa = [sys.executable, "-m", "nsa_tui"]
    before = subprocess.run([*nsa, "status", "--json", str(run)], capture_output=True, text=True, timeout=60).stdout
    text = (data / "b.txt").read_text()
    (data / "b.txt").write_text(text.replace("quick", "quiet", 1))  # the same size, the same paragraphs
    proc = run_train(run, "train.steps=4", *sets, resume=True)
    assert proc.returncode == 2, proc.stderr
    assert (
        f"error: --resume: data.path {data} changed since the run's last start: 2 files then, 2 files now (b.txt "
        "edited, the same size); the data position and the validation holdout would not be the same documents. "
        "Restore the files or start a new run"
    ) in proc.stderr
    assert (run / "heartbeat_rank0.jsonl").read_bytes() == heartbeat and "[boot]" not in proc.stdout
    after = subprocess.run([*nsa, "status", "--json", str(run)], capture_output=True, text=True, timeout=60).stdout
    assert json.loads(after)["state"] == json.loads(before)["state"] == "finished"
    from nsa_tui.errors import UserError
    from nsa_tui.launch.launcher import LaunchRequest, plan_launch

    with pytest.raises(UserError, match=r"--resume: data.path .* \(b\.txt edited, the same size\)"):
        plan_launch(LaunchRequest(run_dir=str(run), resume=True, overrides=["train.steps=4"]), environ={})
    (data / "b.txt").write_text(text)
    run_json = json.loads((run / schema.RUN_JSON).read_text())
    run_json["data_listing"] = [e[:2] for e in listing]  # as the previous version wrote it
    (run / schema.RUN_JSON).write_text(json.dumps(run_json))
    proc = run_train(run, "train.steps=4", *sets, resume=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / schema.RUN_JSON).read_text())["data_listing"] == listing


def test_a_resume_refused_at_the_data_phase_leaves_a_finished_run_finished(tmp_path: Path) -> None:
    """The corpus's contents changed, its file names and sizes did not, and run.json's listing was written before
    listings held samples of the bytes: it passes, and the data stream refuses the resume once it has read the files
    (another document count), after the attempt's boot record.
    `nsa status` then called the finished run crashed, CRITICAL (the refused attempt's end record was the latest),
    though its checkpoints, config and summary were as they were. The end record says the resume was refused, and
    the tools judge the run by the attempt before it."""
    data = tmp_path / "data"
    data.mkdir()
    text = "\n\n".join(f"paragraph {i} " + "the quick brown fox " * 12 for i in range(60)) + "\n"
    (data / "a.txt").write_text(text)
    run = tmp_path / "run"
    sets = ("data.source=local", f"data.path={data}", "data.val_docs=4")
    assert run_train(run, "train.steps=2", *sets).returncode == 0
    summary = (run / schema.SUMMARY_JSON).read_text()
    run_json = json.loads((run / schema.RUN_JSON).read_text())
    run_json["data_listing"] = [e[:2] for e in run_json["data_listing"]]  # names and sizes, as the previous version
    (run / schema.RUN_JSON).write_text(json.dumps(run_json))
    (data / "a.txt").write_text(text.replace("\n\n", " x", 1))  # two paragraphs one: the same size
    proc = run_train(run, "train.steps=4", *sets, resume=True)
    assert proc.returncode == 2 and "[boot]" in proc.stdout, proc.stderr  # refused late: after its boot record
    assert "changed since the checkpoint" in proc.stderr
    latest = ck.read_pointer(run / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
    assert f"weights (--set train.init_from={latest}, in another --run-dir)" in proc.stderr
    end = [r for r in records(run) if r["kind"] == "end"][-1]
    assert (end["reason"], end["exit_status"], end.get(schema.RESUME_REFUSED)) == ("error", 2, True)
    assert (run / schema.SUMMARY_JSON).read_text() == summary
    nsa = [sys.executable, "-m", "nsa_tui"]
    status = subprocess.run([*nsa, "status", "--json", str(run)], capture_output=True, text=True, timeout=60)
    v = json.loads(status.stdout)
    assert status.returncode == 0, status.stdout
    assert (v["state"], v["health"], v["alerts"], v["step"], v["total_steps"]) == ("finished", "ok", [], 2, 2)
    assert "changed since the checkpoint" in v["refused_resume"]
    text_out = subprocess.run([*nsa, "status", str(run)], capture_output=True, text=True, timeout=60).stdout
    assert "resume refused (the run is as its last attempt left it): data.path" in " ".join(text_out.split())


def test_a_corpus_moved_to_another_place_continues_and_other_files_there_do_not(tmp_path: Path) -> None:
    """Moved to another disk (data.path changed, the same files): refused as `data.source 'local files A' ->
    'local files B'`, naming a key the user had not changed and advising the path that was gone. The files are
    compared by run.json's listing (names relative to data.path, sizes, samples of their bytes), as a resume in place
    is."""
    old, new = tmp_path / "disk1" / "corpus", tmp_path / "disk2" / "corpus"
    old.mkdir(parents=True)
    (old / "a.jsonl").write_text("".join(json.dumps({"text": f"document {i} " * 40}) + "\n" for i in range(30)))
    run = tmp_path / "run"
    assert run_train(run, "train.steps=2", "data.source=local", f"data.path={old}", "data.val_docs=4").returncode == 0
    new.parent.mkdir()
    shutil.copytree(old, new)
    (new / "a.jsonl").write_text((new / "a.jsonl").read_text() + json.dumps({"text": "one more"}) + "\n")
    proc = run_train(run, "train.steps=4", f"data.path={new}", resume=True)
    assert proc.returncode == 2 and f"cannot continue with data.path '{old}' -> '{new}'" in proc.stderr, proc.stderr
    # which file is not the run's: moved and changed, it read as if only the path had (the advice: the run's path)
    size = (old / "a.jsonl").stat().st_size
    grown = f"(not the files the run's last start read: a.jsonl {size} -> {(new / 'a.jsonl').stat().st_size} bytes)"
    assert grown in " ".join(proc.stderr.split()), proc.stderr
    (new / "a.jsonl").write_text((old / "a.jsonl").read_text().replace("document 7", "document X"))  # same size
    proc = run_train(run, "train.steps=4", f"data.path={new}", resume=True)
    assert proc.returncode == 2 and "(not the files the run's last start read: a.jsonl edited, the same size)" in (
        " ".join(proc.stderr.split())
    ), proc.stderr
    shutil.copy(old / "a.jsonl", new / "a.jsonl")
    shutil.rmtree(old)  # the original files, moved
    proc = run_train(run, "train.steps=4", f"data.path={new}", resume=True)
    assert proc.returncode == 0, proc.stderr
    assert f"data.path {old} -> {new}: the same files as the run's last start (run.json's data_listing)" in proc.stderr
    assert [r["step"] for r in records(run) if r["kind"] == "progress"][-1] == 4
    from nsa_train.config import load_config, resume_conflicts

    saved = load_config(run / schema.CONFIG_YAML)
    elsewhere = load_config(run / schema.CONFIG_YAML, [f"data.path={tmp_path}"])
    assert resume_conflicts(saved, elsewhere) == [("data.path", f"{str(new)!r} -> {str(tmp_path)!r}")]


def test_extending_a_finished_run_says_how_the_lr_moves(tmp_path: Path) -> None:
    """train.steps 4 -> 8 after the run ended: the cosine restarts from higher up. Said on the console and in the
    train phase record (the dashboard's events), with the --set that keeps the lr the run ended with."""
    run = tmp_path / "r"
    assert run_train(run, "train.steps=4", "train.lr=1e-3", "train.min_lr=1e-4").returncode == 0
    proc = run_train(run, "train.steps=8", "train.lr=1e-3", "train.min_lr=1e-4", resume=True)
    assert proc.returncode == 0, proc.stderr
    want = "the lr schedule changes with this resume (train.steps 4 -> 8): step 5 trains at lr 5.50e-04"
    assert f"warning: {want}, where the run's schedule had 1.00e-04 (5.50x)" in proc.stderr, proc.stderr
    assert "--set train.lr=1.00e-04 --set train.min_lr=1.00e-04" in proc.stderr
    phase = [r for r in records(run) if r["kind"] == "phase" and r["phase"] == "train"][-1]
    assert phase["start_step"] == 4 and any(w.startswith(want) for w in phase["warnings"])
    # run.json keeps them too: the tools' `at start` lines once a long run's phase records leave their tail
    assert json.loads((run / schema.RUN_JSON).read_text())["start_warnings"] == phase["warnings"]
    lrs = {r["step"]: r["lr"] for r in records(run) if r["kind"] == "progress"}
    assert lrs[4] == pytest.approx(1e-4) and lrs[5] == pytest.approx(5.5e-4)  # what it said is what ran


@SHARES_THE_FOUR_STEP_RUN
def test_a_config_file_given_on_a_resume_names_what_it_changes_beyond_the_set(
    tmp_path: Path, four_step_run: Path
) -> None:
    """A CONFIG left exported replaced the run's whole config on a resume: grad_clip and keep_last changed (and
    keep_last pruned) with nothing said but the config's path. Each key changed beyond this command's --set is
    named; and train.seed, which a resume cannot apply, is said to do nothing."""
    run = copy_of(four_step_run, tmp_path / "r")  # trained with train.grad_clip=0.5, train.keep_last=9
    proc = run_train(run, "train.steps=6", "train.seed=999", resume=True, CONFIG=str(default_config_path()))
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if line.startswith("warning: this resume's config changes")]
    assert said and "train.grad_clip 0.5 -> 1.0, train.keep_last 9 -> 3;" in said[0], proc.stderr
    assert "train.steps" not in said[0] and "train.seed" not in said[0]  # given with --set: what the user asked
    assert "warning: train.seed has no effect on a resume" in proc.stderr
    # the run's own config.yaml (now with these values) and only --set: nothing beyond it to name
    again = run_train(run, "train.steps=8", resume=True)
    assert again.returncode == 0 and "this resume's config changes" not in again.stderr, again.stderr


@SHARES_THE_FOUR_STEP_RUN
def test_a_resume_without_the_runs_config_yaml_is_refused(tmp_path: Path, four_step_run: Path) -> None:
    """Only checkpoints/ copied to another machine: the resume trained on with the default config (another lr,
    keep_last) without a word."""
    run = copy_of(four_step_run, tmp_path / "r")  # its grad_clip and keep_last are not the default config's
    (run / schema.CONFIG_YAML).unlink()
    proc = run_train(run, "train.steps=6", resume=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: --resume: {run / schema.CONFIG_YAML} is missing, and it is the config this run continues with: put "
        "it back, or pass the run's config with --config FILE"
    )


@SHARES_THE_FOUR_STEP_RUN
def test_a_resume_after_a_fresh_start_over_an_earlier_run_keeps_that_runs_rows(
    tmp_path: Path, four_step_run: Path
) -> None:
    """`--force` over a finished run appends its rows; its resume cut training.csv back by step alone, so it deleted
    the earlier run's steps after the checkpoint's and kept its first ones beside its own (step 1 twice)."""
    import subprocess

    from trainer_helpers import REPO, clean_env, train_cmd

    run = copy_of(four_step_run, tmp_path / "r")  # the earlier run: steps 1-4 logged, evaluated at 2 and 4
    fast = ("train.log_every=1", "train.save_every=2", "train.eval_every=2")
    fresh = subprocess.run(
        [*train_cmd(run, "train.steps=2", *fast), "--force"], cwd=REPO, env=clean_env(), capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stderr
    proc = run_train(run, "train.steps=4", *fast, resume=True)
    assert proc.returncode == 0, proc.stderr

    def steps(name: str) -> list[int]:
        return [int(line.split(",")[0]) for line in (run / name).read_text().splitlines()[1:]]

    assert steps(schema.TRAINING_CSV) == [1, 2, 3, 4, 1, 2, 3, 4]
    assert steps(schema.VAL_CSV) == [2, 4, 2, 4]


def test_a_copy_of_a_run_without_its_mtimes_resumes_and_prunes_by_write_order(tmp_path: Path) -> None:
    """`cp -r` (scp -r without -p, rsync -r without -t) gives the copied files new mtimes in directory order. The
    trainer went by mtimes: the resumed copy warned that step 2 was written after `latest` and said to point
    `latest` back at it, and train.keep_last then deleted steps 4 and 6 and kept step 2."""
    live = tmp_path / "live"
    proc = run_train(live, "train.steps=6", "train.save_every=2", "train.keep_last=3")
    assert proc.returncode == 0, proc.stderr
    ckpts = live / schema.CHECKPOINT_DIR
    assert [p.name for p in ck.list_checkpoints(ckpts)] == [ck.checkpoint_file_name(s) for s in (2, 4, 6)]
    copy = tmp_path / "copy"
    shutil.copytree(live, copy, copy_function=shutil.copyfile)  # new mtimes, as cp -r
    (copy / schema.CHECKPOINT_DIR / ck.checkpoint_file_name(2)).touch()  # copied last
    proc = run_train(copy, "train.steps=8", "train.save_every=1", "train.keep_last=3", resume=True)
    assert proc.returncode == 0, proc.stderr
    assert "at step 6" in proc.stdout
    assert "written after" not in proc.stderr, proc.stderr
    kept = [p.name for p in ck.list_checkpoints(copy / schema.CHECKPOINT_DIR)]
    assert kept == [ck.checkpoint_file_name(s) for s in (6, 7, 8)], kept
    run_json = json.loads((copy / schema.RUN_JSON).read_text())
    assert "written after" not in json.dumps(run_json)  # nor what nsa status shows as the start's warnings
    # a copied (moved, renamed) run is the same run: its id travels in run.json, not in its path
    assert run_json[schema.RUN_ID] == json.loads((live / schema.RUN_JSON).read_text())[schema.RUN_ID]


@SHARES_THE_FINISHED_RUN
def test_a_checkpoint_of_another_run_is_refused_and_one_from_before_run_ids_resumes(
    tmp_path: Path, finished_run: Path
) -> None:
    """Another run's checkpoint of the same shape, copied in and `latest` pointed at it, was continued without a word
    (its optimizer, schedule and data position are that run's). A checkpoint records its run's id (run.json's,
    made at the first start); one of another id is refused, naming both. One written before ids resumes, said."""
    import torch

    run = copy_of(finished_run, tmp_path / "run")
    run_id = json.loads((run / schema.RUN_JSON).read_text())[schema.RUN_ID]
    other = tmp_path / "other"
    shutil.copytree(run, other)  # as another run of the same shape with `run`'s checkpoint copied in
    other_json = json.loads((other / schema.RUN_JSON).read_text())
    other_json[schema.RUN_ID] = "another-runs-id"
    (other / schema.RUN_JSON).write_text(json.dumps(other_json))
    proc = run_train(other, "train.steps=3", resume=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    latest = ck.read_pointer(other / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
    said = f"--resume: {latest} belongs to another run (run 'run', id {run_id}) than {other} (id another-runs-id)"
    assert said in proc.stderr, proc.stderr
    # its weights are not lost: the refusal names the start that takes them
    assert f"start a new run from its weights in another --run-dir (--set train.init_from={latest})" in proc.stderr
    # a checkpoint from before run ids, in the run moved to another directory: resumed, the run keeps its id
    moved = tmp_path / "moved"
    run.rename(moved)
    path = ck.read_pointer(moved / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
    state = torch.load(path, weights_only=True)
    del state[schema.CKPT_RUN_ID], state[schema.CKPT_RUN_NAME]
    torch.save(state, path)
    proc = run_train(moved, "train.steps=3", resume=True)
    assert proc.returncode == 0, proc.stderr
    assert f"{path.name} records no run id (written before nsa recorded one)" in proc.stderr, proc.stderr
    assert json.loads((moved / schema.RUN_JSON).read_text())[schema.RUN_ID] == run_id
    newest = ck.read_pointer(moved / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
    assert torch.load(newest, weights_only=True)[schema.CKPT_RUN_ID] == run_id


@SHARES_THE_FOUR_STEP_RUN
def test_an_earlier_runs_checkpoints_left_by_a_force_start_are_not_offered_and_are_said_to_be_its(
    tmp_path: Path, four_step_run: Path
) -> None:
    """A --force start over an earlier run in the same directory keeps that run's checkpoints, with its run id. A
    --resume without `latest` offered the newest of them (`echo step_00000004.pt > .../latest`); the trainer then
    refused it as another run's "(run 'r', ...) than .../r", to be resumed "from its own directory", which is the
    new run's now; and nsa sample on it gave the earlier run's text without a word."""
    from fixtures.cli import invoke, one_error
    from trainer_helpers import REPO, clean_env, train_cmd

    from nsa_train.runtime.resumable import resume_refusal
    from nsa_tui.commands.sample import run_sample

    run = copy_of(four_step_run, tmp_path / "r")  # the earlier run: its checkpoints at steps 2 and 4
    earlier = json.loads((run / schema.RUN_JSON).read_text())[schema.RUN_ID]
    fresh = subprocess.run(
        [*train_cmd(run, "train.steps=3"), "--force"], cwd=REPO, env=clean_env(), capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stderr
    new = json.loads((run / schema.RUN_JSON).read_text())[schema.RUN_ID]
    ckpts, names = run / schema.CHECKPOINT_DIR, [ck.checkpoint_file_name(s) for s in (3, 2, 4)]
    pointer = ckpts / schema.LATEST_POINTER
    pointer.unlink()  # the new run's, as a save cut before its pointer, or removed by hand
    said = resume_refusal(run, None, [])
    assert said == (
        f"--resume: no checkpoint in {ckpts} (no 'latest' pointer). {ckpts} holds {names[0]}: to continue from one, "
        f"write its name into {pointer} (echo {names[0]} > {pointer}) and resume again. {ckpts} also holds "
        f"{names[1]}, {names[2]}, written by another run than this one (an earlier run in this directory, which a "
        "--force start replaced, or copied in): a --resume refuses them"
    )
    launcher = one_error(invoke("launch", "--resume", "--run-dir", str(run), "--dry-run"))
    assert f"(echo {names[0]} > {pointer})" in launcher and f"also holds {names[1]}, {names[2]}, written" in launcher
    pointer.write_text(names[2] + "\n")  # what the hint said before
    said = resume_refusal(run, None, [])
    assert said is not None and said.startswith(
        f"--resume: {ckpts / names[2]} was written by an earlier run in this directory (run 'r', id {earlier}), which "
        f"a --force start replaced: {run} is run id {new} now, and a run continues its own checkpoints only. Start a "
        "new run"
    ), said
    # its weights go to a new run in another directory only: a start here would overwrite or prune the checkpoint
    assert (
        f"another --run-dir; from that checkpoint's weights, another --run-dir with --set train.init_from="
        f"{ckpts / names[2]}: a start here would overwrite or prune it); or"
    ) in said
    assert one_error(invoke("launch", "--resume", "--run-dir", str(run), "--dry-run")) == f"error: {said}"
    out = run_sample(str(run), ["x"], max_new_tokens=1, which="latest")
    assert out["note"] == (
        f"{names[2]} was written by an earlier run in this directory (run 'r', id {earlier}), which a --force start "
        f"replaced: these are that run's weights, not those of {run} (id {new})"
    )
    pointer.write_text(names[0] + "\n")
    assert run_sample(str(run), ["x"], max_new_tokens=1, which="latest")["note"] is None


@SHARES_THE_FINISHED_RUN
def test_a_checkpoint_of_other_nsa_maths_or_an_unchecked_data_order_resumes_with_a_warning(
    tmp_path: Path, finished_run: Path
) -> None:
    """Review revBI: today's trainer resumed a checkpoint of an nsa from before Eq. 9 changed (5e0335d) without a
    word, and every step after it differed from the uninterrupted run's (the same step, data and lr, other block
    scores); nor did a data position saved before its order digest say it went unchecked. Checkpoints record their
    NSA maths version; a resume of another, or of none, says so in its start warnings, as does one of an unchecked
    order; one of this code's says neither."""
    import torch

    from nsa_train.nsa.maths_version import NSA_MATHS

    def resumed(name: str, edit) -> tuple[str, list[str], Path]:
        run = copy_of(finished_run, tmp_path / name)
        path = ck.read_pointer(run / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
        state = torch.load(path, weights_only=True)
        assert state[schema.CKPT_NSA_MATHS] == NSA_MATHS and all(d["order_digest"] for d in state["data"])
        edit(state)
        torch.save(state, path)
        proc = run_train(run, "train.steps=3", resume=True)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        return proc.stderr, json.loads((run / schema.RUN_JSON).read_text())[schema.RUN_START_WARNINGS], path

    def older(state: dict) -> None:  # as an nsa before either record wrote it
        del state[schema.CKPT_NSA_MATHS]
        for d in state["data"]:
            del d["order_digest"], d["drawn_by"]

    stderr, warnings, path = resumed("older", older)
    maths = [w for w in warnings if "NSA maths" in w]
    assert len(maths) == 1 and maths[0].startswith(f"{path.name} records no NSA maths version"), warnings
    assert f"this nsa computes version {NSA_MATHS}" in maths[0] and "the resumed steps choose" in maths[0]
    order = [w for w in warnings if "records no digest of its holdout and epoch order" in w]
    assert len(order) == 1 and order[0].startswith(f"{path.name}'s data position"), warnings
    assert maths[0] in stderr and order[0] in stderr
    # the checkpoints it writes from then on record both
    newest = torch.load(ck.read_pointer(path.parent, schema.LATEST_POINTER), weights_only=True)
    assert newest[schema.CKPT_NSA_MATHS] == NSA_MATHS and all(d["order_digest"] for d in newest["data"])

    _, warnings, path = resumed("v1", lambda state: state.update({schema.CKPT_NSA_MATHS: 1}))
    assert [w for w in warnings if "NSA maths" in w] == [
        f"{path.name} was trained with NSA maths version 1 (every nsa before 5e0335d of 2026-12-07: Eq. 9 counted each "
        "compressed block overlapping a selection block once); this nsa computes version 2 (from 5e0335d on: Eq. 9 as "
        "the paper prints it, each overlapping compressed block weighted by its overlap in strides): the resumed steps "
        "choose their selected blocks by other scores than the weights were trained with (docs/nsa.md, Maths "
        "versions)"
    ], warnings

    # written before the maths record but after the order digest (97c3fb8, after Eq. 9 changed): this code's maths
    _, warnings, _ = resumed("digested", lambda state: state.pop(schema.CKPT_NSA_MATHS))
    assert not [w for w in warnings if "NSA maths" in w or "digest" in w], warnings


@SHARES_THE_FINISHED_RUN
def test_a_key_from_a_newer_nsa_in_the_runs_config_says_where_it_likely_comes_from(
    tmp_path: Path, finished_run: Path
) -> None:
    """Review revBI: an older nsa resuming a newer one's run met `unknown key 'monitor.min_mfu' (known: ...)` alone,
    which reads as the user's mistake; `nsa sample` of such a checkpoint likewise. The run's saved config (and a
    checkpoint's stored one) say a newer nsa wrote it; a user's own config file does not."""
    import yaml
    from fixtures.cli import invoke

    run = copy_of(finished_run, tmp_path / "run")
    saved = yaml.safe_load((run / schema.CONFIG_YAML).read_text())
    saved["monitor"]["future_knob"] = 1
    (run / schema.CONFIG_YAML).write_text(yaml.safe_dump(saved))
    proc = run_train(run, "train.steps=3", resume=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    sha = json.loads((run / schema.RUN_JSON).read_text())[schema.RUN_GIT_SHA]
    assert "unknown key 'monitor.future_knob'" in proc.stderr and (
        f"is the run's saved config: a key this nsa does not know comes from a newer nsa (its run.json names git_sha "
        f"{sha[:12]}): update nsa here" in proc.stderr
    ), proc.stderr
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(saved))
    proc = run_train(tmp_path / "other", "train.steps=3", CONFIG=str(mine))
    assert proc.returncode == 2 and "unknown key 'monitor.future_knob'" in proc.stderr
    assert "newer nsa" not in proc.stderr, proc.stderr
    # a checkpoint's stored config, as `nsa sample` reads it
    import torch

    path = ck.read_pointer(finished_run / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
    state = torch.load(path, weights_only=True)
    state["config"]["monitor"]["future_knob"] = 1
    torch.save(state, tmp_path / "newer.pt")
    res = invoke("sample", str(tmp_path / "newer.pt"), "--max-new-tokens", "2")
    assert res.exit_code != 0 and "a key this nsa does not know comes from a newer nsa" in res.stderr, res.stderr
