"""Rollout throughput vs raw generation, same model, same process.

    .venv/bin/python bench/rollout_throughput.py [--model smollm2-135m-instruct] [--per-env 6]
                                                 [--max-tokens 96] [--max-steps 3] [--repeats 2]

Rollouts: `per-env` tasks in each environment (generated shop_db questions, GSM8K questions with
the calculator, MBPP questions with the Python executor), `--in-flight` at once on the in-process
vLLM engine through pipeline/agentic/driver.py (tools in worker threads while the engine steps).
Raw: LLM.generate of the same rollouts' first prompts, in batches as wide as the rollouts in
flight, seeded per prompt as the turns are, each forced (ignore_eos) to an equal share of the
output tokens the rollouts produced: the same number of output tokens at the same width, the
batch full from start to end: the ceiling. The ratio is rollout output tok/s over raw output
tok/s (goal >= 0.8). A raw pass before the rollouts (at the turn budget per prompt) is printed
too: it shows how far the shared machine's load drifted meanwhile. --forced-first-call starts
each rollout's first turn with a written call (SmolLM2 seldom writes one), so that every rollout
has a tool turn and a second turn. Each repeat has fresh seeds (new rollouts); the machine is
shared, so the figures of every repeat are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.runtime_env import apply_defaults  # noqa: E402

apply_defaults()


FORCED = {env: f"<tool_call>\n{json.dumps(call)}\n</tool_call>\n" for env, call in {  # --forced-first-call
    "shop_db@1": {"name": "query", "arguments": {"sql": "SELECT count(*) FROM customers"}},
    "calculator@1": {"name": "evaluate", "arguments": {"expression": "48 + 48/2"}},
    "python_exec@1": {"name": "run_python", "arguments": {"code": "print(sum(range(10)))"}},
}.items()}


def tasks(per_env: int):
    from pipeline.agentic.tasks.db_questions import generate
    from pipeline.agentic.tasks.pool_tasks import code_task, math_task, simple_tests

    out = generate(seed=11, n=per_env)
    with open(ROOT / "data/seeds/gsm8k_train.jsonl") as fh:
        for i, line in zip(range(per_env), fh):
            q = json.loads(line)
            out.append(math_task(f"gsm8k-{i}", q["question"], q["answer"].split("####")[-1].strip()))
    for i, q in enumerate(json.loads((ROOT / "data/seeds/mbpp_sanitized.json").read_text())[:per_env]):
        out.append(code_task(f"mbpp-{i}", f"{q['prompt']}\nYour code should pass this test:\n{q['test_list'][0]}",
                             simple_tests(q["test_list"])))
    return out


def jobs(task_list, turn_engine, model: str, seed0: int, max_steps: int):
    from pipeline.agentic.driver import RolloutJob
    from pipeline.agentic.envs import make
    from pipeline.agentic.prompting import PromptPlan, system_prompt
    from pipeline.agentic.rollout import Rollout

    mode = "chat_template" if turn_engine.renders_tools() else "system_prompt"
    out = []
    for i, t in enumerate(task_list):
        env = make(t.environment)
        plan = PromptPlan.draw(seed0 + i, env.tool_specs(t.tools), mode, call_syntaxes=["hermes"])
        out.append(RolloutJob(Rollout(t, env, model=model, seed=seed0 + i, max_steps=max_steps,
                                      call_syntax=plan.call_syntax, system_prompt=system_prompt(mode),
                                      recorded=plan.record()), plan))
    return out, mode


def raw(engine, prompts: list[dict], width: int, per_prompt: int) -> tuple[int, float, int]:
    """(output tokens, seconds, prompt tokens prefilled) of LLM.generate over the prompts, `width` at
    a time, each forced to `per_prompt` tokens, seeded per prompt like the rollouts' turns."""
    from vllm import SamplingParams

    started, tokens, prefilled = time.perf_counter(), 0, 0
    for start in range(0, len(prompts), width):
        chunk = prompts[start:start + width]
        params = [SamplingParams(temperature=0.7, max_tokens=per_prompt, ignore_eos=True, seed=start + i)
                  for i in range(len(chunk))]
        for o in engine._llm.generate(chunk, params, use_tqdm=False):
            tokens += len(o.outputs[0].token_ids)
            prefilled += len(o.prompt_token_ids) - (o.num_cached_tokens or 0)
    return tokens, time.perf_counter() - started, prefilled


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--per-env", type=int, default=6)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--max-steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--first-repeat", type=int, default=0, help="number the repeats from here: repeat r's "
                    "rollouts are seeded from 1000 * r, so another first repeat gives other rollouts")
    ap.add_argument("--in-flight", type=int, default=0, help="rollouts open at once (0: all); raw generate "
                    "runs in batches of the same width")
    ap.add_argument("--block-size", type=int, default=0, help="the KV cache block size (0: vLLM's; 128 on CPU): "
                    "the prefix cache reuses whole blocks, so a turn re-prefills up to a block of the history")
    ap.add_argument("--forced-first-call", action="store_true",
                    help="each rollout's first turn starts with a written tool call (SmolLM2 rarely writes one): "
                         "every rollout then has a tool turn")
    args = ap.parse_args()

    from pipeline.agentic.driver import THINK_PREFILL, drive
    from pipeline.agentic.prompting import turn_messages
    from pipeline.agentic.turn_engines import TurnRequest, VllmTurnEngine
    from pipeline.engines.base import Sampling
    from pipeline.engines.factory import make_engine
    from schemas.config import EngineConfig

    t0 = time.perf_counter()
    vllm_args = {"block_size": args.block_size} if args.block_size else {}
    engine = make_engine(EngineConfig(model=args.model, vllm_args=vllm_args), announce=print).unwrap()
    turn_engine = VllmTurnEngine(engine)
    print(f"model {args.model} loaded in {time.perf_counter() - t0:.0f} s")
    sampling = Sampling(temperature=0.7, max_tokens=args.max_tokens, stop=("<tool_response>",))
    task_list = tasks(args.per_env)
    ratios = []
    for rep in range(args.first_repeat, args.first_repeat + args.repeats):
        job_list, mode = jobs(task_list, turn_engine, args.model, 1000 * rep, args.max_steps)
        if args.forced_first_call:
            for job in job_list:
                job.first_prefill = THINK_PREFILL + "I will use the tool first.\n</think>\n" + FORCED[
                    job.rollout.task.environment]
        width = args.in_flight or len(job_list)
        prompts = []
        for job in job_list:
            messages, tools = turn_messages(job.rollout, job.plan)
            prompts.append({"prompt_token_ids": turn_engine.prompt_ids(
                TurnRequest("", messages, tools, THINK_PREFILL, sampling))})
        # The reference is raw after the rollouts, with their output-token count. Raw before (at the
        # turn budget per prompt) only shows how far the shared machine's load drifted meanwhile.
        raw_before = raw(engine, prompts, width, args.max_tokens)
        stats = drive(job_list, turn_engine, sampling, max_in_flight=width)
        per_prompt = math.ceil(stats.completion_tokens / len(prompts))
        raw_after = raw(engine, prompts, width, per_prompt)
        roll_rate = stats.completion_tokens / stats.wall_seconds
        raw_rate = raw_after[0] / raw_after[1]
        ratios.append(roll_rate / raw_rate)
        outcomes: dict[str, int] = {}
        for job in job_list:
            key = f"{job.rollout.task.environment}:{job.rollout.outcome.status}"
            outcomes[key] = outcomes.get(key, 0) + 1
        print(f"repeat {rep + 1}: {len(job_list)} rollouts ({mode} prompts, {width} in flight), {stats.turns} turns, "
              f"{sum(j.rollout.steps for j in job_list)} tool calls, {stats.completion_tokens} output tokens in "
              f"{stats.wall_seconds:.1f} s = {roll_rate:.1f} tok/s; tool time {stats.tool_seconds:.1f} s, "
              f"{stats.polls_while_tools_ran}/{stats.engine_polls} engine steps while tools ran (mean batch "
              f"{stats.completion_tokens / max(stats.engine_polls, 1):.1f} of {width}); prompt tokens "
              f"prefilled {stats.prompt_tokens - stats.cached_prompt_tokens} of {stats.prompt_tokens} (the rest from "
              f"the prefix cache); later turns sent as generated {turn_engine.continued_turns}, re-rendered "
              f"{turn_engine.rerendered_turns}")
        print(f"          raw generate, {len(prompts)} prompts x {per_prompt} tokens ({raw_after[0]} tokens): "
              f"{raw_rate:.1f} tok/s in {math.ceil(len(prompts) / width) * per_prompt} steps, prompt tokens prefilled "
              f"{raw_after[2]};  ratio {roll_rate / raw_rate:.2f}   (load drift: raw before, x {args.max_tokens}"
              f" tokens: {raw_before[0] / raw_before[1]:.1f} tok/s)")
        other_polls = stats.engine_polls - stats.admitting_polls
        raw_steps = math.ceil(len(prompts) / width) * per_prompt
        print(f"          where the rollouts' wall time went: engine steps {stats.engine_seconds:.1f} s "
              f"({stats.engine_polls} steps, {1000 * stats.engine_seconds / max(stats.engine_polls, 1):.0f} ms each; "
              f"{stats.admitting_polls} that prefilled a sent turn "
              f"{1000 * stats.admitting_seconds / max(stats.admitting_polls, 1):.0f} ms, "
              f"the others {1000 * (stats.engine_seconds - stats.admitting_seconds) / max(other_polls, 1):.0f} ms; raw "
              f"{1000 * raw_after[1] / raw_steps:.0f} ms), sending turns {stats.submit_seconds:.1f} s, the rest "
              f"{stats.wall_seconds - stats.engine_seconds - stats.submit_seconds:.1f} s")
        print(f"          outcomes: {dict(sorted(outcomes.items()))}")
    print(f"ratio (rollout / raw output tok/s) per repeat: {[round(r, 2) for r in ratios]}")


if __name__ == "__main__":
    main()
