"""Judge stage: LLM judge rules in configured order, each on the samples it applies to.

Eligibility comes from the rule's applies_to: every verdict of the listed stages passed
(after_stages), or no verdict of any stage failed (only_undecided, the cascade: cheap rules
first, judges only on what is still undecided); domains, formats, a reference answer, and an
earlier judge's score inside an uncertain band. Only samples without a verdict from this rule
under its current config hash are judged (judge_config: the rule as written, its rubric, the
judge model and sampling), so re-running judges nothing, adding a rule is a backfill, and a
new judge model or threshold re-judges what is eligible. Who is eligible (applies_to), batch
size, retries and the budget are not in the hash: they change which samples are judged or
how, not what a verdict means.

A token budget (prompt + completion tokens, shared by the run's rules) stops judging between
batches; the samples still due are recorded in judge_skips, listed by the judge_pending view
and never counted as kept until a later run judges them.

Rules with target: trajectory judge agentic traces instead (pipeline/agentic/judge.py), into
trajectory_verdicts, by the same rules of resumption and the same shared budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from filters.base import config_fingerprint
from judges.render import rubric
from judges.ask import RETRY_TEMPERATURE
from judges.run import judge_samples
from pipeline.hashing import stable_hash
from pipeline.progress import NoProgress, Progress
from pipeline.verdicts import RuleConfig, record_configs, unjudged, verdict_frame
from pipeline.stage import StageContext, StageReport
from pipeline.store import Store, now
from schemas.chat import ChatBackend
from schemas.judge_rule import JudgeRule


# Bump when judges/render.py (the user message) or judges/parse.py change what a verdict says for
# the same rule and model: every judge verdict is then redone. (Rubric text changes are caught
# by hashing the rendered rubric.)
JUDGE_CODE_VERSION = 1


def judge_config(rule: JudgeRule, model: str, stage: str = "judge") -> RuleConfig:
    """The config a judge rule's verdicts (or question ratings) are keyed by: the rule as written
    (minus who it applies to, its calibration gate and where its engine runs), the rendered
    rubric, the judge model and the retry sampling."""
    body = rule.model_dump(mode="json", exclude={"applies_to", "calibration", "engine"})
    params = {"model": model, "sampling": rule.sampling.model_dump(mode="json"), "threshold": rule.threshold,
              "rule_sha": stable_hash(body), "rubric_sha": stable_hash(rubric(rule)),
              "retry_temperature": RETRY_TEMPERATURE, "judge_code": JUDGE_CODE_VERSION}
    if rule.target == "trajectory":  # what the judge sees of a trace (judges/trajectory.py)
        from judges.trajectory import RENDER_VERSION

        params["trajectory_render"] = RENDER_VERSION
    return RuleConfig(rule.name, stage, rule.version, config_fingerprint(rule.name, rule.version, params), params)


@dataclass
class TokenBudget:
    limit: int | None  # None: unlimited
    spent: int = 0

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.spent >= self.limit


@dataclass
class JudgeReport:
    rule: str
    version: int
    eligible: int = 0
    judged: int = 0
    kept: int = 0
    errors: int = 0
    skipped_budget: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    refused: str | None = None  # why the rule did not run (e.g. not calibrated)


def _marks(values: list) -> str:
    return "(" + ", ".join("?" * len(values)) + ")"


def eligible(store: Store, rule: JudgeRule, limit: int | None = None, config_hash: str | None = None) -> pl.DataFrame:
    """Samples this rule should judge now (see the module docstring): those it applies to with no
    verdict under `config_hash` (None: at the rule's version, any hash)."""
    a = rule.applies_to
    where: list[str] = []
    params: list = []
    # The rule's own older versions never decide for it: a new version re-judges everything.
    if a.only_undecided:
        where.append("""NOT EXISTS (SELECT 1 FROM latest_verdicts lv WHERE lv.sample_id = x.sample_id
                        AND NOT lv.passed AND lv.rule <> ?)""")
        params.append(rule.name)
        where.append("""NOT EXISTS (SELECT 1 FROM latest_question_verdicts qv
                        WHERE qv.question_id = x.question_id AND NOT qv.passed)""")
    if a.after_stages:
        # Every listed stage must have been through, and passed: no failed verdict of it...
        where.append(f"""NOT EXISTS (SELECT 1 FROM latest_verdicts lv WHERE lv.sample_id = x.sample_id
                         AND NOT lv.passed AND lv.rule <> ? AND lv.stage IN {_marks(a.after_stages)})""")
        params += [rule.name, *a.after_stages]
        # ...and the cheap filters, which every sample gets, must have run at all.
        if "filter" in a.after_stages:
            where.append("EXISTS (SELECT 1 FROM verdicts f WHERE f.sample_id = x.sample_id AND f.stage = 'filter')")
    fields, field_params = a.sql("x")  # domains, formats, reference: as judges.run.applies
    where += fields
    params += field_params
    if a.uncertain is not None:
        where.append("""EXISTS (SELECT 1 FROM latest_verdicts u WHERE u.sample_id = x.sample_id AND u.rule = ?
                        AND u.score BETWEEN ? AND ?)""")
        params += [a.uncertain.rule, a.uncertain.min_score, a.uncertain.max_score]
    return unjudged(store, rule.name, rule.version, where=" AND ".join(where) or "TRUE", limit=limit,
                    where_params=params, config_hash=config_hash)


def _batch_size(budget: TokenBudget, report: JudgeReport, batch_size: int) -> int:
    """Under a budget, size the next batch by the tokens per sample seen so far, so judging
    stops close to the budget rather than a whole batch past it."""
    if budget.limit is None or report.judged == 0:
        return batch_size
    per_sample = (report.prompt_tokens + report.completion_tokens) / report.judged
    return max(1, min(batch_size, int((budget.limit - budget.spent) // max(per_sample, 1))))


def judge_in_batches(rows: list[dict], rule: JudgeRule, engine, write, *, report: JudgeReport, budget: TokenBudget,
                     batch_size: int, max_retries: int, progress: Progress) -> int:
    """Judge `rows` in batches sized to what the budget has left, until all are judged or it is
    spent; `write(batch, results)` stores a batch's verdicts and returns (kept, prompt tokens,
    completion tokens). Counts go to `report` and `budget`; returns how many rows were judged
    (samples and trajectories alike: pipeline/agentic/judge.py)."""
    done = 0
    while done < len(rows) and not budget.exhausted:
        batch = rows[done:done + _batch_size(budget, report, batch_size)]
        results = judge_samples(rule, batch, engine, max_retries=max_retries, on_progress=progress.advance)
        kept, prompt, completion = write(batch, results)
        budget.spent += prompt + completion
        report.prompt_tokens += prompt
        report.completion_tokens += completion
        report.judged += len(batch)
        report.kept += kept
        report.errors += sum(1 for r in results if r["score"] is None)
        done += len(batch)
    return done


def calibration_gap(store: Store, rule: JudgeRule, model: str) -> str | None:
    """Why a rule that requires calibration may not run yet with this judge model (None: it may).
    Only evals of this rule version, by this model, in the calibration's mode count."""
    if rule.calibration is None:
        return None
    mode = rule.calibration.mode
    best = store.scalar("SELECT max(agreement) FROM judge_evals WHERE rule = ? AND rule_version = ? AND model = ? "
                        "AND coalesce(mode, 'pointwise') = ?", [rule.name, rule.version, model, mode])
    need = rule.calibration.min_agreement
    if best is None:
        return (f"needs calibration: no {mode} eval of {rule.name} v{rule.version} by {model} yet "
                f"(run `curate judges eval {rule.name} --mode {mode}`; needs agreement >= {need})")
    if best < need:
        return f"needs calibration: best {mode} agreement {best:.3f} by {model} < {need} for {rule.name} v{rule.version}"
    return None


def run_judge(store: Store, rule: JudgeRule, engine: ChatBackend, run_id: str, *, batch_size: int = 64,
              max_retries: int = 2, budget: TokenBudget | None = None, limit: int | None = None,
              progress: Progress | None = None) -> JudgeReport:
    progress = progress or NoProgress()
    budget = budget or TokenBudget(None)
    report = JudgeReport(rule.name, rule.version)
    if rule.target == "question":  # rates questions (difficulty), not samples: run by the difficulty stage
        report.refused = f"{rule.name} is a question rule (target: question); list it under difficulty.llm_rule"
        return report
    gap = calibration_gap(store, rule, engine.model_name)
    if gap:
        report.refused = gap
        return report
    if rule.target == "trajectory":  # agentic traces, into trajectory_verdicts
        from pipeline.agentic.judge import run_trajectory_judge

        return run_trajectory_judge(store, rule, engine, run_id, report=report, budget=budget, batch_size=batch_size,
                                    max_retries=max_retries, limit=limit, progress=progress)
    config = judge_config(rule, engine.model_name)
    pending = eligible(store, rule, limit, config.config_hash)
    rows = pending.to_dicts()
    report.eligible = len(rows)
    progress.start(f"judge: {rule.name} v{rule.version}", len(rows))

    def write(batch: list[dict], results: list[dict]) -> tuple[int, int, int]:
        tokens = []
        for r in results:
            d = json.loads(r["details"])
            tokens.append((d["prompt_tokens"], d["completion_tokens"]))
        frame = pl.DataFrame(
            {"passed": [r["passed"] for r in results], "score": [r["score"] for r in results],
             "reason": [r["reason"] for r in results]},
            schema={"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String},
        )
        store.insert("verdicts", verdict_frame([r["sample_id"] for r in batch], frame, stage="judge", rule=rule.name,
                                               version=rule.version, run_id=run_id,
                                               details=[r["details"] for r in results], tokens=tokens,
                                               config_hash=config.config_hash))
        return int(frame["passed"].sum()), sum(p for p, _ in tokens), sum(c for _, c in tokens)

    done = judge_in_batches(rows, rule, engine, write, report=report, budget=budget, batch_size=batch_size,
                            max_retries=max_retries, progress=progress)
    skipped = rows[done:]
    if skipped:
        report.skipped_budget = len(skipped)
        created = now()
        store.insert("judge_skips", pl.DataFrame({
            "run_id": run_id, "rule": rule.name, "rule_version": rule.version,
            "sample_id": [r["sample_id"] for r in skipped],
            "reason": f"token budget of {budget.limit} reached", "created_at": created,
            "config_hash": config.config_hash,
        }, schema_overrides={"rule_version": pl.Int32, "created_at": pl.Datetime("us", "UTC")}))
    record_configs(store, [config], run_id)
    progress.done()
    return report


def run(ctx: StageContext) -> StageReport:
    """The configured judge rules in order (options: rules, limit, token_budget override the
    config: the backfill of one rule), sharing the run's token budget."""
    judges = ctx.config.judges
    names = ctx.options.get("rules") or judges.rules
    left = ctx.options.get("token_budget", judges.token_budget)
    counts, notes = {}, []
    for name in names:
        rule = ctx.judge_rule(name)
        engine = ctx.engine_for(rule.engine) if rule.engine is not None else ctx.engine  # a rule may name its own
        report = run_judge(ctx.store, rule, engine, ctx.run_id, batch_size=judges.batch_size,
                           max_retries=judges.max_parse_retries, budget=TokenBudget(left),
                           limit=ctx.options.get("limit"), progress=ctx.progress)
        if report.refused:
            notes.append(f"[judge] {name} not run: {report.refused}")
        if report.skipped_budget:
            notes.append(f"[judge] {name}: token budget reached, {report.skipped_budget} "
                         + ("trajectories left for a later run" if rule.target == "trajectory"
                            else "samples left for a later run (SELECT * FROM judge_pending)"))
        if left is not None:
            left = max(0, left - report.prompt_tokens - report.completion_tokens)
        counts[name] = vars(report)
    return StageReport(counts, notes)
