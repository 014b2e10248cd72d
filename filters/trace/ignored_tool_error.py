import re

from filters.base import RuleResult
from filters.trace.registry import register_trace
from filters.trace.view import TraceRule, TraceView, turn

# Words by which a next step shows it saw the error.
_ACK = re.compile(r"\b(error|errors|fail\w*|wrong|invalid|mistake|typo|fix\w*|instead|retry\w*|try again|"
                  r"exception|traceback|timed? ?out|did(?:n't| not) work|not (?:found|exist|allowed|authori[sz]ed)|"
                  r"no such|doesn't exist|unknown|syntax|oops|correct(?:ed|ing)?|denied|read-only)\b", re.I)


@register_trace
class IgnoredToolError(TraceRule):
    """A tool error or timeout the next assistant step neither mentions nor acts on (a retry or a
    fixed call of the same tool counts as acting on it). A trajectory that stops right after the
    error (the step cap) is not this rule's failure."""

    name = "ignored_tool_error"
    version = 1

    def check_trace(self, view: TraceView) -> RuleResult:
        for j, m in enumerate(view.messages):
            if m.role != "tool" or m.tool_status not in ("error", "timeout"):
                continue
            nxt = view.next_assistant(j)
            if nxt is None:
                continue
            k, step = nxt
            if _ACK.search(f"{step.reasoning or ''}\n{step.content or ''}"):
                continue
            if any(c.name == m.name for c in step.tool_calls or []):
                continue
            return RuleResult(False, reason=f"{turn(k)} goes on as if the {m.name or 'tool'} {m.tool_status} of "
                                            f"{turn(j)} had not happened")
        return RuleResult(True)
