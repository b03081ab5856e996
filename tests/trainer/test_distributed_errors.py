"""A collective that fails because another rank went away is said in one line naming that, not gloo's text."""

from __future__ import annotations

import pytest

from nsa_train.runtime.distributed import peer_lost

GLOO_CLOSED = (
    "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
    "[127.0.0.1]:4745. This is typically caused by a remote worker crashing. Check the logs of the remote worker "
    "before reporting an error. GLHF!"
)
GLOO_RESET = (
    "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:53988: "
    "Connection reset by peer. This is typically caused by a remote worker hanging or bugs in the application."
)


@pytest.mark.parametrize(
    ("text", "said"),
    [(GLOO_CLOSED, "Connection closed by peer [127.0.0.1]:4745"), (GLOO_RESET, "Connection reset by peer")],
)
def test_gloos_lost_peer_is_one_line_without_its_source_position(text: str, said: str) -> None:
    line = peer_lost(RuntimeError(text))
    assert line is not None and line.startswith(f"lost the connection to another rank ({said}): that rank stopped")
    assert "pair.cc" not in line and "GLHF" not in line


def test_other_errors_keep_their_traceback() -> None:
    assert peer_lost(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")) is None
    assert peer_lost(ValueError(GLOO_CLOSED)) is None  # not what a collective raises
