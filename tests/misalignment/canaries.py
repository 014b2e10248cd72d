"""A store of real samples with planted canaries, for the trace tests and bench/trace_canaries.py.

Clean samples: GSM8K train solutions as the reasoning of their questions (two samples per
question, worded a little differently) and MBPP solutions for code. Canaries, one per question,
sit next to a clean sample of the same question, so a method must tell the bad output apart,
not only find the question:
  loop      a reasoning line repeated many times
  wrong     a wrong final answer that looks right (plausible steps, the last number off)
  leak      a MATH-500 solution reproduced as the reasoning (a leaked benchmark solution)
  identity  "As an AI language model developed by OpenAI" in the reasoning
  truncated the reasoning cut mid-sentence at the token limit, no answer
Each canary has a bad case: the same question worded differently and a similar (not equal)
bad output. The real cheap rules, answer_match and decontam_answer store real verdicts; every
canary and half the clean samples are exported.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.hashing import stable_hash
from pipeline.store import Store, now
from schemas import rows
from schemas.bad_case import BadCase

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT.parent / "shared" / "data" / "seeds"
if not SEEDS.exists():
    SEEDS = Path("/work/shared/data/seeds")
MATH500 = ROOT / "data" / "benchmarks" / "math500.jsonl"
KINDS = ("loop", "wrong", "leak", "identity", "truncated")
IDENTITY = "As an AI language model developed by OpenAI, I will solve this carefully."
SWAPS = [("How many", "What is the number of"), ("how many", "what number of"), ("altogether", "in total"),
         ("How much", "What amount"), ("how much", "what amount"), ("each", "every"), ("total", "sum"),
         ("bought", "purchased"), ("has", "owns"), ("wants", "would like"), ("Find", "Determine"),
         ("What is", "Compute"), ("buys", "purchases")]


@dataclass
class Canary:
    kind: str
    sample_id: str
    case: BadCase


def gsm8k(n: int, skip: int = 0) -> list[tuple[str, list[str], str]]:
    """(question, solution lines without the <<calc>> marks, final answer)."""
    out = []
    with open(SEEDS / "gsm8k_train.jsonl") as f:
        for i, line in enumerate(f):
            if i < skip:
                continue
            if len(out) == n:
                break
            item = json.loads(line)
            body, final = item["answer"].split("####")
            steps = [re.sub(r"<<[^>]*>>", "", s).strip() for s in body.strip().splitlines() if s.strip()]
            out.append((item["question"], steps, final.strip().replace(",", "")))
    return out


def mbpp(n: int) -> list[dict]:
    return json.loads((SEEDS / "mbpp_sanitized.json").read_text())[:n]


def math500(n: int) -> list[dict]:
    with open(MATH500) as f:
        items = [json.loads(line) for line in f]
    return [i for i in items if 300 < len(i["solution"]) < 1500][:n]


def reword(text: str, rng: random.Random) -> str:
    """Another wording of a question: a lead-in and a few word swaps (numbers and names stay)."""
    for a, b in SWAPS:
        if a in text and rng.random() < 0.8:
            text = text.replace(a, b)
    return rng.choice(["Please solve: ", "Question: ", "Can you help with this? ", "Solve the problem. "]) + text


def think(reasoning: str, answer: str | None) -> str:
    return f"<think>\n{reasoning}\n</think>\n\n{answer}" if answer is not None else f"<think>\n{reasoning}"


def _row(sid, qid, i, reasoning, answer, *, fmt="boxed", finish="stop", closed=True) -> dict:
    raw = think(reasoning, answer if closed else None)
    return {"sample_id": sid, "question_id": qid, "run_id": "run-0", "sample_index": i, "gen_config_hash": "g",
            "model": "teacher", "requested_format": fmt, "prompt_hash": "p",
            "messages": json.dumps([{"role": "user", "content": qid}]), "raw_text": raw, "reasoning": reasoning,
            "answer": answer if closed else "", "think_closed_by": "model" if closed else None,
            "reasoning_finish": None, "finish_reason": finish, "prompt_tokens": 50,
            "completion_tokens": len(raw) // 4, "sampling_params": "{}", "created_at": now()}


def _question(qid, text, reference, answer_type, tests=None, source="gsm8k") -> dict:
    return {"question_id": qid, "source": source, "domain": "code" if answer_type == "code" else "math",
            "subdomain": None, "text": text, "reference_answer": reference, "answer_type": answer_type,
            "tests": tests, "level": None, "pool_path": f"{source}.jsonl", "pool_line": 1, "first_run_id": "run-0"}


def _boxed(value: str, lead: str = "The answer is") -> str:
    return f"{lead} $\\boxed{{{value}}}$."


def _canary(kind: str, question: str, steps: list[str], final: str, rng: random.Random, leak: dict | None):
    """(sample reasoning, answer, closed, question text, reference) and the bad case's (prompt, output, expected)."""
    reasoning = "\n".join(steps)
    if kind == "loop":
        line = steps[min(1, len(steps) - 1)]
        stored = "\n".join(steps[:2] + [line] * 24)
        bad = "\n".join([steps[0]] + [line] * rng.randint(12, 20) + ["Wait, let me recompute.", line, line])
        return (stored, _boxed(final), True, question, final), (reword(question, rng), think(bad, _boxed(final)), None)
    if kind == "wrong":
        wrong = str(int(float(final)) + rng.choice([-10, -2, 2, 5, 10]))
        last = steps[-1].replace(final, wrong) if final in steps[-1] else steps[-1] + f" So the result is {wrong}."
        stored = "\n".join(steps[:-1] + [last])
        bad = "\n".join(steps[:-1][:3] + [last, "This matches the question."])
        return ((stored, _boxed(wrong), True, question, final),
                (reword(question, rng), think(bad, _boxed(wrong, "So the final answer is")), final))
    if kind == "leak":
        solution = leak["solution"]
        parts = solution.split(". ")
        bad = ". ".join(parts[:-1]) + ". " + parts[-1] if len(parts) > 1 else solution
        stored_q = f"{leak['problem']}"
        return ((solution, _boxed(leak["answer"]), True, stored_q, leak["answer"]),
                (leak["problem"], think(bad.replace("We have", "We get", 1), _boxed(leak["answer"])), None))
    if kind == "identity":
        stored = IDENTITY + "\n" + reasoning
        bad = "As an AI language model developed by OpenAI, I can help with that.\n" + "\n".join(steps[:2])
        return ((stored, _boxed(final), True, question, final), (reword(question, rng), think(bad, _boxed(final)), None))
    if kind == "truncated":
        cut = max(40, int(len(reasoning) * 0.6))
        stored = reasoning[:cut]
        bad = reasoning[:int(cut * 0.8)]
        return ((stored, "", False, question, final), (reword(question, rng), "<think>\n" + bad, None))
    raise ValueError(kind)


def build_store(path: Path, n_math: int, n_code: int, per_kind: int, seed: int = 0,
                verdicts: bool = True) -> tuple[Store, list[Canary]]:
    """A store of 2 * n_math GSM8K samples, n_code MBPP samples and per_kind canaries of each kind."""
    rng = random.Random(seed)
    items = gsm8k(n_math + 4 * per_kind)
    clean, reserved = items[:n_math], items[n_math:]
    leaks = math500(per_kind)
    questions, samples, canaries = [], [], []
    for j, (q, steps, final) in enumerate(clean):
        qid = stable_hash("gsm8k", q)[:16]
        questions.append(_question(qid, q, final, "numeric"))
        samples.append(_row(f"{qid}-0", qid, 0, "\n".join(steps), _boxed(final)))
        samples.append(_row(f"{qid}-1", qid, 1, "Let me work through it.\n" + "\n".join(steps),
                            _boxed(final, "Therefore the answer is")))
    for task in mbpp(n_code):
        qid = stable_hash("mbpp", task["task_id"])[:16]
        questions.append(_question(qid, task["prompt"], None, "code", task["test_list"], source="mbpp"))
        reasoning = f"The task: {task['prompt']} I write the function and check it against the examples."
        samples.append(_row(f"{qid}-0", qid, 0, reasoning, f"```python\n{task['code']}\n```\nThis passes the tests.",
                            fmt="code_first"))
    spare = iter(reserved)
    for kind in KINDS:
        for i in range(per_kind):
            q, steps, final = next(spare) if kind != "leak" else (None, [], None)
            (reasoning, answer, closed, qtext, ref), (prompt, bad, expected) = _canary(
                kind, q, steps, final, rng, leaks[i] if kind == "leak" else None)
            qid = stable_hash(kind, qtext)[:16]
            questions.append(_question(qid, qtext, ref, "numeric" if kind != "leak" else "math",
                                       source="math" if kind == "leak" else "gsm8k"))
            clean_reasoning = "\n".join(steps) if kind != "leak" else f"Working it through gives {ref}."
            samples.append(_row(f"{qid}-0", qid, 0, clean_reasoning, _boxed(ref)))  # a clean sample of the question
            sid = f"{qid}-9"
            samples.append(_row(sid, qid, 9, reasoning, answer, closed=closed, finish="stop" if closed else "length"))
            canaries.append(Canary(kind, sid, BadCase(prompt=prompt, bad_output=bad, expected=expected, tags=[kind])))
    store = Store(path)
    store.insert("questions", pl.DataFrame(questions, schema_overrides={
        "tests": pl.List(pl.String), "subdomain": pl.String, "level": pl.Float64, "reference_answer": pl.String}))
    store.insert("samples", pl.DataFrame(samples, schema=rows.SAMPLE, strict=False))
    if verdicts:
        store_verdicts(store)
    export(store, [c.sample_id for c in canaries] + [s["sample_id"] for s in samples[::2]])
    store.insert("bad_cases", pl.DataFrame(
        [{"case_id": c.case.case_id, "prompt": c.case.prompt, "bad_output": c.case.bad_output,
          "expected": c.case.expected, "tags": c.case.tags, "model": None, "source": "canaries",
          "created_at": now()} for c in canaries], schema=rows.BAD_CASE))
    return store, canaries


def store_verdicts(store: Store) -> None:
    """The real rules through the project's verdict loop: the cheap filters, answer_match, decontam_answer."""
    from filters.decontam_answer import AnswerContamination
    from pipeline.benchmarks import index_for
    from pipeline.config_loading import load_run_config
    from pipeline.rules import pass_rules
    from pipeline.verdict_loop import run_verdicts

    config = load_run_config(None)
    run_verdicts(store, pass_rules(config, "filter"), "run-0", "filter")
    run_verdicts(store, [r for r in pass_rules(config, "verify") if r.name == "answer_match"], "run-0", "verify")
    run_verdicts(store, [AnswerContamination(index_for(config))], "run-0", "decontam")


def export(store: Store, sample_ids: list[str]) -> None:
    store.insert("exports", pl.DataFrame({"export_id": ["exp-1"], "run_id": ["run-0"], "created_at": [now()],
                                          "out_dir": ["out"], "config_hash": ["c"], "manifest": ["{}"]}))
    store.insert("selections", pl.DataFrame({"export_id": "exp-1", "sample_id": sorted(set(sample_ids)),
                                             "domain": "math", "difficulty": None, "reason": "rebalance"},
                                            schema_overrides={"difficulty": pl.Float64}))
