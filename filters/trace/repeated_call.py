import json

from filters.base import RuleParams, RuleResult
from filters.trace.registry import register_trace
from filters.trace.view import TraceRule, TraceView, turn


class Params(RuleParams):
    max_repeats: int = 0  # identical calls allowed after one that succeeded


@register_trace
class RepeatedCall(TraceRule):
    """The same call (tool and arguments) again after it already succeeded: a loop. Retrying a call
    that failed or timed out is not a loop (the transient-error perturbation asks for exactly that)."""

    name = "repeated_call"
    version = 1
    Params = Params

    def check_trace(self, view: TraceView) -> RuleResult:
        succeeded: dict[str, int] = {}
        for i, call in view.calls():
            if call.name is None or call.arguments is None:
                continue
            key = json.dumps([call.name, call.arguments], sort_keys=True)
            if key in succeeded:
                succeeded[key] += 1
                if succeeded[key] > self.params.max_repeats:
                    return RuleResult(False, score=float(succeeded[key]),
                                      reason=f"{turn(i)}: {call.name} called again with the same arguments "
                                             f"after it succeeded ({succeeded[key]} repeat(s))")
            result = view.result_of(call.id)
            if result is not None and result.tool_status == "ok":
                succeeded.setdefault(key, 0)
        return RuleResult(True)
