"""Agentic traces (issue 16): tool environments, generated tasks, perturbations, storage and
export of trajectories. Rollouts on vLLM come later; they use Environment.call and the parsers
of pipeline/agentic/perturb/call_syntax.py."""
