"""Perturbations of agentic traces, every choice drawn from a seed and recorded (issue 16):
rollout-time (response_format.py: observation formats, extra fields, key order, one transient
error) and render-time (render.py: renamed tools, tool order, tool docs style, call syntax,
system prompt)."""
