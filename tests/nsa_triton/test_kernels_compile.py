"""Every Triton kernel compiles for the GPUs users train on, on this CPU-only machine.

Triton's compiler (to PTX) and ptxas (to a cubin) run without a GPU, so a kernel that the interpreter runs but
the compiler rejects (a construct the interpreter allows, a non-constexpr global, a tile shape tl.dot refuses)
fails here instead of falling back at a user's first step. Each kernel is compiled with the compile-time
arguments its wrapper passes; the worker has no CUDA device and no TRITON_INTERPRET (compiler mode).
"""

from __future__ import annotations

import nsa_triton_worker as worker
import pytest

pytestmark = pytest.mark.slow

# selection: forward, dq, dk/dv; compressed and window branches: forward, dq, dk/dv (writing dk/dv or fp32
# slices of them); importance
KERNELS = 8


@pytest.mark.parametrize(
    ("arch", "cases"),
    [
        # H100/H200: the paper's heads in bf16 (training) and fp32 (the IEEE dot path)
        pytest.param(90, [("bfloat16", 8, 2, 64, 64), ("float32", 8, 2, 64, 64)], id="sm90"),
        # A100: GQA 16 with head dim 128 (the largest row tiles), and no GQA with a narrower value head
        pytest.param(80, [("bfloat16", 16, 1, 128, 128), ("bfloat16", 4, 4, 64, 32)], id="sm80"),
    ],
)
def test_every_kernel_compiles(plain_cpu_worker, tmp_path, arch, cases):
    pytest.importorskip("triton", reason="triton is not installed")
    results = plain_cpu_worker.submit(worker.compile_for_gpu, arch, cases, str(tmp_path)).result(timeout=600)
    assert len(results) == KERNELS * len(cases)
    failed = {name: why for name, why in results.items() if why != "ok"}
    assert not failed, failed
    assert any(tmp_path.rglob("*.cubin")), "nothing was compiled into the fresh cache"
