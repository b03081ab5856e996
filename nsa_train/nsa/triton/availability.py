"""Can the Triton kernels run here, and in which mode? Nothing here imports triton until asked.

Triton fixes its mode per process, when ``triton`` is first imported: with ``TRITON_INTERPRET=1``
in the environment its own library functions (``tl.zeros``, ``tl.sum``, ...) are defined for the
interpreter, otherwise for the compiler, and kernels of the other mode cannot call them. So:
- ``"interpreter"``: triton was imported with ``TRITON_INTERPRET=1``; kernels run in Python on
  CPU (slow; for tests and debugging).
- ``"cuda"``: compiled kernels, CUDA tensors only.
Setting or clearing ``TRITON_INTERPRET`` after triton is imported changes nothing; the reason
string says so when that is why the kernels cannot run.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from types import ModuleType

import torch

_KERNELS_PACKAGE = "nsa_train.nsa.triton"
_TRUTHY = {"1", "true", "yes", "on"}
_load_lock = threading.Lock()


class TritonUnavailableError(RuntimeError):
    """The Triton kernels cannot run for these inputs on this machine; the message says why."""


def interpret_requested() -> bool:
    """True when ``TRITON_INTERPRET`` is set to a true value in the environment now."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in _TRUTHY


def kernel_mode() -> str:
    """``"interpreter"`` or ``"cuda"``: triton's mode in this process (predicted from the env if not imported yet)."""
    language = sys.modules.get("triton.language")
    if language is None:
        return "interpreter" if interpret_requested() else "cuda"
    return "interpreter" if type(language.zeros).__name__ == "InterpretedFunction" else "cuda"


def _triton_import_error() -> str | None:
    try:
        importlib.import_module("triton.language")
    except Exception as exc:  # ImportError, or a broken install raising anything at import
        return f"triton is not importable ({type(exc).__name__}: {exc})"
    return None


def triton_available(device: torch.device | str | None = None) -> tuple[bool, str]:
    """Whether the kernels can run here (and for tensors on ``device``, if given), with the reason.

    True when triton imports and either runs in interpreter mode or a CUDA device is present (and
    ``device``, if given, is a CUDA device); False otherwise, with a one-line reason fit for a
    fallback counter.
    """
    error = _triton_import_error()
    if error:
        return False, error
    if kernel_mode() == "interpreter":
        return True, "Triton interpreter (TRITON_INTERPRET=1): kernels run on CPU in Python, slowly"
    if not torch.cuda.is_available():
        if interpret_requested():
            return False, (
                "no CUDA device, and TRITON_INTERPRET=1 was set after triton was imported "
                "(triton reads it once, at import: set it before starting Python)"
            )
        return False, "no CUDA device (set TRITON_INTERPRET=1 before starting Python to use the Triton interpreter)"
    if device is not None and torch.device(device).type != "cuda":
        return False, f"tensors are on {torch.device(device)}; the compiled Triton kernels need CUDA tensors"
    return True, f"CUDA device {torch.cuda.get_device_name()}"


def load_kernels(name: str = "_selection_kernels") -> ModuleType:
    """The kernel module ``nsa_train.nsa.triton.<name>``, defined in triton's mode on first use;
    TritonUnavailableError if it cannot run."""
    ok, reason = triton_available()
    if not ok:
        raise TritonUnavailableError(reason)
    module = f"{_KERNELS_PACKAGE}.{name}"
    with _load_lock:
        if module in sys.modules:
            return sys.modules[module]
        # @triton.jit reads TRITON_INTERPRET when a kernel is defined: make it agree with triton's mode,
        # whatever the environment says now, so kernels and triton's library functions match.
        saved = os.environ.get("TRITON_INTERPRET")
        os.environ["TRITON_INTERPRET"] = "1" if kernel_mode() == "interpreter" else "0"
        try:
            return importlib.import_module(module)
        finally:
            if saved is None:
                del os.environ["TRITON_INTERPRET"]
            else:
                os.environ["TRITON_INTERPRET"] = saved
