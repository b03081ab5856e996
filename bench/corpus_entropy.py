"""Unigram byte entropy (nats) of the embedded corpus: the loss a model that ignores
context would reach. The tiny default's validation loss should end well below it.

    python bench/corpus_entropy.py
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("nsa_train")

from nsa_train.data.corpus import embedded_documents


def unigram_entropy_nats(data: bytes) -> float:
    counts = Counter(data)
    n = len(data)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " ")).parse_args()  # --help, no options
    text = "\n".join(embedded_documents()).encode("utf-8")
    h = unigram_entropy_nats(text)
    print(f"embedded corpus: {len(text) / 1e6:.2f} MB, unigram byte entropy {h:.3f} nats ({h / math.log(2):.3f} bits)")


if __name__ == "__main__":
    main()
