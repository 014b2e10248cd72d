"""Difficulty stage: several signals per question, each a (method, version) row of
question_difficulty with a score from 0 (easy) to 1 (hard), and a combined score.

Signals:

pass_rate (v1): where a reference or tests exist, 1 - share of the question's verified samples
  that the verifier accepted (latest answer_match / code_tests verdict). With k samples it takes
  k + 1 values; detail "3/4 samples correct".
reasoning_length (v2): the median reasoning length, in characters, of the question's CORRECT
  samples; where none is correct, or nothing could be verified, of all its samples (the detail
  says which). Scaled on a log scale between two bounds (DifficultyConfig, default 200 and
  20,000 chars): score = clip(ln(chars / min) / ln(max / min), 0, 1), so 200 chars -> 0,
  2,000 -> 0.5, 20,000 -> 1. Log, because reasoning lengths spread over orders of magnitude and
  what matters is "twice as long", not "+500 chars". A weak proxy: a looping model also writes
  long, and reasoning cut at the token budget is counted at its cut length (the detail says how
  many were cut). v1 (only where no reference, median / 4,000 chars) rows stay queryable.
llm_rating (v<rule version>): a judge rule with target: question (difficulty_rating, 1-10) rates
  the question text; score (rating - 1) / 9. See pipeline/difficulty/llm_rating.py.
irt (v1): only when verified samples of at least two models exist: a Rasch model
  P(correct | model m, question q) = sigmoid(theta_m - b_q), fitted by penalized maximum
  likelihood (N(0, 2^2) priors on theta and b) over every verified sample in the store; score =
  1 - sigmoid(mean(theta) - b_q), the chance that a model of average ability fails the question.
  Unlike pass_rate it does not call a question hard because only a weak model tried it.

combined (v1): a rank average. For each signal, every question that has it is given its
  percentile rank among the questions of the same domain that have it (0 = easiest, 1 = hardest,
  ties share their average rank, a lone question 0.5); a question's combined score is the
  weighted mean of its percentile ranks over the signals it has (irt replaces pass_rate where
  both exist: they measure the same thing). Ranks make signals on different scales comparable
  and ignore their units; a signal constant over a domain (the tiny model failing every
  question) ranks everything at 0.5 and leaves the order to the other signals. Detail lists
  the signals and their ranks. Because ranks and irt depend on the whole population, combined
  and irt are recomputed for every scored question in the store; only changed rows are written.

Agentic tasks (when agentic.enabled): pass@k over each task's rollouts, in task_difficulty
(pipeline/difficulty/tasks.py); a trajectory's difficulty is its task's (view trajectory_difficulty).

Per domain, so combined means "harder than this share of the domain's scored questions", which
is how the rebalance stage uses it (hardest first within a domain). Readers of a single
difficulty value should take combined, else pass_rate, else any method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.difficulty.llm_rating import METHOD, score_llm_rating
from pipeline.difficulty.rows import ROW_SCHEMA, rows
from pipeline.difficulty.tasks import score_task_difficulty
from pipeline.stage import StageContext, StageReport
from pipeline.store import Store
from schemas.difficulty import DifficultyConfig

PASS_RATE, PASS_RATE_VERSION = "pass_rate", 1
LENGTH, LENGTH_VERSION = "reasoning_length", 2
IRT, IRT_VERSION = "irt", 1
COMBINED, COMBINED_VERSION = "combined", 1
LLM = METHOD  # "llm_rating"; version: the judge rule's version
VERIFY_RULES = ("answer_match", "code_tests")
IRT_PRIOR_SD = 2.0

# One correctness per verified sample (a sample has answer_match or code_tests, by answer type).
_VERIFIED = f"""
SELECT sample_id, bool_and(passed) AS correct FROM latest_verdicts
WHERE rule IN {VERIFY_RULES} GROUP BY sample_id
"""


@dataclass
class DifficultyReport:
    pass_rate: int  # questions of this call scored, per signal (rows written only where a value changed)
    reasoning_length: int
    llm_rating: int = 0
    llm_errors: int = 0  # questions the LLM could not rate (no row written)
    irt: int = 0  # rows written or changed, store-wide
    combined: int = 0  # rows written or changed, store-wide
    llm_skipped: str | None = None  # why llm_rating did not run although configured
    agentic_tasks: int = 0  # task_difficulty rows (pass@k of agentic tasks) written or changed


def _probe(question_ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"question_id": question_ids}, schema={"question_id": pl.String})


# --- signals from the stored samples ----------------------------------------------------------------


def pass_rate_signal(store: Store, question_ids: list[str]) -> pl.DataFrame:
    return store.frame(f"""
        WITH verified AS ({_VERIFIED})
        SELECT s.question_id, 1 - avg(v.correct::INT) AS score, count(*) AS n_samples,
               sum(v.correct::INT) || '/' || count(*) || ' samples correct' AS detail
        FROM samples s JOIN verified v USING (sample_id)
        WHERE s.question_id IN (SELECT question_id FROM probe)
        GROUP BY s.question_id ORDER BY s.question_id
    """, probe=_probe(question_ids))


def length_score(chars: pl.Expr, min_chars: int, max_chars: int) -> pl.Expr:
    """Log-scaled reasoning length: min_chars -> 0, max_chars -> 1, clipped."""
    scaled = (pl.max_horizontal(chars.cast(pl.Float64), pl.lit(1.0)) / min_chars).log() / math.log(max_chars / min_chars)
    return scaled.clip(0.0, 1.0)


def reasoning_length_signal(store: Store, question_ids: list[str], cfg: DifficultyConfig) -> pl.DataFrame:
    frame = store.frame(f"""
        WITH verified AS ({_VERIFIED}),
        s AS (
            SELECT s.question_id, length(coalesce(s.reasoning, '')) AS chars, v.correct,
                   coalesce(s.reasoning_finish = 'length'
                            OR (s.think_closed_by IS NULL AND s.finish_reason = 'length'), false) AS cut
            FROM samples s LEFT JOIN verified v USING (sample_id)
            WHERE s.question_id IN (SELECT question_id FROM probe)
        ),
        q AS (SELECT question_id, count(*) FILTER (WHERE correct) AS n_correct, count(correct) AS n_verified
              FROM s GROUP BY question_id)
        SELECT s.question_id, median(s.chars) AS chars, count(*) AS n_samples,
               count(*) FILTER (WHERE s.cut) AS n_cut, any_value(q.n_correct) AS n_correct,
               any_value(q.n_verified) AS n_verified
        FROM s JOIN q USING (question_id)
        WHERE q.n_correct = 0 OR s.correct
        GROUP BY s.question_id ORDER BY s.question_id
    """, probe=_probe(question_ids))
    over = (pl.when(pl.col("n_correct") > 0).then(pl.format("{} correct samples", "n_samples"))
            .when(pl.col("n_verified") > 0).then(pl.format("all {} samples (none correct)", "n_samples"))
            .otherwise(pl.format("all {} samples (nothing verified)", "n_samples")))
    cut = pl.when(pl.col("n_cut") > 0).then(pl.format(", {} cut at the token budget", "n_cut")).otherwise(pl.lit(""))
    return frame.with_columns(
        score=length_score(pl.col("chars"), cfg.reasoning_length_min_chars, cfg.reasoning_length_max_chars),
        detail=pl.format("median reasoning {} chars over {}{}", pl.col("chars").round(0).cast(pl.Int64), over, cut),
    )


# --- item response model --------------------------------------------------------------------------


def fit_rasch(counts: pl.DataFrame, prior_sd: float = IRT_PRIOR_SD, iterations: int = 200) -> pl.DataFrame:
    """counts: model, question_id, correct, trials -> question_id, b (logit difficulty), score,
    n_samples, n_models. Penalized joint maximum likelihood by alternating Newton steps
    (each parameter's likelihood is concave; the Gaussian priors keep all-correct and
    all-wrong questions finite and fix the scale's origin)."""
    models = counts["model"].unique(maintain_order=True).to_list()
    questions = counts["question_id"].unique(maintain_order=True).to_list()
    mi = counts["model"].replace_strict({m: i for i, m in enumerate(models)}, return_dtype=pl.Int64).to_numpy()
    qi = counts["question_id"].replace_strict({q: i for i, q in enumerate(questions)}, return_dtype=pl.Int64).to_numpy()
    c = counts["correct"].to_numpy().astype(float)
    n = counts["trials"].to_numpy().astype(float)
    theta, b = np.zeros(len(models)), np.zeros(len(questions))
    precision = 1.0 / prior_sd**2
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(b[qi] - theta[mi]))
        grad = np.bincount(mi, c - n * p, len(models)) - precision * theta
        hess = np.bincount(mi, n * p * (1 - p), len(models)) + precision
        theta += grad / hess
        p = 1.0 / (1.0 + np.exp(b[qi] - theta[mi]))
        grad = -np.bincount(qi, c - n * p, len(questions)) - precision * b
        hess = np.bincount(qi, n * p * (1 - p), len(questions)) + precision
        step = grad / hess
        b += step
        if np.max(np.abs(step)) < 1e-9:
            break
    score = 1.0 - 1.0 / (1.0 + np.exp(b - theta.mean()))
    per_q = counts.group_by("question_id").agg(n_samples=pl.col("trials").sum(), n_models=pl.col("model").n_unique())
    return pl.DataFrame({"question_id": questions, "b": b, "score": score}).join(per_q, on="question_id")


def irt_signal(store: Store, cfg: DifficultyConfig) -> pl.DataFrame | None:
    """Rasch difficulties of every question with verified samples (None: fewer models than needed)."""
    counts = store.frame(f"""
        WITH verified AS ({_VERIFIED})
        SELECT s.model, s.question_id, count(*) FILTER (WHERE v.correct) AS correct, count(*) AS trials
        FROM samples s JOIN verified v USING (sample_id) GROUP BY ALL ORDER BY ALL
    """)
    n_models = counts["model"].n_unique() if counts.height else 0
    if n_models < cfg.irt_min_models:
        return None
    fitted = fit_rasch(counts)
    return fitted.with_columns(detail=pl.format("Rasch b = {} over {} samples by {} of {} models",
                                                pl.col("b").round(3), "n_samples", "n_models", pl.lit(n_models)))


# --- combined --------------------------------------------------------------------------------------


def rank_average(signals: pl.DataFrame, weights: dict[str, float] | None = None) -> pl.DataFrame:
    """signals: question_id, domain, method, score, n_samples (one row per question and method)
    -> question_id, score, n_samples, detail: the weighted mean over a question's signals of its
    percentile rank within its domain (see the module docstring). irt replaces pass_rate where
    a question has both; a signal with weight 0 is left out."""
    weights = weights or {}
    frame = signals.filter(pl.col("method").replace_strict(weights, default=1.0, return_dtype=pl.Float64) > 0)
    has_irt = frame.filter(pl.col("method") == IRT).select("question_id")
    frame = frame.filter(~((pl.col("method") == PASS_RATE) & pl.col("question_id").is_in(has_irt["question_id"])))
    group = ["domain", "method"]
    ranked = frame.with_columns(
        n=pl.len().over(group),
        r=pl.col("score").rank("average").over(group),
    ).with_columns(
        pct=pl.when(pl.col("n") > 1).then((pl.col("r") - 1) / (pl.col("n") - 1)).otherwise(0.5),
        w=pl.col("method").replace_strict(weights, default=1.0, return_dtype=pl.Float64),
    ).sort("question_id", "method")
    return ranked.group_by("question_id", maintain_order=True).agg(
        score=(pl.col("pct") * pl.col("w")).sum() / pl.col("w").sum(),
        n_samples=pl.col("n_samples").max(),
        detail=pl.format("rank average of {} signal(s): ", pl.len().cast(pl.String))
        + pl.format("{} {}", "method", pl.col("pct").round(3)).str.join(", "),
    )


def current_signals(store: Store) -> pl.DataFrame:
    """Every question's signals at the versions this code writes (llm_rating: its newest version)."""
    return store.frame(f"""
        SELECT d.question_id, q.domain, d.method, d.score, d.n_samples
        FROM question_difficulty d JOIN questions q USING (question_id)
        WHERE (d.method, d.version) IN (('{PASS_RATE}', {PASS_RATE_VERSION}), ('{LENGTH}', {LENGTH_VERSION}),
                                        ('{IRT}', {IRT_VERSION}))
           OR (d.method = '{LLM}' AND d.version = (SELECT max(version) FROM question_difficulty x
                                                   WHERE x.question_id = d.question_id AND x.method = '{LLM}'))
        ORDER BY d.question_id, d.method
    """)


def _changed(store: Store, frame: pl.DataFrame, method: str, version: int) -> pl.DataFrame:
    """Rows whose score or detail differ from the stored row (or that have none)."""
    old = store.frame("SELECT question_id, score AS old_score, detail AS old_detail FROM question_difficulty "
                      "WHERE method = ? AND version = ?", [method, version])
    joined = frame.join(old, on="question_id", how="left")
    keep = (pl.col("old_score").is_null() | ((pl.col("score") - pl.col("old_score")).abs() > 1e-12)
            | (pl.col("detail") != pl.col("old_detail")))
    return joined.filter(keep).drop("old_score", "old_detail")


# --- the stage -----------------------------------------------------------------------------------


def score_difficulty(store: Store, run_id: str, question_ids: list[str], *, config: DifficultyConfig | None = None,
                     engine=None, llm_rule=None, progress=None) -> DifficultyReport:
    """Signals for `question_ids` (replacing their earlier rows of the same method and version),
    then irt and combined for every scored question in the store. The llm_rating signal needs
    `llm_rule` (the loaded config.llm_rule) and `engine` (a ChatBackend: the rule's own or the
    run's); without either it is skipped."""
    cfg = config or DifficultyConfig()
    report = DifficultyReport(0, 0)
    frames = []
    # New samples or verdicts change a question's difficulty: rows whose value changed are
    # replaced (a re-run with nothing new writes nothing).
    if PASS_RATE in cfg.signals:
        by_pass = pass_rate_signal(store, question_ids)
        changed = _changed(store, by_pass.select("question_id", "score", "n_samples", "detail"),
                           PASS_RATE, PASS_RATE_VERSION)
        frames.append(rows(changed, PASS_RATE, PASS_RATE_VERSION, run_id))
        report.pass_rate = by_pass.height
    if LENGTH in cfg.signals:
        by_length = reasoning_length_signal(store, question_ids, cfg)
        changed = _changed(store, by_length.select("question_id", "score", "n_samples", "detail"),
                           LENGTH, LENGTH_VERSION)
        frames.append(rows(changed, LENGTH, LENGTH_VERSION, run_id))
        report.reasoning_length = by_length.height
    store.replace("question_difficulty", pl.concat(frames) if frames else pl.DataFrame(schema=ROW_SCHEMA))

    if LLM in cfg.signals:
        rule = llm_rule
        if engine is None or rule is None:
            report.llm_skipped = "no engine given" if engine is None else "no rating rule given"
        else:
            llm = score_llm_rating(store, run_id, question_ids, engine, rule, batch_size=cfg.llm_batch_size,
                                   max_retries=cfg.llm_max_parse_retries, progress=progress)
            report.llm_rating, report.llm_errors = llm.rated, llm.errors

    if IRT in cfg.signals:
        fitted = irt_signal(store, cfg)
        if fitted is not None:
            changed = _changed(store, fitted.select("question_id", "score", "n_samples", "detail"), IRT, IRT_VERSION)
            store.replace("question_difficulty", rows(changed, IRT, IRT_VERSION, run_id))
            report.irt = changed.height

    if cfg.combine == "rank_average":
        signals = current_signals(store).filter(pl.col("method").is_in(cfg.signals))
        combined = rank_average(signals, cfg.weights)
        changed = _changed(store, combined, COMBINED, COMBINED_VERSION)
        store.replace("question_difficulty", rows(changed, COMBINED, COMBINED_VERSION, run_id))
        report.combined = changed.height
    return report


def run(ctx: StageContext) -> StageReport:
    """Difficulty signals of the run's questions; the rating rule and its engine come from the context."""
    cfg = ctx.config.difficulty
    rule = engine = None
    if LLM in cfg.signals:
        rule = ctx.judge_rule(cfg.llm_rule)
        engine = ctx.engine_for(rule.engine) if rule.engine is not None else ctx.engine
    report = score_difficulty(ctx.store, ctx.run_id, ctx.question_ids(), config=cfg, engine=engine, llm_rule=rule,
                              progress=ctx.progress)
    if ctx.config.agentic.enabled:
        report.agentic_tasks = score_task_difficulty(ctx.store, ctx.run_id)
    return StageReport(vars(report))
