"""Hypothesis: no input line crashes the readers or the engine; bad lines are counted."""

from __future__ import annotations

import json

import pytest
from fixtures.runs import ARMED_MONITOR, ARMED_USER, make_v1_run, make_vibe_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsa_tui.health import build_rules, evaluate
from nsa_tui.runs import RunHistory, load_run
from nsa_tui.runs.bundle import collect_local
from nsa_tui.runs.load import history_from_bundle

SOURCES = [
    "heartbeat_rank0.jsonl",
    "heartbeat_rank3.jsonl",
    "training.csv",
    "val.csv",
    "fallback_counters.csv",
    "x_log.jsonl",
    "metrics.csv",
]
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "", "nan", "∞"]),
)
KEYS = st.sampled_from(
    [
        "v",
        "ts",
        "kind",
        "msg",
        "step",
        "rank",
        "loss",
        "lr",
        "toks_per_s",
        "gpu_mem_alloc",
        "gate_entropy_mean",
        "gate_branch_shares",
        "fallbacks",
        "fb_x",
        "reason",
        "phase",
        "dt_fetch_s",
        "dt_step_s",
        "grad_norm",
        "train_loss",
        "val_loss",
        "steps_per_sec",
    ]
)
VALUES = st.recursive(
    st.one_of(
        NUMBERS,
        st.text(max_size=20),
        st.booleans(),
        st.none(),
        st.sampled_from(["progress", "boot", "end", "step_end", "eval", "phase", "watchdog_dump"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=8,
)
RECORDS = st.dictionaries(KEYS, VALUES, max_size=10).map(lambda d: json.dumps(d, allow_nan=True))
LINES = st.one_of(
    RECORDS,
    RECORDS.flatmap(lambda s: st.integers(0, len(s)).map(lambda i: s[:i])),  # cut lines
    st.binary(max_size=200),
    st.text(max_size=200),  # unicode
    st.lists(st.one_of(NUMBERS.map(str), st.text(max_size=5)), max_size=20).map(",".join),
    st.integers(10_000, 200_000).map(lambda n: "{" + "x" * n),  # very long
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(SOURCES), st.lists(LINES, max_size=8)), max_size=6))
def test_feed_never_crashes(batches):
    h = RunHistory()
    total = 0
    for source, lines in batches:
        n_nonblank = sum(
            1 for x in lines if (x.strip() if isinstance(x, str) else x.decode("utf-8", "replace").strip())
        )
        before = h.corrupt + h.records + len(h.cut_short)
        h.feed(source, lines)
        # every non-blank line is accepted, counted as corrupt, a heartbeat record cut at an attempt's end, or a CSV
        # header (a line cut short so far may turn out corrupt: counted once all the same)
        assert h.corrupt + h.records + len(h.cut_short) - before <= n_nonblank
        total += n_nonblank
    v = evaluate(h, 1.8e9)
    assert v.health in ("ok", "warning", "critical") and v.state
    json.dumps(v.to_dict(), allow_nan=False)
    armed = evaluate(h, 1.8e9, build_rules({"monitor": ARMED_MONITOR}, ARMED_USER))
    json.dumps(armed.to_dict(), allow_nan=False)
    assert h.steps == sorted(h.steps)
    assert all(len(h.column(k)) == len(h.steps) for k in h.metric_names)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(LINES, min_size=1, max_size=10), cut=st.integers(0, 400))
def test_damaged_run_directory(tmp_path_factory, junk, cut):
    """Junk appended to real files, and a file cut mid-line: status still judges the run."""
    d = tmp_path_factory.mktemp("r")
    make_v1_run(d / "a", steps=60)
    make_vibe_run(d / "b", steps=60)
    for run in ("a", "b"):
        hb = d / run / "heartbeat_rank0.jsonl"
        data = hb.read_bytes()
        with open(hb, "wb") as fh:
            fh.write(data[: max(0, len(data) - cut)])
            for x in junk:
                fh.write((x.encode("utf-8", "surrogatepass") if isinstance(x, str) else x) + b"\n")
        h = history_from_bundle(collect_local(d / run))
        for rules in (None, build_rules({"monitor": ARMED_MONITOR}, ARMED_USER)):
            json.dumps(evaluate(h, 1.8e9, rules).to_dict(), allow_nan=False)
        assert h.format in ("nsa-v1", "nsa-vibe")
        assert load_run(d / run).corrupt == h.corrupt


def test_counts_specific_bad_lines():
    h = RunHistory()
    h.feed("heartbeat_rank0.jsonl", [b'{"v":1,"ts":1,"kind":"progress","step":5,"loss":NaN}', b"{cut", b"\xff", b""])
    assert h.records == 1 and h.corrupt == 2
