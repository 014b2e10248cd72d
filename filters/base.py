"""The filter contract: a named, versioned, pure rule over samples.

Like datatrove's `BaseFilter.filter(doc) -> bool | (False, reason)`, a rule answers per
sample with passed / score / reason. A rule implements ONE of:
  check_batch(frame) -> frame(passed, score, reason)   vectorized (polars/numpy), preferred
  check(sample) -> RuleResult                           per sample, for rules that cannot vectorize
and gets the other for free, so per-document use (e.g. through the datatrove adapter) and
batch use never drift apart. No I/O, no DuckDB.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict

from filters.exprs import evaluate, first_failure, found
from schemas.rows import RULE_INPUT

RESULT_SCHEMA = {"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String}

# Types of the sample columns rules may read (schemas/rows.py, as the sample view selects them).
SAMPLE_DTYPES: dict[str, pl.DataType] = RULE_INPUT


@dataclass(frozen=True)
class RuleResult:
    passed: bool
    score: float | None = None
    reason: str | None = None  # why it failed (or a note when it passed)


def config_fingerprint(name: str, version: int, params: Mapping) -> str:
    """A rule's config hash: its name, version and effective parameters (JSON, keys sorted).

    Verdicts are stored with it; a stage computes a rule only for samples with no verdict under
    the current hash, so a changed threshold recomputes that rule and an unchanged one nothing.
    Parameters must be plain JSON values: anything else is an error, never a silent str()."""
    try:
        payload = json.dumps([name, version, dict(params)], sort_keys=True, ensure_ascii=False)
    except TypeError as exc:
        raise TypeError(f"rule {name!r}: parameters must be JSON values for its config hash ({exc})") from None
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def one_row(sample: Mapping, columns: tuple[str, ...]) -> pl.DataFrame:
    return pl.DataFrame({c: [sample.get(c)] for c in columns},
                        schema={c: SAMPLE_DTYPES.get(c, pl.String) for c in columns})


def results_frame(passed, score, reason) -> pl.DataFrame:
    return pl.DataFrame({"passed": passed, "score": score, "reason": reason}, schema=RESULT_SCHEMA)


class RuleParams(BaseModel):
    """Base of rule parameter models: a misspelled parameter is an error, not a default."""

    model_config = ConfigDict(extra="forbid")


class NoParams(RuleParams):
    pass


class SampleFilter:
    """A rule. Its parameters are declared once, as the pydantic model `Params`: the config
    section `filters.<name>` is validated against it, the rule reads `self.params`, and the
    config hash is made from `params.model_dump()` (fields declared with `Field(exclude=True)`,
    such as worker counts, do not change verdicts and stay out of it)."""

    name: ClassVar[str]
    version: ClassVar[int]
    # Columns of the sample batch the rule reads (documented and checked by check_batch).
    needs: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = NoParams
    # Which verdict pass runs it (filter: cheap rules; decontam; verify: correctness) and on
    # which samples: an SQL condition over the sample view's columns (pipeline/verdict_loop.py).
    stage: ClassVar[str] = "filter"
    applies: ClassVar[str] = "TRUE"

    def __init__(self, params: BaseModel | Mapping | None = None, /, **fields: Any):
        if params is not None and fields:
            raise TypeError(f"{type(self).__name__}: pass a Params model or keyword fields, not both")
        if isinstance(params, self.Params):
            self.params = params
        elif params is None and not fields:
            self.params = self.Params()  # the declared defaults
        else:
            self.params = self.Params.model_validate(dict(params) if params is not None else fields)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.check is SampleFilter.check and cls.check_batch is SampleFilter.check_batch:
            if not getattr(cls, "__abstract__", False):
                raise TypeError(f"{cls.__name__} must implement check or check_batch")

    @classmethod
    def from_config(cls, config) -> "SampleFilter":
        """The rule as a run config (schemas.config.CurateConfig) sets it: `filters.<name>`."""
        return cls(config.filters.params_for(cls.name))

    def hash_params(self) -> dict:
        return self.params.model_dump(mode="json")

    @property
    def config_hash(self) -> str:
        return config_fingerprint(self.name, self.version, self.hash_params())

    def check(self, sample: Mapping) -> RuleResult:
        row = self.check_batch(one_row(sample, self.needs)).row(0, named=True)
        return RuleResult(row["passed"], row["score"], row["reason"])

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        results = [self.check(row) for row in batch.select(self.needs).iter_rows(named=True)]
        return results_frame([r.passed for r in results], [r.score for r in results], [r.reason for r in results])

    def require(self, batch: pl.DataFrame) -> None:
        missing = [c for c in self.needs if c not in batch.columns]
        if missing:
            raise KeyError(f"filter {self.name!r} needs columns {missing}")


class PatternFilter(SampleFilter):
    """A rule that fails a sample when one of its regexes occurs in the lowercased raw text; the
    reason names the first that does, quoting the match. Subclasses list `patterns`:
    (regex, reason with one {} for the match)."""

    __abstract__ = True
    needs: ClassVar[tuple[str, ...]] = ("raw_text",)
    patterns: ClassVar[list[tuple[str, str]]] = []

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        text = pl.col("raw_text").fill_null("").str.to_lowercase()
        return evaluate(batch, first_failure([found(text, p, reason) for p, reason in self.patterns]))
