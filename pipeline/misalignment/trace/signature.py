"""The signature of a bad case: the cheap rules its bad output fails, run on it as if it were a
sample. Stored samples whose current verdicts fail the same rules are candidates.

    case_signature(case, config) -> {rule: reason}       the rules that fail, with their reasons
    signature_candidates(store, signature, top) -> frame  sample_id, score, rank, detail

The bad output is split into reasoning and answer as synthesis splits a completion
(`split_think`). What a case cannot tell is guessed: an opened and never closed <think> means the
output was cut (finish_reason "length"; also when the case is tagged truncat*), the domain is
code when the answer holds a code block, else math; `expected`, when given, is the reference of
answer_match (numeric when it is a number, else math). decontam_answer runs against the run
config's benchmark index (built once per process, about 1.5 s).
"""

from __future__ import annotations

import re
from functools import lru_cache

import polars as pl

from filters.decontam_answer import AnswerContamination
from pipeline.benchmarks import build_index
from pipeline.config_loading import load_run_config
from pipeline.rules import pass_rules
from pipeline.stages.synthesize import split_think
from pipeline.store import Store
from schemas.bad_case import BadCase
from schemas.rows import RULE_INPUT

_NUMBER = re.compile(r"^\s*-?[\d,]*\.?\d+\s*$")


def case_sample(case: BadCase) -> dict:
    """The bad case as one row of the rules' input (schemas/rows.py RULE_INPUT)."""
    reasoning, answer, closed = split_think(case.bad_output)
    cut = ("<think>" in case.bad_output and closed is None) or any(t.startswith("truncat") for t in case.tags)
    code = "```" in (answer or "") or "```" in (reasoning or "")
    expected = case.expected.strip() if case.expected else None
    row = {c: None for c in RULE_INPUT} | {
        "sample_id": case.case_id, "question_id": case.case_id, "raw_text": case.bad_output,
        "reasoning": reasoning, "answer": answer, "think_closed_by": closed,
        "finish_reason": "length" if cut else "stop", "question_text": case.prompt,
        "domain": "code" if code else "math", "reference_answer": expected,
        "answer_type": None if expected is None else ("numeric" if _NUMBER.match(expected) else "math"),
    }
    return row


@lru_cache(maxsize=4)
def _answer_rule(decontam_json: str, decontam_type: type) -> AnswerContamination:
    d = decontam_type.model_validate_json(decontam_json)
    return AnswerContamination(build_index(d.benchmarks, shipped=d.shipped))


def case_rules(config) -> list:
    rules = pass_rules(config, "filter") + [r for r in pass_rules(config, "verify") if r.name == "answer_match"]
    if config.decontamination.check_answers:
        rules.append(_answer_rule(config.decontamination.model_dump_json(), type(config.decontamination)))
    return rules


def case_signature(case: BadCase, config=None) -> dict[str, str]:
    """{rule: reason} for every rule the bad output fails (answer_match only with `expected`)."""
    config = config or load_run_config(None)
    row = pl.DataFrame([case_sample(case)], schema=RULE_INPUT)
    failed = {}
    for rule in case_rules(config):
        if rule.name == "answer_match" and row["reference_answer"][0] is None:
            continue
        result = rule.check_batch(row.select(rule.needs)).row(0, named=True)
        if result["passed"] is False:
            failed[rule.name] = result["reason"] or "failed"
    return failed


def reason_pattern(reason: str | None) -> str:
    """A failure's kind without its figures: "duplicate lines 0.97 > 0.3" -> "duplicate lines # > #"."""
    return re.sub(r"\d+(?:\.\d+)?", "#", reason or "")


def signature_candidates(store: Store, signature: dict[str, str], top: int = 50) -> pl.DataFrame:
    """Samples whose latest verdicts fail at least one rule of the signature, best first: Jaccard
    overlap of the failed-rule sets (the score), then how many shared rules failed the same way
    (their reasons alike but for the figures), then exported samples (they shipped) before the
    rest. Equal keys share a rank (many samples fail the same rules). No signature, no candidates."""
    empty = pl.DataFrame(schema={"sample_id": pl.String, "score": pl.Float64, "rank": pl.Int32, "detail": pl.String})
    if not signature:
        return empty
    sig = pl.DataFrame({"rule": sorted(signature), "pattern": [reason_pattern(signature[r]) for r in sorted(signature)]})
    hits = store.frame("SELECT DISTINCT sample_id FROM verdicts WHERE NOT passed AND rule IN (SELECT rule FROM sig)",
                       sig=sig)["sample_id"].to_list()
    if not hits:
        return empty
    # `sample_id IN ?` (a list parameter) is pushed below latest_verdicts' window: only the verdicts
    # of samples failing a signature rule are ranked (a join would rank all of them: 10x slower).
    found = store.frame(f"""
        WITH failed AS (
            SELECT v.sample_id, list(v.rule ORDER BY v.rule) AS rules,
                   count(*) FILTER (WHERE regexp_replace(coalesce(v.reason, ''), '\\d+(\\.\\d+)?', '#', 'g') =
                                          sig.pattern) AS alike
            FROM latest_verdicts v LEFT JOIN sig USING (rule)
            WHERE v.sample_id IN ? AND NOT v.passed GROUP BY v.sample_id),
        scored AS (
            SELECT sample_id, alike, list_intersect(rules, $sig) AS shared,
                   len(list_intersect(rules, $sig)) / len(list_distinct(list_concat(rules, $sig))) AS score
            FROM failed)
        SELECT *, rank() OVER (ORDER BY score DESC, alike DESC, exported DESC) AS rank FROM (
            SELECT s.*, s.sample_id IN (SELECT sample_id FROM selections) AS exported
            FROM scored s WHERE len(s.shared) > 0)
        ORDER BY rank, sample_id LIMIT {int(top)}
    """.replace("$sig", "(SELECT list(rule) FROM sig)"), [hits], sig=sig)
    if found.is_empty():
        return empty
    detail = [f"fails {', '.join(sorted(shared))}" + (f" ({alike} the same way)" if alike else "")
              for shared, alike in zip(found["shared"].to_list(), found["alike"].to_list())]
    return pl.DataFrame({"sample_id": found["sample_id"], "score": found["score"],
                         "rank": found["rank"].cast(pl.Int32), "detail": detail})
