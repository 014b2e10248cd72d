"""The report's data: one small aggregate query per figure, over the report_* views and style_*
tables of pipeline/store.py. Every query is shown in the figure's caption, so a number in the
report can be checked with `curate query`."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from pipeline.report.scope import Scope

SCATTER_POINTS = 2000  # scatter plots show at most this many points (a repeatable sample)


@dataclass(frozen=True)
class Query:
    key: str     # the figure's id in the HTML (tests look figures up by it)
    title: str
    view: str    # the view or table the numbers come from
    sql: str     # {rows}: run and export filter; {runs}: run filter; {run}: one run's metrics
    per_run_table: str | None = None  # {run} = the scope's metrics run, or the newest run in this table


QUERIES = [
    Query("funnel", "Funnel per domain", "report_funnel",
          "SELECT domain, step_no, step, unit, sum(n) AS n FROM report_funnel WHERE {rows} "
          "GROUP BY ALL ORDER BY domain, step_no, step"),
    Query("rule_failures", "Rule failure rate per rule and run", "report_rule_failures",
          "SELECT run_id, stage, rule, sum(checked) AS checked, sum(failed) AS failed, "
          "sum(failed) / sum(checked) AS fail_rate FROM report_rule_failures WHERE {runs} "
          "GROUP BY ALL ORDER BY run_id, stage, rule"),
    Query("rule_reasons", "Top reasons per rule (numbers masked as #)", "report_rule_reasons",
          "SELECT rule, reason, sum(n) AS n FROM report_rule_reasons WHERE {runs} GROUP BY rule, reason "
          "QUALIFY row_number() OVER (PARTITION BY rule ORDER BY sum(n) DESC, reason) <= 3 ORDER BY rule, n DESC"),
    Query("style_requested_realized", "Answer styles: requested vs realized (synthesized samples)", "style_metrics",
          "SELECT style, requested, realized, compliant FROM style_metrics "
          "WHERE run_id = {run} AND scope = 'synthesized' AND domain = 'all' ORDER BY style",
          per_run_table="style_metrics"),
    Query("style_compliance", "Style compliance per requested style and model", "style_compliance",
          "SELECT model, style, requested, compliant, rate FROM style_compliance WHERE run_id = {run} "
          "ORDER BY model, style", per_run_table="style_compliance"),
    Query("style_alarm", "Overfit alarm: the dominant style's share per domain", "style_summary",
          "SELECT scope, domain, n_samples, dominant_style, dominant_share, alarm_share, alarm, compliance "
          "FROM style_summary WHERE run_id = {run} ORDER BY scope, domain", per_run_table="style_summary"),
    Query("difficulty_hist", "Difficulty per domain, per signal (0 easy .. 1 hard)", "report_difficulty",
          "SELECT method, domain, least(floor(score * 10), 9) / 10 AS bin, count(*) AS n "
          "FROM report_difficulty WHERE {runs} GROUP BY ALL ORDER BY method, domain, bin"),
    Query("difficulty_levels", "Difficulty vs the source's reference level: correlation", "report_difficulty",
          "SELECT method, domain, n, CASE WHEN isnan(r) THEN NULL ELSE r END AS pearson_r FROM "
          "(SELECT method, domain, count(*) AS n, corr(score, level) AS r FROM report_difficulty "
          "WHERE level IS NOT NULL AND {runs} GROUP BY ALL) ORDER BY method, domain"),  # NULL: a constant signal
    Query("difficulty_scatter", f"Difficulty vs reference level (at most {SCATTER_POINTS} questions sampled)",
          "report_difficulty",
          # A sample by hash, then sorted: the same rows in the same order on any thread count
          # (DuckDB's REPEATABLE reservoir is repeatable only single-threaded).
          "SELECT method, domain, score, level FROM (SELECT * FROM report_difficulty "
          "WHERE level IS NOT NULL AND {runs} ORDER BY hash(question_id, method) LIMIT " + str(SCATTER_POINTS) + ") "
          "ORDER BY method, domain, score, level"),
    Query("domain_mix", "Domain mix: pool, synthesized, kept, exported vs the target", "report_domain_mix",
          "SELECT domain, stage, sum(n) AS n, sum(n) / sum(sum(n)) OVER (PARTITION BY stage) AS share "
          "FROM report_domain_mix WHERE {rows} GROUP BY domain, stage "
          "UNION ALL SELECT domain, 'target', NULL, target FROM report_domain_targets WHERE run_id = {run} "
          "ORDER BY stage, domain", per_run_table="report_domain_targets"),
    Query("judge_scores", "Judge score distribution per rule", "report_judge_scores",
          "SELECT rule, score, passed, sum(n) AS n FROM report_judge_scores WHERE {runs} GROUP BY ALL "
          "ORDER BY rule, score"),
    Query("judge_costs", "Judging: verdicts, errors, budget skips and tokens per rule", "report_judge_costs",
          "SELECT rule, sum(judged) AS judged, sum(errors) AS errors, sum(skipped_budget) AS skipped_budget, "
          "sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens "
          "FROM report_judge_costs WHERE {runs} GROUP BY ALL ORDER BY rule"),
    Query("judge_evals", "Judge calibration: ties and errors on labelled sets (newest eval per rule)", "judge_evals",
          "SELECT rule, rule_version, coalesce(mode, 'pointwise') AS mode, n_items, coalesce(ties, 0) AS ties, "
          "errors, agreement FROM judge_evals "
          "QUALIFY row_number() OVER (PARTITION BY rule ORDER BY created_at DESC) = 1 ORDER BY rule"),
    Query("lengths", "Reasoning and answer length, kept vs dropped", "report_lengths",
          "SELECT field, kept, bin, sum(n) AS n FROM report_lengths WHERE {runs} GROUP BY ALL "
          "ORDER BY field, kept, bin"),
    # Agentic traces (issue 16): trajectories by the run that rolled them out, their verdicts by
    # the run that made them, the perturbation axes of one run.
    Query("agentic_outcomes", "Trajectories per environment and outcome", "trajectories",
          "SELECT environment, outcome, count(*) AS n FROM trajectories WHERE {runs} GROUP BY ALL "
          "ORDER BY environment, outcome"),
    Query("agentic_pass_rate", "Pass rate per environment (verified trajectories) and pass@k per task",
          "trajectories",
          "SELECT environment, count(*) AS trajectories, count(correct) AS verified, "
          "count(*) FILTER (WHERE correct) AS passed, "
          "count(*) FILTER (WHERE correct) / nullif(count(correct), 0) AS pass_rate, "
          "count(DISTINCT task_id) AS tasks, count(DISTINCT task_id) FILTER (WHERE correct) AS tasks_solved "
          "FROM trajectories WHERE {runs} GROUP BY environment ORDER BY environment"),
    Query("agentic_rule_failures", "Trajectory verdicts failed per rule: outcome, trace rules, judges",
          "trajectory_verdicts",
          "SELECT stage, rule, count(*) AS checked, count(*) FILTER (WHERE NOT passed) AS failed, "
          "count(*) FILTER (WHERE NOT passed) / count(*) AS fail_rate FROM trajectory_verdicts WHERE {runs} "
          "GROUP BY ALL ORDER BY stage, rule"),
    Query("agentic_perturbation_alarm", "Perturbation axes: the dominant value's share, the alarm and coverage",
          "perturbation_summary",
          "SELECT axis, n_trajectories, n_values, n_configured, "
          "coalesce(array_to_string(missing, ', '), '') AS missing, covered, entropy, dominant_value, "
          "dominant_share, alarm_threshold, alarm FROM perturbation_summary "
          "WHERE run_id = {run} AND environment = 'all' ORDER BY axis", per_run_table="perturbation_summary"),
    Query("agentic_perturbation_values", "Perturbation values drawn per axis (a configured value never drawn: 0)",
          "perturbation_values",
          "SELECT axis, value, n, share, configured, expected_share FROM perturbation_values "
          "WHERE run_id = {run} AND environment = 'all' ORDER BY axis, value", per_run_table="perturbation_values"),
]


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def metrics_run(con: duckdb.DuckDBPyConnection, scope: Scope, table: str) -> str | None:
    """The run whose per-run metrics a figure shows: the scope's run when it has rows in
    `table`; without --run, else the newest run that has (a filter-only run writes no styles)."""
    preferred = scope.metrics_run
    if scope.run_id:
        return scope.run_id
    row = con.sql(f"SELECT t.run_id FROM (SELECT DISTINCT run_id FROM {table}) t LEFT JOIN runs r USING (run_id) "
                  "ORDER BY t.run_id = ? DESC, r.started_at DESC NULLS LAST LIMIT 1",
                  params=[preferred or ""]).fetchall()
    return row[0][0] if row else None


def render(con: duckdb.DuckDBPyConnection, query: Query, scope: Scope) -> str:
    """The query's SQL with the scope filled in as literals, so the caption can be pasted into
    `curate query`."""
    rows, rows_params = scope.rows()
    runs, runs_params = scope.runs()
    for value in rows_params:
        rows = rows.replace("?", _literal(value), 1)
    for value in runs_params:
        runs = runs.replace("?", _literal(value), 1)
    run = _literal(metrics_run(con, scope, query.per_run_table)) if query.per_run_table else "NULL"
    return query.sql.format(rows=rows, runs=runs, run=run)


def fetch(con: duckdb.DuckDBPyConnection, query: Query, scope: Scope) -> tuple[str, pl.DataFrame]:
    """(the SQL run, its rows); DuckDB's 128-bit sums and decimals become plain numbers for JSON."""
    sql = render(con, query, scope)
    frame = con.sql(sql).pl()
    casts = {c: pl.Int64 if t == pl.Int128 or (isinstance(t, pl.Decimal) and t.scale == 0) else pl.Float64
             for c, t in frame.schema.items() if t == pl.Int128 or isinstance(t, pl.Decimal)}
    frame = frame.cast(casts)
    return sql, frame.with_columns(pl.col(pl.Float64).fill_nan(None))  # NaN is not JSON
