"""Fixtures for the Triton kernel tests: worker processes with the right Triton mode.

Triton reads ``TRITON_INTERPRET`` once, at its first import, and a process-wide setting here
would also turn every other Triton user of the same pytest run (torch.compile, the compiled
kernels on a GPU box) into the interpreter. So the CPU tests run the kernels in a spawned worker
whose initializer sets the variable before triton is imported; the tests send it inputs and
check its outputs against the reference here.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import nsa_triton_worker
import pytest
import torch


def _worker(initializer, workers: int = 1) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=initializer)


@pytest.fixture(scope="session")
def interpreter() -> Iterator[ProcessPoolExecutor]:
    """A worker process running the kernels in the Triton interpreter (CPU tensors)."""
    pytest.importorskip("triton", reason="triton is not installed")
    with _worker(nsa_triton_worker.init_interpreter) as pool:
        yield pool


@pytest.fixture
def plain_cpu_worker() -> Iterator[ProcessPoolExecutor]:
    """A fresh worker that sees no CUDA device and no TRITON_INTERPRET."""
    with _worker(nsa_triton_worker.init_plain_cpu) as pool:
        yield pool


@pytest.fixture(scope="module")
def plain_cpu_workers() -> Iterator[ProcessPoolExecutor]:
    """Two such workers, for jobs that each keep one core busy (Triton's compiler and ptxas)."""
    with _worker(nsa_triton_worker.init_plain_cpu, workers=2) as pool:
        yield pool


@pytest.fixture
def cuda() -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch.device("cuda")
