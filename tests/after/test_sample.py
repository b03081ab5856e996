"""`nsa sample`: repetition metrics on crafted text, determinism on a trained tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.cli import invoke, one_error
from typer.testing import CliRunner

from nsa_train.sample import MAX_REPEAT_N, distinct_n, longest_char_repeat, longest_repeat, repetition_metrics
from nsa_tui.cli import app


def test_distinct_n_hand_computed() -> None:
    w = ["a", "b", "a", "b", "c"]
    assert distinct_n(w, 1) == pytest.approx(3 / 5)  # {a, b, c} of 5
    assert distinct_n(w, 2) == pytest.approx(3 / 4)  # ab, ba, ab, bc -> {ab, ba, bc}
    assert distinct_n(w, 3) == pytest.approx(3 / 3)  # aba, bab, abc
    assert distinct_n(["x"], 2) is None


def test_a_collapse_inside_a_word_shows_in_the_character_repeat() -> None:
    """A byte-level model's "OOOO..." is one word: the word metrics read it as perfectly diverse."""
    m = repetition_metrics("O" * 30)
    assert (m["words"], m["distinct_1"], m["longest_repeat"]["words"]) == (1, 1.0, 0)
    assert m["chars"] == 30
    assert m["longest_char_repeat"] == {"chars": 30, "n": 1, "copies": 30, "ngram": "O", "start": 0}
    r = longest_char_repeat("xx ab ab ab!")
    assert (r["chars"], r["n"], r["copies"], r["ngram"], r["start"]) == (9, 3, 3, " ab", 2)
    assert longest_char_repeat("abc")["chars"] == 0 and longest_char_repeat("")["ngram"] is None


def test_a_repeated_line_shows_in_the_character_repeat() -> None:
    """A 32-character line of code repeated, 80 characters in all: the search stopped at 8-character cycles and
    reported "4 of 80 characters" (the indent)."""
    line = "def add(a, b):\n    return a + b\n"
    r = longest_char_repeat((line * 3)[:80])
    assert (r["chars"], r["n"], r["copies"], r["ngram"], r["start"]) == (64, 32, 2, line, 0)
    # a cycle of a few hundred characters, after some text that does not repeat
    para = "".join(chr(0x4E00 + (i * 7919) % 2000) for i in range(300))
    r = longest_char_repeat("preamble: " + para * 3 + "!")
    assert (r["chars"], r["n"], r["copies"], r["start"]) == (900, 300, 3, 10)


def test_the_character_repeat_of_a_long_sample_is_cheap() -> None:
    """A 4k-character sample, varied then collapsed: within a budget that catches a quadratic Python search."""
    import random
    import time

    rng = random.Random(0)
    text = "".join(rng.choice("abcdefgh ") for _ in range(3000)) + "the end. " * 112
    t0 = time.perf_counter()
    r = longest_char_repeat(text)
    assert time.perf_counter() - t0 < 1.0
    assert (r["n"], r["copies"], r["ngram"]) == (9, 112, "the end. ")


def test_longest_repeat_hand_computed() -> None:
    assert longest_repeat(["the", "cat", "the", "cat", "the", "cat", "sat"]) == {
        "words": 6, "n": 2, "copies": 3, "ngram": "the cat", "start": 0,
    }  # fmt: skip
    # a unigram run of 4 beats a bigram run of 2 copies (4 words each: the smaller n wins the tie)
    r = longest_repeat(["x", "y", "x", "y", "z", "z", "z", "z"])
    assert (r["words"], r["n"], r["copies"], r["ngram"], r["start"]) == (4, 1, 4, "z", 4)
    assert longest_repeat(["one", "two", "three"])["words"] == 0


def test_a_repeated_sentence_shows_in_the_word_repeat() -> None:
    """A 12-word sentence said 3 times: the word search stopped at 8-word cycles and reported no repeat at all."""
    sentence = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "by", "the", "river"]
    r = longest_repeat(["once", "upon", "a", "time"] + sentence * 3 + ["end"])
    assert (r["words"], r["n"], r["copies"], r["ngram"], r["start"]) == (36, 12, 3, " ".join(sentence), 4)


def test_the_word_repeat_of_a_long_sample_is_cheap() -> None:
    """A 4k-word sample, varied then a 20-word sentence over and over: within a budget that catches a per-word Python
    loop per cycle length (256 of them)."""
    import random
    import time

    rng = random.Random(0)
    sentence = [f"s{i}" for i in range(20)]
    words = [f"v{rng.randrange(3000)}" for _ in range(3000)] + sentence * 50
    t0 = time.perf_counter()
    r = longest_repeat(words)
    assert time.perf_counter() - t0 < 1.0
    assert (r["words"], r["n"], r["copies"], r["start"]) == (1000, 20, 50, 3000)


def test_collapsed_text_scores_as_collapsed() -> None:
    m = repetition_metrics("to be to be to be to be")
    assert m["words"] == 8
    assert m["distinct_1"] == pytest.approx(2 / 8)
    assert m["distinct_2"] == pytest.approx(2 / 7)
    assert m["distinct_3"] == pytest.approx(2 / 6)
    assert m["longest_repeat"]["words"] == 8 and m["longest_repeat"]["ngram"] == "to be"


@pytest.mark.slow
def test_same_seed_same_text_other_seed_other_text(tiny_run: Path) -> None:
    from nsa_tui.commands.sample import run_sample

    kw = {"max_new_tokens": 40, "temperature": 1.0, "top_k": None}
    a = run_sample(str(tiny_run), ["ROMEO:"], seed=7, **kw)
    b = run_sample(str(tiny_run), ["ROMEO:"], seed=7, **kw)
    c = run_sample(str(tiny_run), ["ROMEO:"], seed=8, **kw)
    assert a["samples"][0]["text"] == b["samples"][0]["text"]
    assert a["samples"][0]["text"] != c["samples"][0]["text"]
    assert len(a["samples"][0]["text"]) > 0
    assert a["step"] == 30 and a["checkpoint"].endswith(".pt")


@pytest.mark.slow
def test_cli_json_and_missing_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["sample", str(tiny_run), "-p", "The ", "-p", "KING", "-n", "12", "--latest", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["checkpoint"].endswith("step_00000030.pt")
    assert [s["prompt"] for s in out["samples"]] == ["The ", "KING"]
    assert {"distinct_1", "distinct_2", "distinct_3", "longest_repeat", "words"} <= set(out["samples"][0]["metrics"])

    empty = tmp_path / "no-ckpt"
    (empty / "checkpoints").mkdir(parents=True)
    res = runner.invoke(app, ["sample", str(empty)])
    assert res.exit_code == 3
    assert "no checkpoint in" in res.output and "yet" in res.output


def test_no_checkpoint_yet_says_when_the_run_saves(tmp_path: Path) -> None:
    """A running run before its first save: the message gives its save cadence from config.yaml."""
    from nsa_train.sample import SampleError, resolve_checkpoint

    run = tmp_path / "r"
    run.mkdir()
    cfg = Path(__file__).parents[2] / "configs" / "tiny-cpu.yaml"
    (run / "config.yaml").write_text(cfg.read_text().replace("save_every: 200", "save_every: 250"))
    with pytest.raises(SampleError, match=r"no checkpoint in .*checkpoints yet: this run saves every 250 steps"):
        resolve_checkpoint(run)


def test_no_checkpoint_of_an_ended_run_says_it_ended(tmp_path: Path) -> None:
    """A run that crashed at step 0 was told it had "no checkpoint yet" and when it saves: it never will."""
    import json

    from nsa_train.sample import SampleError, resolve_checkpoint

    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    cfg = Path(__file__).parents[2] / "configs" / "tiny-cpu.yaml"
    (run / "config.yaml").write_text(cfg.read_text())
    records = [{"kind": "boot"}, {"kind": "end", "reason": "error", "step": 0}]
    (run / "heartbeat_rank0.jsonl").write_text("".join(json.dumps({"v": 1, **r}) + "\n" for r in records))
    with pytest.raises(SampleError) as e:
        resolve_checkpoint(run)
    assert (
        str(e.value)
        == f"no checkpoint in {run / 'checkpoints'}: the run ended (reason error, step 0) before it saved one"
    )
    # resumed: the new attempt may save
    with (run / "heartbeat_rank0.jsonl").open("a") as f:
        f.write(json.dumps({"v": 1, "kind": "boot"}) + "\n")
    with pytest.raises(SampleError, match=r"checkpoints yet: this run saves"):
        resolve_checkpoint(run)
    (run / "exit_status").write_text("1\n")  # killed before it wrote an end record
    with pytest.raises(SampleError, match=r"the run ended \(exit status 1\) before it saved one"):
        resolve_checkpoint(run)


def test_missing_pointer_names_the_other(tmp_path: Path) -> None:
    from nsa_train.runtime.checkpoint import write_pointer
    from nsa_train.sample import SampleError, resolve_checkpoint

    ckpts = tmp_path / "r" / "checkpoints"
    ckpts.mkdir(parents=True)
    (ckpts / "step_00000010.pt").write_bytes(b"x")
    write_pointer(ckpts, "latest", "step_00000010.pt")
    assert resolve_checkpoint(tmp_path / "r") == ckpts / "step_00000010.pt"  # no best yet: latest
    with pytest.raises(SampleError, match=r"no 'best' checkpoint in .* yet: leave out --best, or use --latest"):
        resolve_checkpoint(tmp_path / "r", "best")


def test_a_directory_that_is_no_run(tmp_path: Path) -> None:
    from nsa_train.sample import SampleError, resolve_checkpoint

    with pytest.raises(SampleError, match="is not a run directory"):
        resolve_checkpoint(tmp_path)


@pytest.mark.slow
def test_sample_on_a_host_is_the_sample_there(tiny_run: Path, sshd) -> None:
    """--host runs the host's `nsa sample` on the host's checkpoint (a real loopback sshd), every option
    sent: the same seeds give the same text as here; a run not there is the host's one line, exit 3."""
    import subprocess
    import sys

    args = ["sample", "-p", "The ", "-p", "KING", "-n", "16", "-t", "0.7", "--top-k", "9", "--seed", "5", "--json"]
    nsa = [sys.executable, "-m", "nsa_tui"]
    local = subprocess.run([*nsa, *args, str(tiny_run)], capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stderr
    remote = subprocess.run(
        [*nsa, *args, "--host", sshd.host, "--remote-dir", str(tiny_run.parent), tiny_run.name],
        capture_output=True, text=True, timeout=120, env=sshd.env(),
    )  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    here, there = json.loads(local.stdout), json.loads(remote.stdout)
    assert there["checkpoint"] == f"{tiny_run.name}/checkpoints/step_00000030.pt"  # relative to --remote-dir
    assert there["samples"] == here["samples"] and len(there["samples"]) == 2

    lost = subprocess.run(
        [*nsa, "sample", "--host", sshd.host, "--remote-dir", str(tiny_run.parent), "nope"],
        capture_output=True, text=True, timeout=120, env=sshd.env(),
    )  # fmt: skip
    # the host's paths, absolute: relative ones would read as paths here
    base = tiny_run.parent
    assert lost.returncode == 3 and lost.stderr.strip().splitlines() == [
        f"error: on {sshd.host}: no run directory 'nope' (looked at {base}/nope and {base}/runs/nope)"
    ], lost.stderr
    res = CliRunner().invoke(app, ["sample", "--remote-dir", "x", str(tiny_run)])
    assert res.exit_code == 2 and "--remote-dir needs --host" in res.output


@pytest.mark.slow
def test_no_run_argument_means_the_newest_run(tiny_run: Path, monkeypatch) -> None:
    monkeypatch.setenv("NSA_RUNS_DIR", str(tiny_run.parent))
    runner = CliRunner()
    newest = runner.invoke(app, ["sample", "-n", "8", "--json"])
    named = runner.invoke(app, ["sample", str(tiny_run), "-n", "8", "--json"])
    assert newest.exit_code == 0 and named.exit_code == 0, newest.output
    assert json.loads(newest.output)["samples"] == json.loads(named.output)["samples"]
    assert json.loads(newest.output)["checkpoint"] == json.loads(named.output)["checkpoint"]


def _cli_error(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["sample", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def test_odd_checkpoints_and_pointers_are_one_error(tiny_run: Path, tmp_path: Path) -> None:
    """Each was a traceback: an empty .pt (a copy onto a full disk), a pointer that is not text, the other
    pointer broken with --latest/--best, a pointer file given as the path (followed now)."""
    import shutil

    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    code, out = _cli_error(str(empty))
    assert code == 3 and "cannot load checkpoint" in out and "(an empty file)" in out, out

    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    ckpts = run / "checkpoints"
    assert _cli_error(str(ckpts / "best"), "-n", "3")[0] == 0  # the pointer file, followed
    (ckpts / "best").write_bytes(b"\xff\xfe")
    code, out = _cli_error(str(run), "-n", "3")
    assert code == 3 and "is not a pointer file" in out, out
    (ckpts / "best").write_text("step_00000099.pt\n")  # names a file that is not there
    (ckpts / "latest").write_text("")
    code, out = _cli_error(str(run), "--latest", "-n", "3")
    assert code == 3 and "points to step_00000099.pt, which does not exist" in out, out


def test_sampling_edges_are_one_error_or_work(tiny_run: Path) -> None:
    import torch

    code, out = _cli_error(str(tiny_run), "-n", "3", "--seed", str(2**64 - 1))
    assert code == 2 and "--seed" in out  # Typer's range check, not a torch overflow
    assert _cli_error(str(tiny_run), "-n", "3", "-t", "1e-40")[0] == 0  # a tiny temperature: no inf logits
    if not torch.cuda.is_available():
        code, out = _cli_error(str(tiny_run), "-n", "3", "--device", "cuda")
        assert code == 3 and "--device cuda: no CUDA GPU here" in out, out


def test_a_checkpoint_with_nan_weights_is_one_error(tiny_run: Path, tmp_path: Path) -> None:
    import torch

    from nsa_train.sample import SampleError, generate, load_for_sampling

    src = next((tiny_run / "checkpoints").glob("step_*.pt"))
    state = torch.load(src, map_location="cpu", weights_only=True)
    state["model"] = {
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state["model"].items()
    }
    bad = tmp_path / "nan.pt"
    torch.save(state, bad)
    loaded = load_for_sampling(bad, "cpu")
    for temperature in (0.0, 0.8):  # greedy printed text from NaN logits without a word
        with pytest.raises(SampleError, match="logits are not finite"):
            generate(loaded, "ROMEO:", max_new_tokens=3, temperature=temperature)


def _longest_repeat_by_every_start(words: list[str], max_n: int = MAX_REPEAT_N) -> dict:
    """The definition, by brute force: every n and start, counting its back-to-back copies (quadratic)."""
    best: dict = {"words": 0, "n": None, "copies": 0, "ngram": None, "start": None}
    for n in range(1, max_n + 1):
        for start in range(len(words) - 2 * n + 1):
            copies = 1
            while words[start + copies * n : start + (copies + 1) * n] == words[start : start + n]:
                copies += 1
            if copies >= 2 and copies * n > best["words"]:
                best = {"words": copies * n, "n": n, "copies": copies, "ngram": " ".join(words[start : start + n])}
                best["start"] = start
    return best


def test_longest_repeat_matches_its_definition_and_is_linear() -> None:
    """A collapsed sample is what the metric is for, and it took seconds per few thousand words (quadratic):
    `nsa sample -n 20000` of a collapsed model would have spent minutes on it."""
    import random
    import time

    rng = random.Random(0)
    for _ in range(3000):
        words = [chr(97 + rng.randrange(rng.randint(1, 4))) for _ in range(rng.randint(0, 40))]
        assert longest_repeat(words) == _longest_repeat_by_every_start(words), words
    t0 = time.perf_counter()
    r = longest_repeat(["to", "be"] * 10_000)
    assert (r["words"], r["n"], r["start"]) == (20_000, 2, 0) and time.perf_counter() - t0 < 2.0


def test_a_file_that_is_no_checkpoint_is_said_to_be_none(tmp_path: Path) -> None:
    """`nsa sample runs/X/console.log` printed torch's "Weights only load failed ... Re-running torch.load with
    weights_only set to False will likely succeed" (advice to run the file's code): it is no nsa checkpoint."""
    import torch

    run = tmp_path / "X"
    (run / "checkpoints").mkdir(parents=True)
    console = run / "console.log"
    console.write_text("[config] configs/tiny-cpu.yaml (resolved, saved as config.yaml):\nstep 10 | loss 4.1\n")
    res = invoke("sample", str(console))
    assert (
        res.exit_code == 3
        and one_error(res) == f"error: {console} is not an nsa checkpoint (not a file torch.save wrote)"
    )
    pickled = run / "checkpoints" / "pickled.pt"  # a torch file, with more than tensors in it
    torch.save({"model": {}, "step": 1, "obj": Path("/")}, pickled)
    res = invoke("sample", str(pickled))
    line = one_error(res)
    assert res.exit_code == 3 and "not an nsa checkpoint" in line and "weights_only" not in line, line


def test_a_missing_checkpoint_file_is_said_to_be_missing(tmp_path: Path, monkeypatch) -> None:
    """`nsa sample runs/X/checkpoints/nope.pt` said "no run directory ...": the checkpoint file does not exist."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NSA_RUNS_DIR", str(tmp_path / "runs"))
    (tmp_path / "runs" / "X" / "checkpoints").mkdir(parents=True)
    res = invoke("sample", "runs/X/checkpoints/nope.pt")
    assert res.exit_code == 3
    assert one_error(res) == (
        f"error: checkpoint file runs/X/checkpoints/nope.pt does not exist "
        f"(looked at {tmp_path / 'runs/X/checkpoints/nope.pt'})"
    )
    res = invoke("sample", str(tmp_path / "gone.pt"))
    assert res.exit_code == 3 and one_error(res) == f"error: checkpoint file {tmp_path / 'gone.pt'} does not exist"


def test_an_embedding_smaller_than_its_tokenizer_is_one_error(tiny_run: Path, tmp_path: Path) -> None:
    """A byte model (257 rows) whose stored config names the GPT-2 tokenizer (an edited or foreign file): the prompt's
    token ids indexed past the embedding, an IndexError traceback."""
    import torch

    src = next((tiny_run / "checkpoints").glob("step_*.pt"))
    state = torch.load(src, map_location="cpu", weights_only=True)
    state["config"]["data"]["tokenizer"] = "gpt2"
    bad = tmp_path / "tok.pt"
    torch.save(state, bad)
    code, out = _cli_error(str(bad), "-n", "3", "-p", "Hi")
    assert code == 3 and "Traceback" not in out, out
    assert f"{bad}: its embedding has 257 rows, but its tokenizer (gpt2) has 50257 tokens" in " ".join(out.split())


def test_a_broken_best_pointer_names_the_latest_checkpoint_to_use(tiny_run: Path, tmp_path: Path) -> None:
    """`best` names a file that is gone while `latest` is whole: the error gave no hint that --latest works."""
    import shutil

    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    ckpts = run / "checkpoints"
    latest = (ckpts / "latest").read_text().strip()
    (ckpts / "best").write_text("step_00000099.pt\n")
    code, out = _cli_error(str(run), "-n", "3")
    said = " ".join(out.split())
    assert code == 3 and "points to step_00000099.pt, which does not exist" in said, out
    assert f"(--latest: {ckpts / 'latest'} names {latest})" in said, out
    assert _cli_error(str(run), "--latest", "-n", "3")[0] == 0


def test_a_checkpoint_of_other_nsa_maths_samples_with_a_note(tiny_run: Path, tmp_path: Path) -> None:
    """Review revBM: a checkpoint from before Eq. 9 changed (no maths version recorded) sampled with this code's block
    choice and `note: null`, where a resume or init_from of it says so."""
    import torch

    from nsa_train.runtime import checkpoint as ck
    from nsa_train.telemetry import schema

    latest = ck.read_pointer(tiny_run / schema.CHECKPOINT_DIR, schema.LATEST_POINTER)
    state = torch.load(latest, weights_only=True)
    del state[schema.CKPT_NSA_MATHS]
    for d in state["data"]:
        del d["order_digest"]
    torch.save(state, tmp_path / "old.pt")
    for path, said in ((tmp_path / "old.pt", True), (latest, False)):
        res = invoke("sample", str(path), "-n", "2", "--json")
        assert res.exit_code == 0, res.output
        note = json.loads(res.stdout)["note"]
        if said:
            assert note.startswith(f"{path} records no NSA maths version") and "the samples choose" in note, note
        else:
            assert note is None, note


def test_json_into_a_pipe_whose_reader_has_gone(tiny_run: Path) -> None:
    """`nsa sample --json RUN | true`: exit 0 as into a terminal, no "Exception ignored ... BrokenPipeError" (at
    interpreter shutdown, exit 120; PYTHONUNBUFFERED: Typer's exit 1)."""
    for unbuffered in (False, True):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        env.update({"PYTHONUNBUFFERED": "1"} if unbuffered else {})
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader gone before the first write: every time
        try:
            argv = [sys.executable, "-m", "nsa_tui", "sample", "--json", str(tiny_run), "-n", "3"]
            res = subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, env=env)
        finally:
            os.close(write_end)
        assert res.returncode == 0 and res.stderr == "", (unbuffered, res.returncode, res.stderr)
