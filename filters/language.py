"""Language consistency: one writing system inside a sample, and the question's.

Scripts are counted with Unicode script classes (Greek is left out: it is math notation).
Mixed: a second script holds more than `max_second_script_share` of the letters (and at
least `min_chars` of them). Mismatch: the response is written in another script than the
question (e.g. a Chinese answer to an English question).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from filters.base import RuleParams, SampleFilter, results_frame
from filters.exprs import evaluate, first_failure
from filters.registry import register

SCRIPTS = {
    "Latin": r"\p{Latin}", "Han": r"\p{Han}", "Kana": r"[\p{Hiragana}\p{Katakana}]", "Hangul": r"\p{Hangul}",
    "Cyrillic": r"\p{Cyrillic}", "Arabic": r"\p{Arabic}", "Hebrew": r"\p{Hebrew}",
    "Devanagari": r"\p{Devanagari}", "Thai": r"\p{Thai}",
}


def _script_counts(text: pl.Expr, prefix: str) -> list[pl.Expr]:
    return [text.str.count_matches(p).alias(f"{prefix}{name}") for name, p in SCRIPTS.items()]


def _ranked(stats: pl.DataFrame, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: dominant script index and count, second script index and count."""
    counts = stats.select([f"{prefix}{n}" for n in SCRIPTS]).to_numpy().astype(np.int64)  # u32 would wrap
    order = np.argsort(-counts, axis=1, kind="stable")
    rows = np.arange(len(counts))
    return order[:, 0], counts[rows, order[:, 0]], order[:, 1], counts[rows, order[:, 1]]


@register
class LanguageFilter(SampleFilter):
    name = "language"
    version = 1
    needs = ("reasoning", "answer", "question_text")

    class Params(RuleParams):
        max_second_script_share: float = 0.1
        min_chars: int = 20

    def __init__(self, params=None, /, **fields):
        super().__init__(params, **fields)
        self.max_share = self.params.max_second_script_share
        self.min_chars = self.params.min_chars

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        response = pl.concat_str([pl.col("reasoning").fill_null(""), pl.col("answer").fill_null("")], separator="\n")
        question = pl.col("question_text").fill_null("")
        # Fast path: rows whose response and question have no letters outside Latin pass
        # without the per-script breakdown (one regex pass each instead of nine).
        other = "[" + "".join(p.strip("[]") for n, p in SCRIPTS.items() if n != "Latin") + "]"
        needs_detail = batch.select((response.str.contains(other) | question.str.contains(other)).alias("x"))["x"]
        out = results_frame([True] * batch.height, [0.0] * batch.height, [None] * batch.height)
        if needs_detail.any():
            detail = self._detailed(batch.filter(needs_detail), response, question)
            index = pl.Series(range(batch.height)).filter(needs_detail)
            out = out.with_row_index("i").update(detail.with_columns(i=index.cast(pl.UInt32)), on="i",
                                                 include_nulls=True).drop("i")
        return out

    def _detailed(self, batch: pl.DataFrame, response: pl.Expr, question: pl.Expr) -> pl.DataFrame:
        stats = batch.select(*_script_counts(response, "r_"), *_script_counts(question, "q_"))
        names = np.array(list(SCRIPTS))
        r_top, r_top_n, r_second, r_second_n = _ranked(stats, "r_")
        q_top, q_top_n, _, _ = _ranked(stats, "q_")
        ranked = pl.DataFrame({
            "r_name": names[r_top], "r_n": r_top_n, "second_name": names[r_second], "second_n": r_second_n,
            "q_name": names[q_top], "q_n": q_top_n,
            "share": r_second_n / np.maximum(stats.select(pl.sum_horizontal(pl.all().exclude("^q_.*$"))).to_numpy()[:, 0], 1),
        })
        reason = first_failure([
            ((pl.col("second_n") >= self.min_chars) & (pl.col("share") > self.max_share),
             pl.format("mixed scripts: {} {} letters and {} {}", "r_n", "r_name", "second_n", "second_name")),
            ((pl.col("q_n") >= self.min_chars) & (pl.col("r_n") >= self.min_chars) & (pl.col("q_name") != pl.col("r_name")),
             pl.format("response written in {} but the question in {}", "r_name", "q_name")),
        ])
        return evaluate(ranked, reason, pl.col("share"))
