"""Synthesize stage: n chat samples per question, each asked for an answer format.

The format sampler (pipeline/synthesis/format_sampler.py) picks each sample's style, placement, length
band and prompt perturbation; the sample row stores them with the realized style and band.

Sample ids hash the question, the generation config and the sample index, so the stage only
generates samples that are missing: a re-run or a resumed run makes no duplicate calls.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

import polars as pl

from filters.text.format_detect import StyleDetector
from pipeline.engines.base import ChatRequest, Completion, Engine, Sampling
from pipeline.synthesis.format_sampler import FormatChoice, plan_formats
from pipeline.hashing import seed_from, stable_hash
from pipeline.progress import NoProgress, Progress
from pipeline.synthesis.prompts import build_messages, system_prompts
from pipeline.stage import StageContext, StageReport
from pipeline.store import Store, now
from schemas import rows
from schemas.config import SynthesisConfig
from schemas.formats import realized_band

# Bump when build_messages or the think handling changes what a prompt or sample looks like.
PROMPT_VERSION = 2
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

SAMPLE_SCHEMA = rows.SAMPLE


def gen_config_hash(cfg: SynthesisConfig, model: str) -> str:
    relevant = cfg.model_dump(exclude={"batch_questions"})
    return stable_hash("synthesis", PROMPT_VERSION, model, relevant)


def split_think(text: str, reasoning_field: str | None = None) -> tuple[str | None, str, str | None]:
    """(reasoning, answer, closed_by) from a native completion."""
    if reasoning_field:
        return reasoning_field.strip(), text.strip(), "model"
    match = re.search(re.escape(THINK_OPEN) + r"(.*?)" + re.escape(THINK_CLOSE), text, flags=re.S)
    if match:
        return match.group(1).strip(), text[match.end():].strip(), "model"
    if THINK_OPEN in text:  # opened and never closed: all reasoning, no answer
        return text.split(THINK_OPEN, 1)[1].strip(), "", None
    return None, text.strip(), None


@dataclass
class _Planned:
    sample_id: str
    question_id: str
    index: int
    choice: FormatChoice
    messages: list[dict]


def plan_samples(questions: pl.DataFrame, cfg: SynthesisConfig, gen_hash: str) -> list[_Planned]:
    """questions: question_id, text, domain, answer_type."""
    rows = questions.select("question_id", "text", "domain", "answer_type").rows()
    choices = plan_formats([(q, d, a) for q, _, d, a in rows], cfg, len(system_prompts(cfg)))
    planned = []
    for qid, text, _, _ in rows:
        for i in range(cfg.n):
            choice = choices[(qid, i)]
            planned.append(_Planned(stable_hash(qid, gen_hash, i), qid, i, choice, build_messages(text, choice, cfg)))
    return planned


def _record(p: _Planned, run_id: str, gen_hash: str, model: str, cfg: SynthesisConfig, *, reasoning, answer,
            closed_by, reasoning_finish, finish_reason, prompt_tokens, completion_tokens, sampling) -> dict:
    raw = answer if reasoning is None else f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{answer}"
    messages = json.dumps(p.messages, ensure_ascii=False)
    detector = _detector(tuple(cfg.custom_patterns().items()))
    return {
        "sample_id": p.sample_id, "question_id": p.question_id, "run_id": run_id, "sample_index": p.index,
        "gen_config_hash": gen_hash, "model": model, "requested_format": p.choice.style,
        "prompt_hash": stable_hash(messages, cfg.think_mode), "messages": messages, "raw_text": raw,
        "reasoning": reasoning, "answer": answer, "think_closed_by": closed_by,
        "reasoning_finish": reasoning_finish, "finish_reason": finish_reason,
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "sampling_params": json.dumps(sampling), "created_at": now(),
        "placement": p.choice.placement, "length_band": p.choice.length_band,
        "perturbation": p.choice.perturbation.model_dump_json(),
        "realized_format": detector.realized(answer), "realized_length_band": realized_band(answer),
        "reasoning_container": p.choice.reasoning_container,
    }


@lru_cache(maxsize=8)
def _detector(custom: tuple[tuple[str, str], ...]) -> StyleDetector:
    return StyleDetector(dict(custom))  # compiled once per run, not per sample


def group_samples(planned: list[_Planned]) -> list[list[_Planned]]:
    """Samples with the very same prompt share one request with n>1 (prefix and KV reuse)."""
    groups: dict[str, list[_Planned]] = {}
    for p in planned:
        groups.setdefault(json.dumps(p.messages, sort_keys=True), []).append(p)
    return list(groups.values())


def native_request(group: list[_Planned], cfg: SynthesisConfig) -> ChatRequest:
    """One request for a group of samples sharing a prompt (think_mode: native)."""
    return ChatRequest(group[0].messages, Sampling(n=len(group), temperature=cfg.temperature, top_p=cfg.top_p,
                                                   max_tokens=cfg.reasoning_max_tokens + cfg.answer_max_tokens,
                                                   seed=seed_from(group[0].sample_id)))


def _run_native(engine, groups, cfg, run_id, gen_hash, progress) -> tuple[list[dict], int]:
    requests = [native_request(g, cfg) for g in groups]
    results = engine.chat(requests, on_progress=progress.advance)
    rows, errors = [], 0
    for g, req, res in zip(groups, requests, results):
        if res.error:
            errors += len(g)
            continue
        for p, c in zip(g, res.completions):
            reasoning, answer, closed = split_think(c.text, c.reasoning)
            rows.append(_record(p, run_id, gen_hash, engine.model_name, cfg, reasoning=reasoning, answer=answer,
                                closed_by=closed, reasoning_finish=None, finish_reason=c.finish_reason,
                                prompt_tokens=res.prompt_tokens, completion_tokens=c.completion_tokens,
                                sampling=req.sampling.as_dict() | {"think_mode": "native"}))
    return rows, errors


def answer_marker(label: str) -> re.Pattern:
    """A line that opens the answer: the label, maybe in markdown emphasis or a heading, then ':' or
    the line's end ("Answer:", "**Answer:**", "### Answer")."""
    return re.compile(r"(?mi)^[#*_ \t]*" + re.escape(label) + r"[*_ \t]*(?::[*_ \t]*|$)")


def split_prompted(text: str, label: str) -> tuple[str, str] | None:
    """(reasoning, answer) at the first answer label; None when the reply has none."""
    match = answer_marker(label).search(text)
    if match is None:
        return None
    return text[:match.start()].strip(), text[match.end():].strip()


def _run_prompted(engine, groups, cfg, run_id, gen_hash, progress) -> tuple[list[dict], int]:
    layout = cfg.prompted_layout
    start = layout.reasoning_label + "\n"
    first = [ChatRequest(g[0].messages, Sampling(n=len(g), temperature=cfg.temperature, top_p=cfg.top_p,
                                                 max_tokens=cfg.reasoning_max_tokens + cfg.answer_max_tokens,
                                                 seed=seed_from(g[0].sample_id)), prefill=start)
             for g in groups]
    results = engine.chat(first, on_progress=progress.advance)
    rows, errors = [], 0
    unanswered: list[tuple[_Planned, Completion, int, ChatRequest]] = []

    def add(p, req, prompt_tokens, reasoning, answer, closed, r_finish, finish, tokens):
        sampling = req.sampling.as_dict() | {"think_mode": "prompted", "answer_max_tokens": cfg.answer_max_tokens}
        rows.append(_record(p, run_id, gen_hash, engine.model_name, cfg, reasoning=reasoning, answer=answer,
                            closed_by=closed, reasoning_finish=r_finish, finish_reason=finish,
                            prompt_tokens=prompt_tokens, completion_tokens=tokens, sampling=sampling))

    for g, req, res in zip(groups, first, results):
        if res.error:
            errors += len(g)
            continue
        for p, c in zip(g, res.completions):
            parts = split_prompted(c.text, layout.answer_label)
            if parts is None:  # no answer part: the answer label is forced below (budget forcing)
                unanswered.append((p, c, res.prompt_tokens, req))
            else:
                add(p, req, res.prompt_tokens, parts[0], parts[1], "model", "stop", c.finish_reason,
                    c.completion_tokens)
    progress.add_total(len(unanswered))
    answer_reqs = [
        ChatRequest(p.messages, Sampling(n=1, temperature=cfg.temperature, top_p=cfg.top_p,
                                         max_tokens=cfg.answer_max_tokens, seed=seed_from(p.sample_id, "answer")),
                    prefill=f"{start}{c.text.strip()}\n\n{layout.answer_label}:\n")
        for p, c, _, _ in unanswered
    ]
    for (p, c, prompt_tokens, req), ares in zip(unanswered, engine.chat(answer_reqs, on_progress=progress.advance)):
        if ares.error:
            errors += 1
            continue
        a = ares.completions[0]
        closed, r_finish = ("forced_budget", "length") if c.finish_reason == "length" else ("forced_eos", "stop")
        add(p, req, prompt_tokens, c.text.strip(), a.text.strip(), closed, r_finish, a.finish_reason,
            c.completion_tokens + a.completion_tokens)
    return rows, errors


def _run_forced(engine, groups, cfg, run_id, gen_hash, progress) -> tuple[list[dict], int]:
    think = [
        ChatRequest(g[0].messages, Sampling(n=len(g), temperature=cfg.temperature, top_p=cfg.top_p,
                                            max_tokens=cfg.reasoning_max_tokens, seed=seed_from(g[0].sample_id),
                                            stop=(THINK_CLOSE,)), prefill=THINK_OPEN + "\n")
        for g in groups
    ]
    think_results = engine.chat(think, on_progress=progress.advance)
    # Phase 2: close the reasoning (by the model or forced) and let the model answer.
    pending: list[tuple[_Planned, Completion, int, ChatRequest]] = []
    errors = 0
    for g, req, res in zip(groups, think, think_results):
        if res.error:
            errors += len(g)
            progress.advance(len(g))
            continue
        pending.extend((p, c, res.prompt_tokens, req) for p, c in zip(g, res.completions))
    answer_reqs = [
        ChatRequest(p.messages, Sampling(n=1, temperature=cfg.temperature, top_p=cfg.top_p,
                                         max_tokens=cfg.answer_max_tokens, seed=seed_from(p.sample_id, "answer")),
                    prefill=f"{THINK_OPEN}\n{c.text.strip()}\n{THINK_CLOSE}\n\n")
        for p, c, _, _ in pending
    ]
    answers = engine.chat(answer_reqs, on_progress=progress.advance)
    rows = []
    for (p, c, prompt_tokens, req), areq, ares in zip(pending, answer_reqs, answers):
        if ares.error:
            errors += 1
            continue
        a = ares.completions[0]
        if c.stop_reason == THINK_CLOSE:
            closed, r_finish = "model", "stop"
        elif c.finish_reason == "length":
            closed, r_finish = "forced_budget", "length"
        else:
            closed, r_finish = "forced_eos", "stop"
        sampling = req.sampling.as_dict() | {"think_mode": "forced", "answer_max_tokens": cfg.answer_max_tokens}
        rows.append(_record(p, run_id, gen_hash, engine.model_name, cfg, reasoning=c.text.strip(),
                            answer=a.text.strip(), closed_by=closed, reasoning_finish=r_finish,
                            finish_reason=a.finish_reason, prompt_tokens=prompt_tokens,
                            completion_tokens=c.completion_tokens + a.completion_tokens, sampling=sampling))
    return rows, errors


@dataclass
class SynthesisReport:
    planned: int
    already_done: int
    generated: int
    errors: int


def synthesize(store: Store, engine: Engine, cfg: SynthesisConfig, run_id: str, question_ids: list[str],
               progress: Progress | None = None) -> SynthesisReport:
    progress = progress or NoProgress()
    gen_hash = gen_config_hash(cfg, engine.model_name)
    questions = store.frame(
        "SELECT question_id, text, domain, answer_type FROM questions "
        "WHERE question_id IN (SELECT question_id FROM probe) ORDER BY question_id",
        probe=pl.DataFrame({"question_id": question_ids}, schema={"question_id": pl.String}),
    )
    planned = plan_samples(questions, cfg, gen_hash)
    done = store.existing_ids("samples", "sample_id", [p.sample_id for p in planned])
    todo = [p for p in planned if p.sample_id not in done]
    groups = group_samples(todo)
    total = len(groups) + (len(todo) if cfg.think_mode == "forced" else 0)
    progress.start("synthesis requests", total)
    generated = errors = 0
    run = {"forced": _run_forced, "native": _run_native, "prompted": _run_prompted}[cfg.think_mode]
    # Batches of questions: each batch is one engine pass and one store transaction.
    by_question: dict[str, list[list[_Planned]]] = {}
    for g in groups:
        by_question.setdefault(g[0].question_id, []).append(g)
    qids = list(by_question)
    for start in range(0, len(qids), cfg.batch_questions):
        batch = [g for q in qids[start:start + cfg.batch_questions] for g in by_question[q]]
        rows, errs = run(engine, batch, cfg, run_id, gen_hash, progress)
        errors += errs
        if rows:
            generated += store.insert("samples", pl.DataFrame(rows, schema=SAMPLE_SCHEMA))
    progress.done()
    return SynthesisReport(planned=len(planned), already_done=len(done), generated=generated, errors=errors)


def run(ctx: StageContext) -> StageReport:
    report = synthesize(ctx.store, ctx.engine, ctx.config.synthesis, ctx.run_id, ctx.question_ids(), ctx.progress)
    return StageReport(vars(report))
