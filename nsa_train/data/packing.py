"""Packing documents into one token stream and cutting it into training windows.

Pure logic on numpy arrays (no torch, no datasets). The stream is doc0 EOS doc1 EOS ...; windows
hold seq_len+1 tokens and consecutive windows share one token (the last target of one window is
the first input of the next), so every token is trained on and nothing is truncated away.

A position is (epoch, doc, offset): the next window starts at token `offset` of document `doc`
(its tokens with the EOS appended) of epoch `epoch`. It is all that is needed to resume exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np


class Position(NamedTuple):
    epoch: int
    doc: int
    offset: int


class DocTokens(NamedTuple):
    start: Position  # where `tokens[0]` sits in the stream
    tokens: np.ndarray  # int64 [n], a document's tokens + EOS, from `start.offset` on


def with_eos(tokens: np.ndarray, eos_id: int) -> np.ndarray:
    out = np.empty(len(tokens) + 1, dtype=np.int64)
    out[:-1] = tokens
    out[-1] = eos_id
    return out


def pack_windows(docs: Iterator[DocTokens], seq_len: int) -> Iterator[tuple[np.ndarray, Position]]:
    """Yield (window int64 [seq_len+1], position of the next window's first token)."""
    span = seq_len + 1
    segments: deque[DocTokens] = deque()  # the unconsumed stream, in order
    have = 0
    for doc in docs:
        if len(doc.tokens) == 0:
            continue
        segments.append(doc)
        have += len(doc.tokens)
        while have >= span:
            parts, need = [], span
            for seg in segments:
                parts.append(seg.tokens[:need])
                need -= len(parts[-1])
                if need == 0:
                    break
            window = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
            advance = seq_len  # keep the window's last token: it starts the next window
            while advance:
                seg = segments[0]
                if len(seg.tokens) <= advance:
                    segments.popleft()
                    advance -= len(seg.tokens)
                else:
                    start = seg.start._replace(offset=seg.start.offset + advance)
                    segments[0] = DocTokens(start, seg.tokens[advance:])
                    advance = 0
            have -= seq_len
            yield window, segments[0].start
