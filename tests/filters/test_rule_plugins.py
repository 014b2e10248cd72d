"""Adding a cheap rule is one file: a @register'd SampleFilter with its Params model. Here the
file lives in a temporary folder (a user's own package), is named in `filters.modules`, runs in
the filter stage on a real DuckDB file, hashes its parameters, and is backfilled over the samples
already stored: only what it has not judged under its current parameters is checked."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.config_loading import load_run_config
from pipeline.stage import RunState, StageContext
from pipeline.stages import filter as filter_stage
from schemas.config import CurateConfig
from schemas.yaml_loading import ConfigError
from tests.filters.test_filter_stage import _store

RULE = '''
from filters.base import RuleParams, RuleResult, SampleFilter
from filters.registry import register


@register
class NoWord(SampleFilter):
    """Fails a sample whose raw text contains a word (a toy rule for the plugin test)."""

    name = "no_word"
    version = 1
    needs = ("raw_text",)

    class Params(RuleParams):
        word: str = "think"

    def check(self, sample) -> RuleResult:
        found = self.params.word in (sample["raw_text"] or "")
        return RuleResult(not found, 0.0 if found else 1.0, f"says {self.params.word!r}" if found else None)
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch) -> str:
    folder = tmp_path / "my_rules"
    folder.mkdir()
    (folder / "no_word_rule.py").write_text(textwrap.dedent(RULE))
    monkeypatch.syspath_prepend(str(folder))
    yield "no_word_rule"
    sys.modules.pop("no_word_rule", None)


def _filter_stage(store, config: CurateConfig, run_id: str) -> dict:
    config = config.model_copy(update={"decontamination": config.decontamination.model_copy(
        update={"check_answers": False})})
    return filter_stage.run(StageContext(store, RunState(run_id, config))).counts


def test_a_rule_from_one_file_runs_hashes_and_backfills(plugin, tmp_path: Path):
    with _store(tmp_path / "p.duckdb", 12) as store:
        before = _filter_stage(store, CurateConfig(), "run-0")  # the built-in rules, before the plugin
        assert "no_word" not in before

        config = CurateConfig(filters={"modules": [plugin]})
        first = _filter_stage(store, config, "run-1")
        assert first["no_word"] == {"checked": 12, "failed": 8}  # backfilled over what was stored: 2 in 3 think
        assert all(c["checked"] == 0 for rule, c in first.items() if rule != "no_word")
        assert _filter_stage(store, config, "run-2")["no_word"]["checked"] == 0

        changed = CurateConfig(filters={"modules": [plugin], "no_word": {"word": "4"}})
        again = _filter_stage(store, changed, "run-3")
        assert again["no_word"] == {"checked": 12, "failed": 12}  # new parameters, new hash: all recomputed
        hashes = store.frame("SELECT DISTINCT config_hash FROM verdicts WHERE rule = 'no_word'")
        assert hashes.height == 2
        recorded = store.frame("SELECT params FROM rule_configs WHERE rule = 'no_word'")["params"].to_list()
        assert recorded == ['{"word": "4"}']
        # A run whose config does not name the module does not run its rule (imported or not).
        assert "no_word" not in _filter_stage(store, CurateConfig(), "run-4")


def test_a_plugin_rules_parameters_are_checked_with_file_and_line(plugin, tmp_path: Path):
    config = tmp_path / "run.yaml"
    config.write_text(f"filters:\n  modules: [{plugin}]\n  no_word:\n    wrod: x\n")
    with pytest.raises(ConfigError, match=r"run\.yaml:4: field 'filters\.no_word\.wrod': Extra inputs"):
        load_run_config(config)
    config.write_text("filters:\n  repetiton: {max_dup_line_frac: 0.2}\n")
    with pytest.raises(ConfigError, match=r"run\.yaml:2: field 'filters\.repetiton': no rule is named"):
        load_run_config(config)
    config.write_text("filters:\n  code_tests: {timeout_s: -1}\n")
    with pytest.raises(ConfigError, match=r"run\.yaml:2: field 'filters\.code_tests\.timeout_s'"):
        load_run_config(config)
