"""Load YAML configs into the typed dataclasses, strictly.

Unknown keys and wrong types are errors naming the key and the file: a silently
ignored key once trained a 24-hour run on the wrong model. There is exactly one
way to choose the config file (``--config``); a disagreeing ``CONFIG`` variable
is an error rather than a silent preference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from nsa_train.config.schema import Config, ConfigError
from nsa_train.config.unknown_keys import find_unknown, unknown_keys_message
from nsa_train.pathkind import special_kind

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: PyYAML keeps the last one without a word, so a
    second `train:` section (or a pasted `lr:`) would silently void the first."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: construct_mapping merges it; own keys win
            continue
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if isinstance(key, (str, int, float, bool)) and key in seen:
            line = key_node.start_mark.line + 1
            first = seen[key]
            raise yaml.YAMLError(f"key {key!r} on line {line} was given on line {first} already: which one is meant?")
        if isinstance(key, (str, int, float, bool)):
            seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


class _IntText(int):
    """An int as YAML read it, with the text it was written as: YAML 1.1 reads 0500 as 320 (octal), 1:40 as 100
    (base 60) and 0x10 as 16, and a string field (runtime.env's MY_VER: 1.10) must keep what was written."""

    text: str


class _FloatText(float):
    text: str


def _with_text(kind: type, construct: Any) -> Any:
    def constructor(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        out = kind(construct(loader, node))
        out.text = node.value
        return out

    return constructor


# no config field holds a date: `data.path=2024-01-02` (a dated folder) is its text, not "expected str, got date"
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: node.value)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _with_text(_IntText, yaml.SafeLoader.construct_yaml_int))
_UniqueKeyLoader.add_constructor(
    "tag:yaml.org,2002:float", _with_text(_FloatText, yaml.SafeLoader.construct_yaml_float)
)


def _written_as(value: Any) -> str | None:
    """Why a number's text is not the plain decimal it was read as (octal, hex, binary, base 60); None if it is."""
    text = getattr(value, "text", None)
    if text is None:
        return None
    t = text.strip().lstrip("+-").replace("_", "").lower()
    if ":" in t:
        return "base 60"
    if not isinstance(value, int):  # a float's leading zeros are decimal (00.5 is 0.5)
        return None
    if t.startswith(("0x", "0o", "0b")):
        return {"0x": "hexadecimal", "0o": "octal", "0b": "binary"}[t[:2]]
    if len(t) > 1 and t[0] == "0" and t[1].isdigit():
        return "octal: a leading zero"
    return None


def _no_odd_numbers(value: Any, key: str, where: str) -> Any:
    """``value``, after refusing any number in it that YAML read in another base (a rule's `for: 010` was 8)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _no_odd_numbers(v, f"{key}.{k}", where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_odd_numbers(v, f"{key}[{i}]", where)
    elif (odd := _written_as(value)) is not None:
        raise ConfigError(
            f"{where}: {key}: YAML reads {value.text} as {_plain(value)} ({odd}): write the number you mean in "
            "plain decimal"
        )
    return value


def load_yaml_text(text: str, where: str) -> Any:
    """YAML as the config loader reads it, for the tools' own YAML files (`nsa status --rules`): a key twice in a
    mapping and a number read in another base are errors (ConfigError naming ``where``); numbers come back plain;
    a YAML syntax error is yaml.YAMLError, as yaml.safe_load raises."""
    data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    return _plain(_no_odd_numbers(data, "top level", where))


def _kind(value: Any) -> str:
    """A value's type as a user knows it: int, not the loader's int-with-its-text."""
    return type(_plain(value)).__name__


def _plain(value: Any) -> Any:
    """The value with its numbers as plain int and float (what dump_yaml and json write)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, _IntText):
        return int(value)
    if isinstance(value, _FloatText):
        return float(value)
    return value


DEFAULT_CONFIG_NAME = "tiny-cpu.yaml"


def default_config_path() -> Path | None:
    """configs/tiny-cpu.yaml of a source checkout, if there is one (the dataclass
    defaults are the same run, so an installed wheel works without it)."""
    p = REPO_CONFIGS / DEFAULT_CONFIG_NAME
    return p if p.is_file() else None


CONFIG_ENV = "CONFIG"
FROM_CONFIG_ENV = f"from ${CONFIG_ENV}"  # how a printed config path says where it came from


def config_from_env(cli_path: str | None, env: dict[str, str] | None = None) -> bool:
    """Whether resolve_config_path(cli_path) takes the file from $CONFIG (no --config given): a command that prints
    its config says so (FROM_CONFIG_ENV), or a CONFIG exported long ago would pick a run's config without a word."""
    env = os.environ if env is None else env
    return not cli_path and bool(env.get(CONFIG_ENV))


def resolve_config_path(cli_path: str | None, env: dict[str, str] | None = None) -> Path | None:
    """The config file to use: --config wins only if CONFIG agrees or is unset."""
    env = os.environ if env is None else env
    if cli_path is not None and not cli_path.strip():  # `--config "$CFG"` with CFG unset: not the default config
        raise ConfigError("--config is empty: give a config file, or leave the option out for the default")
    env_path = env.get(CONFIG_ENV)
    if env_path is not None and not env_path.strip():
        if not cli_path:  # as a path it is '.', and "config file not found: ." names neither the variable nor a fix
            raise ConfigError(f"{CONFIG_ENV} is set but empty: unset it, or give a config file")
        env_path = None  # `CONFIG= nsa ... --config X` sets an exported CONFIG aside: nothing to disagree with
    if cli_path and env_path and Path(cli_path).resolve() != Path(env_path).resolve():
        raise ConfigError(
            f"--config {cli_path} disagrees with the CONFIG environment variable ({env_path}); "
            "unset CONFIG or pass the same file"
        )
    chosen = cli_path or env_path
    if chosen is None:
        return default_config_path()
    p = Path(chosen)
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory" + ("" if cli_path else f" ({FROM_CONFIG_ENV})"))
    if p.exists() and not p.is_file():  # /dev/null, a named pipe: "not found" of a path that is there misleads
        raise ConfigError(
            f"{p} is a {special_kind(p)}, not a config file" + ("" if cli_path else f" ({FROM_CONFIG_ENV})")
        )
    if not p.is_file():
        # a CONFIG exported long ago is not what the user looks at when a command says the file is missing
        raise ConfigError(f"config file not found: {p}" + ("" if cli_path else f" ({FROM_CONFIG_ENV})"))
    return p


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check (and minimally coerce) one value against a field's type hint."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, where)
            except ConfigError as e:
                errors.append(e)
        raise errors[0] if errors else ConfigError(f"{where}: {key}: null is not allowed")
    if tp is Any:  # monitor.rules: its numbers are checked as any number field's
        return _plain(_no_odd_numbers(value, key, where))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a mapping, got {_kind(value)}")
        _, vt = typing.get_args(tp) or (str, Any)
        return {str(k): _coerce(v, vt, f"{key}.{k}", where) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key}: expected a list, got {_kind(value)}")
        (et,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, et, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if tp in (int, float):
        _no_odd_numbers(value, key, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # `NCCL_IB_DISABLE: 1`, `hf_config: 2024`: YAML reads them as numbers; the text as written (1.10 is
            # not 1.1, nor 010 8)
            return getattr(value, "text", None) or str(value)
        if isinstance(value, bool):  # str(True) would be 'True', which no program reads as yes
            raise ConfigError(
                f"{where}: {key}: expected str, got bool {value!r} (YAML reads unquoted true/false/yes/no/on/off "
                f"as booleans): quote the value, e.g. --set '{key}=\"{str(value).lower()}\"'"
            )
    if value is None:
        raise ConfigError(f"{where}: {key}: null is not allowed (expected {_type_name(tp)})")
    raise ConfigError(f"{where}: {key}: expected {_type_name(tp)}, got {_kind(value)} {_plain(value)!r}")


def _build(cls: type, data: Any, prefix: str, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {prefix or 'top level'}: expected a mapping, got {_kind(data)} {_plain(data)!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    # all of them at once, the sections' too: one per run made a migrated config a run per key
    if unknown := find_unknown(cls, data, prefix):
        raise ConfigError(f"{where}: {unknown_keys_message(unknown)}")
    kwargs = {}
    for name in names & set(data):
        tp = hints[name]
        full = f"{prefix}.{name}" if prefix else name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, data[name] if data[name] is not None else {}, full, where)
        else:
            kwargs[name] = _coerce(data[name], tp, full, where)
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.lr=3e-4")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: bad key {key!r}")
    if not raw.strip():
        return key.split("."), ""
    loader = _UniqueKeyLoader(raw)  # one parse: the node says where the value ends, and builds it
    try:
        node = loader.get_single_node()
        value = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        if raw.lstrip()[:1] in ("'", '"', "[", "{"):  # begun as YAML, so meant as YAML: its text would be wrong
            raise ConfigError(f"--set {item!r}: not valid YAML ({_yaml_problem(e)})") from None
        return key.split("."), raw  # `a: b` and the like: the text as it is
    finally:
        loader.dispose()
    rest = raw[node.end_mark.index :].strip() if node is not None else raw.strip()
    if rest.startswith("#"):  # `data.path=shard #1` read as `shard`: another path, without a word
        raise ConfigError(
            f"--set {item!r}: YAML reads {rest!r} as a comment and drops it: quote the value, e.g. "
            f"--set '{key}=\"{raw.strip()}\"'"
        )
    return key.split("."), value


def _same(a: Any, b: Any) -> bool:
    """One value twice: equal once read, or the same number written two ways (YAML 1.1 reads 1e-3 as text)."""
    if hasattr(a, "text") and hasattr(b, "text"):  # two numbers: as written (runtime.env's 1.10 is not 1.1)
        return a.text.strip() == b.text.strip()
    a, b = _plain(a), _plain(b)
    if a == b:
        return True
    try:
        return not isinstance(a, bool) and not isinstance(b, bool) and float(a) == float(b)
    except (TypeError, ValueError):
        return False


def repeated_set(overrides: list[str]) -> str | None:
    """A user's --set of one key twice with different values (only the last would be used, as YAML keeps the last
    of a key twice in a file, which the loader refuses): the message, else None. For the commands' own arguments;
    code that layers overrides (a base, then a change) means the last one."""
    given: dict[tuple[str, ...], tuple[str, Any]] = {}
    for item in overrides:
        try:
            path, value = _parse_override(item)
        except ConfigError:
            continue  # said by the load
        before = given.get(tuple(path))
        if before is not None and not _same(before[1], value):
            return (
                f"--set {'.'.join(path)} given twice ({before[0]!r}, then {item!r}): only one would be used; "
                "give it once"
            )
        given[tuple(path)] = (item, value)
    return None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings onto a raw config mapping (values parsed as YAML), in order."""
    for item in overrides:
        path, value = _parse_override(item)
        node = data
        for part in path[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = nxt
        node[path[-1]] = value
    return data


def _yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's error on one line, at the file's line and column: its own text spans four lines and names the
    file `<unicode string>`."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if mark is None or not problem:
        return " ".join(str(e).split())
    context = getattr(e, "context", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" + (f" ({context})" if context else "")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML file (or the embedded default when None), apply overrides, validate."""
    overrides = overrides or []
    if path is None:
        raw: dict[str, Any] = {}
        where = "<embedded default>"
    else:
        p = Path(path)
        where = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {p} is a directory") from None
        except UnicodeDecodeError as e:  # a Latin-1 comment, a UTF-16 editor, a checkpoint given as the config
            raise ConfigError(
                f"{where}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}): a config is a "
                "YAML file saved as UTF-8"
            ) from None
        except OSError as e:
            raise ConfigError(f"cannot read config {p}: {e.strerror}") from None
        try:
            raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
        except yaml.YAMLError as e:
            raise ConfigError(f"{where}: not valid YAML: {_yaml_problem(e)}") from None
        if raw is None:
            # a truncated copy (a failed scp, `>` for `>>`) of a 125M config would train the tiny default for days
            raise ConfigError(
                f"{where}: sets nothing (empty, or only comments): give its settings, or leave the config out for "
                "the embedded default"
            )
        if not isinstance(raw, dict):
            got = type(raw).__name__
            raise ConfigError(f"{where}: expected a mapping of sections (model:, train:, ...), got {got}")
    if overrides:
        where = f"{where} (with --set {' '.join(overrides)})"
        raw = apply_overrides(raw, overrides)
    try:
        cfg = _build(Config, raw, "", where)
    except ConfigError as e:
        raise ConfigError(f"{e}{newer_nsa_hint(str(e), path)}") from None
    if cfg.data.path is not None:
        cfg.data.path = absolute_data_path(cfg.data.path)
    if cfg.train.init_from is not None:  # likewise: config.yaml names the file wherever the trainer starts
        cfg.train.init_from = absolute_data_path(cfg.train.init_from)
    return cfg


def newer_nsa_hint(message: str, path: str | Path | None) -> str:
    """After an unknown key in a config an nsa wrote (a run's config.yaml, a checkpoint's stored config): where it
    likely comes from. A newer nsa's run resumed or read by an older one met 'unknown key' alone, which reads as a
    mistake of the user's."""
    if "unknown key" not in message:
        return ""
    if path is None:
        return "; a config an nsa saved: a key this nsa does not know comes from a newer nsa (update nsa here)"
    p = Path(path)
    run_json = p.parent / "run.json"
    if p.name != "config.yaml" or not run_json.is_file():
        return ""
    try:
        sha = json.loads(run_json.read_text(encoding="utf-8")).get("git_sha")
    except (OSError, ValueError, AttributeError):
        sha = None
    by = f" (its run.json names git_sha {sha[:12]})" if isinstance(sha, str) and sha else ""
    return (
        f"; {p} is the run's saved config: a key this nsa does not know comes from a newer nsa{by}: update nsa "
        "here (git pull and pip install -e . in its checkout), or go on with the nsa that wrote it"
    )


def absolute_data_path(path: str) -> str:
    """data.path made absolute against the directory it is given in (~ expanded, globs kept).

    A config given on the command line is resolved here, so the run's config.yaml names the files wherever a
    resume starts from, and the same files given relative or absolute are the same source. A config.yaml saved
    with a relative path (before this) resolves against the resume's directory, as it always did."""
    return path if not path else os.path.abspath(os.path.expanduser(path))


def config_to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config dict as dotted keys (``train.lr``); an empty dict or a list is one value, as JSON text."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = json.dumps(v) if isinstance(v, (dict, list)) else v
    return out


def config_from_dict(data: dict[str, Any], where: str = "<dict>") -> Config:
    """Rebuild a Config from run.json/checkpoint data (strict, like a file)."""
    try:
        return _build(Config, data, "", where)
    except ConfigError as e:
        raise ConfigError(f"{e}{newer_nsa_hint(str(e), None)}") from None


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def config_hash(cfg: Config) -> str:
    """Stable short hash of the resolved config (same config, same hash)."""
    blob = json.dumps(config_to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
