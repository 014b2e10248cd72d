"""The filter contract: a named, versioned, pure rule over samples.

Like datatrove's `BaseFilter.filter(doc) -> bool | (False, reason)`, a concrete filter is a
few lines of logic in `check`; `check_batch` is the vectorized entry point stages call (the
default maps `check` over rows; fast filters override it). No I/O, no DuckDB.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import polars as pl

RESULT_SCHEMA = {"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String}


@dataclass(frozen=True)
class RuleResult:
    passed: bool
    score: float | None = None
    reason: str | None = None  # why it failed (or a note when it passed)


class SampleFilter(ABC):
    name: ClassVar[str]
    version: ClassVar[int]
    # Columns of the sample batch the rule reads (documented and checked by check_batch).
    needs: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def check(self, sample: Mapping) -> RuleResult:
        ...

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        missing = [c for c in self.needs if c not in batch.columns]
        if missing:
            raise KeyError(f"filter {self.name!r} needs columns {missing}")
        results = [self.check(row) for row in batch.select(self.needs).iter_rows(named=True)]
        return pl.DataFrame(
            {"passed": [r.passed for r in results], "score": [r.score for r in results],
             "reason": [r.reason for r in results]},
            schema=RESULT_SCHEMA,
        )
