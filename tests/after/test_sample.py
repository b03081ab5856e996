"""`nsa sample`: repetition metrics on crafted text, determinism on a trained tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nsa_train.sample import distinct_n, longest_repeat, repetition_metrics
from nsa_tui.cli import app


def test_distinct_n_hand_computed() -> None:
    w = ["a", "b", "a", "b", "c"]
    assert distinct_n(w, 1) == pytest.approx(3 / 5)  # {a, b, c} of 5
    assert distinct_n(w, 2) == pytest.approx(3 / 4)  # ab, ba, ab, bc -> {ab, ba, bc}
    assert distinct_n(w, 3) == pytest.approx(3 / 3)  # aba, bab, abc
    assert distinct_n(["x"], 2) is None


def test_longest_repeat_hand_computed() -> None:
    assert longest_repeat(["the", "cat", "the", "cat", "the", "cat", "sat"]) == {
        "words": 6, "n": 2, "copies": 3, "ngram": "the cat", "start": 0,
    }  # fmt: skip
    # a unigram run of 4 beats a bigram run of 2 copies (4 words each: the smaller n wins the tie)
    r = longest_repeat(["x", "y", "x", "y", "z", "z", "z", "z"])
    assert (r["words"], r["n"], r["copies"], r["ngram"], r["start"]) == (4, 1, 4, "z", 4)
    assert longest_repeat(["one", "two", "three"])["words"] == 0


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
    empty.mkdir()
    res = runner.invoke(app, ["sample", str(empty)])
    assert res.exit_code == 3
    assert "checkpoint pointer" in res.output
