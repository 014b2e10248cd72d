"""Repetition, after Gopher (Rae et al. 2021): duplicate lines and paragraphs, top 2/3/4-gram
shares, duplicate 10-gram share, and the longest repeated span.

Loops are the typical failure of small or over-long reasoning. Gopher's web-text settings
misfire on math CoT (LaTeX delimiter lines repeat, punctuation tokens inflate n-grams), so
words are alphanumeric runs, lines and paragraphs under 20 characters are ignored, and the
defaults sit at about the 99th percentile of good CoT (800 labelled Qwen2.5-Math responses;
see tests/filters/test_filters.py and tests/filters/test_cot_filters.py).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from filters.base import RuleParams, SampleFilter
from filters.exprs import evaluate, first_failure
from filters.text.stats import dup_ngram_coverage, dup_unit_share, scan, top_ngram_share
from filters.registry import register

_MIN_UNIT_CHARS = 20
_MIN_WORDS_FOR_NGRAMS = 50  # n-gram shares of very short texts are noise


def repetition_stats(texts: pl.Series) -> pl.DataFrame:
    """The repetition measures of each text, vectorized over the batch."""
    sc = scan(texts, min_unit_bytes=_MIN_UNIT_CHARS)
    w = sc.words
    enough = w.counts >= _MIN_WORDS_FOR_NGRAMS
    dup10, longest = dup_ngram_coverage(w.hashes, w.chars, w.offsets, 10)
    return pl.DataFrame({
        "dup_line": dup_unit_share(sc.lines.hashes, sc.lines.offsets),
        "dup_para": dup_unit_share(sc.paragraphs.hashes, sc.paragraphs.offsets),
        "top2": np.where(enough, top_ngram_share(w.hashes, w.chars, w.offsets, 2), 0.0),
        "top3": np.where(enough, top_ngram_share(w.hashes, w.chars, w.offsets, 3), 0.0),
        "top4": np.where(enough, top_ngram_share(w.hashes, w.chars, w.offsets, 4), 0.0),
        "dup10": np.where(enough, dup10, 0.0),
        "longest_span": longest,
    })


@register
class RepetitionFilter(SampleFilter):
    name = "repetition"
    version = 2
    needs = ("reasoning", "answer")

    class Params(RuleParams):
        # About the 99th percentile of good math CoT.
        max_dup_line_frac: float = 0.3
        max_dup_para_frac: float = 0.3
        max_top_2gram_frac: float = 0.25
        max_top_3gram_frac: float = 0.25
        max_top_4gram_frac: float = 0.3
        max_dup_10gram_frac: float = 0.5
        max_repeated_span_words: int = 120

    def __init__(self, params=None, /, **fields):
        super().__init__(params, **fields)
        p = self.params
        self.limits = dict(dup_line=p.max_dup_line_frac, dup_para=p.max_dup_para_frac, top2=p.max_top_2gram_frac,
                           top3=p.max_top_3gram_frac, top4=p.max_top_4gram_frac, dup10=p.max_dup_10gram_frac)
        self.max_span = p.max_repeated_span_words

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        # Reasoning and answer separately: an answer that restates the reasoning's conclusion
        # repeats it by design; a loop lives inside one of them.
        r, a = repetition_stats(batch["reasoning"]), repetition_stats(batch["answer"])
        stats = r.select([pl.max_horizontal(r[c], a[c]).alias(c) for c in r.columns])
        labels = dict(dup_line="duplicate lines", dup_para="duplicate paragraphs", top2="top 2-gram share",
                      top3="top 3-gram share", top4="top 4-gram share", dup10="duplicate 10-gram share")
        conditions = [(pl.col(k) > v, pl.format(f"{labels[k]} {{}} > {v}", pl.col(k).round(2)))
                      for k, v in self.limits.items()]
        conditions.append((pl.col("longest_span") > self.max_span,
                           pl.format(f"a span of {{}} words repeats (> {self.max_span})", "longest_span")))
        score = pl.max_horizontal(*[pl.col(k) for k in self.limits])
        return evaluate(stats, first_failure(conditions), score)
