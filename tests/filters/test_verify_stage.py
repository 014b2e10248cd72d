"""The verify stage on a real DuckDB file: answer_match through the process pool, code_tests
through the sandbox; verdicts stored once, hostile code contained, re-runs check nothing."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipeline.stages.synthesize import SAMPLE_SCHEMA
from tests.rule_sets import run_verify
from pipeline.store import Store, now
from tests.conftest import DATA


def _question(qid, text, *, answer=None, answer_type=None, tests=None, domain="math") -> dict:
    return {"question_id": qid, "source": "t", "domain": domain, "text": text, "reference_answer": answer,
            "answer_type": answer_type, "tests": tests, "pool_path": "t", "pool_line": 1, "first_run_id": "r"}


def _sample(sid, qid, answer) -> dict:
    return {"sample_id": sid, "question_id": qid, "run_id": "r", "sample_index": 0, "gen_config_hash": "g",
            "model": "m", "requested_format": "prose", "prompt_hash": "p", "messages": "[]",
            "raw_text": f"<think>\nr\n</think>\n\n{answer}", "reasoning": "r", "answer": answer,
            "think_closed_by": "model", "reasoning_finish": "stop", "finish_reason": "stop", "prompt_tokens": 1,
            "completion_tokens": 1, "sampling_params": "{}", "created_at": now()}


@pytest.fixture()
def store(tmp_path: Path):
    mbpp = json.loads((DATA / "seeds" / "mbpp_sanitized.json").read_text())[0]
    questions = [
        _question("m1", "What is 6 * 7?", answer="42", answer_type="math"),
        _question("n1", "Pressure in atm?", answer="50.7", answer_type="numeric", domain="science"),
        _question("c1", mbpp["prompt"], answer_type="code", tests=mbpp["test_list"], domain="code"),
        _question("x1", "Open question", domain="logic"),
    ]
    samples = [
        _sample("m-right", "m1", "So the answer is \\boxed{42}."), _sample("m-wrong", "m1", "The answer is 41."),
        _sample("n-close", "n1", "The pressure is about 50.9 atm."),
        _sample("c-right", "c1", f"```python\n{mbpp['code']}\n```"),
        _sample("c-bomb", "c1", "```python\nimport os\nwhile True:\n    os.fork()\n```"),
        _sample("c-none", "c1", "I would loop over both lists."),
        _sample("x-any", "x1", "Anything."),
    ]
    with Store(tmp_path / "v.duckdb") as s:
        s.insert("questions", pl.DataFrame(questions, schema_overrides={"tests": pl.List(pl.String)}))
        s.insert("samples", pl.DataFrame(samples, schema=SAMPLE_SCHEMA))
        yield s


def test_verify_stores_one_verdict_per_verifiable_sample(store: Store):
    report = run_verify(store, "r")
    assert (report.checked, report.correct) == (3, 2)
    assert (report.code_checked, report.code_passed, report.code_errors) == (3, 1, 0)
    verdicts = dict(store.frame("SELECT sample_id, passed FROM verdicts").iter_rows())
    assert verdicts == {"m-right": True, "m-wrong": False, "n-close": True,
                        "c-right": True, "c-bomb": False, "c-none": False}  # x-any: nothing to check against
    reasons = dict(store.frame("SELECT sample_id, reason FROM verdicts WHERE NOT passed").iter_rows())
    assert reasons["c-none"].startswith("no_code")
    assert reasons["c-bomb"].split(":")[0] in ("failed", "timeout", "killed", "memory")
    again = run_verify(store, "r2")
    assert (again.checked, again.code_checked) == (0, 0)
