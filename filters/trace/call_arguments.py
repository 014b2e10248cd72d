import jsonschema

from filters.base import RuleResult
from filters.trace.registry import register_trace
from filters.trace.view import TraceRule, TraceView, turn


@register_trace
class CallArguments(TraceRule):
    """A call whose arguments fail its tool's JSON schema (unparsable calls and unknown tools are
    the other rules' failures, not this one's)."""

    name = "call_arguments"
    version = 1

    def check_trace(self, view: TraceView) -> RuleResult:
        for i, call in view.calls():
            spec = view.tools.get(call.name or "")
            if spec is None or call.arguments is None:
                continue
            error = jsonschema.exceptions.best_match(
                jsonschema.Draft202012Validator(spec.parameters).iter_errors(call.arguments))
            if error is not None:
                where = "/".join(str(p) for p in error.path)
                return RuleResult(False, reason=f"{turn(i)}: {call.name} arguments fail its schema: "
                                                f"{where + ': ' if where else ''}{error.message}")
        return RuleResult(True)
