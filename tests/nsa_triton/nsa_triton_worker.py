"""Code that runs inside the test worker processes (see conftest.py).

Triton picks interpreter or compiler mode once, when it is first imported, so the kernels are
exercised in a spawned process whose initializer sets the environment before anything imports
triton. Only the Triton call runs there; the reference runs in the test process.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import torch


def init_interpreter() -> None:
    """Worker initializer: the Triton interpreter on CPU."""
    if "triton" in sys.modules:
        raise RuntimeError("triton was imported before TRITON_INTERPRET could be set in the worker")
    os.environ["TRITON_INTERPRET"] = "1"
    torch.set_num_threads(1)
    import interpreter_xor

    interpreter_xor.install()  # tl.sort's xor reductions by numpy, not element by element in Python


def init_plain_cpu() -> None:
    """Worker initializer: no interpreter, no visible CUDA device (a CPU-only machine)."""
    os.environ.pop("TRITON_INTERPRET", None)
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    torch.set_num_threads(1)


def selection_forward_backward(q, k, v, block_indices, block_size, scale, do):
    """-> (o, dq, dk, dv, kernel_mode) from the Triton path."""
    from nsa_train.nsa.triton import kernel_mode, selection_attention_triton

    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    o = selection_attention_triton(q, k, v, block_indices, block_size, scale)
    dq, dk, dv = torch.autograd.grad(o, (q, k, v), do.to(o.dtype))
    return o.detach(), dq, dk, dv, kernel_mode()


def selection_forward(q, k, v, block_indices, block_size, scale=None):
    from nsa_train.nsa.triton import selection_attention_triton

    with torch.no_grad():
        return selection_attention_triton(q, k, v, block_indices, block_size, scale)


def fallback_report() -> dict[str, object]:
    """What a CPU-only process without the interpreter sees, step by step."""
    report: dict[str, object] = {}
    import nsa_train.nsa.triton as nsa_triton

    report["triton_imported_by_package"] = "triton" in sys.modules
    saved = {name: sys.modules.pop(name, None) for name in ("triton", "triton.language")}
    sys.modules["triton"] = None  # type: ignore[assignment]  # makes `import triton` raise ImportError
    sys.modules["triton.language"] = None  # type: ignore[assignment]
    try:
        report["without_triton"] = nsa_triton.triton_available()
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module

    report["cpu_only"] = nsa_triton.triton_available()
    q = torch.zeros(1, 16, 1, 16)
    idx = torch.zeros(1, 16, 1, 1, dtype=torch.long)
    try:
        nsa_triton.selection_attention_triton(q, q, q, idx, 16)
        report["call_error"] = None
    except nsa_triton.TritonUnavailableError as exc:
        report["call_error"] = ("TritonUnavailableError", isinstance(exc, RuntimeError), str(exc))
    os.environ["TRITON_INTERPRET"] = "1"  # too late: triton is already imported in compiler mode
    report["late_interpret"] = nsa_triton.triton_available()
    report["late_interpret_mode"] = nsa_triton.kernel_mode()
    return report


def layer_forward_backward(state, dims, nsa_kwargs, x, w):
    """The whole NSA layer with impl='triton': (y, dx, parameter grads, impl_name, fallbacks counted by it)."""
    from nsa_train.config import NSAConfig
    from nsa_train.nsa import NSAAttention, fallbacks

    layer = NSAAttention(*dims, NSAConfig(impl="triton", **nsa_kwargs))
    layer.load_state_dict(state)
    before = fallbacks.snapshot()  # the worker serves several tests: count this call's fallbacks only
    x = x.detach().requires_grad_(True)
    y = layer(x)
    (y * w).sum().backward()
    grads = {name: p.grad for name, p in layer.named_parameters()}
    counts = {k: n - before.get(k, 0) for k, n in fallbacks.snapshot().items() if n > before.get(k, 0)}
    return y.detach(), x.grad, grads, layer.impl_name, counts


def compressed_forward_backward(q, k_cmp, v_cmp, block_length, stride, scale, do, split=None):
    """-> (o, p, dq, dk, dv) from compressed_attention_triton (o's gradients only); split: the dk/dv kernel's
    query chunks (default: the wrapper's choice, 1 on CPU)."""
    from nsa_train.nsa.triton import _attention, compressed_attention_triton

    _attention.SPLIT_OVERRIDE = split

    q, k_cmp, v_cmp = (x.detach().requires_grad_() for x in (q, k_cmp, v_cmp))
    o, p = compressed_attention_triton(q, k_cmp, v_cmp, block_length, stride, scale)
    return (o.detach(), p.detach(), *torch.autograd.grad(o, (q, k_cmp, v_cmp), do.to(o.dtype)))


def compressed_block_scores(q, k_cmp, v_cmp, l, d, l_sel, t0, t1):
    """Eq. 9-10 scores of queries t0 .. t1-1 from the importance kernel, on the forward's log-sum-exp."""
    from nsa_train.nsa.triton._attention import NO_WINDOW, AttentionFn
    from nsa_train.nsa.triton.availability import load_kernels
    from nsa_train.nsa.triton.compressed import block_scores

    scale = q.shape[-1] ** -0.5
    with torch.no_grad():
        _, lse = AttentionFn.apply(q, k_cmp, v_cmp, l, d, NO_WINDOW, scale, None)
        return block_scores(load_kernels("_attention_kernels"), q, k_cmp, lse, l, d, l_sel, scale, t0, t1)


def compressed_block_ids_both_ways(q, k_cmp, v_cmp, l, d, l_sel, n_sel):
    """-> (ids picked inside the importance kernel, ids of select_top_blocks on the same kernel's scores)."""
    from nsa_train.nsa.selection import select_top_blocks
    from nsa_train.nsa.triton._attention import NO_WINDOW, AttentionFn
    from nsa_train.nsa.triton.availability import load_kernels
    from nsa_train.nsa.triton.compressed import block_ids, block_scores

    scale, T = q.shape[-1] ** -0.5, q.shape[1]
    kernels = load_kernels("_attention_kernels")
    with torch.no_grad():
        _, lse = AttentionFn.apply(q, k_cmp, v_cmp, l, d, NO_WINDOW, scale, None)
        fused = block_ids(kernels, q, k_cmp, lse, l, d, l_sel, n_sel, scale)
        scores = block_scores(kernels, q, k_cmp, lse, l, d, l_sel, scale, 0, T)
        return fused, select_top_blocks(scores, 0, l_sel, n_sel)


def xor_sums_both_ways(x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """-> per axis (0, 1, None: all) of the 2-d int tensor x, (tl.xor_sum in a kernel with the installed numpy
    reduce, the same with the interpreter's own element-by-element one)."""
    from triton.runtime import interpreter
    from xor_sum_kernel import xor_sums

    fast = interpreter.ReduceOps.apply_impl
    out = [xor_sums(x)]
    interpreter.ReduceOps.apply_impl = fast.generic
    try:
        out.append(xor_sums(x))
    finally:
        interpreter.ReduceOps.apply_impl = fast
    return list(zip(*out, strict=True))


def block_ids_with_reduces_counted(q, k_cmp, v_cmp, l, d, l_sel, n_sel) -> tuple[int, int, torch.Tensor, torch.Tensor]:
    """compressed_block_ids_both_ways, counting the interpreter's reductions: -> (reduces run element by element in
    Python, xor reductions, fused ids, ids from the scores)."""
    import triton.language as tl
    from triton.runtime import interpreter

    counts = {"generic": 0, "xor": 0}
    generic, apply = interpreter.ReduceOps.generic_reduce, interpreter.ReduceOps.apply

    def counted_generic(self, input):
        counts["generic"] += 1
        return generic(self, input)

    def counted_apply(self, input):
        counts["xor"] += self.combine_fn is tl.standard._xor_combine
        return apply(self, input)

    interpreter.ReduceOps.generic_reduce, interpreter.ReduceOps.apply = counted_generic, counted_apply
    try:
        fused, from_scores = compressed_block_ids_both_ways(q, k_cmp, v_cmp, l, d, l_sel, n_sel)
    finally:
        interpreter.ReduceOps.generic_reduce, interpreter.ReduceOps.apply = generic, apply
    return counts["generic"], counts["xor"], fused, from_scores


def compressed_and_selection(q, k_cmp, v_cmp, l, d, l_sel, n_sel):
    """-> (o, block ids) of the layer's compressed branch on Triton, or the error it raised (type name, text)."""
    from nsa_train.nsa.triton import compressed_attention_and_selection_triton

    try:
        with torch.no_grad():
            return compressed_attention_and_selection_triton(q, k_cmp, v_cmp, l, d, l_sel, n_sel)
    except Exception as exc:
        return type(exc).__name__, str(exc)


_INDEX_PTRS = {"idx_ptr", "rev_offsets_ptr", "rev_tokens_ptr"}
_INT64_PTRS = {"ids_ptr"}
_FP32_PTRS = {"lse_ptr", "delta_ptr", "sc_ptr"}


def _signature(fn, data_type: str, consts: dict, pointers: dict | None = None) -> dict[str, str]:
    """Triton's signature of a kernel's parameters, by this package's naming: *_ptr are pointers (int32 for index
    lists, fp32 for log-sum-exps, deltas and scores, else the data type, unless ``pointers`` says otherwise),
    scale is fp32, other runtime ints i32."""
    sig = {}
    for param in fn.params:
        name = param.name
        if param.is_constexpr:
            if name not in consts:
                raise KeyError(f"constexpr {name} not given")
            sig[name] = "constexpr"
        elif name.endswith("_ptr"):
            sig[name] = "*i32" if name in _INDEX_PTRS else "*fp32" if name in _FP32_PTRS else data_type
            sig[name] = "*i64" if name in _INT64_PTRS else sig[name]
            sig[name] = (pointers or {}).get(name, sig[name])
        else:
            sig[name] = "fp32" if name == "scale" else "i32"
    return sig


def compile_for_gpu(
    arch: int, cases: list[tuple], cache_dir: str, shared_memory: int, only: str | None = None
) -> dict[str, str]:
    """Compile every Triton kernel (or the one named ``only``) ahead of time for CUDA compute capability ``arch``
    (Triton's compiler and ptxas run on the CPU: no GPU needed) with the compile-time arguments the wrappers pass
    for each case (dtype, HQ, H, D, DV) on a device giving a program ``shared_memory`` bytes, into an empty cache
    (so nothing is taken from an earlier run).
    -> {"kernel dtype HQ/H D": the shared memory a program needs (bytes), or the error's last line}."""
    import importlib

    os.environ["TRITON_CACHE_DIR"] = cache_dir

    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    from nsa_train.nsa.triton import _attention, selection

    sel = importlib.import_module("nsa_train.nsa.triton._selection_kernels")
    att = importlib.import_module("nsa_train.nsa.triton._attention_kernels")
    target = GPUTarget("cuda", arch, 32)
    results = {}
    # the shared memory of each distinct compile: a launch identical to an earlier one (the fp32 slices of an fp32
    # case's dk/dv, whose pointers are fp32 anyway) takes its result instead of compiling the same kernel again
    done: dict[tuple, int | str] = {}
    for dtype, HQ, H, D, DV in cases:
        torch_dtype = getattr(torch, dtype)
        q = torch.zeros(1, 64, HQ, D, dtype=torch_dtype)
        k, v = torch.zeros(1, 64, H, D, dtype=torch_dtype), torch.zeros(1, 64, H, DV, dtype=torch_dtype)
        G = HQ // H
        smeta, _ = selection._launch_meta(q, k, v, torch.zeros(1, 64, H, 16, dtype=torch.int32), 64)
        gp = _attention.next_pow2(G)
        rows = selection.dkdv_rows(torch_dtype, int(smeta["BD"]), shared_memory)
        launches = [
            (sel.selection_fwd_kernel, {**smeta, "S": 16, "BG": max(16, gp)}),
            (sel.selection_bwd_dq_kernel, {**smeta, "S": 16, "BG": max(16, gp)}),
            (sel.selection_bwd_dkdv_kernel, {**smeta, "GP": gp, "BQ": max(1, rows // gp)}),
            (att.attention_fwd_kernel, _attention.meta(q, k, v)),
            (att.attention_bwd_dq_kernel, _attention.meta(q, k, v)),
            (att.attention_bwd_dkdv_kernel, _attention.meta(q, k, v)),
            (att.compressed_importance_kernel, {**_attention.meta(q, k), "R": 4, "TOPK": False}),
            (att.compressed_importance_kernel, {**_attention.meta(q, k), "R": 4, "TOPK": True}),
            # the dk/dv kernel also writes fp32 slices (its queries split into chunks)
            (att.attention_bwd_dkdv_kernel, _attention.meta(q, k, v), {"dk_ptr": "*fp32", "dv_ptr": "*fp32"}),
        ]
        data_type = {"float32": "*fp32", "bfloat16": "*bf16", "float16": "*fp16"}[dtype]
        for i, (fn, consts, *pointers) in enumerate(launches):
            if only is not None and fn.fn.__name__ != only:
                continue
            variant = " fp32 slices" if pointers else " topk" if consts.get("TOPK") else ""
            key = f"{fn.fn.__name__} {dtype} {HQ}/{H} D{D}{variant}"
            sig = _signature(fn, data_type, consts, *pointers)
            # the selection kernels launch with Triton's defaults, the others with launch_options
            opts = _attention.launch_options(torch_dtype, D) if i >= 3 else {}
            same = (fn.fn.__name__, *(tuple(sorted(x.items())) for x in (sig, consts, opts)))
            if same not in done:
                try:
                    compiled = compile(ASTSource(fn=fn, signature=sig, constexprs=consts), target=target, options=opts)
                    done[same] = compiled.metadata.shared
                except Exception as exc:
                    lines = str(exc).strip().splitlines() or [""]
                    done[same] = f"{type(exc).__name__}: {lines[-1]}"
            results[key] = done[same]
    return results


def window_forward_backward(q, k, v, window_size, scale, do, split=None):
    """-> (o, dq, dk, dv) from sliding_window_attention_triton; split as in compressed_forward_backward."""
    from nsa_train.nsa.triton import _attention, sliding_window_attention_triton

    _attention.SPLIT_OVERRIDE = split

    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    o = sliding_window_attention_triton(q, k, v, window_size, scale)
    return (o.detach(), *torch.autograd.grad(o, (q, k, v), do.to(o.dtype)))


def layer_causality(state, dims, nsa_kwargs, x, positions):
    """The NSA layer with impl='triton' on x and on x changed after each t: per t, (outputs up to t equal, input
    gradient of output t after t all zero, before t not)."""
    from nsa_train.config import NSAConfig
    from nsa_train.nsa import NSAAttention

    layer = NSAAttention(*dims, NSAConfig(impl="triton", **nsa_kwargs))
    layer.load_state_dict(state)
    results = []
    with torch.no_grad():
        base = layer(x)  # once: the interpreter runs a forward in seconds
    for t in positions:
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randn(x2[:, t + 1 :].shape, generator=torch.Generator().manual_seed(t)) * 3
        # one forward of the perturbed input serves both checks (the gradient of output t must be zero after t
        # at any input)
        x2.requires_grad_(True)
        y2 = layer(x2)
        same = torch.equal(base[:, : t + 1], y2[:, : t + 1].detach())
        y2[:, t].sum().backward()
        results.append((same, bool((x2.grad[:, t + 1 :] == 0).all()), bool(x2.grad[:, : t + 1].abs().sum() > 0)))
    return results


@contextlib.contextmanager
def _launch_fails(kernels_module: str, kernel: str) -> Iterator[list[int]]:
    """``kernel``'s launches raise what Triton raises on a GPU that lacks the shared memory the kernel needs
    (its 99 KiB against selection_bwd_dkdv_kernel's 140,800 B in review revBQ), which the interpreter never
    checks; everything else stays real. Yields a list that counts the launches tried."""
    from triton.runtime.errors import OutOfResources

    from nsa_train.nsa.triton.availability import load_kernels

    module = load_kernels(kernels_module)
    real = getattr(module, kernel)
    tried = [0]

    class Refused:
        def __getitem__(self, grid):
            tried[0] += 1
            raise OutOfResources(140800, 101376, "shared memory")

    setattr(module, kernel, Refused())
    try:
        yield tried
    finally:
        setattr(module, kernel, real)


def _call(op, args, kwargs):
    from nsa_train.nsa import dispatch

    out = getattr(dispatch, op)(*args, impl="triton", **kwargs)
    return out[0] if isinstance(out, tuple) else out


def steps_with_a_failing_backward_kernel(op, args, kwargs, kernels_module, kernel, do):
    """Two training steps of ``dispatch.<op>(*args, impl='triton')`` (its first output) while ``kernel``'s
    launches fail, then a forward without gradients. -> per step: ((dq, dk, dv) of args[:3], the fallbacks
    counted up to then, the failing kernel's launches tried up to then); the reasons counted."""
    from nsa_train.nsa import fallbacks
    from nsa_train.nsa.triton import backward_fallback

    fallbacks.reset()
    backward_fallback.reset()
    steps = []
    try:
        with _launch_fails(kernels_module, kernel) as tried:
            for _ in range(2):
                qkv = [x.detach().requires_grad_() for x in args[:3]]
                grads = torch.autograd.grad(_call(op, (*qkv, *args[3:]), kwargs), qkv, do)
                steps.append((grads, fallbacks.snapshot(), tried[0]))
            with torch.no_grad():
                _call(op, args, kwargs)
            steps.append((None, fallbacks.snapshot(), tried[0]))
        return steps, fallbacks.reasons()
    finally:
        fallbacks.reset()
        backward_fallback.reset()


def checkpointed_blocks_with_a_failing_backward_kernel(op, args, kernels_module, kernel, do):
    """``dispatch.<op>`` then tanh in two blocks under non-reentrant activation checkpointing (the trainer's
    grad_checkpointing), the second taking the first's output as its queries, while ``kernel``'s launches fail:
    the second block's backward fails first, then the first block's forward is recomputed.
    -> ((dq, dk, dv) of args[:3], fallbacks counted, launches tried)."""
    from torch.utils.checkpoint import checkpoint

    from nsa_train.nsa import fallbacks
    from nsa_train.nsa.triton import backward_fallback

    fallbacks.reset()
    backward_fallback.reset()
    try:
        with _launch_fails(kernels_module, kernel) as tried:
            q, k, v = (x.detach().requires_grad_() for x in args[:3])

            def block(x):  # type: ignore[no-untyped-def]
                # a block goes on after attention (tanh saves its output), as the trainer's do: checkpoint stops a
                # recompute with an exception once the saved tensors are back, which must not meet the dispatch
                return _call(op, (x, k, v, *args[3:]), {}).tanh()

            o = checkpoint(block, checkpoint(block, q, use_reentrant=False), use_reentrant=False)
            grads = torch.autograd.grad(o, (q, k, v), do)
            return grads, fallbacks.snapshot(), tried[0]
    finally:
        fallbacks.reset()
        backward_fallback.reset()


def checkpointed_block_ending_in(op, args, do):
    """``dispatch.<op>(*args, impl='triton')`` as the LAST op of a block under non-reentrant activation
    checkpointing: the recompute stops with torch's own exception once the op has saved its tensors again.
    -> ((dq, dk, dv) of args[:3], fallbacks counted)."""
    from torch.utils.checkpoint import checkpoint

    from nsa_train.nsa import fallbacks

    fallbacks.reset()
    try:
        q, k, v = (x.detach().requires_grad_() for x in args[:3])
        o = checkpoint(lambda x: _call(op, (x, k, v, *args[3:]), {}), q, use_reentrant=False)
        grads = torch.autograd.grad(o, (q, k, v), do)
        return grads, fallbacks.snapshot()
    finally:
        fallbacks.reset()


def layer_paths_with_a_failing_backward_kernel(dims, nsa_kwargs, x, kernels_module, kernel):
    """One training step of the NSA layer with impl='triton' while ``kernel``'s launches fail. -> (impl_name
    before the step, impl_name_ran of the fallbacks the step raised, those fallbacks)."""
    from nsa_train.config import NSAConfig
    from nsa_train.nsa import NSAAttention, fallbacks
    from nsa_train.nsa.triton import backward_fallback

    fallbacks.reset()
    backward_fallback.reset()
    try:
        torch.manual_seed(0)
        layer = NSAAttention(*dims, NSAConfig(impl="triton", **nsa_kwargs))
        planned = layer.impl_name
        with _launch_fails(kernels_module, kernel):
            layer(x).sum().backward()
        raised = fallbacks.snapshot()
        return planned, layer.impl_name_ran(set(raised)), raised
    finally:
        fallbacks.reset()
        backward_fallback.reset()


def dispatch_results(calls):
    """calls: [(op in nsa_train.nsa.dispatch, args)] run with impl='triton' -> (the path each op resolves to,
    [(exception type name, text) or the op's output per call], the fallback counts and reasons the calls added)."""
    from nsa_train.nsa import dispatch, fallbacks

    counts, reasons = fallbacks.snapshot(), fallbacks.reasons()
    q = calls[0][1][0]
    paths = {op: dispatch.resolve_impl("triton", q.device, op) for op in dispatch.CHECK_ARGS}
    errors = []
    for op, args in calls:
        try:
            with torch.no_grad():
                errors.append(getattr(dispatch, op)(*args, impl="triton"))
        except Exception as exc:
            errors.append((type(exc).__name__, str(exc)))
    added = {name: n - counts.get(name, 0) for name, n in fallbacks.snapshot().items() if n != counts.get(name, 0)}
    new_reasons = {name: why for name, why in fallbacks.reasons().items() if name not in reasons}
    return paths, errors, added, new_reasons
