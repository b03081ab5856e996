"""A config with several unknown keys says all of them in one error, each with the key it likely means. Field
report: migrating the old trainer's config met `train.out_dir`, then (a run later) `runtime.gradient_checkpointing`,
then `runtime.use_flash`, each alone and with no hint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nsa_train.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]

# the old trainer's production config, as the field report quotes it (one key a line)
OLD_TRAINER_CONFIG = """\
model:
  dim: 768
  n_layers: 12
  n_heads: 12
nsa:
  l: 32
  d: 16
  l_sel: 64
  n_sel: 16
  w: 512
train:
  steps: 50000
  seq_len: 2048
  batch_size: 1
  lr: 2.0e-4
  save_every: 5000
  out_dir: artifacts/m7c_125m_2xa100_prod
runtime:
  precision: bf16
  gradient_checkpointing: false  # Initially off
  use_flash: true
"""


def _error(tmp_path: Path, text: str, overrides: list[str] | None = None) -> str:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p, overrides)
    return str(e.value)


def test_every_unknown_key_of_an_old_config_is_in_one_error(tmp_path):
    msg = _error(tmp_path, OLD_TRAINER_CONFIG)
    assert msg.startswith(f"{tmp_path / 'c.yaml'}: 3 unknown keys: 'train.out_dir' ("), msg
    assert "--run-dir" in msg.split("'train.out_dir'")[1].split("'runtime.")[0]
    assert "'runtime.gradient_checkpointing' (the old trainer's name: did you mean 'train.grad_checkpointing'?)" in msg
    assert "'runtime.use_flash' (the old trainer's use_flash: the attention kernels are nsa.impl" in msg
    assert "known in train: batch_size," in msg and "known in runtime: backend," in msg
    assert "\n" not in msg


def test_a_close_key_is_offered_in_any_section(tmp_path):
    msg = _error(tmp_path, "trian:\n  steps: 1\nmodel:\n  dimm: 8\n", ["train.stpes=3", "nsa.window=5"])
    for said in (
        "'trian' (did you mean 'train'?)",
        "'model.dimm' (did you mean 'model.dim'?)",
        "'train.stpes' (did you mean 'train.steps'?)",
        "'nsa.window';",  # nothing close (w is too short to match): no guess
    ):
        assert said in msg, msg
    assert "4 unknown keys" in msg and "known in top level: data, model," in msg


def test_one_unknown_key_keeps_its_wording_with_the_hint(tmp_path):
    msg = _error(tmp_path, "train:\n  stpes: 10\n")
    assert "unknown key 'train.stpes' (did you mean 'train.steps'? known: batch_size," in msg
    msg = _error(tmp_path, "train:\n  zzz: 10\n")
    assert "unknown key 'train.zzz' (known: batch_size," in msg


@pytest.mark.parametrize("argv", [["-m", "nsa_tui", "check"], ["-m", "nsa_train.train", "--run-dir", "RUN"]])
def test_the_tools_and_the_trainer_say_it_in_one_line_exit_2(tmp_path, argv):
    cfg = tmp_path / "old.yaml"
    cfg.write_text(OLD_TRAINER_CONFIG)
    argv = [a.replace("RUN", str(tmp_path / "run")) for a in argv]
    res = subprocess.run(
        [sys.executable, *argv, "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    errors = [line for line in res.stderr.splitlines() if "unknown key" in line]
    assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
    for key in ("train.out_dir", "runtime.gradient_checkpointing", "runtime.use_flash"):
        assert f"'{key}'" in errors[0]
