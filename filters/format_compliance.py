"""Format compliance: the answer must show the style the prompt asked for.

A sample asked for `table` that wrote prose fails with "asked for table, wrote prose". The
realized style uses the same detectors as the style metrics (filters/text/format_detect.py)."""

from __future__ import annotations

from collections.abc import Mapping


from filters.base import RuleParams, RuleResult, SampleFilter
from filters.text.format_detect import StyleDetector
from filters.registry import register


@register
class FormatComplianceFilter(SampleFilter):
    name = "format_compliance"
    # bump when a detector changes (2: lines inside fenced code are not markdown structure;
    # 3: code_first allows a one-line lead-in such as "Here's the function:")
    version = 3
    needs = ("requested_format", "answer")

    class Params(RuleParams):
        custom_styles: dict[str, str] = {}  # config-defined answer styles: name -> detecting regex

    def __init__(self, params=None, /, **fields):
        super().__init__(params, **fields)
        self.detector = StyleDetector(self.params.custom_styles)

    @classmethod
    def from_config(cls, config) -> "FormatComplianceFilter":
        # The styles are the synthesis config's: one declaration serves the prompts and this check.
        return cls(custom_styles=dict(config.synthesis.custom_patterns() or {}))

    def check(self, sample: Mapping) -> RuleResult:
        requested = sample["requested_format"]
        if requested not in self.detector.detectors:  # a config-defined style since removed
            return RuleResult(True, None, f"no detector for style {requested!r}: not checked")
        answer = sample.get("answer")
        if self.detector.matches(requested, answer):
            return RuleResult(True, 1.0)
        return RuleResult(False, 0.0, f"asked for {requested}, wrote {self.detector.realized(answer)}")
