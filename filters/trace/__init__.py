"""Cheap rules over agentic trajectories (one file per rule); see view.py for the contract and
registry.py for why they are registered apart from the sample rules."""

from filters.trace import (answer_contradicts_observation, call_after_answer, call_arguments,  # noqa: F401
                           call_without_reasoning, hallucinated_number, ignored_tool_error, repeated_call,
                           unknown_tool, unparsable_call)
from filters.trace.registry import TRACE_RULES, build_trace_rules
from filters.trace.view import TraceRule, TraceView

__all__ = ["TRACE_RULES", "TraceRule", "TraceView", "build_trace_rules"]
