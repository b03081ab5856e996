"""Training data: tokenizers, document sources, packing into windows, the prefetched training stream.

Public API (used by nsa_train.train):
    build_tokenizer(cfg.data) -> Tokenizer (.name, .vocab_size incl. EOS, .eos_id, .encode, .decode)
    TrainStream(cfg, tokenizer, rank, world_size, micro_batch): iterator of (x, y) LongTensor [B, T]
        .state_dict() / .load_state_dict(state) for exact resume, .close() stops the prefetch thread
    val_batches(cfg, tokenizer, micro_batch, n_batches, rank, world_size) -> list of (x, y), held out
    DataError: one-line, user-facing
See docs/data.md.
"""

from __future__ import annotations

from nsa_train._lazy import lazy_exports

# Resolved lazily (PEP 562): the tokenizer and errors need no torch, so torch-free
# callers (`nsa check`'s cheap part) can build a tokenizer without importing it.
_EXPORTS = {
    "DataError": "errors",
    "TrainStream": "stream",
    "val_batches": "stream",
    "Tokenizer": "tokenizer",
    "build_tokenizer": "tokenizer",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, globals(), _EXPORTS)
