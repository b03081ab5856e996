"""The language model: a decoder-only transformer whose attention is NSA or its dense twin."""

from nsa_train.model.transformer import LM, build_model, collect_gates, compile_model

__all__ = ["LM", "build_model", "collect_gates", "compile_model"]
