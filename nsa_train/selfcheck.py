"""The torch side of `nsa check`: versions, devices and memory, tokenizer, first batch, NSA self-test.

Each check returns a row ``{"name", "status": pass|warn|fail, "reason"}``; nothing here raises
for a broken precondition (the row says what is wrong). The GPU probe is a parameter so a test
can present any machine. Memory estimate (docs/after.md):

    need = 1.1 * (16 P + activations + logits + compressed scores) + 0.5 GiB (CUDA context; on CPU the
           process itself: torch, datasets, the tokenizer and the corpus, which the estimate's RAM must hold too)
    16 P: fp32 weights 4 + grads 4 + Adam moments 8 bytes per parameter
    activations: micro_batch * seq_len * n_layers * dim * 34 * (act_bytes / 2)   (bf16: act_bytes 2)
                 (with grad_checkpointing: one block's worth plus every block's input)
    logits: micro_batch * seq_len * vocab * (act_bytes + 8)   (logits, fp32 copy for the loss, its grad)
    compressed scores: n_layers * micro_batch * seq_len * n_heads * (seq_len // nsa.d) * 4
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from nsa_train.config.schema import Config, ConfigError

PASS, WARN, FAIL = "pass", "warn", "fail"
SKIP = "skip"  # not checked here, and why (no device to check against): never the check's verdict
GIB = 2**30
CUDA_CONTEXT_BYTES = GIB // 2
# A training process's own resident memory on CPU before its model counts: 0.52 GiB for a 1-layer, dim-32 model on
# the embedded corpus (training.csv's rss_gb of `python -m nsa_train.train --set model.dim=32 --set model.n_layers=1
# ...`, 2026-12-05, torch 2.13 CPU); without it the tiny default's estimate was 0.10 GiB against 0.73 GiB real
CPU_PROCESS_BYTES = GIB // 2
ALLOCATOR_MARGIN = 1.1
ACT_BYTES_PER_LAYER_DIM = 34  # bytes per token per layer per unit of width, 16-bit activations
MEMORY_WARN_FRACTION = 0.85

GpuProbe = Callable[[], list[tuple[str, int]]]  # -> [(name, total bytes)] of the visible GPUs


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"


def row(name: str, status: str, reason: str) -> dict[str, str]:
    return {"name": name, "status": status, "reason": reason}


@dataclass
class SelfCheck:
    rows: list[dict[str, str]] = field(default_factory=list)
    param_count: int | None = None
    need_bytes: int | None = None


def cuda_gpus() -> list[tuple[str, int]]:
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append((p.name, int(p.total_memory)))
    return out


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_versions(want_cuda: bool) -> dict[str, str]:
    parts = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    triton = _version("triton")
    parts.append(f"triton {triton}" if triton else "triton absent")
    cuda = torch.version.cuda
    parts.append(f"CUDA {cuda}" if cuda else "CPU-only torch build")
    if cuda and torch.cuda.is_available():
        try:
            parts.append("NCCL " + ".".join(str(x) for x in torch.cuda.nccl.version()))
        except (RuntimeError, AttributeError):
            parts.append("NCCL unavailable")
    if want_cuda and not cuda:
        return row("versions", FAIL, ", ".join(parts) + ": runtime.device is cuda but torch has no CUDA")
    return row("versions", PASS, ", ".join(parts))


def estimate_train_memory_bytes(cfg: Config, param_count: int, micro_batch: int, vocab: int, act_bytes: int) -> int:
    """Peak memory of one training rank (formula in the module docstring)."""
    m, t = cfg.model, cfg.train
    tokens = micro_batch * t.seq_len
    per_layer = tokens * m.dim * ACT_BYTES_PER_LAYER_DIM * act_bytes // 2
    acts = per_layer + m.n_layers * tokens * m.dim * act_bytes if t.grad_checkpointing else m.n_layers * per_layer
    logits = tokens * vocab * (act_bytes + 8)
    cmp = m.n_layers * tokens * m.n_heads * (t.seq_len // cfg.nsa.d) * 4 if m.attention == "nsa" else 0
    return int(ALLOCATOR_MARGIN * (16 * param_count + acts + logits + cmp))


def _total_ram() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(need: int, on_cuda: bool, gpus: list[tuple[str, int]], ranks: int = 1) -> dict[str, str]:
    """One rank's estimate against the smallest GPU; on a CPU, every rank's (``ranks`` of this host) against the
    RAM they share."""
    if on_cuda:
        need += CUDA_CONTEXT_BYTES
        name, have = min(gpus, key=lambda g: g[1])
        msg = f"~{need / GIB:.2f} GiB per rank estimated vs {name} ({have / GIB:.1f} GiB)"
    else:
        per_rank = need + CPU_PROCESS_BYTES
        need = per_rank * ranks
        ram = _total_ram()
        if ram is None:
            return row("memory", WARN, f"needs ~{need / GIB:.2f} GiB; cannot read this machine's RAM")
        have = ram
        each = f"~{per_rank / GIB:.2f} GiB per rank" + (f" x {ranks} ranks = {need / GIB:.2f} GiB" if ranks > 1 else "")
        msg = f"{each} estimated vs RAM ({ram / GIB:.1f} GiB)"
    if need > have:
        return row("memory", FAIL, msg + ": will not fit (lower train.batch_size or seq_len, or grad_checkpointing)")
    if need > MEMORY_WARN_FRACTION * have:
        return row("memory", WARN, msg + f": over {MEMORY_WARN_FRACTION:.0%}, little headroom")
    return row("memory", PASS, msg)


def check_init_from_fit(cfg: Config) -> list[dict[str, str]]:
    """train.init_from's checkpoint loaded (its checksums read) and judged by the trainer's own rule
    (init_from.source_problem on the config it records), with the start warnings the trainer would give of it
    (init_from.source_notes). None of it when train.init_from is null or does not resolve, or when its run's
    config.yaml already gave the misfit the checkpoint gives (the cheap `init from` row says why: one failure
    named once)."""
    from nsa_train.runtime import checkpoint as ck
    from nsa_train.runtime import init_from

    if cfg.train.init_from is None:
        return []
    try:
        path = init_from.resolve(cfg.train.init_from)
    except ck.CheckpointError:
        return []
    try:
        state = ck.load_checkpoint(path)
    except ck.CheckpointError as e:
        return [row("init from fit", FAIL, str(e))]
    if (problem := init_from.source_problem(state.get("config"), cfg, path)) is not None:
        saved = init_from.source_run_config(path)
        if saved is not None and init_from.source_problem(saved, cfg, path) == problem:
            return []
        return [row("init from fit", FAIL, problem)]
    notes = [row("warning", WARN, w) for w in init_from.source_notes(state, cfg, path)]
    return [
        row("init from fit", PASS, f"{path.name}'s model and tokenizer fit this config (step {state['step']})"),
        *notes,
    ]


def check_tokenizer(cfg: Config) -> tuple[dict[str, str], Any]:
    from nsa_train.data import DataError, build_tokenizer

    try:
        tok = build_tokenizer(cfg.data)
    except DataError as e:
        return row("tokenizer", FAIL, str(e)), None
    except Exception as e:  # damaged vocabulary files surface as JSON/Unicode errors: still this row's failure
        return row("tokenizer", FAIL, f"cannot build the {cfg.data.tokenizer} tokenizer: {_one_line(e)}"), None
    if cfg.model.vocab_size is not None and cfg.model.vocab_size < tok.vocab_size:
        msg = f"model.vocab_size {cfg.model.vocab_size} is smaller than the tokenizer's ({tok.vocab_size})"
        return row("tokenizer", FAIL, msg), None
    return row("tokenizer", PASS, f"{tok.name}, vocab {tok.vocab_size}, round-trips a known sentence"), tok


def check_first_batch(
    cfg: Config,
    tokenizer: Any,
    micro_batch: int,
    world_size: int = 1,
    on_source: Callable[[Any], None] | None = None,
) -> dict[str, str]:
    """The first training batch, and the validation batches the trainer builds next (a holdout too small for
    them passed here and stopped the run at its start). ``on_source``: as val_batches' (the trainer's summary)."""
    from nsa_train.data import DataError, TrainStream, val_batches
    from nsa_train.data.stream import held_out_said

    t0 = time.perf_counter()
    stream = None
    try:
        stream = TrainStream(cfg, tokenizer, 0, world_size, micro_batch)
        x, _ = next(stream)  # [micro_batch, seq_len]
        n_val = len(
            val_batches(
                cfg,
                tokenizer,
                micro_batch,
                cfg.train.eval_batches * cfg.train.grad_accum,
                0,
                world_size,
                cfg.train.grad_accum,
                on_source=on_source,
            )
        )
    except DataError as e:
        return row("data", FAIL, str(e))
    except Exception as e:  # a reader's own exception (pyarrow, network): the row names it
        return row("data", FAIL, f"first batch failed: {_one_line(e)}")
    finally:
        if stream is not None:
            stream.close()
    dt = time.perf_counter() - t0
    status = WARN if dt > cfg.data.first_batch_timeout_s / 2 else PASS
    got = (
        f"first batch {tuple(x.shape)} and {held_out_said(cfg, n_val * micro_batch * world_size)} from "
        f"{stream.description} in {dt:.2f}s"
    )
    return row("data", status, got)


def check_data_warnings(cfg: Config, source: Any, tokenizer_name: str, world_size: int) -> list[dict[str, str]]:
    """The trainer's start warnings about its data (a plan of many passes over it, a corpus thin for its ranks), one
    warn row each, from the counts its start works out on the source the data row opened (data_summary)."""
    from nsa_train.data.summary import data_summary, data_warnings

    said = data_warnings(data_summary(cfg, source, tokenizer_name), cfg.train.steps, world_size)
    return [row("warning", WARN, w) for w in said]


# ------------------------------------------------------------------ NSA self-test
@dataclass(frozen=True)
class SelftestShape:
    T: int
    heads: int
    kv_heads: int
    head_dim: int

    @property
    def dim(self) -> int:
        return self.heads * self.head_dim


def selftest_shape(cfg: Config, on_cuda: bool) -> SelftestShape:
    """The self-test layer. Its length leaves blocks unselected and keys outside the window (n_sel + 2 selection
    blocks and w + l_sel tokens at least): at m7c's 256 (CPU) or 1024 (GPU) every block was selected and the window
    held every key, so a selection that ignored its block ids passed. On CUDA its heads are one GQA group of the
    config's and its head size the config's: the Triton kernels take some shapes and not others. On CPU, 4 query
    heads over 2 of 16 (the config's would cost seconds per pass, and no kernel depends on them there)."""
    n, m = cfg.nsa, cfg.model
    T = max(n.l_sel * (n.n_sel + 2) + n.l_sel // 2, n.w + n.l_sel, 4 * n.l)
    if on_cuda:
        return SelftestShape(T, m.n_heads // m.n_kv_heads, 1, m.resolved_head_dim)
    return SelftestShape(T, 4, 2, 16)


def _layer_outputs(
    cfg: Config,
    impl: str,
    x: torch.Tensor,
    seed: int,
    device: torch.device,
    masked: bool | None = None,
    shape: SelftestShape | None = None,
) -> torch.Tensor:
    """The layer's output on x; masked: the fast selection op's route (None: by shape)."""
    from nsa_train.nsa import NSAAttention, fast_selection_masked

    torch.manual_seed(seed)  # same weights for every impl
    sh = shape or SelftestShape(x.shape[1], 4, 2, x.shape[-1] // 4)
    layer = NSAAttention(sh.dim, sh.heads, sh.kv_heads, sh.head_dim, replace(cfg.nsa, impl=impl)).to(device)
    forced = nullcontext() if masked is None else fast_selection_masked.route(masked)
    with torch.no_grad(), forced:
        return layer(x).float()


def _layer_backward(cfg: Config, impl: str, x: torch.Tensor, device: torch.device, shape: SelftestShape) -> None:
    """One forward and backward of the layer in the run's precision (bf16 autocast on CUDA unless
    runtime.precision is fp32): the backward kernels compile only here, at their first call, and may not fit
    where the forward's did (their fallbacks are counted)."""
    from nsa_train.nsa import NSAAttention

    torch.manual_seed(0)
    layer = NSAAttention(shape.dim, shape.heads, shape.kv_heads, shape.head_dim, replace(cfg.nsa, impl=impl))
    bf16 = cfg.runtime.precision != "fp32"
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        y = layer.to(device)(x)
    y.float().square().mean().backward()


def nsa_selftest(cfg: Config, device: torch.device) -> list[dict[str, str]]:
    """Each runnable path against the reference on one tiny layer, and a causality perturbation:
    changing the input at position t0 must leave every output before t0 unchanged."""
    from nsa_train.nsa import fallbacks
    from nsa_train.nsa.triton import triton_available

    on_cuda = device.type == "cuda"
    sh = selftest_shape(cfg, on_cuda)
    T, dim = sh.T, sh.dim
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, T, dim, generator=gen).to(device)  # [B, T, dim]
    rows = []
    ref = _layer_outputs(cfg, "reference", x, 0, device, shape=sh)
    impls = ["fast"]
    if not on_cuda and cfg.nsa.impl == "triton":  # asked for kernels that will not run: say so before the run
        ok, why = triton_available(device)
        if not ok:
            rows.append(
                row(
                    "nsa triton",
                    WARN,
                    f"nsa.impl is triton but {why}: every call runs the fast path "
                    "and counts a fallback (nsa.impl=auto runs the fast path on CPU without them)",
                )
            )
    if on_cuda:
        ok, why = triton_available(device)
        if ok:
            # auto (Triton selection) if the run uses it, and every kernel (impl triton) either way
            impls += ["triton"] if cfg.nsa.impl == "triton" else ["auto", "triton"]
        else:
            rows.append(row("nsa triton", FAIL, f"Triton path cannot run on {device}: {why}"))
    tol = 2e-4 if not on_cuda else 2e-3  # TF32 matmuls on CUDA
    t0 = T // 2 + 3
    for impl in impls:
        before = dict(fallbacks.snapshot())
        start = time.perf_counter()
        # the fast path computes selection one of two ways by the sequence's size (a run may take either):
        # both are checked, and the worse error is the row's
        routes = [False, True] if impl == "fast" else [None]
        outs = [_layer_outputs(cfg, impl, x, 0, device, masked, sh) for masked in routes]
        err = max((o - ref).abs().max().item() for o in outs) / max(ref.abs().max().item(), 1e-6)
        fell_back = {k: v for k, v in fallbacks.snapshot().items() if v != before.get(k)}
        shape = (
            f"T={T}, l={cfg.nsa.l}, d={cfg.nsa.d}, l'={cfg.nsa.l_sel}, n={cfg.nsa.n_sel}, w={cfg.nsa.w}, "
            f"{sh.heads}/{sh.kv_heads} heads of {sh.head_dim}"
        )
        if fell_back:
            # kernels this run does not use (nsa.impl is not triton) warn; those it uses fail
            used = impl != "triton" or cfg.nsa.impl == "triton"
            rows.append(row(f"nsa {impl}", FAIL if used else WARN, f"{impl} path fell back: {fell_back} ({shape})"))
        elif not math.isfinite(err) or err > tol:
            rows.append(
                row(f"nsa {impl}", FAIL, f"{impl} vs reference: rel. max error {err:.1e} > {tol:.0e} ({shape})")
            )
        else:
            ms = (time.perf_counter() - start) * 1e3
            rows.append(
                row(f"nsa {impl}", PASS, f"{impl} vs reference: rel. max error {err:.1e} ({shape}, {ms:.0f} ms)")
            )
        x2 = x.clone()
        x2[:, t0] += torch.randn(dim, generator=gen).to(device) * 3
        leak, moved = 0.0, math.inf
        for masked, out in zip(routes, outs, strict=True):
            out2 = _layer_outputs(cfg, impl, x2, 0, device, masked, sh)
            leak = max(leak, (out2[:, :t0] - out[:, :t0]).abs().max().item())
            moved = min(moved, (out2[:, t0] - out[:, t0]).abs().max().item())
        if leak > 1e-5 or moved <= 1e-5:
            why = f"outputs before t={t0} changed by {leak:.1e}" if leak > 1e-5 else f"output at t={t0} did not change"
            rows.append(row(f"causality {impl}", FAIL, f"perturbing x[t={t0}]: {why}"))
        else:
            rows.append(row(f"causality {impl}", PASS, f"perturbing x[t={t0}] leaves t<{t0} unchanged ({leak:.0e})"))
        if on_cuda and impl != "fast":  # the Triton backward kernels: compiled and launched once, as at step 1
            before = dict(fallbacks.snapshot())
            _layer_backward(cfg, impl, x, device, sh)
            fell_back = {k: v for k, v in fallbacks.snapshot().items() if v != before.get(k)}
            used = impl != "triton" or cfg.nsa.impl == "triton"
            if fell_back:
                rows.append(row(f"nsa {impl} backward", FAIL if used else WARN, f"fell back: {fell_back}"))
            else:
                rows.append(row(f"nsa {impl} backward", PASS, "the backward kernels ran"))
    return rows


def check_compute(cfg: Config, vocab: int, gpus: list[tuple[str, int]], world: int, bf16: bool) -> dict[str, str]:
    """What a trained token costs and what 1% MFU is in tokens/s on these GPUs: the scale `nsa status` judges a
    run's tokens/s on (throughput_low's min_mfu)."""
    from nsa_train.config.flops import train_flops_per_token
    from nsa_train.telemetry.mfu import peak_flops

    flops = train_flops_per_token(cfg, vocab)
    cost = f"{flops:.2e} FLOPs per trained token (forward + backward, at seq_len {cfg.train.seq_len})"
    precision = "bf16" if bf16 else ("tf32" if cfg.runtime.tf32 and gpus else "fp32")  # a CPU has no TF32
    if not gpus and cfg.monitor.peak_tflops is None:
        return row("compute", SKIP, f"{cost}; MFU needs a GPU's peak (or monitor.peak_tflops)")
    gpu = gpus[0][0] if gpus else None
    name = gpu or "device"
    peak = peak_flops(gpu, "bf16" if bf16 else "fp32", cfg.runtime.tf32, cfg.monitor.peak_tflops)
    if peak is None:
        return row("compute", SKIP, f"{cost}; no datasheet peak for {name}: set monitor.peak_tflops for MFU")
    one_percent = 0.01 * peak * world / flops
    return row(
        "compute",
        PASS,
        f"{cost}; {world} x {name} at {peak / 1e12:g} TFLOP/s ({precision}): 1% MFU = {one_percent:,.0f} tok/s",
    )


# ------------------------------------------------------------------ all of it
def resolve_target_device(cfg: Config, gpus: list[tuple[str, int]]) -> tuple[torch.device | None, str | None]:
    from nsa_train.runtime.device import unusable_gpus

    want = cfg.runtime.device
    if want == "cuda" and not gpus:
        return None, "runtime.device is cuda but no GPU is visible (CUDA_VISIBLE_DEVICES? driver?)"
    if want == "auto" and not gpus and (unusable := unusable_gpus()) is not None:
        return None, unusable  # the trainer refuses to fall back to the CPU there
    return torch.device("cuda" if gpus and want != "cpu" else "cpu"), None


def run_selfcheck(
    cfg: Config, *, gpu_probe: GpuProbe | None = None, nsa_test: bool = True, nproc: int | None = None
) -> SelfCheck:
    """``nproc``: the ranks the run will have (`nsa launch --nproc`); None: as many as GPUs are visible (its
    default), one on CPU. The batch split and the per-rank memory estimate depend on it."""
    from nsa_train.model import build_model
    from nsa_train.runtime.preflight import check_compile_toolchain, micro_batch_size, preflight_warnings

    out = SelfCheck()
    gpus = (gpu_probe or cuda_gpus)()
    out.rows.append(check_versions(cfg.runtime.device == "cuda"))
    device, why = resolve_target_device(cfg, gpus)
    if device is None:
        out.rows.append(row("device", FAIL, str(why)))
    elif device.type == "cuda":
        names = ", ".join(f"{n} {b / GIB:.0f} GiB" for n, b in gpus)
        out.rows.append(row("device", PASS, f"{len(gpus)} GPU(s): {names}"))
    else:
        out.rows.append(row("device", PASS, "CPU (no GPU visible)" if not gpus else "CPU (runtime.device: cpu)"))

    if device is not None and cfg.train.compile:
        try:
            check_compile_toolchain(cfg, device.type)
            out.rows.append(row("compile", PASS, "train.compile: the model's blocks will be compiled at step 1"))
        except ConfigError as e:
            out.rows.append(row("compile", FAIL, str(e)))

    tok_row, tok = check_tokenizer(cfg)
    out.rows.append(tok_row)
    out.rows += check_init_from_fit(cfg)
    vocab = cfg.model.vocab_size or (tok.vocab_size if tok is not None else 50257)
    with torch.device("meta"):  # counts parameters without allocating them
        out.param_count = sum(p.numel() for p in build_model(cfg, vocab).parameters())

    on_gpus = device is not None and device.type == "cuda"
    world = nproc if nproc is not None else (len(gpus) if on_gpus else 1)
    if device is None:  # the config's device is not here (the device row): what depends on it is said, not left out
        assumed = f"{world} rank(s) assumed for the batch and memory below: no usable GPU here"
        out.rows.append(row("ranks", SKIP, assumed))
    elif on_gpus and world > len(gpus):
        out.rows.append(row("ranks", FAIL, f"--nproc {world}, but {len(gpus)} GPU(s) are visible"))
    else:
        default = " (all visible GPUs: --nproc to check another count)" if nproc is None and on_gpus else ""
        out.rows.append(row("ranks", PASS, f"{world} rank(s){default}"))
    try:
        micro = micro_batch_size(cfg, world)
    except ConfigError as e:
        out.rows.append(row("batch", FAIL, str(e)))
        micro = max(1, cfg.train.batch_size // (world * cfg.train.grad_accum))
    on_cuda = device.type == "cuda" if device is not None else cfg.runtime.device == "cuda"
    bf16 = cfg.runtime.precision == "bf16" or (cfg.runtime.precision == "auto" and on_cuda)
    out.need_bytes = estimate_train_memory_bytes(cfg, out.param_count, micro, vocab, 2 if bf16 else 4)
    if device is None:
        need = out.need_bytes + (CUDA_CONTEXT_BYTES if on_cuda else CPU_PROCESS_BYTES)
        estimated = f"~{need / GIB:.2f} GiB per rank estimated; no usable GPU here to compare with"
        out.rows.append(row("memory", SKIP, estimated))
    else:
        out.rows.append(check_memory(out.need_bytes, on_cuda, gpus, ranks=world))
        # what the trainer would warn about at its start on this device (bf16 on a CPU, fp32 on a GPU, ...)
        for w in preflight_warnings(cfg, device.type, "bf16" if bf16 else "fp32", data_files=False):
            out.rows.append(row("warning", WARN, w))

    out.rows.append(check_compute(cfg, vocab, gpus if on_gpus else [], world, bf16))

    if tok is not None:
        opened: list[Any] = []  # the source the validation batches opened, as the trainer's summary has it
        data = check_first_batch(cfg, tok, micro, world, on_source=opened.append)
        out.rows.append(data)
        if data["status"] != FAIL and opened:
            out.rows += check_data_warnings(cfg, opened[0], tok.name, world)
    else:
        out.rows.append(row("data", FAIL, "not tried: no usable tokenizer"))

    if not nsa_test:
        return out
    if cfg.model.attention != "nsa":
        out.rows.append(row("nsa", PASS, "model.attention is dense: no NSA ops to test"))
    elif device is not None:
        try:
            out.rows += nsa_selftest(cfg, device)
        except Exception as e:  # a crash in the kernels is exactly what this check is for
            out.rows.append(row("nsa", FAIL, f"self-test crashed: {_one_line(e)}"))
    else:
        out.rows.append(
            row("nsa", SKIP, "self-test not run: it runs on the config's device, and no GPU is visible here "
                "(`--set runtime.device=cpu` runs it on the CPU)")
        )  # fmt: skip
    return out
