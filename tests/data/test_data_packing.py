"""Packing: one EOS-separated stream, windows of seq_len+1 overlapping by one token, nothing dropped."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nsa_train.data.packing import DocTokens, Position, pack_windows, with_eos

EOS = 99


def _docs(lengths: list[int]) -> list[np.ndarray]:
    return [np.arange(1, n + 1, dtype=np.int64) + 100 * i for i, n in enumerate(lengths)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12), st.integers(1, 17))
def test_windows_cover_the_stream_and_overlap_by_one(lengths: list[int], seq_len: int) -> None:
    docs = _docs(lengths)
    stream = np.concatenate([with_eos(d, EOS) for d in docs])
    items = [DocTokens(Position(0, i, 0), with_eos(d, EOS)) for i, d in enumerate(docs)]
    windows = list(pack_windows(iter(items), seq_len))

    assert len(windows) == max(0, (len(stream) - 1) // seq_len)
    for k, (window, after) in enumerate(windows):
        assert len(window) == seq_len + 1
        # window k starts at token k*seq_len of the stream: consecutive windows share exactly one token
        assert window.tolist() == stream[k * seq_len : k * seq_len + seq_len + 1].tolist()
        # the position names the token where the next window starts
        next_start = (k + 1) * seq_len
        doc_starts = np.cumsum([0] + [len(d) + 1 for d in docs])
        doc = int(np.searchsorted(doc_starts, next_start, side="right") - 1)
        assert after == Position(0, doc, next_start - int(doc_starts[doc]))
    # Only the tail that cannot fill a window is still pending (it is trained on once more documents come).
    used = len(windows) * seq_len + (1 if windows else 0)
    assert len(stream) - used < seq_len + 1


def test_every_document_is_followed_by_eos_and_nothing_is_truncated() -> None:
    docs = _docs([50, 3, 120])  # longer than a window, shorter than one, much longer
    items = [DocTokens(Position(0, i, 0), with_eos(d, EOS)) for i, d in enumerate(docs)]
    windows = [w for w, _ in pack_windows(iter(items), 16)]
    rebuilt = np.concatenate([windows[0], *[w[1:] for w in windows[1:]]]).tolist()
    expected = [*docs[0], EOS, *docs[1], EOS, *docs[2], EOS]
    assert rebuilt == expected[: len(rebuilt)]
    assert len(expected) - len(rebuilt) < 16
    assert rebuilt.count(EOS) == 2 and len(rebuilt) > 150


def test_resuming_from_a_position_gives_the_same_windows() -> None:
    docs = _docs([30, 7, 45, 12, 60])
    full = [DocTokens(Position(0, i, 0), with_eos(d, EOS)) for i, d in enumerate(docs)]
    windows = list(pack_windows(iter(full), 10))
    epoch, doc, offset = windows[4][1]
    resumed_docs = [DocTokens(Position(epoch, doc, offset), with_eos(docs[doc], EOS)[offset:]), *full[doc + 1 :]]
    resumed = list(pack_windows(iter(resumed_docs), 10))
    assert [w.tolist() for w, _ in resumed] == [w.tolist() for w, _ in windows[5:]]
    assert [p for _, p in resumed] == [p for _, p in windows[5:]]
