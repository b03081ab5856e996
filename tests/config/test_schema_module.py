"""Telemetry v1 schema helpers: round trip, validation, NaN survives, stdlib only."""

from __future__ import annotations

import math
import subprocess
import sys

from nsa_train.telemetry import schema


def test_record_roundtrip_keeps_nan():
    rec = schema.make_record("progress", 0, 5, 123, 1.0, **{k: None for k in schema.PROGRESS_FIELDS})
    rec["loss"] = float("nan")
    line = schema.encode(rec)
    assert line.endswith("\n") and "\n" not in line[:-1]
    back = schema.decode(line)
    assert back is not None and math.isnan(back["loss"])
    assert schema.validate(back) == []


def test_validate_reports_missing_fields():
    problems = schema.validate({"v": 1, "kind": "end", "ts": 0, "rank": 0, "step": 1, "pid": 1})
    assert "end record missing 'reason'" in problems


def test_every_phase_declares_its_fields():
    assert tuple(schema.PHASE_FIELDS) == schema.PHASES
    rec = schema.make_record("phase", 0, 0, 1, 1.0, phase="data", source="hub")
    assert schema.validate(rec) == ["phase record missing 'tokenizer'"]
    assert schema.validate({**rec, "tokenizer": "gpt2"}) == []
    done = schema.make_record("phase", 0, 0, 1, 1.0, phase="config", done=True)
    assert "phase record missing 'micro_batch'" in schema.validate(done)  # the config's done record, not its start
    replay = schema.make_record("phase", 0, 600, 1, 1.0, phase="data", replayed=10, replay_of=20)
    assert schema.phase_fields(replay) == ("phase", *schema.DATA_REPLAY_FIELDS) and schema.validate(replay) == []
    assert schema.validate(schema.make_record("phase", 0, 0, 1, 1.0, phase="warmup")) == ["unknown phase 'warmup'"]


def test_the_phase_fields_are_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "telemetry.md").read_text()
    section = doc[doc.index("### `phase`") : doc.index("### `liveness`")]
    declared = {f for fields in schema.PHASE_FIELDS.values() for f in fields}
    for field in sorted(declared | {*schema.CONFIG_DONE_FIELDS, *schema.DATA_REPLAY_FIELDS}):
        assert f"`{field}`" in section, field


def test_decode_rejects_garbage():
    for bad in ["", "{", "[1,2]", "null", '{"a":', "\x00\xff"]:
        assert schema.decode(bad) is None


def test_schema_and_config_import_without_torch():
    code = "import nsa_train.telemetry.schema, nsa_train.config, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
