"""One adapter between our rules and datatrove filters, both ways.

AsDatatrove(rule): any of our rules as a datatrove `BaseFilter`, so it runs in a datatrove
  pipeline: `filter(doc)` returns True or (False, reason); `filter_batch` uses the rule's
  vectorized check_batch. Sample columns come from `doc.metadata`; the text from `doc.text`
  (split into reasoning/answer at </think> when those are not in the metadata).
FromDatatrove(filter): a datatrove filter as one of our rules (e.g. GopherRepetitionFilter),
  with a name and version, so its verdicts land in DuckDB like any other rule's.
"""

from __future__ import annotations

import re

import polars as pl
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from filters.base import SAMPLE_DTYPES, SampleFilter, results_frame
from schemas.config import DatatroveFilter

_THINK = re.compile(r"^\s*<think>\n?(.*?)\n?</think>\s*(.*)$", re.S)


def sample_from_doc(doc: Document, columns: tuple[str, ...]) -> dict:
    sample = {"raw_text": doc.text, "sample_id": str(doc.id), **doc.metadata}
    if "reasoning" not in sample or "answer" not in sample:
        match = _THINK.match(doc.text)
        sample.setdefault("reasoning", match.group(1) if match else None)
        sample.setdefault("answer", match.group(2) if match else doc.text)
        sample.setdefault("think_closed_by", "model" if match else None)
    return {c: sample.get(c) for c in columns}


class AsDatatrove(BaseFilter):
    def __init__(self, rule: SampleFilter, batch_size: int = 1000, exclusion_writer=None):
        super().__init__(exclusion_writer, batch_size=batch_size)
        self.rule = rule
        self.name = f"curate {rule.name} v{rule.version}"

    def _results(self, docs: list[Document]) -> list[bool | tuple[bool, str]]:
        rows = [sample_from_doc(d, self.rule.needs) for d in docs]
        frame = pl.DataFrame(rows, schema={c: SAMPLE_DTYPES.get(c, pl.String) for c in self.rule.needs})
        out = self.rule.check_batch(frame)
        return [True if ok else (False, reason or self.rule.name) for ok, reason in zip(out["passed"], out["reason"])]

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self._results([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        return self._results(batch)


class FromDatatrove(SampleFilter):
    """Each configured datatrove filter is its own named rule; its config entry is its Params."""

    Params = DatatroveFilter

    def __init__(self, dt_filter: BaseFilter, name: str, version: int = 1, text: str = "raw_text",
                 params: DatatroveFilter | None = None):
        self.params = params or DatatroveFilter(cls=type(dt_filter).__name__, name=name, version=version, text=text)
        self.dt_filter = dt_filter
        self.name = name  # instance attributes: each wrapped filter is its own named rule
        self.version = version
        self.text = text
        self.needs = ("sample_id", text)

    @classmethod
    def from_config(cls, cfg: DatatroveFilter) -> "FromDatatrove":
        import datatrove.pipeline.filters as dt_filters

        klass = getattr(dt_filters, cfg.cls, None)
        if klass is None or not (isinstance(klass, type) and issubclass(klass, BaseFilter)):
            raise ValueError(f"filters.datatrove: {cfg.cls!r} is not a filter in datatrove.pipeline.filters")
        return cls(klass(**cfg.args), name=cfg.rule_name(), version=cfg.version,
                   text=cfg.text, params=cfg)

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        docs = [Document(text=t or "", id=i) for i, t in zip(batch["sample_id"], batch[self.text])]
        results = self.dt_filter.filter_batch(docs)
        passed, reasons = [], []
        for r in results:
            ok, why = (r if isinstance(r, tuple) else (r, None))
            passed.append(bool(ok))
            reasons.append(None if ok else f"datatrove {why or 'dropped'}")
        return results_frame(passed, [None] * len(passed), reasons)
