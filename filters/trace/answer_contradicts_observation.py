from filters.base import RuleResult
from filters.trace.registry import register_trace
from filters.trace.view import TraceRule, TraceView, consistent, final_answer, numbers, turn


@register_trace
class AnswerContradictsObservation(TraceRule):
    """The final answer is one number, the last successful observation shows one number, and they
    disagree (beyond the answer's own rounding) while no observation shows the answer's number.
    Narrow on purpose: several numbers on either side could be combined legitimately."""

    name = "answer_contradicts_observation"
    version = 1

    def check_trace(self, view: TraceView) -> RuleResult:
        answer_turn = view.answer_turn()
        if answer_turn is None:
            return RuleResult(True)
        i, m = answer_turn
        answer = final_answer(m.content) or (m.content or "")
        answered = numbers(answer)
        observed = [o for o in view.observations(before=i) if o.tool_status == "ok"]
        if len(answered) != 1 or not observed:
            return RuleResult(True)
        last = numbers(observed[-1].content)
        if len(last) != 1 or consistent(answered[0], last[0]):
            return RuleResult(True)
        if any(consistent(answered[0], n) for o in observed for n in numbers(o.content)):
            return RuleResult(True)
        return RuleResult(False, reason=f"{turn(i)}: final answer {answered[0]} but the last observation "
                                        f"({observed[-1].name}) shows {last[0]}")
