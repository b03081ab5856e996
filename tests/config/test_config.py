"""Config loading: strict keys and types, overrides, one way to choose the file."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from nsa_train.config import Config, ConfigError, config_hash, load_config, resolve_config_path
from nsa_train.config.loader import dump_yaml

REPO = Path(__file__).resolve().parents[2]


def test_tiny_cpu_yaml_equals_the_embedded_default():
    assert load_config(REPO / "configs" / "tiny-cpu.yaml") == load_config(None)


@pytest.mark.parametrize("name", ["tiny-cpu.yaml", "m7c-125m.yaml", "m7c-125m-2gpu.yaml"])
def test_shipped_configs_load(name):
    load_config(REPO / "configs" / name)


def test_m7c_matches_the_production_model():
    c = load_config(REPO / "configs" / "m7c-125m.yaml")
    assert (c.model.dim, c.model.n_layers, c.model.n_heads, c.model.n_kv_heads) == (768, 12, 12, 2)
    assert (c.nsa.l, c.nsa.d, c.nsa.l_sel, c.nsa.n_sel, c.nsa.w) == (32, 16, 64, 16, 512)
    assert (c.train.seq_len, c.train.steps, c.train.save_every, c.runtime.precision) == (2048, 50000, 5000, "bf16")
    ddp = load_config(REPO / "configs" / "m7c-125m-2gpu.yaml")
    assert ddp.model == c.model and ddp.nsa == c.nsa
    assert ddp.runtime.ddp_compress == "bf16" and ddp.train.batch_size % 2 == 0


def test_unknown_key_names_key_and_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  stpes: 10\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "train.stpes" in str(e.value) and str(p) in str(e.value)


def test_unknown_section(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("trian:\n  steps: 10\n")
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        load_config(p)


@pytest.mark.parametrize(
    "overrides,says",
    [(["model=3"], "model: expected a mapping, got int 3"), (["train=[1, 2]"], "train: expected a mapping, got list")],
)
def test_a_section_given_a_value_names_its_type_as_the_user_wrote_it(overrides, says):
    """`--set model=3` said `got _IntText`, the loader's own class for a number kept with its text."""
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides)
    assert says in str(e.value) and "_IntText" not in str(e.value), str(e.value)


@pytest.mark.parametrize(
    "text,key",
    [
        ("train:\n  steps: ten\n", "train.steps"),
        ("train:\n  steps: 1.5\n", "train.steps"),
        ("train:\n  compile: 'yes'\n", "train.compile"),
        ("runtime:\n  env: [a, b]\n", "runtime.env"),
        ("model:\n  dim: null\n", "model.dim"),
    ],
)
def test_wrong_type_names_key(tmp_path, text, key):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(p)


def test_validation_errors_name_the_key():
    with pytest.raises(ConfigError, match="model.n_heads"):
        load_config(None, ["model.n_heads=3"])
    with pytest.raises(ConfigError, match="train.min_lr"):
        load_config(None, ["train.min_lr=1.0"])
    with pytest.raises(ConfigError, match="nsa.l"):
        load_config(None, ["nsa.l=12"])
    # the quick test run everyone tries first: the message says what else to set
    with pytest.raises(ConfigError, match=r"train\.warmup_steps: 50 exceeds train\.steps 20: .*warmup_steps=2\)"):
        load_config(None, ["train.steps=20"])


def test_overrides_parse_values():
    c = load_config(None, ["train.lr=3e-4", "train.steps=70", "runtime.env.NCCL_ALGO=Ring", "train.compile=true"])
    assert c.train.lr == pytest.approx(3e-4) and c.train.steps == 70
    assert c.runtime.env == {"NCCL_ALGO": "Ring"} and c.train.compile is True


def test_environment_values_written_as_numbers_are_strings(tmp_path):
    """`NCCL_IB_DISABLE: 1` is how people write it (the users' launch notes export NCCL_IB_DISABLE=1); YAML reads
    a number. A boolean has no one spelling a program reads, so it is an error that says to quote it."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("runtime:\n  env:\n    NCCL_IB_DISABLE: 1\n    NSA_RATIO: 0.5\n")
    c = load_config(cfg, ["runtime.env.OMP_NUM_THREADS=4"])
    assert c.runtime.env == {"NCCL_IB_DISABLE": "1", "NSA_RATIO": "0.5", "OMP_NUM_THREADS": "4"}
    with pytest.raises(ConfigError, match=r"runtime\.env\.NCCL_P2P_DISABLE: expected str, got bool True.*quote") as e:
        load_config(None, ["runtime.env.NCCL_P2P_DISABLE=true"])
    hint = str(e.value).rsplit("e.g. --set ", 1)[1]  # the spelling it suggests works
    assert hint == """'runtime.env.NCCL_P2P_DISABLE="true"'"""
    assert load_config(None, [hint.strip("'")]).runtime.env == {"NCCL_P2P_DISABLE": "true"}


@pytest.mark.parametrize("bad", ["train.lr", "=3", "train..lr=1", "train.lr.x=1"])
def test_bad_overrides(bad):
    with pytest.raises(ConfigError):
        load_config(None, [bad])


def test_config_env_var_disagreeing_is_an_error(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("{}\n")
    b.write_text("{}\n")
    with pytest.raises(ConfigError, match="disagrees with the CONFIG"):
        resolve_config_path(str(a), {"CONFIG": str(b)})
    assert resolve_config_path(str(a), {"CONFIG": str(a)}) == a
    assert resolve_config_path(None, {"CONFIG": str(b)}) == b
    with pytest.raises(ConfigError, match="not found"):
        resolve_config_path(str(tmp_path / "missing.yaml"), {})


def test_dump_roundtrip_and_hash(tmp_path):
    c = load_config(None, ["train.steps=99"])
    p = tmp_path / "c.yaml"
    p.write_text(dump_yaml(c))
    assert load_config(p) == c
    assert config_hash(c) == config_hash(load_config(p)) != config_hash(load_config(None))


def _fields(cls):
    for f in dataclasses.fields(cls):
        yield cls, f
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _fields(tp)


def test_every_field_has_a_docstring():
    import ast
    import inspect

    import nsa_train.config.schema as schema

    tree = ast.parse(inspect.getsource(schema))
    documented = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        body = cls.body
        for i, node in enumerate(body[:-1]):
            nxt = body[i + 1]
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                documented.add((cls.name, node.target.id))
    missing = [(c.__name__, f.name) for c, f in _fields(Config) if (c.__name__, f.name) not in documented]
    assert not missing, f"fields without a docstring: {missing}"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.beta1=1.5", "train.beta1"),
        ("train.beta2=-0.1", "train.beta2"),
        ("train.weight_decay=-1", "train.weight_decay"),
        ("train.lr=.inf", "train.lr"),
        ("train.lr=.nan", "train.lr"),
        ("train.grad_clip=.inf", "train.grad_clip"),
        ("runtime.threads=0", "runtime.threads"),
        ("model.head_dim=0", "model.head_dim"),
        ("model.vocab_size=0", "model.vocab_size"),
        ("data.seed=-5", "data.seed"),
        ("model.mlp_ratio=0", "model.mlp_ratio"),
        ("model.init_std=-1", "model.init_std"),
        ("model.norm_eps=0", "model.norm_eps"),
        ("monitor.stale_s=0", "monitor.stale_s"),
        ("monitor.min_toks_per_s=-5", "monitor.min_toks_per_s"),  # these four turned their rule off (or on for good)
        ("monitor.max_gpu_mem_gb=.nan", "monitor.max_gpu_mem_gb"),
        ("monitor.gate_entropy_min=2", "monitor.gate_entropy_min"),
        ("monitor.gate_collapse_max=-0.1", "monitor.gate_collapse_max"),
        ("data.path=/tmp/mydata", "data.path"),  # read only with data.source=local: never silently unused
        ("data.hf_name=other/set", "data.hf_name"),  # read only with data.source=hf
        ("data.hf_config=null", "data.hf_config"),
        ("data.hf_split=validation", "data.hf_split"),
        ("data.text_field=body", "data.text_field"),  # the embedded corpus has no columns
    ],
)
def test_values_the_trainer_cannot_use_are_refused_by_key(override, key):
    """Each once reached the trainer: a traceback deep inside torch, or (mlp_ratio, vocab_size, data.path) a
    run that trained on something else than written without a word."""
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_source_keys_at_their_defaults_or_where_read_are_fine():
    """A full config.yaml (every key, the hub's at their defaults) loads whatever the source; set keys load where
    their source reads them."""
    load_config(None, ["data.hf_name=HuggingFaceFW/fineweb-edu", "data.hf_config=sample-10BT", "data.text_field=text"])
    hub = load_config(None, ["data.source=hf", "data.hf_name=me/set", "data.hf_config=null", "data.text_field=body"])
    assert (hub.data.hf_name, hub.data.hf_config, hub.data.text_field) == ("me/set", None, "body")
    local = load_config(None, ["data.source=local", "data.path=x.jsonl", "data.text_field=body"])
    assert local.data.text_field == "body"
    with pytest.raises(ConfigError, match=r"data\.text_field: must name a column"):
        load_config(None, ["data.source=hf", "data.text_field="])


def test_null_where_null_means_the_default():
    c = load_config(
        None, ["model.head_dim=null", "model.vocab_size=null", "runtime.threads=null", "monitor.stale_s=null"]
    )
    assert (c.model.head_dim, c.model.vocab_size, c.runtime.threads, c.monitor.stale_s) == (None, None, None, None)
    assert load_config(None, ["monitor.stale_s=900"]).monitor.stale_s == 900.0


def test_a_key_given_twice_is_an_error(tmp_path):
    """PyYAML keeps the last of two equal keys: a second `train:` section would void the first unseen."""
    p = tmp_path / "twice.yaml"
    p.write_text("train:\n  steps: 10\nmodel:\n  dim: 64\ntrain:\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"twice\.yaml: .*'train' on line 5 was given on line 1 already"):
        load_config(p)
    p.write_text("train:\n  lr: 0.1\n  steps: 10\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"'lr' on line 4 was given on line 2"):
        load_config(p)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just words\n", "42\n"])
def test_a_file_that_is_not_a_mapping_is_one_error(tmp_path, text):
    p = tmp_path / "odd.yaml"
    p.write_text(text)
    for overrides in ([], ["train.steps=3"]):  # --set on top once raised AttributeError
        with pytest.raises(ConfigError, match=r"odd\.yaml: expected a mapping of sections"):
            load_config(p, overrides)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("train:\n  lr: 3\n   steps: 4\n", "mapping values are not allowed here at line 3, column 9"),
        ("train:\n\tlr: 3\n", "found character '\\t' that cannot start any token at line 2, column 1"),
    ],
)
def test_a_yaml_syntax_error_is_one_line_at_the_files_line(tmp_path, text, says):
    """PyYAML's text took four lines and named the file `<unicode string>`."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    message = str(e.value)
    assert message.startswith(f"{cfg}: not valid YAML: {says}") and "\n" not in message, message
    assert "<unicode string>" not in message


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"# lr tuned by M\xfcller\ntrain:\n  lr: 1e-3\n", "not UTF-8 text (byte 0xfc at offset 15)"),
        (b"\xff\xfet\x00r\x00", "not UTF-8 text (byte 0xff at offset 0)"),  # a UTF-16 editor's file
        (b"", "sets nothing (empty, or only comments)"),
        (b"# everything commented out\n#train:\n#  steps: 50000\n", "sets nothing (empty, or only comments)"),
    ],
)
def test_a_config_file_that_is_not_usable_text_is_one_error(tmp_path, data, says):
    """A Latin-1 comment was a UnicodeDecodeError traceback (exit 1, "unexpected"); an empty or commented-out file (a
    truncated copy of a 125M config) trained the tiny embedded default without a word."""
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(data)
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert str(e.value).startswith(f"{cfg}: {says}"), str(e.value)


def test_a_config_path_that_is_a_directory_says_so(tmp_path):
    """It said "config file not found" of a directory that is there."""
    with pytest.raises(ConfigError, match=f"^config file {tmp_path} is a directory$"):
        resolve_config_path(str(tmp_path), env={})
    with pytest.raises(ConfigError, match=r"is a directory \(from \$CONFIG\)$"):
        resolve_config_path(None, env={"CONFIG": str(tmp_path)})
    with pytest.raises(ConfigError, match=f"^config file {tmp_path} is a directory$"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("given", "read_as", "why"),
    [
        ("train.save_every=0500", "320", "octal: a leading zero"),
        ("train.steps=1:40", "100", "base 60"),
        ("train.steps=0x10", "16", "hexadecimal"),
        ("train.steps=0b101", "5", "binary"),
        ("train.lr=1:30.5", "90.5", "base 60"),
    ],
)
def test_a_number_yaml_reads_as_another_is_refused(tmp_path, given, read_as, why):
    """YAML 1.1 reads 0500 as 320 and 1:40 as 100: a run saved every 320 steps, or took 100, without a word."""
    key, text = given.split("=")
    with pytest.raises(ConfigError, match=rf"{key}: YAML reads {text} as {read_as} \({why}\)"):
        load_config(None, [given])
    section, name = key.split(".")
    p = tmp_path / "c.yaml"
    p.write_text(f"{section}:\n  {name}: {text}\n")
    with pytest.raises(ConfigError, match=rf"{key}: YAML reads {text} as {read_as}"):
        load_config(p)


def test_a_string_field_keeps_a_number_as_it_was_written(tmp_path):
    """runtime.env's MY_VER: 1.10 was exported as 1.1, X: 010 as 8 (docs: a number is taken as its string)."""
    sets = [
        "runtime.env.MY_VER=1.10",
        "runtime.env.X=010",
        "runtime.env.H=0x1F",
        "runtime.env.P=+1",
    ]
    c = load_config(None, [*sets, "data.source=hf", "data.hf_config=.5"])
    assert c.runtime.env == {"MY_VER": "1.10", "X": "010", "H": "0x1F", "P": "+1"} and c.data.hf_config == ".5"
    p = tmp_path / "c.yaml"
    p.write_text("runtime:\n  env: {A: 1.10, B: 010, C: 1}\nmonitor:\n  rules: {nan_loss: {for: 3}}\n")
    c = load_config(p)
    assert c.runtime.env == {"A": "1.10", "B": "010", "C": "1"}
    assert type(c.monitor.rules["nan_loss"]["for"]) is int and "for: 3" in dump_yaml(c)  # plain numbers written
    assert type(load_config(None, ["train.steps=1_000"]).train.steps) is int


@pytest.mark.parametrize("value", ["shard #1", "eth0 #primary", "#1"])
def test_a_comment_in_a_set_value_is_refused_not_dropped(value):
    """`--set 'data.path=shard #1'` trained on ./shard: YAML took ' #1' for a comment."""
    with pytest.raises(ConfigError, match=r"as a comment and drops it: quote the value, e\.g\. --set 'data\.path=\""):
        load_config(None, ["data.source=local", f"data.path={value}"])
    assert load_config(None, ["data.source=local", 'data.path="shard #1"']).data.path.endswith("shard #1")
    assert load_config(None, ["runtime.env.A=a#b"]).runtime.env == {"A": "a#b"}  # no space: no comment


def test_a_set_value_begun_as_yaml_must_be_yaml():
    for bad in ['runtime.env.X="unterminated', "runtime.env.X=[1, 2"]:
        with pytest.raises(ConfigError, match="not valid YAML"):
            load_config(None, [bad])


def test_a_set_key_given_twice_with_different_values_is_refused():
    """`--set train.lr=1e-3 --set train.lr=2e-3` trained at 2e-3 without a word, where a key twice in a file is
    an error."""
    from nsa_train.config.loader import repeated_set

    said = repeated_set(["train.lr=1e-3", "train.steps=5", "train.lr=2e-3"])
    assert (
        said
        == "--set train.lr given twice ('train.lr=1e-3', then 'train.lr=2e-3'): only one would be used; give it once"
    )
    assert repeated_set(["train.lr=1e-3", "train.lr=0.001"]) is None  # the same value: no doubt
    assert load_config(None, ["train.lr=1e-3", "train.lr=2e-3"]).train.lr == 2e-3  # code layering overrides: the last
    from typer.testing import CliRunner

    from nsa_train.train import parse_args
    from nsa_tui.cli import app

    for argv in (["launch", "--dry-run"], ["check"]):
        res = CliRunner().invoke(app, [*argv, "--set", "train.lr=1e-3", "--set", "train.lr=2e-3"])
        assert res.exit_code == 2 and "--set train.lr given twice" in res.output, res.output
    with pytest.raises(SystemExit) as e:
        parse_args(["--set", "train.lr=1e-3", "--set", "train.lr=2e-3"])
    assert e.value.code == 2


def test_a_date_is_text_and_merge_keys_work(tmp_path):
    """`--set data.path=2024-01-02` (a dated folder) failed "expected str, got date"; a file sharing settings by
    YAML merge keys (`<<: {...}`) failed "could not determine a constructor"."""
    cfg = load_config(None, ["data.source=local", "data.path=2024-01-02"])
    assert cfg.data.path.endswith("2024-01-02")
    p = tmp_path / "m.yaml"
    p.write_text("train:\n  <<: {lr: 0.01, steps: 40}\n  steps: 50\n")
    c = load_config(p)
    assert (c.train.lr, c.train.steps) == (0.01, 50)  # merged, and the section's own key wins
    p.write_text("train:\n  <<: {lr: 0.01}\n  steps: 50\n  steps: 60\n")
    with pytest.raises(ConfigError, match="'steps' on line 4 was given on line 3"):  # own keys twice: still refused
        load_config(p)


def test_odd_numbers_in_monitor_rules_and_plain_type_names(tmp_path):
    """monitor.rules is free-form: its `for: 010` still loaded as 8. An error named the loader's own class (`got
    _IntText 1`). A float's leading zeros are decimal (00.5 is 0.5, as YAML reads it)."""
    with pytest.raises(ConfigError, match=r"monitor\.rules\.nan_loss\.for: YAML reads 010 as 8"):
        load_config(None, ["monitor.rules.nan_loss.for=010"])
    with pytest.raises(ConfigError, match=r"train\.compile: expected bool, got int 1"):
        load_config(None, ["train.compile=1"])
    assert load_config(None, ["train.lr=00.5"]).train.lr == 0.5
    from nsa_train.config.loader import repeated_set

    assert repeated_set(["runtime.env.A=1.10", "runtime.env.A=1.1"]) is not None  # two texts, whatever the float
    from nsa_tui.health import load_rules_file
    from nsa_tui.health.rules import RulesError

    f = tmp_path / "r.yaml"
    f.write_text("nan_loss: {for: 010}\n")
    with pytest.raises(RulesError, match=r"rules file .*r\.yaml: .*nan_loss\.for: YAML reads 010 as 8"):
        load_rules_file(f)
    f.write_text("nan_loss: {for: 3}\nnan_loss: {for: 4}\n")
    with pytest.raises(RulesError, match=r"'nan_loss' on line 2 was given on line 1"):
        load_rules_file(f)
