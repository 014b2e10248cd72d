"""A judge rule in the loop, on the real engine (SmolLM2-135M, in-process vLLM) and a real store
of GSM8K samples: its preview judges the samples named or the first N it applies to, writes only
preview_verdicts (nothing that counts), and judges nothing twice; a pre-label judges a case's
traced candidates and writes labels a user's label outranks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config_loading import load_run_config
from pipeline.misalignment.cases import add_cases
from pipeline.misalignment.judge_preview import prelabel
from pipeline.misalignment.labels import LABEL_PER_SAMPLE, add_labels
from pipeline.misalignment.loop_rules import resolve
from pipeline.misalignment.preview import preview
from pipeline.misalignment.trace import trace_case
from pipeline.store import Store
from schemas.bad_case import BadCase
from schemas.chat import ChatBackend
from tests.misalignment.loop_store import counts

pytestmark = pytest.mark.engine



class Counted(ChatBackend):
    """The real engine, counting the prompts sent to it."""

    def __init__(self, engine):
        self.engine, self.model_name, self.requests = engine, engine.model_name, 0

    def chat(self, requests, on_progress=None):
        self.requests += len(requests)
        return self.engine.chat(requests, on_progress=on_progress)



def test_judge_rule_preview_writes_apart_and_judges_nothing_twice(db: Path, vllm_engine):
    config = load_run_config(None)
    rule = resolve("logical_completeness", config)
    assert rule.kind == "judge" and rule.judge is not None
    before = counts(db)
    engine = Counted(vllm_engine)
    report = preview(db, rule, config, limit=3, engine=engine)
    assert engine.requests >= 3
    after = counts(db)
    assert after[:2] == before[:2] and after[2] == before[2] + 3  # nothing that counts changed
    assert report.kind == "judge" and report.evaluated == 3 and report.config_hash
    assert {e["sample_id"] for e in report.examples} <= {"s000", "s001", "s002"}
    with Store(db) as store:
        stored = store.frame("SELECT sample_id, passed, stage, config_hash, details FROM preview_verdicts ORDER BY 1")
    assert stored["sample_id"].to_list() == ["s000", "s001", "s002"]  # the first three it applies to
    assert set(stored["config_hash"]) == {report.config_hash} and set(stored["stage"]) == {"judge"}
    assert all('"prompt_tokens"' in d for d in stored["details"])  # the judge's raw output and tokens kept
    assert report.hits == (~stored["passed"]).sum()
    sent = engine.requests
    again = preview(db, rule, config, limit=3, engine=engine)
    assert engine.requests == sent and again.evaluated == 3  # reused
    named = preview(db, rule, config, sample_ids=["s010"], engine=engine)
    assert named.evaluated == 4 and counts(db)[2] == before[2] + 4


def test_prelabel_labels_a_cases_candidates_and_a_user_label_outranks_it(db: Path, vllm_engine):
    config = load_run_config(None)
    with Store(db) as store:
        case_id, = add_cases(store, [(BadCase(prompt="Natalia sold clips in April and May. How many?",
                                              bad_output="Natalia sold 48 clips.\n" * 12, tags=["loop"]), "test")])
        trace_case(store, case_id, methods=("signature", "lexical", "fused"), top=10, config=config)
        rule = resolve("logical_completeness", config).judge
        verdicts_before = store.count("verdicts")
        found = prelabel(store, rule, vllm_engine, case_id, top=4)
        labelled = found.drop_nulls("label")  # a judge error labels nothing
        assert found.height == 4 and labelled.height >= 1 and set(labelled["label"]) <= {"dirty", "clean"}
        stored = store.frame("SELECT sample_id, label, labeller, case_id FROM candidate_labels ORDER BY sample_id")
        assert stored.select("sample_id", "label").rows() == labelled.sort("sample_id").select("sample_id", "label").rows()
        assert set(stored["labeller"]) == {f"judge:{rule.name}@{rule.version}"} and set(stored["case_id"]) == {case_id}
        assert store.count("verdicts") == verdicts_before  # its verdicts went to preview_verdicts
        target = labelled["sample_id"][0]
        flipped = "clean" if labelled["label"][0] == "dirty" else "dirty"
        add_labels(store, [target], flipped, case_id=case_id)
        assert dict(store.frame(LABEL_PER_SAMPLE).rows())[target] == flipped  # the user's label counts
