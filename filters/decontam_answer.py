"""decontam_answer: the generated reasoning + answer must not reproduce a benchmark item (the
run's n-gram index, filters/screening/decontam.py `NgramIndex.match_answer`). Built from the run's
index, not from config: the verdict pass "decontam" (pipeline/rules)."""

from __future__ import annotations

from pydantic import BaseModel

from filters.base import RuleResult, SampleFilter
from filters.screening.decontam import NgramIndex

class AnswerContamination(SampleFilter):
    """Sample rule: the generated reasoning + answer must not reproduce a benchmark item
    (see `NgramIndex.match_answer`). Build the index once (pipeline.benchmarks.build_index)."""

    name = "decontam_answer"
    version = 1
    needs = ("reasoning", "answer", "question_text")

    class Params(BaseModel):
        benchmarks: str  # the index's fingerprint: new benchmarks, new check (a new config hash)

    def __init__(self, index: NgramIndex):
        super().__init__(benchmarks=index.fingerprint)
        self.index = index

    @classmethod
    def from_config(cls, config):
        raise TypeError("decontam_answer is built from the run's benchmark index (AnswerContamination(index))")

    def check(self, sample) -> RuleResult:
        text = "\n".join(t for t in (sample.get("reasoning"), sample.get("answer")) if t)
        m = self.index.match_answer(text, sample.get("question_text"))
        if m is None:
            return RuleResult(True, 0.0, None)
        return RuleResult(False, m.score, m.reason)
