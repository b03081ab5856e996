"""A hub that accepts connections and never answers, at the start of a run: the validation set's read gets
data.first_batch_timeout_s as the first batch does, and a stop signal ends the start at once (it was a flag only
the training loop reads: the start went on until a second signal, and no end record was written)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from trainer_helpers import REPO, records, train_cmd, wait_for

pytestmark = pytest.mark.slow


@contextmanager
def silent_hub() -> Iterator[dict[str, str]]:
    """The environment of a trainer whose Hugging Face hub is a loopback socket that never answers."""
    with socket.socket() as hub:
        hub.bind(("127.0.0.1", 0))
        hub.listen(64)
        env = {k: v for k, v in os.environ.items() if k not in ("CONFIG", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
        yield {**env, "HF_ENDPOINT": f"http://127.0.0.1:{hub.getsockname()[1]}"}


HF = ("data.source=hf", "data.hf_name=someone/big-corpus", "data.hf_config=default")


def test_the_validation_read_times_out(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with silent_hub() as env:
        env["HF_HOME"] = str(tmp_path / "hf")
        t0 = time.monotonic()
        proc = subprocess.run(
            train_cmd(run, *HF, "data.first_batch_timeout_s=3"),
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    said = "no validation documents from hf dataset someone/big-corpus (default) split train within 3s"
    assert said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert time.monotonic() - t0 < 60
    assert records(run)[-1]["kind"] == "end" and records(run)[-1]["reason"] == "error"


def test_a_signal_during_the_start_ends_it_at_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with silent_hub() as env:
        env["HF_HOME"] = str(tmp_path / "hf")
        proc = subprocess.Popen(
            train_cmd(run, *HF, "data.first_batch_timeout_s=300"),
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: any(r.get("phase") == "data" for r in records(run)), 90, "the data phase")
            time.sleep(1.0)  # inside the hub's read
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert took < 10, took
    assert "[stop] signal SIGTERM during start-up: stopped before training" in out, out
    end = records(run)[-1]
    assert (end["kind"], end["reason"], end["exit_status"]) == ("end", "signal", 143)
