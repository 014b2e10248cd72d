from decimal import Decimal, DivisionByZero, InvalidOperation

from filters.base import RuleParams, RuleResult
from filters.trace.registry import register_trace
from filters.trace.view import TraceRule, TraceView, consistent, numbers, turn


class Params(RuleParams):
    min_abs: float = 10          # smaller numbers (step counts, small constants) are not checked
    max_unexplained: int = 0


@register_trace
class HallucinatedNumber(TraceRule):
    """A number in the reasoning after the first observation that nothing explains: not in the
    question, an earlier observation or the model's own call arguments, and not one operation
    (+ - * /) away from two numbers that are. The sign of an observation invented in the thinking."""

    name = "hallucinated_number"
    version = 1
    Params = Params

    def check_trace(self, view: TraceView) -> RuleResult:
        known = set(numbers(view.question))
        unexplained: list[tuple[int, Decimal]] = []
        seen_observation = False
        for i, m in enumerate(view.messages):
            if m.role == "tool":
                seen_observation = True
                known.update(numbers(m.content))
                continue
            if m.role != "assistant":
                continue
            if seen_observation:
                for n in numbers(m.reasoning):
                    if abs(n) < Decimal(str(self.params.min_abs)):
                        continue  # unchecked, and not known either: x * 4 explains nothing
                    if _explained(n, known):
                        known.add(n)  # derived numbers can be built on
                    else:
                        unexplained.append((i, n))
            for call in m.tool_calls or []:  # the model's own inputs are known from here on
                known.update(numbers(str(call.arguments or call.raw or "")))
        if len(unexplained) > self.params.max_unexplained:
            shown = ", ".join(f"{n} ({turn(i)})" for i, n in unexplained[:3])
            return RuleResult(False, score=float(len(unexplained)),
                              reason=f"number(s) in the reasoning no observation or question contains: {shown}")
        return RuleResult(True, score=0.0)


def _explained(n: Decimal, known: set[Decimal]) -> bool:
    if any(consistent(n, k) for k in known):
        return True
    values = list(known)
    for a in values:
        for b in values:
            try:
                candidates = (a + b, a - b, a * b, a / b if b else None)
            except (InvalidOperation, DivisionByZero):
                continue
            if any(c is not None and consistent(n, c) for c in candidates):
                return True
    return False
