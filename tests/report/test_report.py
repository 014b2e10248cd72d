"""`curate report` on a real store (tests/report/report_store.py: real questions, real rule
verdicts, the real style, difficulty and export stages): the numbers it draws equal the SQL
views' (re-run through `curate query` from each caption) and the base tables'; the file needs
no network; every expected figure is there."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from curate.cli import app
from tests.report.report_html import drawn_rows, figures
from tests.report.report_store import build

runner = CliRunner()

EXPECTED = ["funnel", "rule_failures", "rule_reasons", "style_requested_realized", "style_compliance",
            "style_alarm", "difficulty_hist", "difficulty_levels", "difficulty_scatter", "domain_mix",
            "judge_scores", "judge_costs", "judge_evals", "lengths", "agentic_outcomes", "agentic_pass_rate",
            "agentic_rule_failures", "agentic_perturbation_alarm", "agentic_perturbation_values"]
AGENTIC = [k for k in EXPECTED if k.startswith("agentic_")]
NO_JUDGE = {"judge_scores", "judge_costs", "judge_evals"}  # this store has no judge verdicts (the e2e store does)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("report")
    db = build(tmp / "store.duckdb", tmp / "out")
    out = tmp / "report.html"
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"-> {out}" in result.output and "no rows for: judge_scores, judge_costs, judge_evals" in result.output
    return db, out


def _q(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


def _same(a, b) -> bool:
    if isinstance(b, str) and isinstance(a, (int, float)) and re.fullmatch(r"-?[0-9.]+", b):
        b = float(b)  # `curate query --format json` writes DuckDB's decimal sums as strings
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def test_every_figure_is_there_with_a_caption_naming_its_view(report):
    _, out = report
    found = figures(out)
    assert list(found) == EXPECTED
    for key, fig in found.items():
        assert fig["sql"] and re.search(rf"\b{fig['view']}\b", fig["sql"]), key
        if key in NO_JUDGE:
            assert fig["rows"] == 0 and fig["spec"] is None, key
        else:
            assert fig["rows"] > 0 and len(drawn_rows(fig["spec"])) == fig["rows"], key
            assert fig["spec"]["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


def test_drawn_numbers_equal_the_views_through_curate_query(report):
    """Each caption's SQL, run by `curate query`, returns exactly the rows the chart draws."""
    db, out = report
    for key, fig in figures(out).items():
        result = runner.invoke(app, ["query", "--db", str(db), "--format", "json", fig["sql"]])
        assert result.exit_code == 0, (key, result.output)
        expected = json.loads(result.stdout)
        drawn = drawn_rows(fig["spec"]) if fig["spec"] else []
        assert len(drawn) == len(expected), key
        for got, want in zip(drawn, expected):
            assert set(want) <= set(got), (key, want, got)
            assert all(_same(got[c], want[c]) for c in want), (key, want, got)


def _drawn(out: Path, key: str) -> list[dict]:
    return drawn_rows(figures(out)[key]["spec"])


def test_funnel_matches_the_base_tables(report):
    db, out = report
    funnel = {(r["domain"], r["step"]): r["n"] for r in _drawn(out, "funnel")}
    assert funnel[("math", "questions read")] == _q(db, "SELECT count(*) FROM questions")[0][0] == 40
    assert funnel[("math", "synthesized")] == _q(db, "SELECT count(*) FROM samples")[0][0] == 40
    for rule, passed in _q(db, "SELECT rule, count(*) FILTER (WHERE passed) FROM latest_verdicts "
                               "WHERE stage IN ('filter', 'decontam') GROUP BY rule"):
        assert funnel.get(("math", f"passed {rule}"), 0) == passed, rule
    kept = _q(db, "SELECT count(*) FROM sample_status WHERE kept")[0][0]
    assert funnel[("math", "kept (judged, all rules passed)")] == kept
    # the planted loops, wrong answers, self-identity and truncation are not kept
    assert 0 < kept <= 40 - 6
    shard_rows = _q(db, "SELECT sum(rows) FROM shards")[0][0]
    assert funnel[("math", "exported")] == shard_rows == funnel[("math", "selected")]
    steps = [r["step"] for r in _drawn(out, "funnel")]
    assert steps.index("synthesized") < steps.index("passed all cheap rules") < steps.index("verified") \
        < steps.index("kept (judged, all rules passed)") < steps.index("selected") < steps.index("exported")


def test_rule_failures_match_the_verdicts(report):
    db, out = report
    drawn = {r["rule"]: (r["checked"], r["failed"]) for r in _drawn(out, "rule_failures")}
    stored = {rule: (c, f) for rule, c, f in _q(db, "SELECT rule, count(*), count(*) FILTER (WHERE NOT passed) "
                                                    "FROM verdicts GROUP BY rule")}
    assert drawn == stored
    assert drawn["repetition"][1] >= 2 and drawn["answer_match"][1] >= 2  # the planted loops and wrong answers
    reasons = _drawn(out, "rule_reasons")
    assert all("#" in r["reason"] or not re.search(r"\d", r["reason"]) for r in reasons)  # numbers masked
    assert max(sum(1 for r in reasons if r["rule"] == rule) for rule in drawn) <= 3


def test_domain_mix_exported_equals_the_manifest(report):
    db, out = report
    mix = {(r["domain"], r["stage"]): r for r in _drawn(out, "domain_mix")}
    manifest = json.loads(_q(db, "SELECT manifest FROM exports")[0][0])
    assert mix[("math", "exported")]["n"] == manifest["counts_by_domain"]["math"]
    assert mix[("math", "target")]["share"] == 1.0 and mix[("math", "kept")]["share"] == 1.0


def test_difficulty_figures_match_the_stored_signals(report):
    db, out = report
    per_method = {}
    for r in _drawn(out, "difficulty_hist"):
        per_method[r["method"]] = per_method.get(r["method"], 0) + r["n"]
    assert per_method == dict(_q(db, "SELECT method, count(*) FROM question_difficulty GROUP BY method"))
    pairs = _q(db, "SELECT d.method, d.score, q.level FROM question_difficulty d JOIN questions q "
                   "USING (question_id) WHERE q.level IS NOT NULL ORDER BY d.method")
    for r in _drawn(out, "difficulty_levels"):
        scores = np.array([[s, lv] for m, s, lv in pairs if m == r["method"]])
        assert r["n"] == len(scores)
        r_numpy = np.corrcoef(scores[:, 0], scores[:, 1])[0, 1] if scores[:, 0].std() else None  # constant: no r
        assert r["pearson_r"] == (pytest.approx(r_numpy) if r_numpy is not None else None)
    assert any(r["pearson_r"] is not None for r in _drawn(out, "difficulty_levels"))
    assert len(_drawn(out, "difficulty_scatter")) == len(pairs)  # fewer than the sample cap: all drawn


def test_length_figure_counts_every_sample_kept_or_dropped(report):
    db, out = report
    rows = _drawn(out, "lengths")
    n = _q(db, "SELECT count(*) FROM samples")[0][0]
    kept = _q(db, "SELECT count(*) FROM kept_samples")[0][0]
    for field in ("reasoning", "answer"):
        assert sum(r["n"] for r in rows if r["field"] == field) == n
        assert sum(r["n"] for r in rows if r["field"] == field and r["kept"]) == kept
    lengths = _q(db, "SELECT length(reasoning) FROM samples")
    top = max(r["bin"] for r in rows if r["field"] == "reasoning")
    assert top == int(math.floor(math.log2(1 + max(v for (v,) in lengths))))


def test_styles_are_the_stored_metrics(report):
    db, out = report
    drawn = {(r["style"], r["requested"], r["realized"], r["compliant"]) for r in _drawn(out, "style_requested_realized")}
    stored = set(_q(db, "SELECT style, requested, realized, compliant FROM style_metrics "
                        "WHERE scope = 'synthesized' AND domain = 'all'"))
    assert drawn == stored and sum(r[1] for r in drawn) == 40


def test_the_file_needs_no_network_and_stays_small(report):
    _, out = report
    text = out.read_text()
    assert out.stat().st_size < 5 * 2**20
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text, re.I)  # no remote script, style, image
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?(?:https?:)?//", text, re.I)
    assert not re.search(r"""\bimport\s*\(?\s*["'](?:https?:)?//""", text)  # no remote ES module
    assert "vegaEmbed" in text and text.count('class="vega-spec"') == len(EXPECTED) - len(NO_JUDGE)
    assert "actions: false" in text  # no export/editor menu linking out of the file


def test_one_run_and_errors(report, tmp_path):
    db, _ = report
    out = tmp_path / "run.html"
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out), "--run", "run-0"])
    assert result.exit_code == 0, result.output
    assert "run run-0; export export-run-0" in result.output
    assert figures(out)["funnel"]["rows"] == figures(report[1])["funnel"]["rows"]  # one run holds it all
    bad = runner.invoke(app, ["report", "--db", str(db), "--out", str(out), "--run", "nope"])
    assert bad.exit_code == 2 and "--run nope: no such run" in bad.output and "run-0" in bad.output
    bad = runner.invoke(app, ["report", "--db", str(db), "--out", str(out), "--export", "nope"])
    assert bad.exit_code == 2 and "--export nope: no such export" in bad.output
    missing = runner.invoke(app, ["report", "--db", str(tmp_path / "none.duckdb"), "--out", str(out)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_the_reports_latest_verdicts_are_latest_verdicts(report, tmp_path):
    """latest_verdicts (which ranks only rules with several versions or configs), the report's
    copy of it and report_samples' kept agree with the plain definition (every verdict ranked) and
    kept_samples when rules have several versions and config hashes, one preferred by
    rule_configs, and a rule is disabled."""
    import shutil

    from pipeline.store import Store, now

    db = tmp_path / "store.duckdb"
    shutil.copy(report[0], db)
    with Store(db) as store:
        con = store.con
        # a newer repetition version on half the samples, its verdicts flipped; length under a second config hash,
        # flipped, which rule_configs prefers on the samples that have it
        con.execute("INSERT INTO verdicts SELECT sample_id, stage, rule, rule_version + 1, NOT passed, score, reason, details, run_id, "
                    "created_at, prompt_tokens, completion_tokens, config_hash FROM verdicts "
                    "WHERE rule = 'repetition' AND right(sample_id, 1) IN ('0', '2', '4', '6', '8')")
        con.execute("INSERT INTO verdicts SELECT sample_id, stage, rule, rule_version, NOT passed, score, reason, details, "
                    "run_id, created_at, prompt_tokens, completion_tokens, 'other' FROM verdicts "
                    "WHERE rule = 'length' AND right(sample_id, 1) IN ('1', '3')")
        con.execute("UPDATE rule_configs SET config_hash = 'other' WHERE rule = 'length'")
        assert con.sql("SELECT count(*) FROM rule_configs WHERE rule = 'length'").fetchall() == [(1,)]
        con.execute("INSERT INTO rule_states VALUES ('self_identity', 'cheap', false, NULL, NULL, ?)", [now()])
        latest = "SELECT sample_id, stage, rule, passed FROM {} ORDER BY ALL"
        plain = """(SELECT v.* FROM verdicts v LEFT JOIN rule_configs c ON c.rule = v.rule
                    WHERE v.rule NOT IN (SELECT rule FROM rule_states WHERE NOT enabled)
                    QUALIFY row_number() OVER (PARTITION BY v.sample_id, v.rule ORDER BY
                        coalesce(v.config_hash = c.config_hash, false) DESC, v.rule_version DESC, v.created_at DESC) = 1)"""
        expected = con.sql(latest.format(plain)).fetchall()
        assert con.sql(latest.format("latest_verdicts")).fetchall() == expected
        assert con.sql(latest.format("report_latest_verdicts")).fetchall() == expected
        assert con.sql("SELECT count(*) FROM latest_verdicts WHERE rule = 'self_identity'").fetchall() == [(0,)]
        kept = con.sql("SELECT sample_id FROM report_samples WHERE kept ORDER BY 1").fetchall()
        assert kept == con.sql("SELECT sample_id FROM kept_samples ORDER BY 1").fetchall()
        versions = con.sql("SELECT count(DISTINCT rule_version) FROM latest_verdicts WHERE rule = 'repetition'").fetchall()
        hashes = con.sql("SELECT count(DISTINCT config_hash) FROM latest_verdicts WHERE rule = 'length'").fetchall()
        assert versions == hashes == [(2,)]  # both paths of the shortcut are taken


def test_agentic_figures_match_the_trajectory_tables(report):
    db, out = report
    outcomes = {(r["environment"], r["outcome"]): r["n"] for r in _drawn(out, "agentic_outcomes")}
    assert outcomes == {(e, o): n for e, o, n in _q(db, "SELECT environment, outcome, count(*) FROM trajectories "
                                                          "GROUP BY ALL")}
    assert {e for e, _ in outcomes} == {"shop_db@1", "calculator@1"}
    for r in _drawn(out, "agentic_pass_rate"):
        (passed, verified, tasks), = _q(db, "SELECT count(*) FILTER (WHERE correct), count(correct), count(DISTINCT "
                                            f"task_id) FROM trajectories WHERE environment = '{r['environment']}'")
        assert (r["passed"], r["verified"], r["tasks"]) == (passed, verified, tasks)
        assert r["pass_rate"] == pytest.approx(passed / verified) and 0 < r["pass_rate"] < 1  # right and wrong answers
    failures = {(r["stage"], r["rule"]): (r["checked"], r["failed"]) for r in _drawn(out, "agentic_rule_failures")}
    assert failures == {(s, rule): (c, f) for s, rule, c, f in _q(
        db, "SELECT stage, rule, count(*), count(*) FILTER (WHERE NOT passed) FROM trajectory_verdicts GROUP BY ALL")}
    assert failures[("outcome", "outcome")][1] > 0 and len([k for k in failures if k[0] == "trace"]) == 9
    axes = {r["axis"]: r for r in _drawn(out, "agentic_perturbation_alarm")}
    stored = _q(db, "SELECT axis, dominant_share, alarm, covered FROM perturbation_summary "
                    "WHERE run_id = 'run-0' AND environment = 'all'")
    assert {a: (r["dominant_share"], r["alarm"], r["covered"]) for a, r in axes.items()} == \
        {a: (share, alarm, covered) for a, share, alarm, covered in stored}
    assert {"response_format", "call_syntax", "tool_docs", "transient_error", "think_prefill"} <= set(axes)
    values = _drawn(out, "agentic_perturbation_values")
    trajectories = _q(db, "SELECT count(*) FROM trajectories")[0][0]
    assert sum(r["n"] for r in values if r["axis"] == "call_syntax") == trajectories


def test_a_store_without_trajectories_says_so(tmp_path: Path):
    db = build(tmp_path / "store.duckdb", tmp_path / "out", agentic=False)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    found = figures(out)
    assert list(found) == EXPECTED
    assert all(found[k]["rows"] == 0 and found[k]["spec"] is None for k in AGENTIC)
    section = re.search(r"<h2>Agentic traces</h2>(.*?)</section>", out.read_text(), re.S).group(1)
    assert "No agentic traces in this scope" in section and section.count('class="empty"') == len(AGENTIC)
    assert all(found[k]["rows"] > 0 for k in ("funnel", "style_alarm", "lengths"))  # the rest as before
