"""End to end: `curate run` with the real vLLM CPU engine, a real DuckDB file and a real
Prefect flow on a few real questions; then what landed in DuckDB and the shards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests import golden
from tests.conftest import DATA, ROOT
from tests.tiny_model_config import lenient_filters, use_custom_formats, use_small_model

pytestmark = pytest.mark.engine

runner = CliRunner()


def _config(tmp: Path) -> Path:
    """The default config, pointed at a small pool, small budgets, a lenient judge."""
    pool = tmp / "pool.jsonl"
    lines = [
        {"question": "What is 12 + 30?", "answer": "42", "domain": "math"},
        {"question": "Write a Python function add(a, b) that returns a + b.", "domain": "code"},
        {"question": "Water boils at what temperature in Celsius at sea level?", "answer": "100", "domain": "science"},
        {"question": "If all cats are animals and Tom is a cat, is Tom an animal? Options: yes; no", "domain": "logic"},
    ]
    text = "\n".join(json.dumps(x) for x in lines)
    text += '\n{"question": "broken json"\n{"answer": "no question here"}\n'
    # A benchmark question (MATH-500) and a duplicate of the first question: screened out.
    benchmark = json.loads((DATA / "benchmarks" / "math500.jsonl").open().readline())
    text += json.dumps({"question": benchmark["problem"], "answer": benchmark["answer"], "domain": "math"}) + "\n"
    text += json.dumps({"question": "What is 12+30 ?", "answer": "42", "domain": "math"}) + "\n"
    pool.write_text(text)
    config = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    use_small_model(config)
    config["pools"] = [{"path": str(pool), "source": "e2e", "answer_type": "math"}]
    config["limit"] = None
    config["synthesis"].update(reasoning_max_tokens=96, answer_max_tokens=64)
    # Styles and filter limits the 135M model's text passes, so samples reach the judge and the shards.
    use_custom_formats(config["synthesis"])
    config["judges"] = {"rules": ["lenient_rule"], "rules_dir": str(ROOT / "tests" / "fixtures")}
    config["filters"] = lenient_filters()  # every cheap rule runs and writes its verdict
    config["rebalance"] = {"targets": {"math": 0.25, "code": 0.25, "science": 0.25, "logic": 0.25}}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def e2e_run(tmp_path_factory, vllm_engine, prefect_server):
    tmp = tmp_path_factory.mktemp("e2e")
    db, out = tmp / "curate.duckdb", tmp / "out"
    args = ["run", "--config", str(_config(tmp)), "--db", str(db), "--out", str(out)]
    first = runner.invoke(app, args, catch_exceptions=False)
    second = runner.invoke(app, args, catch_exceptions=False)
    _golden_diffs.extend(golden.check(db))  # before any test here adds verdicts (backfills, new rules)
    return db, out, first, second


_golden_diffs: list[str] = []


def _q(db: Path, sql: str):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_run_succeeds_and_reports(e2e_run):
    _, _, first, _ = e2e_run
    assert first.exit_code == 0, first.output
    assert "finished" in first.output and "quarantine" in first.output


def test_every_table_has_rows(e2e_run):
    db, *_ = e2e_run
    for table in ("runs", "questions", "quarantine", "samples", "verdicts", "question_difficulty",
                  "exports", "selections", "shards"):
        assert _q(db, f"SELECT count(*) FROM {table}")[0][0] > 0, table


def test_bad_rows_quarantined_with_line_and_field(e2e_run):
    db, *_ = e2e_run
    rows = _q(db, "SELECT line, field, error FROM quarantine WHERE run_id = (SELECT min(run_id) FROM runs) ORDER BY line")
    assert [(r[0], r[1]) for r in rows] == [(5, None), (6, "question")]
    assert "invalid JSON" in rows[0][2] and "missing required field" in rows[1][2]
    # Each run reports what it could not read: the second run logged the same two rows.
    assert _q(db, "SELECT count(*), count(DISTINCT run_id) FROM quarantine")[0] == (4, 2)


def test_contaminated_and_duplicate_questions_are_screened_out_before_synthesis(e2e_run):
    db, *_ = e2e_run
    status = dict(_q(db, "SELECT q.text, s.failed_rules FROM question_status s JOIN questions q USING (question_id)"))
    assert len(status) == 6
    assert status["What is 12+30 ?"] == ["dedup"]
    assert [rules for text, rules in status.items() if text.startswith("Convert the point")] == [["decontam_ngram"]]
    reason = _q(db, "SELECT reason FROM question_verdicts WHERE rule = 'decontam_ngram' AND NOT passed")[0][0]
    assert reason.startswith("math500 question")
    synthesized = {r[0] for r in _q(db, "SELECT DISTINCT q.text FROM samples JOIN questions q USING (question_id)")}
    assert "What is 12+30 ?" not in synthesized and len(synthesized) == 4


def test_samples_record_what_made_them(e2e_run):
    db, *_ = e2e_run
    rows = _q(db, """SELECT count(*), count(DISTINCT question_id), min(completion_tokens), min(prompt_tokens),
                            count(DISTINCT requested_format), bool_and(raw_text LIKE '<think>%</think>%'),
                            bool_and(model = 'smollm2-135m-instruct'), bool_and(json_extract(sampling_params, '$.seed') IS NOT NULL)
                     FROM samples""")[0]
    n, questions, min_completion, min_prompt, formats, think_wrapped, model_ok, seeded = rows
    assert (n, questions) == (8, 4)  # n=2 samples for each of the 4 good questions
    assert min_completion > 0 and min_prompt > 0
    assert formats >= 2  # the two samples of a question ask for different formats
    assert think_wrapped and model_ok and seeded


def test_samples_record_requested_and_realized_format_and_rebuild_their_prompt(e2e_run):
    from pipeline.config_loading import load_run_config
    from pipeline.synthesis.format_sampler import FormatChoice
    from pipeline.synthesis.prompts import build_messages
    from schemas.perturbation import Perturbation

    db, *_ = e2e_run
    config = load_run_config(str(db.parent / "config.yaml"))
    rows = _q(db, """SELECT q.text, s.requested_format, s.placement, s.length_band, s.perturbation, s.messages,
                            s.realized_format, s.realized_length_band
                     FROM samples s JOIN questions q USING (question_id)""")
    assert len(rows) == 8
    for text, style, placement, band, perturbation, messages, realized, realized_band in rows:
        choice = FormatChoice(style, placement, band, Perturbation.model_validate_json(perturbation))
        assert build_messages(text, choice, config.synthesis) == json.loads(messages)
        assert realized and realized_band in ("short", "medium", "long")


def test_style_distribution_and_alarm_are_queryable(e2e_run):
    db, *_ = e2e_run
    runs = [r[0] for r in _q(db, "SELECT run_id FROM runs ORDER BY started_at")]
    for run_id in runs:  # each run records its metrics, the re-run too
        n, compliance = _q(db, f"""SELECT n_samples, compliance FROM style_summary
                                  WHERE run_id = '{run_id}' AND scope = 'synthesized' AND domain = 'all'""")[0]
        assert n == 8 and 0 <= compliance <= 1
    realized = _q(db, f"SELECT sum(realized), sum(requested) FROM style_metrics WHERE run_id = '{runs[0]}' "
                      "AND scope = 'synthesized' AND domain = 'all'")[0]
    assert realized == (8, 8)
    # Compliance in the metrics and the format_compliance verdicts agree.
    verdict_rate = _q(db, "SELECT avg(compliant::INT) FROM sample_formats")[0][0]
    assert verdict_rate == pytest.approx(compliance)
    assert _q(db, "SELECT sum(requested) FROM style_compliance WHERE run_id = '" + runs[0] + "'")[0][0] == 8
    _q(db, "SELECT * FROM style_alarms")  # the alarm view exists (4 questions: below the sample minimum)


def test_every_sample_has_every_cheap_rule_verdict(e2e_run):
    db, *_ = e2e_run
    from tests.rule_sets import cheap_rules
    from schemas.config import FilterConfig

    n_rules = len(cheap_rules(FilterConfig()))
    missing = _q(db, f"""SELECT s.sample_id, count(v.rule) FROM samples s
                         LEFT JOIN verdicts v ON v.sample_id = s.sample_id AND v.stage = 'filter'
                         GROUP BY 1 HAVING count(v.rule) <> {n_rules}""")
    assert n_rules == 10 and missing == []
    # Every generated answer is also checked against the benchmarks.
    assert _q(db, "SELECT count(*), bool_and(passed) FROM verdicts WHERE rule = 'decontam_answer'")[0] == (8, True)
    # And every question of the pool against benchmarks and duplicates, before synthesis.
    assert _q(db, "SELECT count(DISTINCT question_id) FROM question_verdicts WHERE stage = 'decontam'")[0][0] == 6
    # Verified where a reference exists (math and science here), judged where nothing failed.
    assert _q(db, "SELECT count(*) FROM verdicts WHERE rule = 'answer_match'")[0][0] == 4
    judged = _q(db, "SELECT count(*) FROM verdicts WHERE stage = 'judge'")[0][0]
    survivors = _q(db, """SELECT count(*) FROM samples s WHERE NOT EXISTS (SELECT 1 FROM verdicts v
                          WHERE v.sample_id = s.sample_id AND v.stage <> 'judge' AND NOT v.passed)""")[0][0]
    assert judged == survivors > 0


def test_sample_status_explains_every_sample(e2e_run):
    db, *_ = e2e_run
    rows = _q(db, "SELECT kept, failed_rules FROM sample_status")
    assert len(rows) == 8
    assert all(kept == (failed == []) for kept, failed in rows)


def test_shards_load_with_datasets_and_match_the_manifest(e2e_run):
    db, out, *_ = e2e_run
    export_dir = Path(_q(db, "SELECT out_dir FROM exports ORDER BY created_at DESC LIMIT 1")[0][0])
    manifest = json.loads((export_dir / "manifest.json").read_text())
    files = [str(export_dir / s["file"]) for s in manifest["shards"]]
    for s in manifest["shards"]:
        assert hashlib.sha256((export_dir / s["file"]).read_bytes()).hexdigest() == s["sha256"]
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    assert ds.num_rows == manifest["total_rows"] > 0
    assert {"id", "question_id", "domain", "messages", "reasoning", "answer", "difficulty"} <= set(ds.column_names)
    for row in ds:
        last = row["messages"][-1]
        assert last["role"] == "assistant"
        if row["reasoning_container"] == "think_tags":
            assert last["content"].startswith("<think>") and last["reasoning_content"] is None
        else:
            assert last["reasoning_content"] == row["reasoning"] and last["content"] == row["answer"]
    selected = _q(db, f"SELECT count(*) FROM selections WHERE export_id = '{manifest['export_id']}'")[0][0]
    assert selected == ds.num_rows
    assert set(ds["id"]) <= {r[0] for r in _q(db, "SELECT sample_id FROM sample_status WHERE kept")}


def test_rerun_generates_and_judges_nothing_new(e2e_run):
    db, _, first, second = e2e_run
    assert second.exit_code == 0, second.output
    assert "0 generated, 8 already in" in second.output
    assert "engine calls: 0 requests (0 completions) in 0 batches, 0 model loads" in second.output
    assert "engine calls: " in first.output and "engine calls: 0 requests" not in first.output
    assert "judged 0" in second.output
    runs = _q(db, "SELECT status, counts FROM runs ORDER BY started_at")
    assert [r[0] for r in runs] == ["finished", "finished"]
    assert json.loads(runs[1][1])["synthesize"]["generated"] == 0


def test_query_is_read_only_and_formats(e2e_run):
    db, *_ = e2e_run
    refused = runner.invoke(app, ["query", "--db", str(db), "DELETE FROM samples"])
    assert refused.exit_code == 2 and "read-only" in refused.output
    for sql in ("DROP TABLE samples", "ATTACH 'x.db'", "SELECT 1; INSERT INTO runs VALUES (1)"):
        assert runner.invoke(app, ["query", "--db", str(db), sql]).exit_code == 2
    as_json = runner.invoke(app, ["query", "--db", str(db), "--format", "json",
                                  "SELECT domain, count(*) AS n FROM questions GROUP BY 1 ORDER BY 1"])
    assert as_json.exit_code == 0
    assert [r["domain"] for r in json.loads(as_json.stdout)] == ["code", "logic", "math", "science"]
    as_csv = runner.invoke(app, ["query", "--db", str(db), "--format", "csv",
                                 "SELECT sample_id, failed_rules FROM sample_status ORDER BY 1 LIMIT 2"])
    assert as_csv.exit_code == 0 and as_csv.stdout.splitlines()[0] == "sample_id,failed_rules"
    assert _q(db, "SELECT count(*) FROM samples")[0][0] == 8  # nothing was deleted


# --- judge rules on the stored run: test one sample, add a rule, backfill it --------------------


def test_judges_test_renders_runs_and_stores_nothing(e2e_run):
    db, *_ = e2e_run
    sample_id = _q(db, "SELECT sample_id FROM samples ORDER BY 1 LIMIT 1")[0][0]
    before = _q(db, "SELECT count(*) FROM verdicts")[0][0]
    result = runner.invoke(app, ["judges", "test", "logical_completeness", "--sample", sample_id[:12],
                                 "--config", str(db.parent / "config.yaml"), "--db", str(db)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "<<<BEGIN reasoning" in result.stdout and "Rule: logical_completeness" in result.stdout
    assert "logical_completeness v2: score" in result.stdout
    assert _q(db, "SELECT count(*) FROM verdicts")[0][0] == before
    missing = runner.invoke(app, ["judges", "test", "logical_completeness", "--sample", "nope", "--db", str(db)])
    assert missing.exit_code == 2 and "no sample" in missing.output


def test_add_a_rule_then_backfill_judges_only_what_is_missing(e2e_run, tmp_path):
    db, *_ = e2e_run
    config = db.parent / "config.yaml"
    rules = tmp_path / "rules"
    added = runner.invoke(app, ["judges", "add", "strict_check", "--dir", str(rules)])
    assert added.exit_code == 0, added.output
    assert (rules / "strict_check.yaml").exists()
    args = ["judges", "backfill", "strict_check", "--rules-dir", str(rules), "--config", str(config), "--db", str(db)]
    first = runner.invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    # Due: samples that passed every stage so far (the cascade), i.e. kept before this rule.
    judged = _q(db, "SELECT count(*), count(*) FILTER (WHERE passed) FROM verdicts WHERE rule = 'strict_check'")[0]
    assert judged[0] > 0
    assert f"judged {judged[0]}, kept {judged[1]}, dropped {judged[0] - judged[1]}" in first.output
    again = runner.invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0 and "judged 0, kept 0, dropped 0" in again.output
    backfills = _q(db, "SELECT status, config->>'rule' FROM runs WHERE config->>'command' = 'judges backfill'")
    assert backfills == [("finished", "strict_check")] * 2
    listed = runner.invoke(app, ["judges", "list", "--rules-dir", str(rules), "--db", str(db)])
    assert "strict_check" in listed.stdout and f"{judged[0]} ({judged[1]})" in listed.stdout


def test_backfill_refuses_an_uncalibrated_rule(e2e_run, tmp_path):
    db, *_ = e2e_run
    rules = tmp_path / "rules"
    assert runner.invoke(app, ["judges", "add", "needs_eval", "--dir", str(rules)]).exit_code == 0
    path = rules / "needs_eval.yaml"
    path.write_text(path.read_text().replace("# calibration: {labels: ../data/labels/my_set.jsonl, min_agreement: 0.7}",
                                             "calibration: {labels: labels.jsonl, min_agreement: 0.7}"))
    result = runner.invoke(app, ["judges", "backfill", "needs_eval", "--rules-dir", str(rules), "--db", str(db)])
    assert result.exit_code == 1 and "needs calibration" in result.output
    assert _q(db, "SELECT count(*) FROM verdicts WHERE rule = 'needs_eval'")[0][0] == 0


def test_judges_eval_stores_agreement_that_calibration_reads(e2e_run, tmp_path):
    db, *_ = e2e_run
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(json.dumps(x) for x in [
        {"question": "What is 2 + 2?", "answer": "2 + 2 = 4, so the answer is 4.", "label": True},
        {"question": "What is 2 + 2?", "answer": "Bananas are yellow.", "label": False},
        {"question": "Name a primary colour.", "answer": "Red is a primary colour.", "label": True},
    ]) + "\n")
    result = runner.invoke(app, ["judges", "eval", "lenient_rule", "--labels", str(labels), "--db", str(db),
                                 "--config", str(db.parent / "config.yaml"), "--rules-dir", str(ROOT / "tests" / "fixtures")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    row = _q(db, "SELECT kind, n_items, n_judged + errors, agreement FROM judge_evals WHERE rule = 'lenient_rule'")
    assert len(row) == 1 and row[0][:3] == ("pointwise", 3, 3)
    assert row[0][3] is None or 0 <= row[0][3] <= 1
    assert "lenient_rule v1 (pointwise set, pointwise mode, 3 items): agreement" in result.stdout
    assert "smollm2-135m-instruct]" in result.stdout  # the config's (small) model, not the default's


def test_each_run_leaves_its_counts_as_a_prefect_artifact(e2e_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    db, *_ = e2e_run
    runs = [r[0] for r in _q(db, "SELECT run_id FROM runs ORDER BY started_at")][:2]  # the fixture's two runs
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["curate-run-counts"])))
    tables = {a.data.splitlines()[0].removeprefix("# curate run "): a.data for a in artifacts}
    assert set(runs) <= set(tables)
    first = tables[runs[0]]
    assert "| filter format_compliance | checked 8, failed 0 |" in first
    assert "| synthesize | planned 8, already_done 0, generated 8, errors 0 |" in first
    assert "generated 0" in tables[runs[1]]  # the re-run made nothing new


def test_golden_run_is_unchanged(e2e_run):
    """Refactors must not change what a run writes (issue 14): verdicts, selection, shard bytes
    (tests/golden.py; compared right after the two runs, in the fixture)."""
    assert _golden_diffs == [], "\n".join(_golden_diffs)


def test_each_run_links_its_quality_report(e2e_run):
    """The curate flow writes the run's report beside the database and links it (flows/report_artifact.py)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.report_artifact import report_path

    db, *_ = e2e_run
    runs = [r[0] for r in _q(db, "SELECT run_id FROM runs ORDER BY started_at")][:2]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["curate-run-report"])))
    links = {a.data for a in artifacts}
    for run_id in runs:
        path = report_path(str(db), run_id)
        assert path.exists() and path.stat().st_size < 5 * 2**20
        assert any(path.as_uri() in link for link in links), (path, links)
        counts = json.loads(_q(db, f"SELECT counts FROM runs WHERE run_id = '{run_id}'")[0][0])
        assert counts["report"]["path"] == str(path)


def test_report_numbers_equal_the_views_on_the_e2e_store(e2e_run, tmp_path):
    """`curate report` on the real run's store: every drawn row equals its caption's SQL (through
    `curate query`), and the judge figures equal the stored judge verdicts."""
    from tests.report.report_html import drawn_rows, figures
    from tests.report.test_report import EXPECTED, _same

    db, *_ = e2e_run
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    found = figures(out)
    assert list(found) == EXPECTED
    for key, fig in found.items():
        queried = runner.invoke(app, ["query", "--db", str(db), "--format", "json", fig["sql"]])
        assert queried.exit_code == 0, (key, queried.output)
        expected, drawn = json.loads(queried.stdout), drawn_rows(fig["spec"]) if fig["spec"] else []
        assert len(drawn) == len(expected) == fig["rows"], key
        assert all(_same(got[c], want[c]) for got, want in zip(drawn, expected) for c in want), key
    judged = _q(db, "SELECT count(*), sum(prompt_tokens) FROM verdicts WHERE stage = 'judge'")[0]
    costs = drawn_rows(found["judge_costs"]["spec"])
    assert (sum(r["judged"] for r in costs), sum(r["prompt_tokens"] for r in costs)) == judged and judged[0] > 0
    assert sum(r["n"] for r in drawn_rows(found["judge_scores"]["spec"])) == judged[0]
    funnel = {(r["domain"], r["step"]): r["n"] for r in drawn_rows(found["funnel"]["spec"])}
    kept = dict(_q(db, "SELECT domain, count(*) FROM kept_samples GROUP BY domain"))
    assert {d: funnel.get((d, "kept (judged, all rules passed)"), 0) for d in kept} == kept
