"""run.json's attention_impl is written at the model phase, before the first backward, where the Triton backward
kernels compile and can fail (the fast path's gradients then, counted): it said `triton` of a branch whose backward
ran the fast path at every step. The trainer rewrites it once the first step ran, with the fallbacks that step
raised (attention_fallbacks: null until then). Here on CPU without the interpreter: nsa.impl=triton falls back in
the forward; the backward's fallback is the layer's to name (tests/nsa_triton/test_backward_fallback_interpreter.py)."""

from __future__ import annotations

import json
from pathlib import Path

from trainer_helpers import records, run_train, training, wait_for

from nsa_train.telemetry import schema


def _run_json(run: Path) -> dict:
    return json.loads((run / schema.RUN_JSON).read_text())


def test_run_json_says_what_the_first_step_ran(tmp_path: Path) -> None:
    run = tmp_path / "t"
    with training(run, "train.steps=2", "nsa.impl=triton", NSA_TEST_SLOW_STEP="1:3") as proc:
        # the train phase's record follows run.json's writes before the loop; step 1 then sleeps 3 s
        wait_for(lambda: any(r.get("phase") == schema.PHASE_TRAIN for r in records(run)), 120, "the train phase")
        before = _run_json(run)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert before[schema.RUN_ATTENTION_FALLBACKS] is None  # not known before the first backward
    after = _run_json(run)
    assert after[schema.RUN_ATTENTION_IMPL] == "fast"
    raised = after[schema.RUN_ATTENTION_FALLBACKS]
    assert sorted(raised) == ["compressed.triton->fast", "selection.triton->fast", "window.triton->fast"], raised
    assert all("no CUDA device" in why for why in raised.values()), raised
    # the progress records' counters are as they were: every call counted
    progress = [r for r in records(run) if r["kind"] == schema.KIND_PROGRESS]
    assert progress[-1]["fallbacks"]["selection.triton->fast"] >= 2

    plain = tmp_path / "p"
    proc = run_train(plain, "train.steps=2")
    assert proc.returncode == 0, proc.stderr
    assert _run_json(plain)[schema.RUN_ATTENTION_FALLBACKS] == {}
    assert "[train] attention as step" not in proc.stdout  # nothing changed: nothing said
