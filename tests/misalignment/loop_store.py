"""A store of real samples for the loop's tests: GSM8K train questions answered with their own
reference solutions (correct, complete), plus planted bad samples (a loop, a wrong answer,
a self-identity phrase, a truncated reasoning), with the real cheap rules' and answer_match's
verdicts stored as a run stores them."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.store import Store, now
from schemas.rows import SAMPLE
from tests.conftest import DATA
from tests.rule_sets import cheap_rules, run_filters, run_verify

PLANTED = {  # sample index -> how its answer is spoiled
    3: "loop", 7: "wrong", 11: "self_identity", 15: "truncated", 19: "loop", 23: "wrong",
}


def _gsm8k(n: int) -> list[dict]:
    with (DATA / "seeds" / "gsm8k_train.jsonl").open() as f:
        return [json.loads(next(f)) for _ in range(n)]


def _spoil(kind: str, reasoning: str, final: str) -> tuple[str, str, str]:
    """(reasoning, answer, finish_reason) of a planted bad sample."""
    if kind == "loop":
        line = reasoning.splitlines()[0]
        return "\n".join([line] * 12), f"The answer is {final}.", "stop"
    if kind == "wrong":
        return reasoning, f"The answer is {int(float(final)) + 7}.", "stop"
    if kind == "self_identity":
        return "As an AI language model developed by OpenAI, I will solve this.\n" + reasoning, \
            f"The answer is {final}.", "stop"
    return reasoning[: len(reasoning) // 3], "", "length"


def build(path: Path, n: int = 40) -> Path:
    items = _gsm8k(n)
    questions, samples = [], []
    for i, item in enumerate(items):
        qid = f"q{i:03d}"
        body, final = item["answer"].split("####")
        reasoning, final = body.replace("<<", "").replace(">>", " ").strip(), final.strip().replace(",", "")
        answer, finish = f"The answer is {final}.", "stop"
        if i in PLANTED:
            reasoning, answer, finish = _spoil(PLANTED[i], reasoning, final)
        questions.append({"question_id": qid, "source": "gsm8k", "domain": "math", "subdomain": None,
                          "text": item["question"], "reference_answer": final, "answer_type": "numeric",
                          "tests": None, "pool_path": "gsm8k_train.jsonl", "pool_line": i + 1, "first_run_id": "run-0"})
        samples.append({"sample_id": f"s{i:03d}", "question_id": qid, "run_id": "run-0", "sample_index": 0,
                        "gen_config_hash": "g", "model": "gsm8k-reference", "requested_format": "terse_final",
                        "prompt_hash": "p", "messages": json.dumps([{"role": "user", "content": item["question"]}]),
                        "raw_text": f"<think>\n{reasoning}\n</think>\n\n{answer}", "reasoning": reasoning,
                        "answer": answer, "think_closed_by": "model" if finish == "stop" else None,
                        "reasoning_finish": None, "finish_reason": finish, "prompt_tokens": 50,
                        "completion_tokens": len(reasoning) // 4 + 5, "sampling_params": "{}", "created_at": now()})
    with Store(path) as store:
        store.insert("questions", pl.DataFrame(questions, schema_overrides={"tests": pl.List(pl.String),
                                                                           "subdomain": pl.String}))
        store.insert("samples", pl.DataFrame(samples, schema=SAMPLE))
        run_filters(store, cheap_rules(), "run-0")
        run_verify(store, "run-0")
    return path


def counts(db: Path) -> tuple[int, int, int]:
    """(kept samples, verdicts, preview verdicts): what a preview must leave alone, and what it writes."""
    with Store(db) as store:
        return (store.scalar("SELECT count(*) FILTER (WHERE kept) FROM sample_status"),
                store.scalar("SELECT count(*) FROM verdicts"), store.scalar("SELECT count(*) FROM preview_verdicts"))
