from filters.base import RuleParams, RuleResult
from filters.trace.registry import register_trace
from filters.trace.view import TraceRule, TraceView, turn


class Params(RuleParams):
    min_words: int = 3  # reasoning shorter than this does not count as thinking before the call


@register_trace
class CallWithoutReasoning(TraceRule):
    """A tool-calling turn with no reasoning before its calls: interleaved thinking means the model
    thinks before every action, not only at the start."""

    name = "call_without_reasoning"
    version = 1
    Params = Params

    def check_trace(self, view: TraceView) -> RuleResult:
        for i, m in enumerate(view.messages):
            if m.role == "assistant" and m.tool_calls and len((m.reasoning or "").split()) < self.params.min_words:
                return RuleResult(False, reason=f"{turn(i)}: calls {m.tool_calls[0].name} with "
                                                f"{len((m.reasoning or '').split())} word(s) of reasoning before it")
        return RuleResult(True)
