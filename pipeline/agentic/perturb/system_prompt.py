"""Render-time system prompt variants for agentic tasks. {tools} is where the tool docs go (when
the chat template does not render the tools itself) and {syntax} the call-syntax instruction."""

from __future__ import annotations

SYSTEM_PROMPTS = [
    "You are a helpful assistant with access to tools. Think before each tool call and after each result.\n\n"
    "{tools}\n\n{syntax}",
    "You can use the tools below. Reason step by step; call a tool when you need information you do not "
    "have, read its result, then continue. End with 'Final answer: ...'.\n\n{tools}\n\n{syntax}",
    "# Tools\n{tools}\n\n# How to call them\n{syntax}\n\nThink about what each result means before the next step.",
    "Solve the user's task. Tools:\n{tools}\n{syntax}\nIf no tool fits, answer directly.",
]

SYNTAX_INSTRUCTIONS = {
    "openai_json": 'To call tools, write {"tool_calls": [{"type": "function", "function": {"name": NAME, '
                   '"arguments": "<arguments as a JSON string>"}}]}.',
    "hermes": 'To call a tool, write <tool_call>{"name": NAME, "arguments": {...}}</tool_call>.',
    "xml_invoke": 'To call a tool, write <tool_calls><invoke name="NAME"><parameter name="ARG">value'
                  '</parameter></invoke></tool_calls>.',
    "pythonic": "To call tools, write a Python list of calls with named arguments: [name(arg=value)].",
}


def system_prompt(index: int, tool_docs: str, syntax: str) -> str:
    return SYSTEM_PROMPTS[index].format(tools=tool_docs, syntax=SYNTAX_INSTRUCTIONS[syntax])
