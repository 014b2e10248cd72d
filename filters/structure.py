"""Think/answer structure: reasoning present and closed, then a non-empty answer after it,
one think block only, nothing leaked from chat templates or tokenizers."""

from __future__ import annotations

import polars as pl

from filters.base import SampleFilter
from filters.exprs import evaluate, first_failure, found
from filters.registry import register

# Chat-template and tokenizer markers that must never reach training text.
LEAKED = r"<\|[A-Za-z_]+\|>|<\|im_(?:start|end)\|>|</?s>|\[/?INST\]|<<SYS>>|<\|endoftext\|>|<｜[^｜]*｜>"


@register
class StructureFilter(SampleFilter):
    name = "structure"
    version = 2
    needs = ("reasoning", "answer", "think_closed_by", "raw_text")

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        raw = pl.col("raw_text").fill_null("")
        answer = pl.col("answer").fill_null("").str.strip_chars()
        reason = first_failure([
            (pl.col("reasoning").fill_null("").str.strip_chars() == "", "no reasoning before the answer"),
            (pl.col("think_closed_by").is_null(), "reasoning never closed with </think>"),
            (~raw.str.strip_chars_start().str.starts_with("<think>"), "text before the reasoning block"),
            (answer == "", "empty answer after the reasoning"),
            (answer.str.contains("<think>", literal=True) | answer.str.contains("</think>", literal=True),
             "a think tag inside the answer"),
            (raw.str.count_matches("<think>", literal=True) > 1, "a second <think> block"),
            found(raw, LEAKED, "leaked special token '{}'"),
        ])
        return evaluate(batch, reason)
