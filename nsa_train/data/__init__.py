"""Training data: tokenizers, document sources, packing into windows, the prefetched training stream.

Public API (used by nsa_train.train):
    build_tokenizer(cfg.data) -> Tokenizer (.name, .vocab_size incl. EOS, .eos_id, .encode, .decode)
    TrainStream(cfg, tokenizer, rank, world_size, micro_batch): iterator of (x, y) LongTensor [B, T]
        .state_dict() / .load_state_dict(state) for exact resume, .close() stops the prefetch thread
    val_batches(cfg, tokenizer, micro_batch, n_batches, rank, world_size) -> list of (x, y), held out
    DataError: one-line, user-facing
See docs/data.md.
"""

from .errors import DataError
from .stream import TrainStream, val_batches
from .tokenizer import Tokenizer, build_tokenizer

__all__ = ["DataError", "Tokenizer", "TrainStream", "build_tokenizer", "val_batches"]
