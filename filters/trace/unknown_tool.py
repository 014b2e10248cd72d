from filters.base import RuleResult
from filters.trace.registry import register_trace
from filters.trace.view import TraceRule, TraceView, turn


@register_trace
class UnknownTool(TraceRule):
    """A call of a tool the trajectory was not offered."""

    name = "unknown_tool"
    version = 1

    def check_trace(self, view: TraceView) -> RuleResult:
        for i, call in view.calls():
            if call.name is not None and call.name not in view.tools:
                return RuleResult(False, reason=f"{turn(i)}: unknown tool {call.name!r} "
                                                f"(offered: {', '.join(sorted(view.tools)) or 'none'})")
        return RuleResult(True)
