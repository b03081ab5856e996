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


def test_decode_rejects_garbage():
    for bad in ["", "{", "[1,2]", "null", '{"a":', "\x00\xff"]:
        assert schema.decode(bad) is None


def test_schema_and_config_import_without_torch():
    code = "import nsa_train.telemetry.schema, nsa_train.config, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
