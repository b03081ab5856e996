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


def test_end_reason_is_checked():
    end = schema.make_record("end", 0, 5, 1, 1.0, reason=schema.END_HALT, exit_status=0)
    assert schema.validate(end) == []
    assert schema.validate({**end, "reason": "bored"}) == ["unknown end reason 'bored'"]


def test_heartbeat_and_stackdump_names_parse_back():
    for rank in (0, 3, 12):
        assert schema.heartbeat_rank(schema.heartbeat_name(rank)) == rank
        assert schema.stackdump_rank(schema.stackdump_name(rank, 1700000000.5)) == rank
    assert schema.heartbeat_rank("runs/a/heartbeat_rank10.jsonl") == 10  # a path: its last part
    # "²" is a digit to str.isdigit() but not to int(); a renamed copy is not a rank's heartbeat
    odd = ("heartbeat_rank.jsonl", "heartbeat_rankx.jsonl", "heartbeat_rank\u00b2.jsonl", "old_heartbeat_rank0.jsonl")
    for bad in (*odd, "heartbeat_rank0.jsonl.bak", schema.TRAINING_CSV):
        assert schema.heartbeat_rank(bad) is None, bad
    for bad in ("stackdump_rank_1.txt", "stackdump_rankx_1.txt", "stackdump_rank1_1.log", "dump_rank1_1.txt"):
        assert schema.stackdump_rank(bad) is None, bad


def test_world_size_of_a_boot_record():
    assert schema.world_size_of({"world_size": 8}) == 8
    assert schema.world_size_of({"world_size": schema.MAX_WORLD_SIZE}) == schema.MAX_WORLD_SIZE
    for bad in (None, 0, -1, True, 2.0, "8", schema.MAX_WORLD_SIZE + 1, 10**12):
        assert schema.world_size_of({"world_size": bad}) is None, bad
    assert schema.world_size_of({}) is None


def test_gate_share_columns_follow_training_csv():
    assert set(schema.GATE_SHARE_COLUMNS) <= set(schema.TRAINING_CSV_HEADER)
    assert schema.gate_share_columns([0.2, 0.3, 0.5]) == {
        "gate_share_cmp": 0.2,
        "gate_share_sel": 0.3,
        "gate_share_win": 0.5,
    }
    for bad in (None, [0.5, 0.5], "abc", {"cmp": 1}):
        assert schema.gate_share_columns(bad) == {}


def test_file_field_tuples_have_no_repeats():
    for fields in (schema.RUN_JSON_FIELDS, schema.SUMMARY_FIELDS, schema.PHASES, schema.END_REASONS):
        assert len(set(fields)) == len(fields), fields


def test_run_json_and_summary_keys_are_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "telemetry.md").read_text()
    for title, end, fields in (
        ("## `run.json`", "## `summary.json`", schema.RUN_JSON_FIELDS),
        ("## `summary.json`", "## Checkpoints", schema.SUMMARY_FIELDS),
    ):
        section = doc[doc.index(title) : doc.index(end)]
        for field in fields:
            assert f"`{field}`" in section, (title, field)
