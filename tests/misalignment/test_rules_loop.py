"""The loop's rule half on a real store (real GSM8K samples, real cheap-rule verdicts): bad
cases and labels go in through the CLI; a SQL or Python rule is previewed without changing
anything that counts (precision/recall against the labels, near misses, overlap, the export's
mix); enabling makes it count, disabling stops it counting without deleting a verdict; an
enabled SQL rule reaches the samples of later runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from pipeline.config_loading import load_run_config
from pipeline.misalignment.enable import disable, enable
from pipeline.misalignment.loop_rules import resolve
from pipeline.misalignment.preview import preview
from pipeline.misalignment.sql_rules import conjuncts
from pipeline.stage import RunState, StageContext
from pipeline.stages import sql_rules as sql_rules_stage
from pipeline.store import Store
from schemas.yaml_loading import ConfigError
from tests.misalignment.loop_store import counts

runner = CliRunner()



def _rule(tmp_path: Path, where: str, name: str = "short_or_looping", version: int = 1) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nversion: {version}\ndescription: test rule\nwhere: {json.dumps(where)}\n")
    return path



def cli(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


# ---------------------------------------------------------------- bad cases and labels

def test_bad_cases_from_a_file_all_or_nothing(db: Path, tmp_path: Path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"prompt": "How many clips?", "bad_output": "48 48 48 48", "tags": ["loop"]}) + "\n"
                     + json.dumps({"prompt": "Weng?", "bad_ouput": "x"}) + "\n")
    code, output = cli("badcases", "add", "--file", str(cases), "--db", str(db))
    assert code == 2 and f"{cases}:2: field 'bad_output'" in output and "Traceback" not in output
    with Store(db) as store:
        assert store.count("bad_cases") == 0  # nothing half written
    cases.write_text(cases.read_text().splitlines()[0] + "\n")
    assert cli("badcases", "add", "--file", str(cases), "--db", str(db))[0] == 0
    assert cli("badcases", "add", "--file", str(cases), "--db", str(db))[0] == 0  # again: no duplicate
    code, output = cli("badcases", "add", "--prompt", "Is 7 prime?", "--output", "As an AI language model I cannot",
                       "--tag", "self-identity", "--db", str(db))
    assert code == 0
    with Store(db) as store:
        assert store.count("bad_cases") == 2
        assert store.scalar("SELECT source FROM bad_cases WHERE prompt = 'How many clips?'") == f"{cases}:1"


def test_labels_are_rows_and_the_newestcounts(db: Path):
    assert cli("label", "s003", "s019", "--dirty", "--db", str(db))[0] == 0
    assert cli("label", "s019", "--clean", "--note", "on second look", "--db", str(db))[0] == 0
    code, output = cli("label", "nope", "--dirty", "--db", str(db))
    assert code == 2 and "no sample with id 'nope'" in output
    with Store(db) as store:
        assert store.count("candidate_labels") == 3
        assert dict(store.frame("SELECT sample_id, label FROM current_labels").rows()) == {"s003": "dirty", "s019": "clean"}


# ---------------------------------------------------------------- preview writes nothing that counts

def test_sql_rule_preview(db: Path, tmp_path: Path):
    cli("label", "s003", "s015", "s020", "--dirty", "--db", str(db))
    cli("label", "s000", "--clean", "--db", str(db))
    rule = resolve(str(_rule(tmp_path, "reasoning_chars < 120 AND finish_reason = 'length' OR sample_id IN ('s003', 's000')")),
                   load_run_config(None))
    before = counts(db)
    report = preview(db, rule, load_run_config(None))
    after = counts(db)
    assert after[:2] == before[:2] and after[2] == before[2] + 3  # only preview_verdicts grew: the matches
    assert report.evaluated == 40 and report.hits == 3  # s000, s003, s015 (truncated)
    assert report.labels == {"dirty": 3, "clean": 1, "true_positives": 2, "false_positives": 1,
                             "false_negatives": 1, "precision": round(2 / 3, 4), "recall": round(2 / 3, 4)}
    assert report.overlap["only_this_rule_removes"] == 1  # s000; s003 and s015 already fail other rules
    assert {r["rule"] for r in report.overlap["already_dropped_by"]} >= {"repetition", "truncation"}
    assert report.export_shift["now"]["kept"] == 34 and report.export_shift["with_rule"]["kept"] == 33
    assert {e["sample_id"] for e in report.examples} == {"s000", "s003", "s015"}
    again = preview(db, rule, load_run_config(None))  # re-read: the matches replace the stored ones
    assert counts(db)[2] == after[2] and again.hits == report.hits


def test_near_misses_meet_every_condition_but_one(db: Path, tmp_path: Path):
    assert conjuncts("a BETWEEN 1 AND 5 AND (b OR c AND d) AND name = 'x AND y'") == \
        ["a BETWEEN 1 AND 5", "(b OR c AND d)", "name = 'x AND y'"]
    rule = resolve(str(_rule(tmp_path, "domain = 'math' AND reasoning_chars > 400 AND finish_reason = 'length'")),
                   load_run_config(None))
    report = preview(db, rule, load_run_config(None))
    assert report.hits == 0 and report.near_misses
    assert all(n["fails_only"] in ("reasoning_chars > 400", "finish_reason = 'length'") for n in report.near_misses)


def test_python_rule_preview_agrees_with_its_stored_verdicts(db: Path):
    config = load_run_config(None)
    report = preview(db, resolve("repetition", config), config)
    with Store(db) as store:
        stored = store.scalar("SELECT count(*) FROM latest_verdicts WHERE rule = 'repetition' AND NOT passed")
    assert report.kind == "cheap" and report.hits == stored == 2  # the two planted loops
    assert report.overlap["only_this_rule_removes"] == 0  # repetition already counts


def test_a_clause_reading_files_or_escaping_its_where_is_refused(tmp_path: Path):
    for where in ("sample_id IN (SELECT content FROM read_text('/etc/hostname'))", "1=1) UNION (SELECT 'x'",
                  "1=1; DROP TABLE samples", "EXISTS (FROM '/etc/passwd')"):
        with pytest.raises(ConfigError, match=r"\.yaml:4: field 'where'"):
            resolve(str(_rule(tmp_path, where)), load_run_config(None))


# ---------------------------------------------------------------- enable, disable, later runs

def test_enable_counts_disable_keeps_the_verdicts(db: Path, tmp_path: Path):
    config = load_run_config(None)
    rule = resolve(str(_rule(tmp_path, "sample_id IN ('s000', 's001', 's003')")), config)
    kept, verdicts, _ = counts(db)
    assert enable(db, rule, "enable-1") == 40
    assert counts(db)[:2] == (kept - 2, verdicts + 40)  # s003 was out already
    assert enable(db, rule, "enable-2") == 0  # nothing recomputed
    disable(db, rule)
    assert counts(db)[:2] == (kept, verdicts + 40)  # it stops counting; nothing deleted
    code, output = cli("rules", "enable", str(tmp_path / "short_or_looping.yaml"), "--db", str(db))
    assert code == 0 and "0 verdicts written" in output and counts(db)[0] == kept - 2


def test_an_enabled_sql_rule_reaches_later_samples(db: Path, tmp_path: Path):
    config = load_run_config(None)
    enable(db, resolve(str(_rule(tmp_path, "completion_tokens > 60", name="long_completions")), config), "enable-1")
    with Store(db) as store:
        store.con.execute("""INSERT INTO samples SELECT * REPLACE ('s900' AS sample_id, 500 AS completion_tokens,
                             'run-2' AS run_id) FROM samples WHERE sample_id = 's000'""")
        report = sql_rules_stage.run(StageContext(store, RunState("run-2", config)))
        assert report.counts["long_completions"]["checked"] == 1
        assert store.scalar("SELECT passed FROM verdicts WHERE sample_id = 's900' AND rule = 'long_completions'") is False


# ---------------------------------------------------------------- closing the loop

def _export(store: Store, export_id: str, sample_ids: list[str]) -> None:
    store.con.execute("INSERT INTO exports VALUES (?, 'run-x', now(), 'out', 'h', '{}')", [export_id])
    for sid in sample_ids:
        store.con.execute("INSERT INTO selections VALUES (?, ?, 'math', NULL, 'test')", [export_id, sid])


def test_badcases_check_is_open_until_the_export_drops_the_dirty_samples(db: Path, tmp_path: Path):
    cli("badcases", "add", "--prompt", "Natalia sold clips in April and May. How many?",
        "--output", "Natalia sold 48 clips.\n" * 12, "--tag", "loop", "--db", str(db))
    with Store(db) as store:
        case_id = store.scalar("SELECT case_id FROM bad_cases")
        _export(store, "export-1", ["s000", "s001", "s002"])
    cli("label", "s001", "--dirty", "--case", case_id[:8], "--db", str(db))
    code, output = cli("badcases", "check", "--db", str(db), "--json")
    assert code == 1 and json.loads(output)["cases"][0]["dirty_shipped"] == ["s001"]
    assert "repetition" in json.loads(output)["cases"][0]["signature"]  # the loop's own defect
    with Store(db) as store:
        _export(store, "export-2", ["s000", "s002"])  # the next export, after a rule removed s001
    code, output = cli("badcases", "check", "--db", str(db), "--json")
    assert code == 0 and json.loads(output)["cases"][0]["status"] == "closed"
