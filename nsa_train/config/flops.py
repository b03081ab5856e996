"""What one trained token costs under a config, in model FLOPs: the numerator of MFU.

Plain Python over the config (no torch), so the trainer writes it into run.json and `nsa check` can say it
before a run. Counted as in PaLM's appendix B (and nanoGPT's ``estimate_mfu``): two FLOPs per multiply-add of
every matmul a token goes through, the backward twice the forward (3x in all). Not counted: norms, RoPE,
softmax, activations (elementwise, a few percent), and recomputation in backward (the layer rebuilds its
compression MLP and gates: hardware work, not model work, as MFU defines it).

Attention departs from them: they count every key of the sequence for every query (nanoGPT's 12·L·H·Q·T),
where this counts the keys a query really attends to (causal, sparse), averaged over the positions of one
training sequence, not the blocks a kernel pads to: a kernel that computes masked tiles shows it as lower MFU.
For a dense model that is (T + 1) / 2 keys instead of T, so its MFU reads lower than nanoGPT's or PaLM's
convention would give (12.6% lower for configs/m7c-125m.yaml's dense twin at seq 2048); an NSA model has no
such convention to compare with.
"""

from __future__ import annotations

from nsa_train.config.schema import TOKENIZER_VOCAB, Config

BACKWARD_FACTOR = 3  # forward + backward (gradients of both the inputs and the weights: 2x the forward)


def nsa_keys_per_query(t: int, l: int, d: int, l_sel: int, n_sel: int, w: int) -> tuple[int, int, int]:
    """(compressed blocks, selected tokens, window tokens) a query at position ``t`` (0-based) attends to.

    Compressed block i covers [i*d, i*d + l) and is visible once it is whole; selection takes n_sel blocks of
    l_sel tokens, the query's own block (cut at t) among them, all blocks while there are at most n_sel;
    the window is the last w tokens, the query's own included (docs/nsa.md)."""
    n_cmp = max(0, (t + 1 - l) // d + 1)
    blocks = t // l_sel + 1
    n_sel_tokens = t + 1 if blocks <= n_sel else (n_sel - 1) * l_sel + t % l_sel + 1
    return n_cmp, n_sel_tokens, min(w, t + 1)


def attended_keys_per_token(cfg: Config) -> float:
    """Keys one query attends to, averaged over the seq_len positions of a training sequence (all branches)."""
    T = cfg.train.seq_len
    if cfg.model.attention == "dense":
        return (T + 1) / 2  # causal: position t sees t + 1 keys
    n = cfg.nsa
    return sum(sum(nsa_keys_per_query(t, n.l, n.d, n.l_sel, n.n_sel, n.w)) for t in range(T)) / T


def train_flops_per_token(cfg: Config, vocab: int | None = None) -> float:
    """Model FLOPs of one trained token (forward and backward), for ``cfg`` at its train.seq_len."""
    m = cfg.model
    vocab = vocab or m.vocab_size or TOKENIZER_VOCAB[cfg.data.tokenizer]
    hd, hq, hkv = m.resolved_head_dim, m.n_heads, m.n_kv_heads
    # matmul weights a token passes through, per layer (multiply-adds)
    proj = m.dim * hq * hd * 2  # q and the output projection
    if m.attention == "nsa":
        proj += m.dim * 6 * hkv * hd  # keys and values of the three branches
        proj += m.dim * m.gate_hidden + m.gate_hidden * 3 * hq  # the gate MLP
        # φ (keys and values apart): l*D -> 2D -> D once per compressed block of each KV head, one block every d
        # tokens
        h2 = 2 * hd
        proj += 2 * hkv * (cfg.nsa.l * hd * h2 + h2 * hd) / cfg.nsa.d
    else:
        proj += m.dim * 2 * hkv * hd
    mlp = 3 * m.dim * m.mlp_hidden  # SwiGLU: gate, up, down
    # q·k and p·v for every key attended, per query head
    attention = attended_keys_per_token(cfg) * hq * 2 * hd
    per_layer = proj + mlp + attention
    head = m.dim * vocab  # the logits (a tied embedding's lookup is no matmul: the table counts once, here)
    return BACKWARD_FACTOR * 2 * (m.n_layers * per_layer + head)


def estimate_param_count(cfg: Config) -> int:
    """Parameters of the model ``cfg`` builds, from the config alone (`nsa check`'s torch-free rows and `nsa launch`'s
    disk estimate; the torch side counts the real model, and a test holds the two equal)."""
    m = cfg.model
    vocab = m.vocab_size or TOKENIZER_VOCAB[cfg.data.tokenizer]
    hd = m.resolved_head_dim
    attn = m.dim * m.n_heads * hd * 2  # wq, wo
    if m.attention == "nsa":
        attn += m.dim * 6 * m.n_kv_heads * hd  # keys and values of the 3 branches
        l, h2 = cfg.nsa.l, 2 * hd  # compression MLP (keys and values): position table, conv l*D -> 2D, 2D -> D
        attn += 2 * (l * hd + h2 * hd * l + h2 + h2 * hd + hd)
        attn += (m.dim + 1) * m.gate_hidden + (m.gate_hidden + 1) * 3 * m.n_heads
    else:
        attn += m.dim * 2 * m.n_kv_heads * hd
    per_layer = attn + 3 * m.dim * m.mlp_hidden + 2 * m.dim
    embed = vocab * m.dim * (1 if m.tie_embeddings else 2)
    return embed + m.n_layers * per_layer + m.dim
