"""Measure a judge rule against labelled data; pipeline/judge_eval_store.py stores the figures in
judge_evals, which calibration gates read.

Two kinds of labelled set, told apart by their content:

    pairwise   a JSON list of {input, output_1, output_2, label}, label 1 or 2 = the better
               output (LLMBar); a folder loads every *.json in it, each file a subset
    pointwise  JSONL, one {question, answer, reasoning?, reference?, label} a line,
               label true/false or 1/0 (true = a good sample, keep it)

A pairwise set is judged in one of three modes. `pairwise` (the default for pairwise sets): both
outputs in one prompt, asked twice with the order swapped (judges/pairwise.py); the output both
orders pick wins, a disagreement is a tie. `pairwise_letter`: the same two calls, each answered
with one constrained letter; the winner is decided by the probability that output 1 is better,
averaged over both orders (judges/pairwise.py). `pointwise`: each output is judged alone as a sample
and the higher score wins; equal scores are a tie. A judge error on either call is an error.
A pointwise set's prediction is `passed` (score >= threshold). agreement = correct / decided
(ties and errors left out), accuracy = correct / all items (ties and errors count as wrong),
kappa = Cohen's kappa on the decided items; position consistency (pairwise modes) = share of
pairs whose two orders picked the same output.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

from judges.pairwise import compare_pairs
from judges.run import judge_samples
from schemas.chat import ChatBackend
from schemas.judge_rule import JudgeRule
from schemas.yaml_loading import ConfigError


@dataclass(frozen=True)
class LabelItem:
    question: str
    outputs: tuple[str, ...]  # pairwise: (output_1, output_2); pointwise: (answer,)
    label: int | bool  # pairwise: 1 or 2 (the better output); pointwise: True = keep
    subset: str  # file stem
    reasoning: str = ""
    reference: str | None = None


@dataclass
class LabelSet:
    kind: str  # pairwise | pointwise
    items: list[LabelItem]
    source: str

    @property
    def judgements(self) -> int:
        """Judge calls an evaluation makes (before retries): the total for a progress bar."""
        return len(self.items) * (2 if self.kind == "pairwise" else 1)


# --- loading --------------------------------------------------------------------------------------

_PAIR_FIELDS = ("input", "output_1", "output_2", "label")
_POINT_REQUIRED = ("question", "answer", "label")
_POINT_OPTIONAL = ("reasoning", "reference")


def _checked(item: object, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """The item as a dict whose text fields are strings; errors say where and which field."""
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected an object, got {type(item).__name__}")
    for name in required:
        if name not in item:
            raise ConfigError(f"{where}: field {name!r}: missing")
    for name in item:
        if name not in required + optional:
            raise ConfigError(f"{where}: field {name!r}: unknown field (expected {list(required + optional)})")
    for name in required + optional:
        value = item.get(name)
        if name != "label" and value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}: field {name!r}: expected a string, got {type(value).__name__}")
        if name in required and value is None:
            raise ConfigError(f"{where}: field {name!r}: must not be null")
    return item


def _pair_item(item: object, where: str, subset: str) -> LabelItem:
    d = _checked(item, where, _PAIR_FIELDS)
    if type(d["label"]) is not int or d["label"] not in (1, 2):
        raise ConfigError(f"{where}: field 'label': must be 1 or 2 (the better output), got {d['label']!r}")
    return LabelItem(d["input"], (d["output_1"], d["output_2"]), d["label"], subset)


def _point_item(item: object, where: str, subset: str) -> LabelItem:
    d = _checked(item, where, _POINT_REQUIRED, _POINT_OPTIONAL)
    label = d["label"]
    if not (isinstance(label, bool) or (type(label) is int and label in (0, 1))):
        raise ConfigError(f"{where}: field 'label': must be true/false or 1/0 (true = keep), got {label!r}")
    return LabelItem(d["question"], (d["answer"],), bool(label), subset, d.get("reasoning") or "", d.get("reference"))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _load_pairwise(path: Path, text: str) -> list[LabelItem]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(data, list):
        raise ConfigError(f"{path}:1: expected a JSON list of pairwise items, got {type(data).__name__}")
    return [_pair_item(item, f"{path}: item [{i}]", path.stem) for i, item in enumerate(data)]


def _load_pointwise(path: Path, text: str) -> list[LabelItem]:
    items = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{n}: invalid JSON: {exc.msg}") from exc
        items.append(_point_item(item, f"{path}:{n}", path.stem))
    return items


def load_labels(path: str | Path, limit: int | None = None) -> LabelSet:
    """A labelled set from a JSON list (pairwise), a JSONL file (pointwise) or a folder of *.json
    (pairwise, concatenated in name order); `limit` keeps the first N items."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ConfigError(f"{path}: no *.json labelled sets in this folder")
        items = [item for f in files for item in _load_pairwise(f, _read(f))]
        kind = "pairwise"
    else:
        text = _read(path)
        kind = "pairwise" if text.lstrip().startswith("[") else "pointwise"
        items = _load_pairwise(path, text) if kind == "pairwise" else _load_pointwise(path, text)
    if not items:
        raise ConfigError(f"{path}: no labelled items")
    return LabelSet(kind, items[:limit] if limit is not None else items, str(path))


# --- metrics --------------------------------------------------------------------------------------


def cohen_kappa(predicted: list[Hashable], gold: list[Hashable]) -> float | None:
    """Cohen's kappa of two labelings of the same items (None when there are no items).

    Written here rather than taken from scikit-learn, which the project does not install for
    one formula. Counts stay integers: kappa = (n*agree - sum_k a_k*b_k) / (n^2 - sum_k a_k*b_k).
    When both labelings are one and the same constant, expected agreement is 1 and kappa is 0/0;
    that case returns 0.0 (no agreement beyond chance can be shown), where scikit-learn gives nan.
    """
    if len(predicted) != len(gold):
        raise ValueError(f"kappa needs labelings of equal length, got {len(predicted)} and {len(gold)}")
    n = len(gold)
    if n == 0:
        return None
    agree = sum(p == g for p, g in zip(predicted, gold))
    a, b = Counter(predicted), Counter(gold)
    chance = sum(a[k] * b[k] for k in a)
    if chance == n * n:
        return 0.0
    return (n * agree - chance) / (n * n - chance)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


MODES = ("pointwise", "pairwise", "pairwise_letter")
PAIRWISE_MODES = {"pairwise": "json", "pairwise_letter": "letter"}  # mode -> how the judge replies


@dataclass
class EvalResult:
    rule: str
    rule_version: int
    kind: str  # the label set: pairwise | pointwise
    n_items: int
    n_judged: int  # items without a judge error (pairwise: decided + ties)
    errors: int
    ties: int | None  # pairwise only
    agreement: float | None  # correct / decided; None when nothing was decided
    accuracy: float | None  # correct / n_items
    kappa: float | None
    details: dict = field(default_factory=dict)
    mode: str = "pointwise"  # how the judge was asked: pointwise (one output) | pairwise(_letter) (both, twice)
    position_consistency: float | None = None  # pairwise mode: pairs whose two orders agreed / answered

    @property
    def decided(self) -> int:
        return self.n_judged - (self.ties or 0)

    def summary(self) -> str:
        def fmt(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        ties = f", {self.ties} ties" if self.ties is not None else ""
        position = (f", position consistency {fmt(self.position_consistency)}"
                    if self.mode in PAIRWISE_MODES else "")
        return (f"{self.rule} v{self.rule_version} ({self.kind} set, {self.mode} mode, {self.n_items} items): "
                f"agreement {fmt(self.agreement)}, accuracy {fmt(self.accuracy)}, kappa {fmt(self.kappa)}; "
                f"{self.decided} decided{ties}, {self.errors} errors{position}")


def _sample(item_id: str, question: str, answer: str, reasoning: str = "", reference: str | None = None) -> dict:
    return {"sample_id": item_id, "question_text": question, "reasoning": reasoning, "answer": answer,
            "reference_answer": reference, "requested_format": None, "domain": None}


def _predict(kind: str, verdicts: list[dict]) -> int | bool | str:
    """One item's prediction from its verdicts: pairwise 1/2/"tie", pointwise True/False; or "error"."""
    if any(v["score"] is None for v in verdicts):
        return "error"
    if kind == "pointwise":
        return verdicts[0]["passed"]
    s1, s2 = verdicts[0]["score"], verdicts[1]["score"]
    return "tie" if s1 == s2 else (1 if s1 > s2 else 2)


def _tally(items: list[LabelItem], predictions: list) -> dict:
    decided = [(p, i.label) for p, i in zip(predictions, items) if p not in ("tie", "error")]
    correct = sum(p == g for p, g in decided)
    return {"n": len(items), "decided": len(decided), "correct": correct,
            "ties": predictions.count("tie"), "errors": predictions.count("error"),
            "agreement": _ratio(correct, len(decided)), "accuracy": _ratio(correct, len(items)),
            "kappa": cohen_kappa([p for p, _ in decided], [g for _, g in decided])}


def _pointwise_predictions(rule, labels, engine, max_retries, batch_size, on_progress) -> tuple[list, list[dict]]:
    per_item = 2 if labels.kind == "pairwise" else 1
    samples = [_sample(f"{n}:{k}", item.question, output, item.reasoning, item.reference)
               for n, item in enumerate(labels.items) for k, output in enumerate(item.outputs, start=1)]
    verdicts: list[dict] = []
    for start in range(0, len(samples), batch_size):
        verdicts += judge_samples(rule, samples[start:start + batch_size], engine, max_retries=max_retries,
                                  on_progress=on_progress)
    predictions = [_predict(labels.kind, verdicts[n * per_item:(n + 1) * per_item]) for n in range(len(labels.items))]
    calls = [json.loads(v["details"]) for v in verdicts]
    scores = Counter("error" if v["score"] is None else str(int(v["score"])) for v in verdicts)
    return predictions, [{"score_histogram": {k: scores[k] for k in sorted(scores)},
                          "error_examples": sorted({v["reason"] for v in verdicts if v["score"] is None})[:3]}, calls]


def _pairwise_predictions(rule, labels, engine, max_retries, batch_size, on_progress, reply="json") -> tuple[list, list]:
    pairs = [(item.question, *item.outputs) for item in labels.items]
    verdicts = []
    for start in range(0, len(pairs), max(1, batch_size // 2)):
        verdicts += compare_pairs(rule, pairs[start:start + max(1, batch_size // 2)], engine,
                                  max_retries=max_retries, on_progress=on_progress, reply=reply)
    answered = [v.consistent for v in verdicts if v.consistent is not None]
    choices = Counter(a.outcome.better or "error" for v in verdicts for a in (v.first, v.swapped))
    calls = [{"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens}
             for v in verdicts for a in (v.first, v.swapped)]
    errors = sorted({a.outcome.error for v in verdicts for a in (v.first, v.swapped) if a.outcome.error})[:3]
    extra = {"position_consistency": _ratio(sum(answered), len(answered)),
             "choices": {k: choices[k] for k in sorted(choices)},  # how often A (shown first) was picked
             "error_examples": errors}
    return [v.winner for v in verdicts], [extra, calls]


def evaluate(rule: JudgeRule, labels: LabelSet, engine: ChatBackend, max_retries: int = 2, batch_size: int = 64,
             on_progress: Callable[[int], None] | None = None, mode: str | None = None) -> EvalResult:
    """Judge every labelled item with `rule` and compare with the labels (see the module docstring).

    mode: pointwise | pairwise (pairwise sets only); default pairwise for a pairwise set.
    on_progress(k) is called as judge calls finish; labels.judgements is the total.
    """
    mode = mode or ("pairwise" if labels.kind == "pairwise" else "pointwise")
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r}: expected one of {list(MODES)}")
    if mode in PAIRWISE_MODES and labels.kind != "pairwise":
        raise ConfigError(f"{labels.source}: {mode} mode needs a pairwise label set (two outputs per item)")
    started = time.monotonic()
    if mode in PAIRWISE_MODES:
        predictions, (extra, calls) = _pairwise_predictions(rule, labels, engine, max_retries, batch_size,
                                                            on_progress, PAIRWISE_MODES[mode])
    else:
        predictions, (extra, calls) = _pointwise_predictions(rule, labels, engine, max_retries, batch_size,
                                                             on_progress)

    overall = _tally(labels.items, predictions)
    subsets = {s: _tally([i for i in labels.items if i.subset == s],
                         [p for p, i in zip(predictions, labels.items) if i.subset == s])
               for s in dict.fromkeys(i.subset for i in labels.items)}
    details = {
        "subsets": subsets,
        "correct": overall["correct"],
        "predicted": dict(Counter(str(p) for p in predictions)),
        "gold": dict(Counter(str(i.label) for i in labels.items)),
        **extra,
        "mean_prompt_tokens": _ratio(sum(t["prompt_tokens"] for t in calls), len(calls)),
        "mean_completion_tokens": _ratio(sum(t["completion_tokens"] for t in calls), len(calls)),
        "seconds": round(time.monotonic() - started, 1),
    }
    return EvalResult(rule.name, rule.version, labels.kind, overall["n"], overall["n"] - overall["errors"],
                      overall["errors"], overall["ties"] if labels.kind == "pairwise" else None,
                      overall["agreement"], overall["accuracy"], overall["kappa"], details, mode,
                      extra.get("position_consistency"))
