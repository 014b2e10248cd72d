"""The DuckDB catalog: every question, sample, verdict, score, selection and shard.

Writes are bulk (a polars/Arrow frame per call) inside one transaction per batch, and keyed
so that re-inserting a row is a no-op: a killed run resumes without duplicates.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

SCHEMA_VERSION = 6

# Additive changes for databases made by earlier versions, applied on every read-write open
# BEFORE the DDL (its views read these columns; DuckDB binds a view when it is created).
MIGRATIONS = [
    "ALTER TABLE IF EXISTS questions ADD COLUMN IF NOT EXISTS level DOUBLE",
    *(f"ALTER TABLE IF EXISTS samples ADD COLUMN IF NOT EXISTS {c} {t}" for c, t in [
        ("placement", "VARCHAR"), ("length_band", "VARCHAR"), ("perturbation", "JSON"),
        ("realized_format", "VARCHAR"), ("realized_length_band", "VARCHAR"), ("reasoning_container", "VARCHAR")]),
    "ALTER TABLE IF EXISTS judge_skips ADD COLUMN IF NOT EXISTS config_hash VARCHAR",
    "ALTER TABLE IF EXISTS question_difficulty ADD COLUMN IF NOT EXISTS config_hash VARCHAR",
    "ALTER TABLE IF EXISTS question_domains ADD COLUMN IF NOT EXISTS config_hash VARCHAR",
    "ALTER TABLE IF EXISTS question_domains ADD COLUMN IF NOT EXISTS adopted BOOLEAN",
    "ALTER TABLE IF EXISTS judge_evals ADD COLUMN IF NOT EXISTS mode VARCHAR",
    "ALTER TABLE IF EXISTS judge_evals ADD COLUMN IF NOT EXISTS position_consistency DOUBLE",
    *(f"ALTER TABLE IF EXISTS trajectory_verdicts ADD COLUMN IF NOT EXISTS {c} {t}" for c, t in [
        ("details", "JSON"), ("prompt_tokens", "INTEGER"), ("completion_tokens", "INTEGER")]),
]

# Verdicts carry the config hash of the rule that made them (filters.base.config_fingerprint:
# rule, version, effective parameters; for judges also model, sampling and rubric), and it is part
# of the key: verdicts made under other parameters stay, so switching a parameter back reuses them.
# '' = parameters not recorded (rows from before schema 6, or written without a hash).
# A shard set written (samples' `exports`, agentic traces' `trace_exports`): one shape.
EXPORTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    export_id VARCHAR PRIMARY KEY,
    run_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    out_dir VARCHAR NOT NULL,
    config_hash VARCHAR NOT NULL,
    manifest JSON NOT NULL
);
"""

VERDICTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    sample_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,           -- filter | decontam | verify | judge
    rule VARCHAR NOT NULL,
    rule_version INTEGER NOT NULL,
    passed BOOLEAN NOT NULL,
    score DOUBLE,
    reason VARCHAR,
    details JSON,
    run_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    prompt_tokens INTEGER,            -- judges: tokens spent on this verdict (all attempts)
    completion_tokens INTEGER,
    config_hash VARCHAR NOT NULL DEFAULT '',
    PRIMARY KEY (sample_id, rule, rule_version, config_hash)
);
"""
# Which of a sample's verdicts for a rule counts (latest_verdicts): the one made under the rule's
# current config hash, then the newest version, then the newest row.
LATEST_ORDER = "coalesce(v.config_hash = c.config_hash, false) DESC, v.rule_version DESC, v.created_at DESC"


def failing_now_sql(ids: str | None = None) -> str:
    """(sample_id, rule) whose verdict that counts fails: latest_verdicts WHERE NOT passed, with
    the ranking run only on the (sample, rule) pairs that ever failed, for the samples in the
    table `ids` (a sample_id column) or all. At 10^6 samples x 10 rules the view ranks 10^7 rows
    (about 10 s; DuckDB pushes no sample filter through its window); this ranks a few percent."""
    among = f"SEMI JOIN {ids} i ON i.sample_id = v.sample_id" if ids else ""
    return f"""
    WITH ever_failed AS (
        SELECT DISTINCT v.sample_id, v.rule FROM verdicts v {among}
        WHERE NOT v.passed AND v.rule NOT IN (SELECT rule FROM rule_states WHERE NOT enabled)
    )
    SELECT sample_id, rule FROM (
        SELECT v.sample_id, v.rule, v.passed
        FROM verdicts v SEMI JOIN ever_failed f ON f.sample_id = v.sample_id AND f.rule = v.rule
        LEFT JOIN rule_configs c ON c.rule = v.rule
        QUALIFY row_number() OVER (PARTITION BY v.sample_id, v.rule ORDER BY {LATEST_ORDER}) = 1)
    WHERE NOT passed"""


def kept_samples_sql(ids: str | None = None) -> str:
    """The kept_samples view's query, for the samples in the table `ids` (a sample_id column) or
    all: has a verdict that counts (its own or its question's), none failing, no judge owed."""
    among = f" SEMI JOIN {ids} i ON i.sample_id = s.sample_id" if ids else ""
    counted = f"SELECT v.sample_id FROM verdicts v{among.replace('s.sample_id', 'v.sample_id')}"
    return f"""SELECT s.sample_id, s.question_id, q.domain
FROM samples s{among} JOIN questions q USING (question_id)
WHERE (s.sample_id IN ({counted} WHERE v.rule NOT IN (SELECT rule FROM rule_states WHERE NOT enabled))
       OR s.question_id IN (SELECT question_id FROM latest_question_verdicts))
  AND s.sample_id NOT IN (SELECT sample_id FROM ({failing_now_sql(ids)}))
  AND s.question_id NOT IN (SELECT question_id FROM latest_question_verdicts WHERE NOT passed)
  AND s.sample_id NOT IN (SELECT sample_id FROM judge_pending)"""


_VERDICT_COLUMNS = ("sample_id, stage, rule, rule_version, passed, score, reason, details, run_id, created_at, "
                    "prompt_tokens, completion_tokens")

DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);

CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,          -- running | finished | failed
    config_hash VARCHAR NOT NULL,
    config JSON NOT NULL,
    counts JSON,
    error VARCHAR
);

CREATE TABLE IF NOT EXISTS questions (
    question_id VARCHAR PRIMARY KEY,  -- content hash of the question text
    source VARCHAR NOT NULL,
    domain VARCHAR NOT NULL,
    subdomain VARCHAR,
    text VARCHAR NOT NULL,
    reference_answer VARCHAR,
    answer_type VARCHAR,
    tests VARCHAR[],
    level DOUBLE,                     -- source difficulty scaled to 0..1
    pool_path VARCHAR NOT NULL,
    pool_line INTEGER NOT NULL,
    first_run_id VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS quarantine (
    run_id VARCHAR NOT NULL,
    pool_path VARCHAR NOT NULL,
    line INTEGER,
    field VARCHAR,
    error VARCHAR NOT NULL,
    raw VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS samples (
    sample_id VARCHAR PRIMARY KEY,    -- hash of question, generation config and index
    question_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    sample_index INTEGER NOT NULL,
    gen_config_hash VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    requested_format VARCHAR NOT NULL,
    prompt_hash VARCHAR NOT NULL,
    messages JSON NOT NULL,
    raw_text VARCHAR NOT NULL,
    reasoning VARCHAR,
    answer VARCHAR,
    think_closed_by VARCHAR,
    reasoning_finish VARCHAR,
    finish_reason VARCHAR NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    sampling_params JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    placement VARCHAR,                -- first | last (NULL: the style fixes the layout)
    length_band VARCHAR,              -- any | short | long (NULL: the style fixes the layout)
    perturbation JSON,                -- seed + choices that rebuild the prompt
    realized_format VARCHAR,          -- the style the answer shows (filters/text/format_detect.py)
    realized_length_band VARCHAR,     -- short | medium | long, by words
    reasoning_container VARCHAR       -- think_tags | reasoning_field: how the export carries the reasoning
);

""" + VERDICTS_TABLE.format(name="verdicts") + """
-- Per rule, the config hash its stage ran with most recently (written when the stage finishes,
-- only when it changed). latest_verdicts prefers the verdicts made with it.
CREATE TABLE IF NOT EXISTS rule_configs (
    rule VARCHAR PRIMARY KEY,
    stage VARCHAR NOT NULL,
    rule_version INTEGER NOT NULL,
    config_hash VARCHAR NOT NULL,
    params JSON,                      -- what the hash was made of
    run_id VARCHAR NOT NULL,          -- the run that switched to this hash
    updated_at TIMESTAMPTZ NOT NULL
);

-- Samples a judge rule was due to judge but did not, because the run's token budget ran out.
CREATE TABLE IF NOT EXISTS judge_skips (
    run_id VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    rule_version INTEGER NOT NULL,
    sample_id VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    config_hash VARCHAR,              -- the rule's config hash in that run (NULL: before schema 6)
    PRIMARY KEY (run_id, rule, rule_version, sample_id)
);

-- Judge rules measured against labelled sets (`curate judges eval`); calibration gates read it.
CREATE TABLE IF NOT EXISTS judge_evals (
    eval_id VARCHAR PRIMARY KEY,
    rule VARCHAR NOT NULL,
    rule_version INTEGER NOT NULL,
    model VARCHAR NOT NULL,
    labels VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,            -- the label set: pairwise | pointwise
    n_items INTEGER NOT NULL,
    n_judged INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    ties INTEGER,
    agreement DOUBLE,
    accuracy DOUBLE,
    kappa DOUBLE,
    details JSON,
    created_at TIMESTAMPTZ NOT NULL,
    mode VARCHAR,                     -- how the judge was asked: pointwise | pairwise (NULL: pointwise)
    position_consistency DOUBLE       -- pairwise mode: share of pairs both orders decided the same way
);

CREATE TABLE IF NOT EXISTS question_difficulty (
    question_id VARCHAR NOT NULL,
    method VARCHAR NOT NULL,          -- pass_rate | reasoning_length
    version INTEGER NOT NULL,
    score DOUBLE NOT NULL,            -- 0 easy .. 1 hard
    n_samples INTEGER NOT NULL,
    detail VARCHAR,
    run_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    config_hash VARCHAR,              -- llm_rating: rule + model hash it was rated under (else NULL)
    PRIMARY KEY (question_id, method, version)
);

-- Domain of each question by a classifier (pipeline/domains): pool metadata, kNN over sentence
-- embeddings, or an LLM rule. The questions table keeps the domain the pool gave.
CREATE TABLE IF NOT EXISTS question_domains (
    question_id VARCHAR NOT NULL,
    method VARCHAR NOT NULL,          -- metadata | knn | llm
    version INTEGER NOT NULL,
    domain VARCHAR NOT NULL,          -- top level of the taxonomy
    subdomain VARCHAR,
    confidence DOUBLE,                -- share of neighbours voting for the domain (knn), 1 for metadata
    detail VARCHAR,
    run_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- the classifier settings the row was made with (a change reclassifies; NULL: before they were
    -- recorded) and whether questions.domain was taken from it (the pool gave none)
    config_hash VARCHAR,
    adopted BOOLEAN,
    PRIMARY KEY (question_id, method, version)
);

""" + EXPORTS_TABLE.format(name="exports") + """

CREATE TABLE IF NOT EXISTS selections (
    export_id VARCHAR NOT NULL,
    sample_id VARCHAR NOT NULL,
    domain VARCHAR NOT NULL,
    difficulty DOUBLE,
    reason VARCHAR NOT NULL,
    PRIMARY KEY (export_id, sample_id)
);

-- Samples an export left out because their record failed the chat-template checks.
CREATE TABLE IF NOT EXISTS export_rejects (
    export_id VARCHAR NOT NULL,
    sample_id VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    tokens INTEGER,
    PRIMARY KEY (export_id, sample_id)
);

CREATE TABLE IF NOT EXISTS shards (
    export_id VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    rows INTEGER NOT NULL,
    bytes BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,
    PRIMARY KEY (export_id, file)
);

-- Verdicts on questions (decontamination, dedup), made before any sample is synthesized.
CREATE TABLE IF NOT EXISTS question_verdicts (
    question_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,           -- decontam | dedup
    rule VARCHAR NOT NULL,
    rule_version INTEGER NOT NULL,
    passed BOOLEAN NOT NULL,
    score DOUBLE,
    reason VARCHAR,
    details JSON,                     -- matched benchmark item, cluster id, ...
    run_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (question_id, rule, rule_version)
);

-- Answer styles per run (pipeline/stages/style_metrics.py). scope: synthesized | kept;
-- domain: a domain or 'all'. Counts of samples that asked for / realized / complied with a style.
CREATE TABLE IF NOT EXISTS style_metrics (
    run_id VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,
    domain VARCHAR NOT NULL,
    style VARCHAR NOT NULL,
    requested INTEGER NOT NULL,
    realized INTEGER NOT NULL,
    compliant INTEGER NOT NULL,
    PRIMARY KEY (run_id, scope, domain, style)
);

-- Diversity of the realized styles per run, scope and domain, with the overfit alarm.
CREATE TABLE IF NOT EXISTS style_summary (
    run_id VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,
    domain VARCHAR NOT NULL,
    n_samples INTEGER NOT NULL,
    n_unknown INTEGER NOT NULL,       -- answers no detector recognizes (left out of the next four)
    n_styles INTEGER NOT NULL,        -- distinct realized styles
    entropy DOUBLE,                   -- normalized Shannon entropy of realized styles, 0..1
    dominant_style VARCHAR,
    dominant_share DOUBLE,
    alarm BOOLEAN NOT NULL,           -- dominant_share > alarm_share over >= the minimum recognized answers
    alarm_share DOUBLE NOT NULL,
    compliance DOUBLE,                -- share of samples whose answer has the requested style
    PRIMARY KEY (run_id, scope, domain)
);

-- Compliance per model and requested style, per run (synthesized samples).
CREATE TABLE IF NOT EXISTS style_compliance (
    run_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    style VARCHAR NOT NULL,
    requested INTEGER NOT NULL,
    compliant INTEGER NOT NULL,
    rate DOUBLE NOT NULL,
    PRIMARY KEY (run_id, model, style)
);

CREATE OR REPLACE VIEW style_alarms AS SELECT * FROM style_summary WHERE alarm;

-- The misalignment loop (pipeline/misalignment/): bad cases, the samples traced to them, labels,
-- rules previewed apart, and which rules count.
CREATE TABLE IF NOT EXISTS bad_cases (
    case_id VARCHAR PRIMARY KEY,      -- hash of prompt and bad output
    prompt VARCHAR NOT NULL,
    bad_output VARCHAR NOT NULL,
    expected VARCHAR,                 -- a reference answer or what a good answer does
    tags VARCHAR[] NOT NULL,
    model VARCHAR,                    -- the model or checkpoint it came from
    source VARCHAR NOT NULL,          -- FILE:LINE of the JSONL it came from, or 'cli'
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS trace_candidates (
    trace_id VARCHAR NOT NULL,        -- one `curate trace` of one case
    case_id VARCHAR NOT NULL,
    sample_id VARCHAR NOT NULL,
    method VARCHAR NOT NULL,          -- signature | lexical | embedding | fused
    score DOUBLE,
    rank INTEGER NOT NULL,            -- 1 = best, per trace and method
    detail VARCHAR,                   -- why: the shared failed rules, the matching terms, ...
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (trace_id, method, sample_id)
);

-- Labels are rows, never edited: the newest per case, sample and labeller counts.
CREATE TABLE IF NOT EXISTS candidate_labels (
    case_id VARCHAR,                  -- NULL: a label on the sample alone
    sample_id VARCHAR NOT NULL,
    label VARCHAR NOT NULL,           -- dirty | clean
    labeller VARCHAR NOT NULL,        -- 'user', or 'judge:<rule>@<version>' for a pre-label
    note VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);

-- Verdicts of a rule being previewed: the verdicts shape, in a table nothing else reads.
""" + VERDICTS_TABLE.format(name="preview_verdicts") + """
-- The kept samples and the rules failing each sample now, as every preview compares against
-- (pipeline/misalignment/preview_baseline.py):
-- a cache, refilled when the store's fingerprint (kept in meta) changes; nothing else reads it.
CREATE TABLE IF NOT EXISTS preview_kept (
    sample_id VARCHAR, question_id VARCHAR, domain VARCHAR, requested_format VARCHAR,
    difficulty DOUBLE, pass_difficulty DOUBLE
);
CREATE TABLE IF NOT EXISTS preview_failing (sample_id VARCHAR, rule VARCHAR);

-- Rules switched on or off by `curate rules enable/disable`. A rule with no row counts (every
-- built-in rule); a disabled rule's verdicts stay stored and stop counting.
CREATE TABLE IF NOT EXISTS rule_states (
    rule VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,            -- sql | cheap | judge
    enabled BOOLEAN NOT NULL,
    definition JSON,                  -- a SQL rule's YAML as data (what its verdicts were made with)
    source VARCHAR,                   -- the YAML file
    changed_at TIMESTAMPTZ NOT NULL
);

-- Agentic traces (issue 16; schemas/agentic.py): one row per trajectory (a rollout of a task in a
-- tool environment) and one per message of it. The id hashes task, environment@version, model,
-- seed and perturbation choices, so a resumed rollout skips what exists (pipeline/agentic/store.py).
CREATE TABLE IF NOT EXISTS trajectories (
    trajectory_id VARCHAR PRIMARY KEY,
    task_id VARCHAR NOT NULL,         -- hash of the task (schemas/agentic.py Task.task_id)
    task JSON NOT NULL,               -- the task: text, allowed tools, verification
    question_id VARCHAR,              -- pool tasks: the question (generated tasks: NULL)
    environment VARCHAR NOT NULL,     -- name@version
    seed BIGINT NOT NULL,
    model VARCHAR NOT NULL,
    perturbations JSON NOT NULL,      -- axis -> choice, rollout- and render-time
    tools JSON NOT NULL,              -- the tool specs offered (canonical names)
    outcome VARCHAR NOT NULL,         -- answered | step_cap | length | engine_error | no_answer
    final_answer VARCHAR,
    correct BOOLEAN,                  -- NULL: not verified yet
    outcome_detail VARCHAR,
    steps INTEGER NOT NULL,           -- tool calls made
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    final_state_hash VARCHAR,         -- the environment's state_hash() at the end
    run_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS trajectory_messages (
    trajectory_id VARCHAR NOT NULL,
    turn INTEGER NOT NULL,            -- 0-based position in the conversation
    role VARCHAR NOT NULL,            -- system | user | assistant | tool
    content VARCHAR,
    reasoning VARCHAR,                -- the thinking before this turn's content or calls
    tool_calls JSON,                  -- assistant: [{id, name, arguments, raw, parse_error}]
    tool_call_id VARCHAR,             -- tool: the call answered
    name VARCHAR,                     -- tool: the tool's name
    tool_status VARCHAR,              -- tool: ok | error | timeout
    PRIMARY KEY (trajectory_id, turn)
);

-- Verdicts on trajectories: the outcome check (stage 'outcome', rule 'outcome'), the trace
-- rules (stage 'trace', filters/trace/) and trajectory judges (stage 'judge', e.g. step_reasoning).
-- Apart from `verdicts` because everything that reads that table (sample_status, labels,
-- rebalance, export) takes its key for a row of `samples`.
CREATE TABLE IF NOT EXISTS trajectory_verdicts (
    trajectory_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,           -- outcome | trace | judge
    rule VARCHAR NOT NULL,
    rule_version INTEGER NOT NULL,
    passed BOOLEAN NOT NULL,
    score DOUBLE,
    reason VARCHAR,
    run_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    config_hash VARCHAR NOT NULL DEFAULT '',
    details JSON,                     -- judges: raw replies, attempts, error, flags
    prompt_tokens INTEGER,            -- judges: tokens spent on this verdict (all attempts)
    completion_tokens INTEGER,
    PRIMARY KEY (trajectory_id, rule, rule_version, config_hash)
);

-- Perturbation axes of a run's trajectories (pipeline/agentic/coverage.py): per axis (response
-- format, call syntax, tool docs, ...) and environment ('all' or one), each value drawn with its
-- count, and whether the configuration offers it (configured values never drawn: n = 0).
CREATE TABLE IF NOT EXISTS perturbation_values (
    run_id VARCHAR NOT NULL,
    environment VARCHAR NOT NULL,
    axis VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    n INTEGER NOT NULL,
    share DOUBLE,                     -- of the trajectories recording the axis
    configured BOOLEAN,               -- offered by the run's config (NULL: the axis has no fixed set)
    expected_share DOUBLE,            -- the config's probability of drawing it (NULL: no fixed set)
    PRIMARY KEY (run_id, environment, axis, value)
);

-- Per axis: diversity, the dominant value with the overfit alarm, and coverage.
CREATE TABLE IF NOT EXISTS perturbation_summary (
    run_id VARCHAR NOT NULL,
    environment VARCHAR NOT NULL,
    axis VARCHAR NOT NULL,
    n_trajectories INTEGER NOT NULL,  -- recording the axis
    n_values INTEGER NOT NULL,        -- distinct values drawn
    entropy DOUBLE,                   -- normalized Shannon entropy of the values drawn, 0..1
    dominant_value VARCHAR,
    dominant_share DOUBLE,
    alarm_share DOUBLE NOT NULL,      -- agentic.alarm_share
    alarm_threshold DOUBLE NOT NULL,  -- the share the alarm needs (see coverage.py)
    alarm BOOLEAN NOT NULL,           -- dominant_share > alarm_threshold over >= alarm_min_samples
    n_configured INTEGER,             -- values the config offers (NULL: no fixed set)
    missing VARCHAR[],                -- configured values never drawn
    covered BOOLEAN,                  -- every configured value drawn (NULL: no fixed set)
    PRIMARY KEY (run_id, environment, axis)
);

CREATE OR REPLACE VIEW perturbation_alarms AS SELECT * FROM perturbation_summary WHERE alarm;

-- The verdict that counts per trajectory and rule: the newest version, then the newest row. The
-- trace export keeps a trajectory only when it is correct and all of these pass.
CREATE OR REPLACE VIEW latest_trajectory_verdicts AS
SELECT * FROM trajectory_verdicts
QUALIFY row_number() OVER (PARTITION BY trajectory_id, rule ORDER BY rule_version DESC, created_at DESC) = 1;

-- Difficulty of an agentic task from its k rollouts (pipeline/difficulty/tasks.py, written by the
-- difficulty stage): score = 1 - pass rate over the verified rollouts, as question_difficulty's
-- pass_rate. A trajectory's difficulty is its task's (view trajectory_difficulty).
CREATE TABLE IF NOT EXISTS task_difficulty (
    task_id VARCHAR NOT NULL,
    method VARCHAR NOT NULL,          -- pass_at_k
    version INTEGER NOT NULL,
    environment VARCHAR NOT NULL,
    score DOUBLE NOT NULL,            -- 0 easy .. 1 hard: 1 - pass_rate
    pass_rate DOUBLE NOT NULL,        -- correct / verified rollouts (pass@1 estimated over k)
    pass_at_k BOOLEAN NOT NULL,       -- at least one of the k verified rollouts correct
    k INTEGER NOT NULL,               -- verified rollouts
    n_rollouts INTEGER NOT NULL,      -- all stored rollouts (verified or not)
    detail VARCHAR,
    run_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (task_id, method, version)
);

CREATE OR REPLACE VIEW trajectory_difficulty AS
SELECT t.trajectory_id, t.task_id, t.environment, d.score AS difficulty, d.pass_rate, d.pass_at_k, d.k,
       d.n_rollouts
FROM trajectories t LEFT JOIN task_difficulty d
  ON d.task_id = t.task_id AND d.method = 'pass_at_k' AND d.version = 1;

-- Trace exports (pipeline/export/traces.py): a shard set of traces-*.jsonl per export, its files
-- in `shards` under the same export_id, and one trace_selections row per stored trajectory saying
-- whether it was exported and why (or why not). Apart from exports/selections, which are samples'.
""" + EXPORTS_TABLE.format(name="trace_exports") + """

CREATE TABLE IF NOT EXISTS trace_selections (
    export_id VARCHAR NOT NULL,
    trajectory_id VARCHAR NOT NULL,
    task_id VARCHAR NOT NULL,
    environment VARCHAR NOT NULL,
    difficulty DOUBLE,
    status VARCHAR NOT NULL,          -- exported | not_kept | not_chosen | template_rejected
    reason VARCHAR NOT NULL,
    render JSON,                      -- the render-time perturbations applied (rendered ones)
    PRIMARY KEY (export_id, trajectory_id)
);

-- Sentence embeddings of samples (question + answer), kept for nearest-neighbour traces.
CREATE TABLE IF NOT EXISTS sample_embeddings (
    sample_id VARCHAR NOT NULL,
    model_id VARCHAR NOT NULL,
    vector FLOAT[384] NOT NULL,
    PRIMARY KEY (sample_id, model_id)
);

-- What a SQL rule's `where:` reads (schemas/sql_rule.py): one row per sample, its own columns
-- and its question's. The verdict-derived features are a second view, joined only when a
-- clause names one of them (they aggregate every verdict).
CREATE OR REPLACE VIEW sample_features AS
SELECT s.sample_id, s.question_id, s.run_id, s.model, s.requested_format, s.realized_format,
       s.finish_reason, s.think_closed_by, s.prompt_tokens, s.completion_tokens,
       length(s.reasoning) AS reasoning_chars, length(s.answer) AS answer_chars,
       s.reasoning, s.answer, s.raw_text,
       q.domain, q.source, q.level, q.answer_type, q.text AS question_text, q.reference_answer
FROM samples s JOIN questions q USING (question_id);

CREATE OR REPLACE VIEW current_labels AS
SELECT * FROM candidate_labels
QUALIFY row_number() OVER (PARTITION BY coalesce(case_id, ''), sample_id, labeller ORDER BY created_at DESC) = 1;


CREATE OR REPLACE VIEW latest_question_verdicts AS
SELECT * FROM question_verdicts
QUALIFY row_number() OVER (PARTITION BY question_id, rule ORDER BY rule_version DESC, created_at DESC) = 1;

-- Questions the pipeline will not synthesize for, and why.
CREATE OR REPLACE VIEW question_status AS
SELECT q.question_id, q.domain, q.source,
       coalesce(bool_and(v.passed), true) AS usable,
       coalesce(list(v.rule ORDER BY v.rule) FILTER (WHERE NOT v.passed), []) AS failed_rules
FROM questions q LEFT JOIN latest_question_verdicts v USING (question_id)
GROUP BY q.question_id, q.domain, q.source;

-- The verdict that counts, per rule and sample: the one made under the rule's current config
-- hash (rule_configs: what its stage last ran with), whatever its age, so switching a parameter
-- back to an old value makes the old verdicts current again without recomputing anything. A
-- sample with no verdict under it (not eligible for a judge then, or a limited backfill), and
-- every rule without a record (databases before schema 6, verdicts written by hand), fall back
-- to the newest version, then the newest row. A rule whose verdicts were all made under one
-- (version, config hash) has one verdict per sample, the one that counts: only the other rules'
-- rows are ranked (at 10^6 samples x 10 rules, about 1 s instead of 10; tests/stages/test_store.py).
CREATE OR REPLACE VIEW latest_verdicts AS
WITH multi AS NOT MATERIALIZED (  -- rules with verdicts under several (version, config hash)
    SELECT rule FROM verdicts GROUP BY rule
    HAVING min(rule_version) <> max(rule_version) OR min(config_hash) <> max(config_hash)
)
SELECT * FROM verdicts
WHERE rule NOT IN (SELECT rule FROM multi) AND rule NOT IN (SELECT rule FROM rule_states WHERE NOT enabled)
UNION ALL
SELECT v.* FROM verdicts v LEFT JOIN rule_configs c ON c.rule = v.rule
WHERE v.rule IN (SELECT rule FROM multi) AND v.rule NOT IN (SELECT rule FROM rule_states WHERE NOT enabled)
QUALIFY row_number() OVER (PARTITION BY v.sample_id, v.rule ORDER BY """ + LATEST_ORDER + """) = 1;

-- What each sample asked for and what it wrote, with the prompt perturbation used.
CREATE OR REPLACE VIEW sample_formats AS
SELECT s.sample_id, s.question_id, q.domain, s.model, s.requested_format, s.realized_format,
       c.passed AS compliant,            -- the format_compliance verdict (NULL: not checked yet)
       s.placement, s.length_band, s.realized_length_band, s.reasoning_container,
       CAST(s.perturbation ->> '$.seed' AS BIGINT) AS perturbation_seed,
       CAST(s.perturbation ->> '$.system' AS INTEGER) AS system_prompt,
       CAST(s.perturbation ->> '$.phrasing' AS INTEGER) AS phrasing,
       s.perturbation ->> '$.order' AS prompt_order, s.perturbation ->> '$.markup' AS markup
FROM samples s JOIN questions q USING (question_id)
LEFT JOIN latest_verdicts c ON c.sample_id = s.sample_id AND c.rule = 'format_compliance';

-- Judging still owed: skipped for the token budget under the rule's current config hash and
-- not judged under it since (skips from before schema 6: by rule version, for rules with no record).
CREATE OR REPLACE VIEW judge_pending AS
SELECT k.* FROM judge_skips k LEFT JOIN rule_configs c ON c.rule = k.rule
WHERE (c.rule IS NULL OR k.config_hash = c.config_hash)
  AND NOT EXISTS (SELECT 1 FROM verdicts v
                  WHERE v.sample_id = k.sample_id AND v.rule = k.rule AND v.rule_version = k.rule_version
                    AND (k.config_hash IS NULL OR v.config_hash = k.config_hash));

-- Why is a sample in or out? kept = it has verdicts and every latest one passed, its own and
-- its question's (a contaminated or duplicate question drops its samples too), and no judge
-- is still owed (a pending rule counts as not passed, listed as "<rule> (pending)").
CREATE OR REPLACE VIEW sample_status AS
WITH v AS (
    SELECT sample_id, rule, passed FROM latest_verdicts
    UNION ALL
    SELECT s.sample_id, qv.rule, qv.passed FROM samples s JOIN latest_question_verdicts qv USING (question_id)
    UNION ALL
    SELECT DISTINCT sample_id, rule || ' (pending)', false FROM judge_pending
)
SELECT
    s.sample_id,
    s.question_id,
    q.domain,
    count(v.rule) > 0 AND coalesce(bool_and(v.passed), false) AS kept,
    coalesce(list(v.rule ORDER BY v.rule) FILTER (WHERE NOT v.passed), []) AS failed_rules,
    count(v.rule) AS n_verdicts
FROM samples s
JOIN questions q USING (question_id)
LEFT JOIN v USING (sample_id)
GROUP BY s.sample_id, s.question_id, q.domain;

-- The verdict features a SQL rule's `where:` may name, one view each over every sample, so a
-- clause joins only the ones it names (pipeline/misalignment/sql_rules.py source()): the rules
-- failing now, the judge scores that count, kept by the sample's own verdicts, the combined
-- difficulty. Built from the failing pairs and the judge verdicts alone (failing_now_sql), not by
-- ranking every verdict. sample_verdict_features: all four side by side.
CREATE OR REPLACE VIEW sample_failing_now AS
SELECT sample_id, list(rule ORDER BY rule) AS failed_rules FROM (""" + failing_now_sql() + """) GROUP BY sample_id;

CREATE OR REPLACE VIEW sample_failed_rules AS
SELECT s.sample_id, coalesce(f.failed_rules, []) AS failed_rules
FROM samples s LEFT JOIN sample_failing_now f USING (sample_id);

CREATE OR REPLACE VIEW sample_judge_scores AS
WITH judged AS (
    SELECT sample_id, map_from_entries(list({'k': rule, 'v': score})) AS judge_scores FROM (
        SELECT v.sample_id, v.rule, v.score FROM verdicts v LEFT JOIN rule_configs c ON c.rule = v.rule
        WHERE v.stage = 'judge' AND v.rule NOT IN (SELECT rule FROM rule_states WHERE NOT enabled)
        QUALIFY row_number() OVER (PARTITION BY v.sample_id, v.rule ORDER BY """ + LATEST_ORDER + """) = 1)
    GROUP BY sample_id
)
SELECT s.sample_id, coalesce(j.judge_scores, map_from_entries([]::STRUCT(k VARCHAR, v DOUBLE)[])) AS judge_scores
FROM samples s LEFT JOIN judged j USING (sample_id);

CREATE OR REPLACE VIEW sample_kept_by_verdicts AS
SELECT s.sample_id,
       s.sample_id NOT IN (SELECT sample_id FROM sample_failing_now) AND s.sample_id IN (
           SELECT sample_id FROM verdicts WHERE rule NOT IN (SELECT rule FROM rule_states WHERE NOT enabled)) AS kept
FROM samples s;

CREATE OR REPLACE VIEW sample_difficulty AS
SELECT s.sample_id, d.score AS difficulty
FROM samples s
LEFT JOIN (SELECT question_id, score FROM question_difficulty WHERE method = 'combined'
           QUALIFY row_number() OVER (PARTITION BY question_id ORDER BY version DESC, created_at DESC) = 1) d
       ON d.question_id = s.question_id;

CREATE OR REPLACE VIEW sample_verdict_features AS
SELECT sample_id, f.failed_rules, j.judge_scores, k.kept, d.difficulty
FROM sample_failed_rules f JOIN sample_judge_scores j USING (sample_id)
JOIN sample_kept_by_verdicts k USING (sample_id) JOIN sample_difficulty d USING (sample_id);

-- The kept samples alone (what rebalance and the style metrics read): sample_status.kept as
-- semi/anti joins, without its list aggregation over every verdict, so DuckDB runs it within a
-- small memory cap (bench/scale.py). A verdict that counts can fail only where some verdict of
-- that sample and rule failed, so the ranking of latest_verdicts runs on those pairs alone (a
-- few percent of the rows): 10^6 samples x 10 rules, 30 s -> a few s (bench/preview_speed.py).
-- tests/stages/test_kept_samples.py checks it agrees with sample_status.
CREATE OR REPLACE VIEW kept_samples AS
""" + kept_samples_sql() + """;

-- The quality report (`curate report`, pipeline/report/) reads these views (and the style_*
-- tables as they are). Each is a small aggregate, so a report of 10^6 samples moves little
-- data out of DuckDB. Rows carry run_id (the run that read the question, made the sample or
-- verdict) and export_id where they belong to an export, so the report filters by either.

-- latest_verdicts, the columns the report needs (the view ranks only rules with verdicts under
-- several versions or config hashes, so a report of 10^6 samples reads it in about a second).
CREATE OR REPLACE VIEW report_latest_verdicts AS
SELECT sample_id, stage, rule, passed FROM latest_verdicts;

-- One row per sample: the run that made it, its domain, the cheap rules it passed, whether it
-- passed every cheap rule, also its answer checks (verified), whether it is kept (as
-- kept_samples: a verdict of its own or its question's, none failing, no judge pending), and its
-- lengths. One pass over the latest verdicts; the report builds it once and reads it for the funnel,
-- the domain mix and the lengths (pipeline/report/build.py).
CREATE OR REPLACE VIEW report_samples AS
WITH v AS (
    SELECT sample_id,
           list(rule ORDER BY rule) FILTER (WHERE stage IN ('filter', 'decontam') AND passed) AS passed_cheap_rules,
           count(*) FILTER (WHERE stage IN ('filter', 'decontam')) > 0
               AND coalesce(bool_and(passed) FILTER (WHERE stage IN ('filter', 'decontam')), true) AS cheap_ok,
           coalesce(bool_and(passed) FILTER (WHERE stage = 'verify'), true) AS verify_ok,
           bool_and(passed) AS all_passed
    FROM report_latest_verdicts GROUP BY sample_id
), qv AS (
    SELECT question_id, bool_and(passed) AS all_passed FROM latest_question_verdicts GROUP BY question_id
), pending AS (SELECT DISTINCT sample_id FROM judge_pending)
SELECT s.sample_id, s.run_id, q.domain, coalesce(v.passed_cheap_rules, []) AS passed_cheap_rules,
       coalesce(v.cheap_ok, false) AS cheap_ok,
       coalesce(v.cheap_ok AND v.verify_ok, false) AS verified,
       (v.sample_id IS NOT NULL OR qv.question_id IS NOT NULL) AND coalesce(v.all_passed, true)
           AND coalesce(qv.all_passed, true) AND p.sample_id IS NULL AS kept,
       length(coalesce(s.reasoning, '')) AS reasoning_chars, length(coalesce(s.answer, '')) AS answer_chars
FROM samples s JOIN questions q USING (question_id)
LEFT JOIN v USING (sample_id) LEFT JOIN qv ON qv.question_id = s.question_id
LEFT JOIN pending p ON p.sample_id = s.sample_id;

-- The funnel per domain: questions read and screened (unit question), samples synthesized, each
-- cheap rule passed (latest verdicts), all cheap rules passed, verified (no failing answer or
-- code check), kept (every rule passed, nothing pending), then per export selected and exported
-- (selected minus the chat-template rejects).
CREATE OR REPLACE VIEW report_funnel AS
SELECT domain, first_run_id AS run_id, NULL::VARCHAR AS export_id, 1 AS step_no, 'questions read' AS step,
       'question' AS unit, count(*) AS n
FROM questions GROUP BY ALL
UNION ALL
SELECT domain, q.first_run_id, NULL, 2, 'screened (usable)', 'question', count(*)
FROM question_status JOIN questions q USING (question_id, domain) WHERE usable GROUP BY ALL
UNION ALL
SELECT domain, run_id, NULL, 3, 'synthesized', 'sample', count(*) FROM report_samples GROUP BY ALL
UNION ALL
SELECT domain, run_id, NULL, 4, 'passed ' || rule, 'sample', sum(n)
FROM (SELECT domain, run_id, unnest(passed_cheap_rules) AS rule, n  -- few distinct lists: group, then unnest
      FROM (SELECT domain, run_id, passed_cheap_rules, count(*) AS n FROM report_samples GROUP BY ALL))
GROUP BY ALL
UNION ALL
SELECT domain, run_id, NULL, 5, 'passed all cheap rules', 'sample', count(*) FROM report_samples WHERE cheap_ok GROUP BY ALL
UNION ALL
SELECT domain, run_id, NULL, 6, 'verified', 'sample', count(*) FROM report_samples WHERE verified GROUP BY ALL
UNION ALL
SELECT domain, run_id, NULL, 7, 'kept (judged, all rules passed)', 'sample', count(*)
FROM report_samples WHERE kept GROUP BY ALL
UNION ALL
SELECT domain, NULL, export_id, 8, 'selected', 'sample', count(*) FROM selections GROUP BY ALL
UNION ALL
SELECT domain, NULL, export_id, 9, 'exported', 'sample', count(*)
FROM selections e WHERE NOT EXISTS (SELECT 1 FROM export_rejects r WHERE r.export_id = e.export_id
                                    AND r.sample_id = e.sample_id) GROUP BY ALL;

-- Every verdict each run made, per rule (sample and question verdicts): the failure trend.
CREATE OR REPLACE VIEW report_rule_failures AS
SELECT run_id, stage, rule, count(*) AS checked, count(*) FILTER (WHERE NOT passed) AS failed
FROM (SELECT run_id, stage, rule, passed FROM verdicts
      UNION ALL SELECT run_id, stage, rule, passed FROM question_verdicts)
GROUP BY ALL;

-- Why rules failed: reasons with numbers masked (#), so alike reasons group.
CREATE OR REPLACE VIEW report_rule_reasons AS
SELECT run_id, rule, regexp_replace(left(coalesce(reason, '(no reason)'), 100), '[0-9]+([.][0-9]+)?', '#', 'g') AS reason,
       count(*) AS n
FROM (SELECT run_id, rule, passed, reason FROM verdicts
      UNION ALL SELECT run_id, rule, passed, reason FROM question_verdicts)
WHERE NOT passed GROUP BY ALL;

-- Difficulty signals, the newest version per question and method, with the pool's level (0..1)
-- when the source gave one.
CREATE OR REPLACE VIEW report_difficulty AS
SELECT d.question_id, q.domain, d.method, d.score, q.level, d.run_id
FROM question_difficulty d JOIN questions q USING (question_id)
QUALIFY row_number() OVER (PARTITION BY d.question_id, d.method ORDER BY d.version DESC, d.created_at DESC) = 1;

-- Domain mix: pool (questions), synthesized, kept and exported samples per domain; report_domain_targets
-- has each run's rebalance targets.
CREATE OR REPLACE VIEW report_domain_mix AS
SELECT domain, first_run_id AS run_id, NULL::VARCHAR AS export_id, 'pool' AS stage, count(*) AS n FROM questions GROUP BY ALL
UNION ALL
SELECT domain, run_id, NULL, 'synthesized', count(*) FROM report_samples GROUP BY ALL
UNION ALL
SELECT domain, run_id, NULL, 'kept', count(*) FROM report_samples WHERE kept GROUP BY ALL
UNION ALL
SELECT domain, NULL, export_id, 'exported', count(*)
FROM selections e WHERE NOT EXISTS (SELECT 1 FROM export_rejects r WHERE r.export_id = e.export_id
                                    AND r.sample_id = e.sample_id) GROUP BY ALL;

CREATE OR REPLACE VIEW report_domain_targets AS
SELECT run_id, domain, CAST(config -> '$.rebalance.targets' ->> domain AS DOUBLE) AS target
FROM (SELECT run_id, config, unnest(json_keys(config -> '$.rebalance.targets')) AS domain FROM runs
      WHERE json_type(config -> '$.rebalance.targets') = 'OBJECT');

-- Judge scores per rule (how many verdicts got each score) and what judging cost per run.
CREATE OR REPLACE VIEW report_judge_scores AS
SELECT run_id, rule, rule_version, score, passed, count(*) AS n
FROM verdicts WHERE stage = 'judge' GROUP BY ALL;

CREATE OR REPLACE VIEW report_judge_costs AS
WITH v AS (
    SELECT run_id, rule, count(*) AS judged,
           count(*) FILTER (WHERE details ->> '$.error' IS NOT NULL) AS errors,
           CAST(coalesce(sum(prompt_tokens), 0) AS BIGINT) AS prompt_tokens,
           CAST(coalesce(sum(completion_tokens), 0) AS BIGINT) AS completion_tokens
    FROM verdicts WHERE stage = 'judge' GROUP BY ALL
), k AS (SELECT run_id, rule, count(*) AS skipped_budget FROM judge_skips GROUP BY ALL)
SELECT run_id, rule, coalesce(judged, 0) AS judged, coalesce(errors, 0) AS errors,
       coalesce(prompt_tokens, 0) AS prompt_tokens, coalesce(completion_tokens, 0) AS completion_tokens,
       coalesce(skipped_budget, 0) AS skipped_budget
FROM v FULL JOIN k USING (run_id, rule);

-- Reasoning and answer lengths (characters) of kept and dropped samples, in powers of two:
-- bin b holds lengths 2^b - 1 .. 2^(b+1) - 2 (bin 0: empty).
CREATE OR REPLACE VIEW report_lengths AS
SELECT run_id, domain, kept, field, CAST(floor(log2(1 + chars)) AS INTEGER) AS bin, count(*) AS n
FROM (UNPIVOT (SELECT run_id, domain, kept, reasoning_chars AS reasoning, answer_chars AS answer FROM report_samples)
      ON reasoning, answer INTO NAME field VALUE chars)
GROUP BY ALL;
"""


# Tables without a primary key (append-only logs).
_KEYLESS = {"quarantine", "candidate_labels"}


class StoreLockedError(RuntimeError):
    pass


def now() -> datetime:
    return datetime.now(timezone.utc)


def _upgrade(con: duckdb.DuckDBPyConnection) -> None:
    """Bring tables made by earlier schema versions to the current shape (before the DDL)."""
    columns = {r[0] for r in con.sql("SELECT column_name FROM information_schema.columns "
                                     "WHERE table_name = 'verdicts'").fetchall()}
    if columns and "config_hash" not in columns:
        _rebuild_verdicts(con, has_tokens="prompt_tokens" in columns)
    for statement in MIGRATIONS:
        con.execute(statement)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The statements of the block in one transaction: all of them, or none (an error rolls back)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _rebuild_verdicts(con: duckdb.DuckDBPyConnection, has_tokens: bool) -> None:
    """Schema 6 puts config_hash into the verdicts key; DuckDB cannot alter a primary key, so the
    table is copied into the new shape and swapped in, all in one transaction (a failure leaves
    the old table as it was). Old rows get config_hash '' (their parameters were not recorded)."""
    copied = _VERDICT_COLUMNS if has_tokens else _VERDICT_COLUMNS.replace(", prompt_tokens, completion_tokens", "")
    with transaction(con):
        con.execute("DROP TABLE IF EXISTS verdicts_v6")
        con.execute(VERDICTS_TABLE.format(name="verdicts_v6"))
        con.execute(f"INSERT INTO verdicts_v6 ({copied}, config_hash) SELECT {copied}, '' FROM verdicts")
        con.execute("DROP TABLE verdicts")
        con.execute("ALTER TABLE verdicts_v6 RENAME TO verdicts")


class Store:
    """One DuckDB file. Open it read-write for runs, read-only for queries."""

    def __init__(self, path: str | Path, read_only: bool = False, memory_limit: str | None = None):
        """memory_limit: DuckDB's cap on its own memory (e.g. "1GB"; it spills to disk beyond);
        default DuckDB's (80% of RAM)."""
        self.path = Path(path)
        self._column_cache: dict[str, set[str]] = {}
        if read_only and not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such database (run `curate run` first)")
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"{self.path} is in use by another process (DuckDB allows one writer); "
                    f"wait for the other run to finish. ({exc})"
                ) from exc
            raise
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if not read_only:
            _upgrade(self.con)
            self.con.execute(DDL)
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- bulk writes -----------------------------------------------------------------
    # DuckDB 2.0: reads go through con.sql(...) (relations leave no open result behind);
    # writes through con.execute(...). Frames are registered by name for one statement.

    def _write(self, statements: list[tuple[str, str, pl.DataFrame | str]]) -> None:
        """(verb, table, frame) triples in one transaction; verb is INSERT OR IGNORE / REPLACE. A
        query string in place of a frame is inserted by column name without leaving DuckDB (for
        rows too many to bring to Python, e.g. an export's selections)."""
        statements = [(v, t, f) for v, t, f in statements if isinstance(f, str) or not f.is_empty()]
        for _, table, frame in statements:
            if isinstance(frame, str):
                continue
            # DuckDB 2.0 silently drops a column the table lacks on INSERT ... (cols) SELECT:
            # a misspelled column must be an error, not lost data.
            unknown = sorted(set(frame.columns) - self._columns(table))
            if unknown:
                raise ValueError(f"table {table!r} has no column(s) {unknown}")
        names = [f"_incoming_{i}" for i in range(len(statements))]
        for name, (_, _, frame) in zip(names, statements):
            if not isinstance(frame, str):
                self.con.register(name, frame.to_arrow())
        try:
            with transaction(self.con):
                for name, (verb, table, frame) in zip(names, statements):
                    if table in _KEYLESS:  # nothing to conflict on: plain insert
                        verb = "INSERT"
                    if isinstance(frame, str):
                        self.con.execute(f"{verb} INTO {table} BY NAME {frame}")
                        continue
                    columns = ", ".join(f'"{c}"' for c in frame.columns)
                    self.con.execute(f"{verb} INTO {table} ({columns}) SELECT {columns} FROM {name}")
        finally:
            for name, (_, _, frame) in zip(names, statements):
                if not isinstance(frame, str):
                    self.con.unregister(name)

    def _columns(self, table: str) -> set[str]:
        if table not in self._column_cache:
            rows = self.con.sql("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                params=[table]).fetchall()
            if not rows:
                raise ValueError(f"no table {table!r} in {self.path}")
            self._column_cache[table] = {r[0] for r in rows}
        return self._column_cache[table]

    def insert(self, table: str, frame: pl.DataFrame) -> int:
        """Insert a frame in one transaction; rows whose key exists are skipped. Returns rows new."""
        before = self.count(table)
        self._write([("INSERT OR IGNORE", table, frame)])
        return self.count(table) - before

    def insert_many(self, frames: dict[str, pl.DataFrame | str]) -> None:
        """Several tables in one transaction (e.g. an export's selections and its shard files);
        a value may be a SELECT whose columns are named as the table's."""
        self._write([("INSERT OR IGNORE", t, f) for t, f in frames.items()])

    def replace(self, table: str, frame: pl.DataFrame) -> None:
        """Insert or overwrite by primary key (for derived values such as difficulty)."""
        self._write([("INSERT OR REPLACE", table, frame)])

    def replace_many(self, frames: dict[str, pl.DataFrame]) -> None:
        """Several tables overwritten by key in one transaction (e.g. a run's metrics)."""
        self._write([("INSERT OR REPLACE", t, f) for t, f in frames.items()])

    # --- reads ---------------------------------------------------------------------------

    def frame(self, sql: str, params: list | None = None, **tables: pl.DataFrame) -> pl.DataFrame:
        """Run a query; keyword frames are visible to it as tables of that name."""
        for name, table in tables.items():
            self.con.register(name, table.to_arrow())
        try:
            return self.con.sql(sql, params=params).pl() if params else self.con.sql(sql).pl()
        finally:
            for name in tables:
                self.con.unregister(name)

    def scalar(self, sql: str, params: list | None = None):
        rows = self.con.sql(sql, params=params).fetchall() if params else self.con.sql(sql).fetchall()
        return rows[0][0] if rows else None

    def count(self, table: str) -> int:
        return self.scalar(f"SELECT count(*) FROM {table}")

    def existing_ids(self, table: str, column: str, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        found = self.frame(f"SELECT {column} FROM {table} WHERE {column} IN (SELECT id FROM probe)",
                           probe=pl.DataFrame({"id": ids}))
        return set(found[column].to_list())

    # --- runs ----------------------------------------------------------------------------

    def start_run(self, config_json: dict, config_hash: str) -> str:
        run_id = now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.con.execute(
            "INSERT INTO runs (run_id, started_at, status, config_hash, config) VALUES (?, ?, 'running', ?, ?)",
            [run_id, now(), config_hash, json.dumps(config_json)],
        )
        return run_id

    def close_interrupted_runs(self) -> list[str]:
        """Runs still 'running' when a new run holds the run lock ended without finishing (killed,
        power lost): mark them 'interrupted'. Call only under the run lock."""
        stale = self.frame("SELECT run_id FROM runs WHERE status = 'running'")["run_id"].to_list()
        if stale:
            self.con.execute("UPDATE runs SET status = 'interrupted', finished_at = ?, error = 'the process ended "
                             "without finishing (killed?); a later run resumed its work' WHERE status = 'running'",
                             [now()])
        return stale

    def finish_run(self, run_id: str, status: str, counts: dict | None = None, error: str | None = None) -> None:
        self.con.execute(
            "UPDATE runs SET finished_at = ?, status = ?, counts = ?, error = ? WHERE run_id = ?",
            [now(), status, json.dumps(counts or {}), error, run_id],
        )
