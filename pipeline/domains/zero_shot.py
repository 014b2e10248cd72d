"""Zero-shot domain classification by an LLM over the taxonomy's descriptions.

The kNN (pipeline/domains/knn.py) knows the labelled pools' sources, not the domains: exam
questions from other sources, and questions that belong to no domain, fool it. Here the model
reads one description per top-level domain ("other" included) and answers with one domain name,
constrained to the list (structured outputs' choice; version 1 asked for JSON, and the engine's
compact JSON grammar turned the 1.5B model's answer into "math" for almost any question). The
prompt is shared by every question, so vLLM's prefix cache computes it once.
"""

from __future__ import annotations

import math

import polars as pl

from judges.ask import send_warm
from pipeline.progress import NoProgress, Progress
from schemas.chat import ChatBackend, ChatRequest, Sampling

PROMPT_VERSION = 3  # bump when system_prompt or request changes what the model is asked (3: worked examples)
MAX_QUESTION_CHARS = 1500  # the head of a long question says what it is about
TOP_K = 10  # log probabilities per generated token: enough to see every domain's first token
_BATCH = 256


def system_prompt(descriptions: dict[str, str], examples: list[tuple[str, str]] = ()) -> str:
    listed = "\n".join(f"- {name}: {text.strip()}" for name, text in descriptions.items())
    shown = "".join(f"\nQuestion:\n{q.strip()}\nDomain: {d}\n" for q, d in examples)
    return ("You sort questions by subject. Read the question and name the one domain it belongs to. "
            "Judge by what the question asks about, not by its format (multiple choice, word problem, code). "
            f"The domains:\n{listed}\n"
            + (f"\nExamples:\n{shown}\n" if examples else "")
            + "Reply with the domain's name only, one of: " + ", ".join(descriptions) + ".")


def request(text: str, descriptions: dict[str, str], examples: list[tuple[str, str]] = ()) -> ChatRequest:
    question = text.strip()
    if len(question) > MAX_QUESTION_CHARS:
        question = question[:MAX_QUESTION_CHARS] + " ..."
    return ChatRequest([{"role": "system", "content": system_prompt(descriptions, examples)},
                        {"role": "user", "content": f"Question:\n{question}"}],
                       Sampling(n=1, temperature=0.0, top_p=1.0, max_tokens=8, seed=0, logprobs=TOP_K),
                       choice=tuple(descriptions))


def confidence(top_logprobs: list[dict[str, float]] | None, answer: str, domains: list[str]) -> float | None:
    """The model's probability of its answer among the domains: at the first generated token that
    starts a domain name, p(the answer's token) / p(any domain's token). None when not seen."""
    for step in top_logprobs or []:
        mass: dict[str, float] = {}
        for token, logprob in step.items():
            piece = token.strip().strip('"').lower()
            if len(piece) < 2:
                continue
            for d in domains:
                if d.startswith(piece):
                    mass[d] = mass.get(d, 0.0) + math.exp(logprob)
        if mass:
            return mass.get(answer, 0.0) / sum(mass.values())
    return None


def parse(text: str, domains: list[str]) -> str | None:
    """The domain named (an unconstrained server may add quotes, case or a full stop), else None."""
    value = text.strip().strip('"\'.').strip().lower()
    return value if value in domains else None


class ZeroShotClassifier:
    def __init__(self, engine: ChatBackend, descriptions: dict[str, str], examples: list[tuple[str, str]] = ()):
        self.engine = engine
        self.descriptions = descriptions
        self.examples = list(examples)

    def classify(self, texts: list[str], progress: Progress | None = None) -> pl.DataFrame:
        """domain (None when the reply did not parse), detail per text."""
        progress = progress or NoProgress()
        progress.start("domains: zero-shot", len(texts))
        domains = list(self.descriptions)
        out: dict[str, list] = {"domain": [], "confidence": [], "detail": []}
        for start in range(0, len(texts), _BATCH):
            replies = send_warm(self.engine, [request(t, self.descriptions, self.examples) for t in texts[start:start + _BATCH]])
            for reply in replies:
                if reply.error:
                    out["domain"].append(None)
                    out["confidence"].append(None)
                    out["detail"].append(f"engine error: {reply.error}"[:200])
                    continue
                c = reply.completions[0]
                domain = parse(c.text, domains)
                out["domain"].append(domain)
                out["confidence"].append(confidence(c.top_logprobs, domain, domains) if domain else None)
                out["detail"].append(f"zero-shot by {self.engine.model_name}" if domain
                                     else f"unparsable reply {c.text[:80]!r}")
            progress.advance(len(replies))
        progress.done()
        return pl.DataFrame(out, schema={"domain": pl.String, "confidence": pl.Float64, "detail": pl.String})
