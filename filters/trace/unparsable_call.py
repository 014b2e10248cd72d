from filters.base import RuleResult
from filters.trace.registry import register_trace
from filters.trace.view import TraceRule, TraceView, turn


@register_trace
class UnparsableCall(TraceRule):
    """A tool call the rollout could not parse (no name, or arguments that are not a JSON object)."""

    name = "unparsable_call"
    version = 1

    def check_trace(self, view: TraceView) -> RuleResult:
        for i, call in view.calls():
            if call.parse_error or call.name is None or call.arguments is None:
                why = call.parse_error or ("no tool name" if call.name is None else "no arguments object")
                return RuleResult(False, reason=f"{turn(i)}: call {call.id} could not be parsed: {why}")
        return RuleResult(True)
