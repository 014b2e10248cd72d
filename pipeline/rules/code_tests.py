"""code_tests: the program in a code answer runs against its question's tests in the sandbox
(pipeline/sandbox/: program and tests in two processes, namespaces, limits). It lives in pipeline/, not
filters/, because it starts processes; otherwise it is a rule like any other.

A sandbox setup error is not a verdict on the sample: its row comes back with `passed` null,
nothing is stored, and the next run retries it (pipeline/verdict_loop.py)."""

from __future__ import annotations

import polars as pl
from pydantic import Field, model_serializer

from filters.base import RuleParams, SampleFilter, results_frame
from filters.text.code_extract import build_test_program, extract_program, required_names
from filters.registry import register


class CodeTestsParams(RuleParams):
    timeout_s: float = Field(10, gt=0)  # wall clock for the program and its tests
    memory_mb: int | None = Field(None, ge=16)  # address space per process (None: the sandbox's 512)
    workers: int = Field(2, ge=1)  # sandboxes at once; not in the config hash

    @model_serializer(mode="wrap")
    def _hashed(self, handler):
        # What changes verdicts: the limits. memory_mb only when set, so the hash of the
        # defaults is the one code_tests v1 verdicts were stored with.
        data = handler(self)
        data.pop("workers", None)
        if float(data["timeout_s"]).is_integer():  # 10, as v1 hashed it, not 10.0
            data["timeout_s"] = int(data["timeout_s"])
        if data.get("memory_mb") is None:
            data.pop("memory_mb", None)
        return data


@register
class CodeTests(SampleFilter):
    name = "code_tests"
    version = 2  # 2: program and tests in separate processes; only builtin data crosses
    needs = ("answer", "tests")
    stage = "verify"
    applies = "answer_type = 'code' AND tests IS NOT NULL AND len(tests) > 0"
    Params = CodeTestsParams

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        from pipeline.sandbox import run_many

        self.require(batch)
        p = self.params
        jobs = [(extract_program(r["answer"], required_names(r["tests"])), build_test_program(r["tests"]))
                for r in batch.select(self.needs).iter_rows(named=True)]
        limits = {"timeout_s": p.timeout_s} | ({"memory_mb": p.memory_mb} if p.memory_mb else {})
        results = run_many(jobs, workers=p.workers, **limits)
        return results_frame([None if r.status == "error" else r.passed for r in results],
                             [None if r.status == "error" else float(r.passed) for r in results],
                             [None if r.passed else f"{r.status}: {r.detail}" for r in results])
