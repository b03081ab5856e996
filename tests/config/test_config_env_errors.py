"""A config chosen by the CONFIG variable says so when it is wrong: a CONFIG exported long ago is not what the user
looks at when a command says `config file not found`. An empty CONFIG is one clear error, not "not found: ."."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nsa_train.config import ConfigError, resolve_config_path

REPO = Path(__file__).resolve().parents[2]
EMPTY = "error: CONFIG is set but empty: unset it, or give a config file"


def _run(module: str, *args: str, config: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONFIG": config, "NSA_RUNS_DIR": str(tmp_path / "runs")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


# each command's exit status for a config error, as before: launch 1, check 2, the trainer 2
COMMANDS = [
    ("nsa_tui", ("launch", "--dry-run"), 1),
    ("nsa_tui", ("check",), 2),
    ("nsa_train.train", (), 2),
]


@pytest.mark.parametrize(("module", "args", "code"), COMMANDS)
def test_a_missing_config_from_the_variable_says_where_it_came_from(module, args, code, tmp_path):
    missing = tmp_path / "nonexist.yaml"
    res = _run(module, *args, config=str(missing), tmp_path=tmp_path)
    assert res.returncode == code
    assert _one_error_line(res) == f"error: config file not found: {missing} (from $CONFIG)"


@pytest.mark.parametrize(("module", "args", "code"), COMMANDS)
@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_config_variable_is_one_clear_error(module, args, code, blank, tmp_path):
    res = _run(module, *args, config=blank, tmp_path=tmp_path)
    assert res.returncode == code and _one_error_line(res) == EMPTY


def test_resolve_config_path_with_the_variable(tmp_path):
    given = tmp_path / "a.yaml"
    given.write_text("{}\n")
    with pytest.raises(ConfigError, match=r"^config file not found: .*missing\.yaml \(from \$CONFIG\)$"):
        resolve_config_path(None, {"CONFIG": str(tmp_path / "missing.yaml")})
    with pytest.raises(ConfigError, match=r"^config file not found: .*missing\.yaml$"):  # --config: no $CONFIG
        resolve_config_path(str(tmp_path / "missing.yaml"), {})
    for blank in ("", " \t"):
        with pytest.raises(ConfigError, match="CONFIG is set but empty"):
            resolve_config_path(None, {"CONFIG": blank})
        # `CONFIG= nsa ... --config X` sets an exported CONFIG aside: --config is used, nothing disagrees
        assert resolve_config_path(str(given), {"CONFIG": blank}) == given
