"""Config loading: YAML errors that name file:line and field, validation rules, path resolution
and CLI overrides (schemas/yaml_loading.py, schemas/config.py, pipeline/config_loading.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline.config_loading import DEFAULT_CONFIG, load_run_config
from schemas.config import CurateConfig, FieldMap, PoolConfig, RebalanceConfig, SynthesisConfig
from schemas.domains import DOMAINS
from schemas.yaml_loading import ConfigError, load_yaml_model


def _yaml(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# --- load_yaml_model ------------------------------------------------------------------------


def test_misspelled_key_names_file_line_and_field(tmp_path: Path):
    path = _yaml(tmp_path, """
        limit: 10
        synthesis:
          n: 2
          temprature: 0.5
    """)
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, CurateConfig)
    message = str(info.value)
    assert message.startswith(f"{path}:4: field 'synthesis.temprature'")
    assert "Extra inputs are not permitted" in message


def test_wrong_type_names_file_line_and_field(tmp_path: Path):
    path = _yaml(tmp_path, """
        # a comment line
        limit: 10

        rebalance:
          mode: strict
          max_samples: lots
    """)
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, CurateConfig)
    message = str(info.value)
    assert message.startswith(f"{path}:6: field 'rebalance.max_samples'")
    assert "valid integer" in message


def test_every_error_is_reported_on_its_own_line(tmp_path: Path):
    path = _yaml(tmp_path, """
        limit: many
        pools:
          - path: a.jsonl
          - path: b.jsonl
            feilds: {question: q}
    """)
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, CurateConfig)
    lines = sorted(str(info.value).splitlines())
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:1: field 'limit'")
    assert lines[1].startswith(f"{path}:5: field 'pools.1.feilds'")


def test_invalid_yaml_syntax_names_the_line(tmp_path: Path):
    path = _yaml(tmp_path, """
        limit: 10
        pools: [
          - a
    """)
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, CurateConfig)
    assert str(info.value).startswith(f"{path}:3: invalid YAML")


def test_top_level_list_is_rejected(tmp_path: Path):
    path = _yaml(tmp_path, """
        - limit: 10
        - pools: []
    """)
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, CurateConfig)
    assert str(info.value) == f"{path}:1: expected a mapping at the top level, got list"


def test_empty_file_gives_the_defaults(tmp_path: Path):
    path = _yaml(tmp_path, "# nothing but a comment\n")
    config = load_yaml_model(path, CurateConfig)
    assert config == CurateConfig()
    assert config.engine.model == "qwen2.5-coder-1.5b-instruct"  # the embedded default
    assert config.export_tokenizer() == config.engine.model  # the export checks against the synthesis model's template


def test_unreadable_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_yaml_model(tmp_path / "missing.yaml", CurateConfig)
    assert "missing.yaml: cannot read" in str(info.value)


def test_rebalance_targets_must_sum_to_one(tmp_path: Path):
    path = _yaml(tmp_path, """
        limit: 3
        rebalance:
          targets: {math: 0.5, code: 0.2}
    """)
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, CurateConfig)
    message = str(info.value)
    # The model-level check points at the rebalance block's content (the targets line).
    assert f"{path}:3: field 'rebalance'" in message
    assert "sum to 1 (got 0.7)" in message
    with pytest.raises(ValueError, match="non-negative"):
        RebalanceConfig(targets={"math": 1.5, "code": -0.5})
    assert RebalanceConfig(targets={"math": 0.7, "code": 0.3}).targets["code"] == 0.3


def test_unknown_answer_format_is_rejected(tmp_path: Path):
    path = _yaml(tmp_path, """
        synthesis:
          formats: [prose, haiku]
    """)
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, CurateConfig)
    message = str(info.value)
    assert f"{path}:2: field 'synthesis.formats'" in message
    assert "unknown answer format 'haiku'" in message
    with pytest.raises(ValueError, match="at least one answer format"):
        SynthesisConfig(formats=[])


def test_config_hash_is_stable_and_sensitive():
    a, b = CurateConfig(), CurateConfig()
    assert a.config_hash() == b.config_hash()
    assert len(a.config_hash()) == 16
    assert CurateConfig(limit=5).config_hash() != a.config_hash()


# --- load_run_config ------------------------------------------------------------------------


@pytest.fixture()
def project(tmp_path: Path) -> dict:
    (tmp_path / "pools").mkdir()
    (tmp_path / "configs").mkdir()
    config = _yaml(tmp_path / "configs", """
        limit: 12
        pools:
          - path: ../pools/a.jsonl
            source: pool-a
            fields: {question: problem, answer: solution}
          - path: ../pools/b.jsonl
            domain: logic
    """)
    return {"root": tmp_path, "config": config}


def test_pool_paths_are_resolved_relative_to_the_config_file(project, monkeypatch):
    monkeypatch.chdir(project["root"] / "pools")  # the working dir must not matter
    config = load_run_config(project["config"])
    assert [p.path for p in config.pools] == [
        str((project["root"] / "pools" / "a.jsonl").resolve()),
        str((project["root"] / "pools" / "b.jsonl").resolve()),
    ]
    assert config.limit == 12
    assert config.pools[0].fields.question == "problem"


def test_questions_override_keeps_a_matching_pool_mapping(project, monkeypatch):
    monkeypatch.chdir(project["root"])
    config = load_run_config(project["config"], questions=["pools/a.jsonl", "other.jsonl"])
    assert len(config.pools) == 2
    kept, fresh = config.pools
    assert kept.path == str((project["root"] / "pools" / "a.jsonl").resolve())
    assert kept.source == "pool-a"
    assert kept.fields == FieldMap(question="problem", answer="solution")
    # A path not in the config is read with the default mapping, relative to the working dir.
    assert fresh == PoolConfig(path=str((project["root"] / "other.jsonl").resolve()))
    assert fresh.fields.question == "question" and fresh.fields.answer == "answer"


def test_limit_override(project):
    assert load_run_config(project["config"], limit=3).limit == 3
    assert load_run_config(project["config"], limit=None).limit == 12
    assert load_run_config(project["config"], limit=0).limit == 0


def test_default_config_is_used_without_a_path():
    config = load_run_config()
    shipped = yaml.safe_load(DEFAULT_CONFIG.read_text())
    assert config.limit == shipped["limit"]
    assert len(config.pools) == len(shipped["pools"])
    assert all(Path(p.path).is_absolute() and Path(p.path).exists() for p in config.pools)
    assert config.rebalance.targets == shipped["rebalance"]["targets"] and set(config.rebalance.targets) <= set(DOMAINS)
