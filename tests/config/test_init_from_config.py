"""train.init_from in the config: what is checked without the file system, where a relative path points, and the
resume refusals that name it as the way to keep a run's weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsa_train.config import ConfigError, check_resume_config, load_config, resume_notes
from nsa_train.config.loader import dump_yaml


@pytest.mark.parametrize("value", ["''", "'  '"])
def test_an_empty_init_from_is_refused_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"train\.init_from: must be a checkpoint file or a run directory, or null"):
        load_config(None, [f"train.init_from={value}"])


def test_a_relative_init_from_is_made_absolute_where_it_was_given(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None).train.init_from is None
    assert load_config(None, ["train.init_from=runs/a"]).train.init_from == str(tmp_path / "runs" / "a")
    assert load_config(None, ["train.init_from=null"]).train.init_from is None


def test_a_refused_resume_names_a_new_run_from_its_weights_where_they_fit(tmp_path: Path) -> None:
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(load_config(None)))
    with pytest.raises(ConfigError) as e:  # the data position depends on it, the weights do not
        check_resume_config(saved, load_config(None, ["data.seed=7"]), "runs/a")
    assert str(e.value).endswith(
        "or start a new run from its weights (--set train.init_from=runs/a, in another --run-dir)"
    ), e.value
    with pytest.raises(ConfigError) as e:  # the weights themselves do not fit another shape: not offered
        check_resume_config(saved, load_config(None, ["model.dim=64"]), "runs/a")
    assert str(e.value).endswith("or start a new run") and "init_from" not in str(e.value)


def test_init_from_given_to_a_resume_is_said_to_do_nothing(tmp_path: Path) -> None:
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(load_config(None)))
    notes = resume_notes(saved, load_config(None, ["train.init_from=/x"]), 10, ["train.init_from=/x"])
    assert (
        "train.init_from has no effect on a resume: the run continues its own checkpoint (init_from is read on a "
        "fresh start only)" in notes
    ), notes


def test_a_tokenizer_change_is_not_offered_init_from_which_refuses_it(tmp_path: Path) -> None:
    """Review revBM: a resume refused for data.tokenizer (a data key) offered `--set train.init_from=...`, which then
    refused the same change: the embeddings are of the old tokens."""
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(load_config(None)))
    with pytest.raises(ConfigError) as e:
        check_resume_config(saved, load_config(None, ["data.tokenizer=gpt2"]), "runs/a")
    assert "data.tokenizer byte -> gpt2" in str(e.value) and "init_from" not in str(e.value), e.value


def test_a_resume_configs_init_from_is_said_not_read_not_gone_on_with(tmp_path: Path) -> None:
    """Review revBM: a resume with --config listed train.init_from among the changes 'the run goes on with', though
    a resume never reads it; a config without one (the shipped file) leaves the run's alone, unsaid."""
    from nsa_train.config.resume import config_changes

    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(load_config(None, ["train.init_from=/runs/src"])))
    assert config_changes(saved, load_config(None), []) is None
    said = config_changes(saved, load_config(None, ["train.init_from=/runs/other"]), [])
    assert said == (
        "this resume's config: its train.init_from '/runs/other' is not read on a resume (the run continues its own "
        "checkpoint)"
    )
    said = config_changes(saved, load_config(None, ["train.init_from=/runs/other", "train.lr=1e-3"]), [])
    assert said is not None and said.startswith("this resume's config changes the run's beyond --set: train.lr ")
    assert "init_from" not in said.split("; its ")[0] and said.endswith(
        "is not read on a resume (the run continues its own checkpoint)"
    )


def test_a_bare_run_name_not_found_here_names_the_run_of_that_name_under_the_runs_root(
    tmp_path: Path, monkeypatch
) -> None:
    """Review revBM: `--set train.init_from=src` (a run name, as `nsa status src` takes) said only that
    `<cwd>/src` does not exist. The path stays a path; the refusal names the run of that name."""
    from nsa_train.runtime.checkpoint import CheckpointError
    from nsa_train.runtime.init_from import resolve

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NSA_RUNS_DIR", str(tmp_path / "root"))
    (tmp_path / "root" / "src" / "checkpoints").mkdir(parents=True)
    value = load_config(None, ["train.init_from=src"]).train.init_from
    with pytest.raises(CheckpointError) as e:
        resolve(value)
    assert str(e.value).endswith(
        f"; the runs root holds a run named src: give its path, train.init_from={tmp_path / 'root' / 'src'}"
    ), e.value
    for other in ("elsewhere/src", "nothere"):  # not a bare name here, or no such run: nothing more said
        with pytest.raises(CheckpointError) as e:
            resolve(load_config(None, [f"train.init_from={other}"]).train.init_from)
        assert "runs root" not in str(e.value), e.value
