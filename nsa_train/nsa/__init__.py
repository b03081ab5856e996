"""Native Sparse Attention (arXiv 2502.11089): functional ops in fla-org's layout and the NSAAttention layer.

Conventions (indices, boundaries, visibility, differences from other implementations): docs/nsa.md.
"""

from nsa_train.nsa.dispatch import (
    compressed_attention,
    get_default_impl,
    resolve_impl,
    selection_attention,
    set_default_impl,
    sliding_window_attention,
)
from nsa_train.nsa.fast import (
    compressed_attention_fast,
    selection_attention_fast,
    sliding_window_attention_fast,
)
from nsa_train.nsa.layer import CompressionMLP, NSAAttention
from nsa_train.nsa.reference import (
    compressed_attention_reference,
    selection_attention_reference,
    sliding_window_attention_reference,
)
from nsa_train.nsa.selection import select_blocks

__all__ = [
    "CompressionMLP",
    "NSAAttention",
    "compressed_attention",
    "compressed_attention_fast",
    "compressed_attention_reference",
    "get_default_impl",
    "resolve_impl",
    "select_blocks",
    "selection_attention",
    "selection_attention_fast",
    "selection_attention_reference",
    "set_default_impl",
    "sliding_window_attention",
    "sliding_window_attention_fast",
    "sliding_window_attention_reference",
]
