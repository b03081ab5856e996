"""A hub that accepts connections and never answers, at the start of a run: the validation set's read gets
data.first_batch_timeout_s as the first batch does, and a stop signal ends the start at once (it was a flag only
the training loop reads: the start went on until a second signal, and no end record was written)."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from trainer_helpers import records, run_train, training, wait_for

pytestmark = pytest.mark.slow


@contextmanager
def silent_hub(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment settings for a trainer whose Hugging Face hub is a loopback socket that never answers (online:
    the offline switches off)."""
    with socket.socket() as hub:
        hub.bind(("127.0.0.1", 0))
        hub.listen(64)
        yield {
            "HF_ENDPOINT": f"http://127.0.0.1:{hub.getsockname()[1]}",
            "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_OFFLINE": "0",
            "HF_DATASETS_OFFLINE": "0",
        }


HF = ("data.source=hf", "data.hf_name=someone/big-corpus", "data.hf_config=default")


def test_the_validation_read_times_out(tmp_path: Path) -> None:
    run = tmp_path / "run"
    t0 = time.monotonic()
    with silent_hub(tmp_path) as env:
        proc = run_train(run, *HF, "data.first_batch_timeout_s=3", **env)
    assert proc.returncode == 2, proc.stderr
    said = "no validation documents from hf dataset someone/big-corpus (default) split train within 3s"
    assert said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert time.monotonic() - t0 < 60
    assert records(run)[-1]["kind"] == "end" and records(run)[-1]["reason"] == "error"


def test_a_signal_during_the_start_ends_it_at_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with silent_hub(tmp_path) as env, training(run, *HF, "data.first_batch_timeout_s=300", **env) as proc:
        wait_for(lambda: any(r.get("phase") == "data" for r in records(run)), 90, "the data phase")
        time.sleep(1.0)  # inside the hub's read
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert took < 10, took
    assert "[stop] signal SIGTERM during start-up: stopped before training" in out, out
    end = records(run)[-1]
    assert (end["kind"], end["reason"], end["exit_status"]) == ("end", "signal", 143)
    summary = json.loads((run / "summary.json").read_text())  # no step: no rate (0 read as a measured one)
    assert summary["end_reason"] == "signal" and summary["mean_toks_per_s"] is None


def test_a_signal_in_the_first_seconds_is_a_stop_too(tmp_path: Path) -> None:
    """The handlers came after torch's import and the config: a SIGTERM then (a tmux session killed at once) left no
    end record, a SIGINT a KeyboardInterrupt traceback read as a crash. And a stop is no reader's error: the
    `except Exception` around a data or checkpoint read took it for one (exit 2, `crashed`)."""
    from nsa_train.runtime.control import StoppedAtStart

    assert not issubclass(StoppedAtStart, Exception)
    run = tmp_path / "run"
    with training(run, "train.steps=5") as proc:
        wait_for(lambda: any(r["kind"] == "boot" for r in records(run)), 60, "the boot record")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, out
    assert "Traceback" not in out and "[stop] signal SIGINT during start-up" in out, out
    end = records(run)[-1]
    assert (end["kind"], end["reason"]) == ("end", "signal")
