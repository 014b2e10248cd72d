"""CoT redundancy: loops of self-doubt, paragraphs that keep re-opening the same way, and
reasoning that goes on long after it first reached its final answer.

Markers are counted in several languages; densities are per 1,000 characters so the rule
works for scripts without spaces. Defaults let ordinary reflective CoT through (a "wait" now
and then) and stop loops; the good-CoT calibration is in tests/filters/test_cot_filters.py.
"""

from __future__ import annotations

import polars as pl

from filters.base import RuleParams, SampleFilter
from filters.exprs import evaluate, first_failure
from filters.text.stats import paragraph_openings_repeat
from filters.registry import register

LOOP_MARKERS = "|".join([
    # English
    r"\bwait\b", r"\bhold on\b", r"\bhmm+\b", r"\blet me (?:double[- ]?check|re-?check|verify|re-?examine|reconsider|"
    r"think again|re-?think|re-?calculate|re-?evaluate)\b", r"\balternatively\b", r"\bon second thought\b",
    r"\bbut actually\b", r"\bno,? that'?s (?:not right|wrong)\b",
    # Chinese, Japanese
    "等等", "等一下", "让我再", "再检查", "重新检查", "不对", "或者说", "待って", "もう一度",
    # Spanish, French, German, Russian, Portuguese
    r"\bespera\b", r"\bdéjame (?:verificar|revisar)\b", r"\balternativamente\b", r"\battends?\b", r"\battendez\b",
    r"\bvérifions\b", r"\bwarte\b", r"\bmoment mal\b", r"\bподожди\b", r"\bпроверим\b", r"\bespere\b",
])


def final_answer_expr() -> pl.Expr:
    """The answer's final value: the last \\boxed{...}, else the last number in the answer."""
    answer = pl.col("answer").fill_null("")
    boxed = answer.str.extract_all(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}").list.last() \
        .str.strip_prefix("\\boxed{").str.strip_suffix("}")
    number = answer.str.extract_all(r"-?\d+(?:[.,]\d+)*").list.last()
    return pl.coalesce(boxed, number)


@register
class RedundancyFilter(SampleFilter):
    name = "redundancy"
    version = 1
    needs = ("reasoning", "answer")

    class Params(RuleParams):
        max_markers_per_1k_chars: float = 4.0
        min_markers: int = 8
        max_repeated_openings: float = 0.5
        max_after_answer_share: float = 0.6
        min_reasoning_chars_for_after_answer: int = 1500

    def __init__(self, params=None, /, **fields):
        super().__init__(params, **fields)
        p = self.params
        self.max_density = p.max_markers_per_1k_chars
        self.min_markers = p.min_markers
        self.max_openings = p.max_repeated_openings
        self.max_after = p.max_after_answer_share
        self.min_chars_after = p.min_reasoning_chars_for_after_answer

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        reasoning = pl.col("reasoning").fill_null("")
        length = reasoning.str.len_chars()
        final = final_answer_expr()
        # Where the reasoning first states the final answer as a conclusion. Literal probes:
        # a per-row regex would be compiled per row (ms each), and a bare "= 5" is often an
        # intermediate step, not the answer being reached.
        probes = [pl.format(template, final) for template in
                  ("\\boxed{{{}}}", "answer is {}", "answer is ${}$", "answer: {}", "answer is: {}")]
        first = pl.min_horizontal([reasoning.str.find(p, literal=True) for p in probes])
        stats = batch.select(
            markers=reasoning.str.to_lowercase().str.count_matches(LOOP_MARKERS),
            length=length,
            after=pl.when(first.is_not_null() & (final.str.len_chars() > 0))
            .then((length - first).cast(pl.Float64) / length.cast(pl.Float64)).otherwise(0.0),
        ).with_columns(
            density=pl.col("markers") * 1000.0 / pl.max_horizontal(pl.col("length"), 1),
            openings=pl.Series(paragraph_openings_repeat(batch["reasoning"])),
        )
        reason = first_failure([
            ((pl.col("markers") >= self.min_markers) & (pl.col("density") > self.max_density),
             pl.format("{} loop markers ({} per 1k chars > {})", "markers", pl.col("density").round(1),
                       pl.lit(self.max_density))),
            (pl.col("openings") > self.max_openings,
             pl.format("{} of paragraphs re-open the same way (> {})", pl.col("openings").round(2),
                       pl.lit(self.max_openings))),
            ((pl.col("length") >= self.min_chars_after) & (pl.col("after") > self.max_after),
             pl.format("{} of the reasoning comes after it first stated the final answer (> {})",
                       pl.col("after").round(2), pl.lit(self.max_after))),
        ])
        return evaluate(stats, reason, pl.col("density"))
