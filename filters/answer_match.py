"""Correctness against the question's reference answer.

The answer type (per pool, see configs/default.yaml) picks the matcher; for math and numeric
the shape of the reference refines it (TheoremQA mixes numbers, lists, booleans and options
in one pool):

math    -> Math-Verify: the reference is parsed as LaTeX (wrapped in $...$), the prediction's
           final answer is extracted with \\boxed{} first (then "final answer is", "answer:",
           the last LaTeX or plain expression), and the two are compared symbolically.
numeric -> the final answer's value within a relative tolerance of the reference
           (`rel_tol`, default 4%; see DEFAULT_REL_TOL). A whole-number reference ("5") with a
           whole-number prediction must be equal: tolerance is for decimals, not for counts.
           A JSON list reference ("[1, 2]") is compared element-wise after sorting, as
           TheoremQA's evaluation does. References that are not numbers fall back to math.
math or numeric with reference "True"/"False" -> the verdict the final answer states
math or numeric with reference "(a)".."(f)"   -> the option letter the final answer names
choice  -> the option the final answer names (options come from the question's "Options:" line)
text    -> the final answer, normalized, equals the normalized reference
code    -> not checked here (needs the sandbox); no verdict is written

"The final answer" is the content of the last \\boxed{}, or what follows the last "answer is" /
"answer:", whichever comes later; failing both, the answer's last non-empty line. A reference
that merely appears somewhere near the end no longer passes ("Paris is not it; the answer is
London." is wrong for "Paris").

Math-Verify's timeouts use signal.alarm, so run `check` in a process's main thread (the
verify stage uses a process pool).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal

import polars as pl
from pydantic import Field

from filters import answer_hedges as hedges
from filters.base import RESULT_SCHEMA, RuleParams, RuleResult, SampleFilter
from filters.registry import register

# Relative tolerance of the numeric type. Sources: SciBench's evaluation accepts
# math.isclose(pred, ref, rel_tol=0.05); TheoremQA's accepts |pred - ref| <= 0.04 * |ref| for
# float answers (integer answers: round(pred) == ref). One default serves both pools until a
# question carries its own tolerance, so the stricter 4% is used: a SciBench answer 4-5% off
# fails here although SciBench would count it, never the other way round.
DEFAULT_REL_TOL = 0.04

VERIFIABLE_TYPES = ("math", "numeric", "choice", "text")
_TASK_ROWS = 64  # rows per process-pool task

_OPTIONS = re.compile(r"\n\nOptions: (.+)\s*$", re.S)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s/.-]", " ", text.lower())).strip()


def options_of(question: str) -> list[str]:
    match = _OPTIONS.search(question)
    return [o.strip() for o in match.group(1).split(";")] if match else []


# --- the final answer ------------------------------------------------------------------------

# "the answer is", "Final Answer: ", "**Answer:**", "answers are", "the correct option is"
_MARKER = re.compile(
    r"\b(?:answers?|correct\s+(?:option|choice))\s*(?:\*\*|__)?\s*(?:is|are|:|=)(?!\w)\s*(?:\*\*|__)?\s*:?"
    r"|^[\s#*_]*final\s+answer[\s*_:]*$",  # a "Final Answer" heading on its own line
    re.I | re.M,
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _last_boxed(text: str) -> tuple[int, str] | None:
    """(start, content) of the last \\boxed{...} (balanced braces), if any."""
    starts = [m for m in _BOXED.finditer(text)]
    for m in reversed(starts):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return m.start(), text[m.end():i - 1]
    return None


def final_answer_span(answer: str) -> tuple[str, str]:
    """(span, how): the content of the last \\boxed{} or the text after the last answer marker,
    whichever comes later ("boxed" / "marker"), else the last non-empty line ("last_line")."""
    boxed = _last_boxed(answer)
    marker = None
    for marker in _MARKER.finditer(answer):
        pass
    if boxed and (marker is None or boxed[0] >= marker.start()):
        return boxed[1].strip(), "boxed"
    if marker is not None and answer[marker.end():].strip():
        return answer[marker.end():].strip(), "marker"
    lines = [line for line in answer.splitlines() if line.strip()]
    return (lines[-1].strip() if lines else ""), "last_line"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# --- choice ----------------------------------------------------------------------------------


def _mentions(text: str, options: list[str]):
    for opt in options:
        norm = _norm(opt)
        if not norm:
            continue
        for m in re.finditer(r"(?<!\w)" + re.escape(norm) + r"(?!\w)", text):
            yield m, opt


def _named_options(text: str, options: list[str]) -> set[str]:
    """The options named in `text`, a mention inside a longer one not counted ("York" in "New York")."""
    found = sorted(((m.start(), m.end(), opt) for m, opt in _mentions(text, options)), key=lambda t: t[0] - t[1])
    kept: list[tuple[int, int, str]] = []
    for start, end, opt in found:
        if not any(s <= start and end <= e for s, e, _ in kept):
            kept.append((start, end, opt))
    return {_norm(opt) for _, _, opt in kept}


def match_choice(answer: str, reference: str, options: list[str]) -> RuleResult:
    """The option the final answer names. After "the answer is" or inside \\boxed{} that is
    the first option named (longest when several start there: "New York" over "York"); on a
    last line without either, the option mentioned last (the one ending last, then the
    longest: "-3" over "3")."""
    span, how = final_answer_span(answer or "")
    text = _norm(span)
    if why := hedges.several_options(_named_options(_norm(hedges.first_clause(span)), options or [reference])):
        return RuleResult(False, 0.0, why)
    picked, best = None, None
    for m, opt in _mentions(text, options or [reference]):
        key = (-m.start(), m.end() - m.start()) if how != "last_line" else (m.end(), m.end() - m.start())
        if best is None or key > best:
            best, picked = key, opt
    if picked is None:
        return RuleResult(False, 0.0, "no option named in the answer")
    ok = _norm(picked) == _norm(reference)
    return RuleResult(ok, float(ok), None if ok else f"picked {picked!r}, reference {reference!r}")


# --- text ------------------------------------------------------------------------------------

_ARTICLE = re.compile(r"^(?:the|a|an) ")
_COPULA = re.compile(r"(?i)(?:\bis|\bare|\bwas|\bwere|'s|:|=)\s+")
_CLAUSE_END = re.compile(r"(?:[.;!?](?:\s|$)|,\s|\s(?:because|since|as|which)\s)")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")


def _text_norm(text: str) -> str:
    text = _LATEX_TEXT.sub(r"\1", text)
    return _ARTICLE.sub("", _norm(text).rstrip(".").strip())


def _text_candidates(span: str, how: str) -> list[str]:
    line = span if how == "boxed" else (_first_line(span) if how == "marker" else span)
    candidates = [line, _CLAUSE_END.split(line, maxsplit=1)[0]]
    if how == "last_line":  # "I think it is Paris." -> "Paris."; "It is not Paris." -> "not Paris."
        tails = [line[m.end():] for m in _COPULA.finditer(line)]
        candidates += tails[-1:] + [_CLAUSE_END.split(t, maxsplit=1)[0] for t in tails[-1:]]
    return [c for c in (_text_norm(c) for c in candidates) if c]


def match_text(answer: str, reference: str) -> RuleResult:
    """Normalized exact match of the final answer (case, punctuation, markdown, a leading
    article and a trailing clause such as ", the capital of France" do not count)."""
    span, how = final_answer_span(answer or "")
    line = _LATEX_TEXT.sub(r"\1", span if how == "boxed" else (_first_line(span) if how == "marker" else span))
    if why := hedges.text_alternatives(line, reference):
        return RuleResult(False, 0.0, why)
    candidates = _text_candidates(span, how)
    ok = _text_norm(reference) in candidates
    if ok:
        return RuleResult(True, 1.0, None)
    if not candidates:
        return RuleResult(False, 0.0, "no final answer found")
    shown = candidates[1] if len(candidates) > 1 else candidates[0]  # the first clause of the final answer
    return RuleResult(False, 0.0, f"final answer {shown[:60]!r} is not the reference {reference!r}")


# --- math (Math-Verify) ----------------------------------------------------------------------

_PRED_CONFIG = None


def _pred_config():
    """Prediction extraction: \\boxed{} first (priority 0, as lighteval's MATH setup), then
    "final answer is", "answer:", the last LaTeX, the last plain expression."""
    global _PRED_CONFIG
    if _PRED_CONFIG is None:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        _PRED_CONFIG = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
    return _PRED_CONFIG


# Math-Verify 0.9's unit stripping eats "\mathrm{e}" (Euler's number): "1 - \frac{1}{\mathrm{e}}"
# parses as 1, so 1 - 1/e would "equal" 1 + 1/e.
_EULER = re.compile(r"\\(?:mathrm|text|rm|operatorname)\s*\{\s*e\s*\}")


def _clean_prediction(answer: str) -> str:
    return _EULER.sub("{e}", answer.replace("\u2212", "-"))  # and the unicode minus


def parse_reference(reference: str) -> list:
    """A reference is a final answer, not a solution: parse it as LaTeX math ($...$ added when
    it has no delimiters, so "7\\pi" is 7*pi rather than 7 and "12\\frac{3}{5}" the mixed
    number 63/5), falling back to the bare text."""
    from math_verify import parse

    ref = _clean_prediction(reference.strip())
    delimited = re.search(r"(?<!\\)\$|\\\(|\\\[|\\boxed", ref) is not None
    gold = parse(ref if delimited else f"${ref}$")
    return gold or parse(ref)


def match_math(answer: str, reference: str) -> RuleResult:
    from math_verify import parse, verify

    if why := hedges.number_alternatives(final_answer_span(answer or "")[0], reference):
        return RuleResult(False, 0.0, why)
    gold = parse_reference(reference)
    pred = parse(_clean_prediction(answer or ""), _pred_config())
    if not pred:
        return RuleResult(False, 0.0, "no final answer could be extracted")
    ok = bool(verify(gold, pred))
    return RuleResult(ok, float(ok), None if ok else f"extracted {str(pred[-1])[:60]!r}, reference {reference!r}")


# --- numeric ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# 3.52e-19, 3.52E+5, 3.52 x 10^-19, 3.52 × 10^{-19}, 3.52 \times 10^{-19}, 3.52*10^(-19)
_SCI = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:[eE]([+-]?\d{1,3})(?!\w|\.\d)"
    r"|(?:[x×*·]|\\times|\\cdot)\s*10\s*\^\s*[{(]?\s*([+-]?\d{1,3})\s*[})]?)"
)


# "+65.49" (SciBench writes signed changes): Math-Verify extracts nothing after "is +"
_PLUS = re.compile(r"((?:^|\bis|\bbe|[:=${(\[])\s*)\+(?=\.?\d)", re.M)


def _numeric_prediction(answer: str) -> str:
    return _PLUS.sub(r"\1", _expand_scientific(_clean_prediction(answer)))


def _expand_scientific(text: str) -> str:
    """Write scientific notation as plain decimals (3.52e-19 -> 0.000000000000000000352), a
    form both of Math-Verify's extractors read whole (plain text "3.52e-19" would give 3.52)."""

    def plain(m: re.Match) -> str:
        exponent = int(m.group(2) if m.group(2) is not None else m.group(3))
        if abs(exponent) > 60:
            return m.group(0)
        return format(Decimal(m.group(1)).scaleb(exponent).normalize(), "f")

    return _SCI.sub(plain, text)


def reference_number(reference: str) -> float | None:
    """A plain number ("1.42", "-2.5", "+65.49", "89,034.79", "4e-05", "−2"), else None."""
    text = reference.strip().replace("\u2212", "-").replace(",", "").replace("{}", "")
    if not _NUMBER.fullmatch(text):
        return None
    return float(text)


def _is_whole_text(reference: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", reference.strip().replace("\u2212", "-").replace(",", "")) is not None


def _as_number(expr) -> tuple[float | None, bool]:
    """(value, is_percent) of a parsed prediction, or (None, False) when it is not a number
    (or its evaluation takes over 5 s: signal-based, like Math-Verify's own timeouts)."""
    from math_verify.errors import TimeoutException
    from math_verify.utils import timeout

    try:
        return timeout(timeout_seconds=5)(_evaluate)(expr)
    except TimeoutException:
        return None, False


def _evaluate(expr) -> tuple[float | None, bool]:
    import sympy

    if isinstance(expr, str):
        return (reference_number(expr), False)
    if isinstance(expr, sympy.Eq):  # "v = 3.2"
        expr = expr.rhs
    if isinstance(expr, (sympy.FiniteSet, sympy.Tuple)) and len(expr.args) == 1:
        expr = expr.args[0]
    if not isinstance(expr, sympy.Basic):
        return None, False
    # Math-Verify reads "7.25%" as Mul(7.25, UnevaluatedExpr(1/100))
    percent = expr.is_Mul and any(isinstance(a, sympy.UnevaluatedExpr) and a.args[0] == sympy.Rational(1, 100)
                                  for a in expr.args)
    expr = expr.doit()
    if not expr.is_number:
        return None, False
    try:
        value = complex(sympy.N(expr))
    except (TypeError, ValueError, OverflowError):
        return None, False
    if abs(value.imag) > 1e-12 * max(1.0, abs(value.real)) or not math.isfinite(value.real):
        return None, False
    return value.real, bool(percent)


def numbers_close(pred: float, ref: float, rel_tol: float, whole_reference: bool) -> bool:
    """Within rel_tol of the reference; a whole-number prediction of a whole-number reference
    must be equal (a count is right or wrong; a measurement rounded in the reference is not)."""
    if whole_reference and abs(pred - round(pred)) < 1e-9:
        return round(pred) == round(ref)
    return pred == ref or abs(pred - ref) <= rel_tol * abs(ref) * (1 + 1e-12)


def match_numeric(answer: str, reference: str, rel_tol: float = DEFAULT_REL_TOL) -> RuleResult:
    from math_verify import parse

    ref = reference_number(reference)
    if ref is None:
        return match_math(answer, reference)
    if why := hedges.number_alternatives(final_answer_span(answer or "")[0], reference):
        return RuleResult(False, 0.0, why)
    pred = parse(_numeric_prediction(answer or ""), _pred_config())
    if not pred:
        return RuleResult(False, 0.0, "no final answer could be extracted")
    value, percent = _as_number(pred[0])
    if value is None:
        return RuleResult(False, 0.0, f"extracted {str(pred[-1])[:60]!r} is not a number, reference {reference!r}")
    # "7.25%" is 0.0725 to Math-Verify; a reference in percent (SciBench unit "%") is 7.25
    values = [value, value * 100] if percent else [value]
    whole = _is_whole_text(reference)
    ok = any(numbers_close(v, ref, rel_tol, whole) for v in values)
    return RuleResult(ok, float(ok), None if ok else
                      f"extracted {value:.6g}, reference {reference!r} (relative tolerance {rel_tol:g})")


# --- TheoremQA shapes: lists of numbers, booleans, option letters ----------------------------

_SEPARATORS = re.compile(r"\s*(?:,|;|\band\b|\\quad|\\,)\s*")
_WRAPPERS = re.compile(r"\\left|\\right|\\[()\[\]]|\$|\\displaystyle")


def reference_list(reference: str) -> list[float] | None:
    """A JSON list of numbers such as TheoremQA's "[0, 5]" or "[0.333, 0.25]", else None."""
    text = reference.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        values = json.loads(text)
    except ValueError:
        return None
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    return values


def _element_value(text: str) -> float | None:
    from math_verify import parse

    text = text.strip().rstrip(".").split("=")[-1].strip()
    if not text:
        return None
    plain = reference_number(text)
    if plain is not None:
        return plain
    parsed = parse(f"${text}$")
    return _as_number(parsed[0])[0] if parsed else None


def _predicted_list(span: str) -> list[float] | None:
    text = _WRAPPERS.sub(" ", _numeric_prediction(span)).strip().rstrip(".").strip()
    while len(text) > 1 and text[0] in "[({" and text[-1] in "])}":
        text = text[1:-1].strip()
    parts = [p for p in _SEPARATORS.split(text) if p.strip()]
    values = [_element_value(p) for p in parts]
    if parts and all(v is not None for v in values):
        return values
    found = _NUMBER.findall(text.replace(",", " "))  # "the roots are -1 and 6."
    return [float(x) for x in found] or None


def match_number_list(answer: str, reference: list[float], rel_tol: float = DEFAULT_REL_TOL) -> RuleResult:
    span, _ = final_answer_span(answer or "")
    pred = _predicted_list(span)
    if not pred:
        return RuleResult(False, 0.0, "no list of numbers in the final answer")
    if len(pred) != len(reference):
        return RuleResult(False, 0.0, f"final answer has {len(pred)} numbers, reference {len(reference)}")
    ok = all(numbers_close(p, float(r), rel_tol, isinstance(r, int))
             for p, r in zip(sorted(pred), sorted(reference)))
    return RuleResult(ok, float(ok), None if ok else
                      f"extracted {[round(p, 6) for p in pred]}, reference {reference} "
                      f"(relative tolerance {rel_tol:g})")


_BOOL_VALUE = {"true": True, "yes": True, "false": False, "no": False}


def reference_bool(reference: str) -> bool | None:
    return {"true": True, "false": False}.get(reference.strip().lower())


def _verdicts(text: str) -> list[bool]:
    found = []
    for m in re.finditer(r"(?i)(?:\b(not|never)\s+|n't\s+)?\b(true|false|yes|no)\b", text):
        value = _BOOL_VALUE[m.group(2).lower()]
        negated = m.group(1) is not None or m.group(0).lower().startswith("n't")
        found.append(value != negated)
    return found


def match_bool(answer: str, reference: bool) -> RuleResult:
    """The verdict the final answer states: true/yes or false/no ("not true" is false); the
    first one after "the answer is" or in \\boxed{}, the last one on a bare last line."""
    span, how = final_answer_span(answer or "")
    found = _verdicts(_LATEX_TEXT.sub(r"\1", span))
    if why := hedges.bool_alternatives(_verdicts(hedges.first_clause(_LATEX_TEXT.sub(r"\1", span)))):
        return RuleResult(False, 0.0, why)
    if not found:
        return RuleResult(False, 0.0, "no true/false in the final answer")
    said = found[-1] if how == "last_line" else found[0]
    ok = said == reference
    return RuleResult(ok, float(ok), None if ok else f"final answer says {said}, reference {reference}")


def reference_option(reference: str) -> str | None:
    """TheoremQA's option answers "(a)".."(f)" (with the parentheses)."""
    m = re.fullmatch(r"\(([a-fA-F])\)", reference.strip())
    return m.group(1).lower() if m else None


def match_option(answer: str, reference: str) -> RuleResult:
    """The option letter the final answer names: "(b)", "\\boxed{B}", "\\text{(B)}", "option b"."""
    span, how = final_answer_span(answer or "")
    text = _LATEX_TEXT.sub(r"\1", span)
    letters = [m.group(1) or m.group(2) or m.group(3) for m in re.finditer(
        r"(?i)\(([a-f])\)|\b(?:option|choice)\s+([a-f])\b|^\W*([a-f])\W*$", text)]
    if not letters:
        return RuleResult(False, 0.0, "no option letter in the final answer")
    first = [m.group(1) or m.group(2) or m.group(3) for m in re.finditer(
        r"(?i)\(([a-f])\)|\b(?:option|choice)\s+([a-f])\b|^\W*([a-f])\W*$", hedges.first_clause(text))]
    if why := hedges.several_options({x.lower() for x in first}):
        return RuleResult(False, 0.0, why)
    said = (letters[-1] if how == "last_line" else letters[0]).lower()
    ok = said == reference
    return RuleResult(ok, float(ok), None if ok else f"picked ({said}), reference ({reference})")


# --- the rule --------------------------------------------------------------------------------


@register
class AnswerMatch(SampleFilter):
    name = "answer_match"
    version = 3  # 3: an answer naming several alternatives fails (filters/answer_hedges.py)
    needs = ("answer", "reference_answer", "answer_type", "question_text")
    stage = "verify"
    applies = f"answer_type IN {VERIFIABLE_TYPES} AND reference_answer IS NOT NULL"

    class Params(RuleParams):
        rel_tol: float = Field(DEFAULT_REL_TOL, gt=0)  # the numeric type's relative tolerance
        # Processes checking a batch away from the main thread; not in the config hash.
        workers: int = Field(2, ge=1, exclude=True)

    def __init__(self, params=None, /, **fields):
        super().__init__(params, **fields)
        self.rel_tol = self.params.rel_tol

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        """Math-Verify bounds its parsing with signal.alarm, which works in a main thread only:
        elsewhere (a Prefect task's worker thread) the rows go to spawned processes."""
        self.require(batch)
        rows = batch.select(self.needs).to_dicts()
        if threading.current_thread() is threading.main_thread():
            results = check_rows(rows, self.rel_tol)
        else:
            parts = [rows[i:i + _TASK_ROWS] for i in range(0, len(rows), _TASK_ROWS)]
            with ProcessPoolExecutor(max_workers=min(self.params.workers, len(parts) or 1),
                                     mp_context=mp.get_context("spawn")) as pool:
                results = [r for part in pool.map(check_rows, parts, [self.rel_tol] * len(parts)) for r in part]
        return pl.DataFrame(results, schema=RESULT_SCHEMA, orient="row")

    def check(self, s: Mapping) -> RuleResult:
        kind, ref, answer = s["answer_type"], s["reference_answer"], s["answer"] or ""
        if not verifiable(kind, ref):
            return RuleResult(True, None, "not verifiable here")
        if not hedges.several_values(ref) and (why := hedges.boxed_alternatives(answer)):
            return RuleResult(False, 0.0, why)
        if kind == "choice":
            return match_choice(answer, ref, options_of(s["question_text"] or ""))
        if kind == "text":
            return match_text(answer, ref)
        if (verdict := reference_bool(ref)) is not None:
            return match_bool(answer, verdict)
        if (letter := reference_option(ref)) is not None:
            return match_option(answer, letter)
        if kind == "numeric":
            if (values := reference_list(ref)) is not None:
                return match_number_list(answer, values, self.rel_tol)
            return match_numeric(answer, ref, self.rel_tol)
        return match_math(answer, ref)


def verifiable(answer_type: str | None, reference: str | None) -> bool:
    return reference is not None and answer_type in VERIFIABLE_TYPES


def check_rows(rows: list[Mapping], rel_tol: float = DEFAULT_REL_TOL) -> list[tuple[bool, float | None, str | None]]:
    """(passed, score, reason) per row, for a process pool's workers (Math-Verify's signal-based
    timeouts need each worker's main thread). One pathological answer does not stop the rest."""
    rule = AnswerMatch(rel_tol=rel_tol)
    out = []
    for row in rows:
        try:
            r = rule.check(row)
            out.append((r.passed, r.score, r.reason))
        except Exception as exc:  # noqa: BLE001
            out.append((False, None, f"verifier error: {type(exc).__name__}: {exc}"[:300]))
        except BaseException as exc:  # Math-Verify's TimeoutException is not an Exception
            if type(exc).__name__ != "TimeoutException":
                raise
            out.append((False, None, "verifier error: timeout"))
    return out
