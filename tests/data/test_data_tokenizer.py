"""Tokenizers: byte round trips, GPT-2 BPE built offline, and the guard against empty tokenizers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsa_train.config.schema import TOKENIZER_VOCAB, DataConfig
from nsa_train.data import DataError, build_tokenizer
from nsa_train.data.tokenizer import check_tokenizer, gpt2_files, mergeable_ranks

BYTE = build_tokenizer(DataConfig(tokenizer="byte"))
GPT2 = build_tokenizer(DataConfig(tokenizer="gpt2"))


def test_byte_tokenizer_shape() -> None:
    assert (BYTE.name, BYTE.vocab_size, BYTE.eos_id) == ("byte", 257, 256)
    assert TOKENIZER_VOCAB["byte"] == BYTE.vocab_size  # what the config resolves a null model.vocab_size to
    assert BYTE.encode("hé") == [104, 195, 169]
    assert BYTE.decode([104, 256, 105]) == "hi"  # EOS is a boundary, not text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_byte_round_trip(text: str) -> None:
    ids = BYTE.encode(text)
    assert all(0 <= i < 256 for i in ids)
    assert BYTE.decode(ids) == text
    assert BYTE.encode_array(text).tolist() == ids


def test_gpt2_known_encoding() -> None:
    assert (GPT2.name, GPT2.vocab_size, GPT2.eos_id) == ("gpt2", 50257, 50256)
    assert TOKENIZER_VOCAB["gpt2"] == GPT2.vocab_size
    assert GPT2.encode("Hello world") == [15496, 995]
    assert GPT2.encode(" the quick brown fox") == [262, 2068, 7586, 21831]
    # The end-of-text marker inside a document is plain text, never the EOS id.
    assert GPT2.eos_id not in GPT2.encode("a <|endoftext|> b")


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_gpt2_round_trip(text: str) -> None:
    ids = GPT2.encode(text)
    assert all(0 <= i < GPT2.eos_id for i in ids)
    assert GPT2.decode(ids) == text


class _SilentlyEmpty:
    """A tokenizer that encodes everything to nothing, as a broken offline download would."""

    name, vocab_size, eos_id = "empty", 0, 0

    def encode(self, text: str) -> list[int]:
        return []

    def decode(self, ids: list[int]) -> str:
        return ""


def test_empty_tokenizer_is_refused() -> None:
    with pytest.raises(DataError, match="empty"):
        check_tokenizer(_SilentlyEmpty())  # type: ignore[arg-type]


def test_damaged_vocabulary_files_are_refused(tmp_path: Path) -> None:
    encoder, merges = gpt2_files()
    vocab = json.loads(encoder.read_text(encoding="utf-8"))
    vocab["Hello"], vocab["world"] = vocab["world"], vocab["Hello"]
    damaged = tmp_path / "encoder.json"
    damaged.write_text(json.dumps(vocab), encoding="utf-8")
    shutil.copy(merges, tmp_path / "vocab.bpe")
    with pytest.raises(DataError, match="disagree"):
        mergeable_ranks(damaged, tmp_path / "vocab.bpe")
