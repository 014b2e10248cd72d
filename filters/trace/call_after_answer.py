from filters.base import RuleResult
from filters.trace.registry import register_trace
from filters.trace.view import TraceRule, TraceView, final_answer, turn


@register_trace
class CallAfterAnswer(TraceRule):
    """A tool call after the final answer was given: in the same turn as a 'Final answer:' (or
    \\boxed{}), or in a turn after an assistant turn that called nothing (which ends a rollout)."""

    name = "call_after_answer"
    version = 1

    def check_trace(self, view: TraceView) -> RuleResult:
        answered_at = None
        for i, m in enumerate(view.messages):
            if m.role != "assistant":
                continue
            if m.tool_calls and answered_at is not None:
                return RuleResult(False, reason=f"{turn(i)}: calls {m.tool_calls[0].name} after the answer "
                                                f"of {turn(answered_at)}")
            if m.tool_calls and final_answer(m.content) is not None:
                return RuleResult(False, reason=f"{turn(i)}: calls {m.tool_calls[0].name} in the turn that "
                                                f"gives the final answer")
            if not m.tool_calls:
                answered_at = i
        return RuleResult(True)
