"""throughput_low's floor without a user number: model FLOPs utilisation below monitor.min_mfu, for a model big
enough to fill a GPU whose peak is known (run.json). The seed report's 38 tokens/s read as normal."""

from __future__ import annotations

import json

import pytest
from fixtures.runs import make_v1_run

from nsa_tui.health import build_rules, evaluate, load_rules_file
from nsa_tui.runs import load_run

NOW = 1_760_000_000.0
# the 125M config on one A100, as the trainer writes run.json: 5,000 tokens/s (the fixture's healthy rate) is
# 1.4% of its bf16 peak; the fixture's throughput_low injection, 800 tokens/s, is 0.22%
A100_125M = {
    "param_count": 142_000_000,
    "flops_per_token": 8.5e8,
    "peak_flops": 312e12,
    "device_name": "NVIDIA A100 80GB PCIe",
    "precision": "bf16",
}


def judge(path):
    h = load_run(path)
    return evaluate(h, NOW, build_rules(h.config))


def test_a_big_model_far_below_the_gpus_peak_is_throughput_low(tmp_path):
    make_v1_run(tmp_path / "r", steps=1000, step_time_s=2.0, now=NOW, alerts=["throughput_low"], run_info=A100_125M)
    v = judge(tmp_path / "r")
    assert [(a.rule, a.severity) for a in v.alerts] == [("throughput_low", "warning")]
    message = v.alerts[0].message
    assert "is 0.22% MFU of 1 x NVIDIA A100 80GB PCIe (312 TFLOP/s each, bf16)" in message, message
    assert "under the floor min_mfu=0.005" in message and "142M model" in message
    assert v.mfu == pytest.approx(v.toks_per_s * 8.5e8 / 312e12)


def test_a_healthy_rate_is_silent_and_its_mfu_is_in_the_verdict(tmp_path):
    make_v1_run(tmp_path / "r", steps=1000, step_time_s=2.0, now=NOW, run_info=A100_125M)
    v = judge(tmp_path / "r")
    assert v.alerts == []
    assert v.mfu == pytest.approx(v.toks_per_s * 8.5e8 / 312e12) and 0.01 < v.mfu < 0.02
    assert v.param_count == 142_000_000
    assert json.loads(json.dumps(v.to_dict()))["mfu"] == pytest.approx(v.mfu)


@pytest.mark.parametrize(
    "change",
    [
        {"param_count": 20_000_000},  # a small model cannot fill a GPU: its MFU says nothing
        {"peak_flops": None},  # a CPU run, or a card not in the table
        {"flops_per_token": None},  # a run.json from before MFU
        {"peak_flops": "312e12"},  # hand-edited garbage: no verdict from it, and no traceback
    ],
)
def test_no_mfu_alert_without_what_it_needs(tmp_path, change):
    info = {**A100_125M, **change}
    make_v1_run(tmp_path / "r", steps=1000, step_time_s=2.0, now=NOW, alerts=["throughput_low"], run_info=info)
    v = judge(tmp_path / "r")
    assert v.alerts == []


def test_min_mfu_null_switches_it_off_and_a_users_floor_comes_first(tmp_path):
    make_v1_run(
        tmp_path / "off", steps=1000, step_time_s=2.0, now=NOW, alerts=["throughput_low"], run_info=A100_125M,
        monitor={"min_mfu": None},
    )  # fmt: skip
    assert judge(tmp_path / "off").alerts == []
    make_v1_run(
        tmp_path / "floor", steps=1000, step_time_s=2.0, now=NOW, alerts=["throughput_low"], run_info=A100_125M,
        monitor={"min_toks_per_s": 2000},
    )  # fmt: skip
    (alert,) = judge(tmp_path / "floor").alerts
    assert "below the floor min_toks_per_s=2000" in alert.message


def test_two_ranks_share_the_work(tmp_path):
    """tokens/s is the whole run's: MFU divides by every device's peak."""
    make_v1_run(tmp_path / "r", steps=1000, step_time_s=2.0, now=NOW, n_ranks=2, run_info=A100_125M)
    v = judge(tmp_path / "r")
    assert v.mfu == pytest.approx(v.toks_per_s * 8.5e8 / (2 * 312e12))


def test_min_mfu_must_be_a_fraction():
    from nsa_train.config.schema import ConfigError, MonitorConfig

    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="monitor.min_mfu"):
            MonitorConfig(min_mfu=bad)


@pytest.mark.parametrize("state", ["running", "finished"])
def test_an_ended_runs_alert_says_its_tokens_per_s_is_the_last_logged(tmp_path, state):
    """`nsa status` shows an ended run's mean tokens/s (`719 tok/s mean`) beside an alert that quoted the last logged
    rate without saying so (`4026 tokens/s, below ...`); a live run's newest rate is the one status shows. The floor is
    named as a rule's param: it may come from a `--rules` file as well as from the config's monitor section."""
    make_v1_run(
        tmp_path / "r", steps=1000, step_time_s=2.0, now=NOW, state=state, alerts=["throughput_low"],
        monitor={"min_toks_per_s": 2000},
    )  # fmt: skip
    (alert,) = judge(tmp_path / "r").alerts
    h = load_run(tmp_path / "r")
    step, toks = max((s, v) for s, v in zip(h.steps, h.column("toks_per_s"), strict=True) if v is not None)
    last = f" at step {step} (the last logged)" if state == "finished" else ""
    assert alert.message.startswith(f"{toks:.0f} tokens/s{last}, below the floor min_toks_per_s=2000: "), alert.message


def test_thresholds_from_a_rules_file_are_not_called_monitor_keys(tmp_path):
    """A floor or limit set by `--rules FILE` was quoted as `monitor.min_mfu=...`, `monitor.max_gpu_mem_gb=...`: a
    user looked for it in the run's config, which does not set it. The alert names the rule's param only."""
    make_v1_run(
        tmp_path / "r", steps=1000, step_time_s=2.0, now=NOW, alerts=["throughput_low", "memory_high"],
        run_info=A100_125M,
    )  # fmt: skip
    rules = tmp_path / "rules.yaml"
    rules.write_text("throughput_low: {min_mfu: 0.004}\nmemory_high: {max_gpu_mem_gb: 70}\n")
    h = load_run(tmp_path / "r")  # its config sets neither: 0.004 and 70 are the file's
    v = evaluate(h, NOW, build_rules(h.config, load_rules_file(rules)))
    messages = {a.rule: a.message for a in v.alerts}
    assert set(messages) == {"throughput_low", "memory_high"}, messages
    assert "under the floor min_mfu=0.004:" in messages["throughput_low"], messages
    assert "above the limit max_gpu_mem_gb=70:" in messages["memory_high"], messages
    assert not any("monitor." in m for m in messages.values()), messages
