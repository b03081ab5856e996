"""A seed report's 38 tokens/s on two A100s read `health OK`: the previous trainer's run folders record no model size
and no GPU, so throughput_low's MFU floor cannot judge them, and nothing said so. `nsa status` says it (and
`--json` why), names the `--rules` floor that does judge them, and marks an lr whose schedule is not known."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fixtures.cli import invoke
from fixtures.runs import make_v1_run

HINT = "(`--rules` with throughput_low.min_toks_per_s judges it)"


def old_trainer_run(path: Path, now: float) -> Path:
    """The previous trainer's folder as a user had it: boot and progress heartbeat records of 38 tok/s over the last
    400 s (2 ranks, 18,900 MiB), a header-less training.csv."""
    path.mkdir(parents=True)
    records = [{"ts": now - 600, "rank": 0, "pid": 1, "msg": "boot", "world_size": 2, "step": 0}]
    rows = []
    for i, step in enumerate((20, 40, 60)):
        loss, lr = 5.19 - 0.05 * i, 4e-6 * (i + 1)
        records.append(
            {"ts": now - 400 + 200 * i, "rank": 0, "pid": 1, "msg": "progress", "step": step, "loss": loss, "lr": lr}
            | {"toks_per_s": 38.0, "gpu_mem_alloc": 18900, "world_size": 2}
        )
        rows.append(f"{step},{loss:.6f},{lr:.6e},38\n")
    (path / "heartbeat_rank0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "training.csv").write_text("".join(rows))
    return path


def test_status_says_the_throughput_of_an_old_trainers_run_is_not_judged(tmp_path):
    run = old_trainer_run(tmp_path / "prod_50k", time.time())
    res = invoke("status", str(run))
    assert res.exit_code == 0, res.stdout
    assert "38 tok/s" in res.stdout and "lr 1.20e-05 (schedule unknown)  38 tok/s" in res.stdout, res.stdout
    assert f"  tok/s not judged: the run records no model size or GPU peak {HINT}\n" in res.stdout, res.stdout
    v = json.loads(invoke("status", "--json", str(run)).stdout)
    assert (v["format"], v["health"], v["lr_phase"]) == ("nsa-vibe", "ok", None)
    assert v["toks_not_judged"] == "the run records no model size or GPU peak"


def test_the_rules_file_the_hint_names_judges_it(tmp_path):
    run = old_trainer_run(tmp_path / "prod_50k", time.time())
    rules = tmp_path / "floor.yaml"
    rules.write_text("throughput_low: {min_toks_per_s: 1000}\n")
    res = invoke("status", "--rules", str(rules), str(run))
    assert res.exit_code == 1, res.stdout
    assert "warning throughput_low (since step 20): 38 tokens/s, below the floor min_toks_per_s=1000" in res.stdout
    assert "not judged" not in res.stdout
    v = json.loads(invoke("status", "--json", "--rules", str(rules), str(run)).stdout)
    assert [a["rule"] for a in v["alerts"]] == ["throughput_low"] and v["toks_not_judged"] is None


def test_a_run_the_mfu_floor_judges_has_no_such_line(tmp_path):
    gpu = {"param_count": 142_000_000, "flops_per_token": 8.5e8, "peak_flops": 312e12, "device_name": "NVIDIA A100"}
    make_v1_run(tmp_path / "gpu", steps=100, run_info=gpu)
    out = invoke("status", str(tmp_path / "gpu")).stdout
    assert "not judged" not in out and "schedule unknown" not in out, out
    # a GPU run of ours whose card nsa does not know (no peak in run.json) is not judged either, and says why
    make_v1_run(tmp_path / "card", steps=100, run_info={**gpu, "peak_flops": None})
    v = json.loads(invoke("status", "--json", str(tmp_path / "card")).stdout)
    assert v["toks_not_judged"].startswith("the run records no peak FLOP/s for its GPU"), v["toks_not_judged"]
    # where the floor leaves a run alone by design, that is said too: a CPU run slowed 20x by machine load (400 of its
    # usual 8,000 tok/s) read "health OK" with nothing saying its rate was never judged
    cpu, small = {"device_name": "cpu", "peak_flops": None}, {"param_count": 1_200_000}
    for name, info, why in (
        ("cpu", cpu, "a CPU run; the MFU floor judges GPU runs only"),
        ("cpu_small", {**cpu, **small}, "a CPU run; the MFU floor judges GPU runs only"),
        ("small", small, "a 1.2M-parameter model, under min_params=50M, whose MFU says little"),
    ):
        make_v1_run(tmp_path / name, steps=100, run_info={**gpu, **info})
        assert f"  tok/s not judged: {why} {HINT}\n" in invoke("status", str(tmp_path / name)).stdout
        assert json.loads(invoke("status", "--json", str(tmp_path / name)).stdout)["toks_not_judged"] == why
    # ... but not where the user's floor in tokens/s judges it
    make_v1_run(tmp_path / "floor", steps=100, run_info={**gpu, **cpu}, monitor={"min_toks_per_s": 10})
    assert json.loads(invoke("status", "--json", str(tmp_path / "floor")).stdout)["toks_not_judged"] is None
    # off by the user's choice (min_mfu null): nothing to say
    make_v1_run(tmp_path / "off", steps=100, run_info={**gpu, "peak_flops": None}, monitor={"min_mfu": None})
    assert json.loads(invoke("status", "--json", str(tmp_path / "off")).stdout)["toks_not_judged"] is None
