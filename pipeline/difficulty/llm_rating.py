"""LLM difficulty rating of QUESTIONS (not samples): method llm_rating in question_difficulty.

A judge rule with `target: question` (built-in: judges/rules/difficulty_rating.yaml, 1-10 with
an anchor per level) is run through the judge machinery unchanged: judges.render builds the
rubric (system message, shared by every question: vLLM's prefix cache reuses it) and the user
message with the question between delimiters, the engine is constrained to the rule's JSON
schema, judges.parse reads the score, unparsable output is retried (sampled, another seed).

Stored: score = (rating - scale.min) / (scale.max - scale.min), so 1 -> 0 and 10 -> 1; version =
the rule's version; n_samples = 0 (no sample is involved); detail = rating, model, rule and the
judge's rationale. A question the engine could not rate after the retries gets no row (never a
made-up score); the report counts it. A question already rated under the rule's current
config hash (pipeline.stages.judge.judge_config: rule, rubric, model, sampling) is not rated
again unless `force`; a new model or rubric re-rates. The row is replaced (one per question and
rule version), so switching back to an earlier model rates again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from judges.run import judge_samples
from pipeline.progress import NoProgress, Progress
from pipeline.difficulty.rows import ROW_SCHEMA, rows
from pipeline.stages.judge import judge_config
from pipeline.store import Store
from schemas.chat import ChatBackend
from schemas.judge_rule import JudgeRule

METHOD = "llm_rating"


@dataclass
class Rating:
    question_id: str
    rating: int | None  # on the rule's scale; None: no usable output
    score: float | None  # 0 easy .. 1 hard
    rationale: str | None
    error: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class LlmRatingReport:
    rule: str
    version: int
    asked: int = 0
    rated: int = 0
    errors: int = 0
    already_rated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error_examples: list[str] = field(default_factory=list)


def _check(rule: JudgeRule) -> None:
    if rule.target != "question":
        raise ValueError(f"judge rule {rule.name!r} judges samples (target: {rule.target}); "
                         "difficulty rating needs a rule with target: question")


def rate_questions(rule: JudgeRule, questions: list[dict], engine: ChatBackend, *, max_retries: int = 2,
                   on_progress: Callable[[int], None] | None = None) -> list[Rating]:
    """questions: dicts with question_id, text, and optionally domain, reference_answer.
    One Rating per question, in order; one batched engine call per attempt."""
    _check(rule)
    items = [{"sample_id": q["question_id"], "question_text": q["text"], "domain": q.get("domain"),
              "reference_answer": q.get("reference_answer")} for q in questions]
    span = rule.scale.max - rule.scale.min
    ratings = []
    for q, result in zip(questions, judge_samples(rule, items, engine, max_retries=max_retries,
                                                  on_progress=on_progress)):
        details = json.loads(result["details"])
        rating = None if result["score"] is None else int(result["score"])
        ratings.append(Rating(
            question_id=q["question_id"], rating=rating,
            score=None if rating is None else (rating - rule.scale.min) / span,
            rationale=None if rating is None else result["reason"],
            error=details["error"], prompt_tokens=details["prompt_tokens"],
            completion_tokens=details["completion_tokens"],
        ))
    return ratings


def score_llm_rating(store: Store, run_id: str, question_ids: list[str], engine: ChatBackend, rule: JudgeRule, *,
                     batch_size: int = 64, max_retries: int = 2, force: bool = False,
                     progress: Progress | None = None) -> LlmRatingReport:
    """Rate the questions (in batches of `batch_size`) and store an llm_rating row per rated one."""
    _check(rule)
    progress = progress or NoProgress()
    report = LlmRatingReport(rule.name, rule.version)
    config_hash = judge_config(rule, engine.model_name, stage="difficulty").config_hash
    probe = pl.DataFrame({"question_id": question_ids}, schema={"question_id": pl.String})
    fields, field_params = rule.applies_to.sql("q")  # domains, reference (formats: not on question rules)
    where = " AND ".join(["q.question_id IN (SELECT question_id FROM probe)", *fields])
    todo = store.frame(f"""
        SELECT q.question_id, q.text, q.domain, q.reference_answer, d.question_id IS NOT NULL AS rated
        FROM questions q LEFT JOIN question_difficulty d
          ON d.question_id = q.question_id AND d.method = ? AND d.version = ? AND d.config_hash = ?
        WHERE {where}
        ORDER BY q.question_id
    """, [METHOD, rule.version, config_hash, *field_params], probe=probe)
    if not force:
        report.already_rated = int(todo["rated"].sum())
        todo = todo.filter(~pl.col("rated"))
    questions = todo.to_dicts()
    report.asked = len(questions)
    progress.start(f"difficulty: {rule.name} v{rule.version}", len(questions))
    for start in range(0, len(questions), batch_size):
        batch = questions[start:start + batch_size]
        ratings = rate_questions(rule, batch, engine, max_retries=max_retries, on_progress=progress.advance)
        ok = [r for r in ratings if r.score is not None]
        report.rated += len(ok)
        report.errors += len(ratings) - len(ok)
        report.error_examples = (report.error_examples
                                 + [f"{r.question_id}: {r.error}" for r in ratings if r.score is None])[:5]
        report.prompt_tokens += sum(r.prompt_tokens for r in ratings)
        report.completion_tokens += sum(r.completion_tokens for r in ratings)
        frame = pl.DataFrame(
            {"question_id": [r.question_id for r in ok], "score": [r.score for r in ok],
             "n_samples": [0] * len(ok),
             "detail": [f"{r.rating}/{rule.scale.max} by {engine.model_name} ({rule.name} v{rule.version}): "
                        f"{r.rationale or ''}" for r in ok]},
            schema={"question_id": pl.String, "score": pl.Float64, "n_samples": pl.Int32, "detail": pl.String})
        store.replace("question_difficulty", rows(frame, METHOD, rule.version, run_id, config_hash) if ok
                      else pl.DataFrame(schema=ROW_SCHEMA))
    progress.done()
    return report
