"""Training records rendered with the target model's chat template, and checked.

A record passes when: no message carries one of the tokenizer's special tokens as text (it
would be read as a real control token in training); the reasoning survives rendering (a
think_tags record has exactly one <think>...</think> block at the start of its assistant turn
and the rendered text still holds it; a reasoning_field record has no think tag in its content
and non-empty reasoning_content); and the rendered record fits max_seq_len tokens. A failure
names its reason, and the export leaves the record out (table export_rejects).
"""

from __future__ import annotations

from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str | None
    tokens: int | None


class TargetTemplate:
    """A tokenizer with its chat template (an HF folder, or the embedded default's alias)."""

    def __init__(self, tokenizer: str, max_seq_len: int):
        from transformers import AutoTokenizer

        from pipeline.models import resolve_model

        self.name = tokenizer
        self.tok = AutoTokenizer.from_pretrained(resolve_model(tokenizer))
        if not self.tok.chat_template:
            raise ValueError(f"export.tokenizer {tokenizer!r} has no chat template")
        self.max_seq_len = max_seq_len
        self.specials = sorted({t for t in self.tok.all_special_tokens if t}, key=len, reverse=True)
        # Templates that know reasoning_content render it; others get it folded back into content.
        self.knows_reasoning = "reasoning_content" in self.tok.chat_template

    def _for_template(self, messages: list[dict]) -> list[dict]:
        out = []
        for m in messages:
            r = m.get("reasoning_content")
            if r and not self.knows_reasoning:
                m = {"role": m["role"], "content": f"{THINK_OPEN}\n{r}\n{THINK_CLOSE}\n\n{m['content']}"}
            out.append({k: v for k, v in m.items() if v is not None})
        return out

    def render(self, messages: list[dict]) -> str:
        return self.tok.apply_chat_template(self._for_template(messages), tokenize=False)

    def _lengths(self, texts: list[str]) -> list[int]:
        # The Rust tokenizer's encodings give lengths without building Python lists of ids.
        backend = getattr(self.tok, "backend_tokenizer", None)
        if backend is not None:
            return [len(e) for e in backend.encode_batch(texts, add_special_tokens=False)]
        return [len(ids) for ids in self.tok(texts, add_special_tokens=False)["input_ids"]]

    def check_many(self, records: list[list[dict]]) -> list[CheckResult]:
        """One result per record (a record: its messages). Tokenizes in one batch."""
        first = [_content_problem(m, self.specials) for m in records]
        rendered = [self.render(m) if p is None else "" for m, p in zip(records, first)]
        lengths = self._lengths(rendered)
        results = []
        for messages, problem, text, n in zip(records, first, rendered, lengths):
            if problem is None:
                problem = _survived(messages, text)
            if problem is None and n > self.max_seq_len:
                problem = f"too long: {n} tokens > max_seq_len {self.max_seq_len}"
            results.append(CheckResult(problem is None, problem, n if text else None))
        return results


def _content_problem(messages: list[dict], specials: list[str]) -> str | None:
    for m in messages:
        for field in ("content", "reasoning_content"):
            text = m.get(field) or ""
            leaked = next((s for s in specials if s in text), None)
            if leaked:
                return f"special token {leaked} in {m['role']} {field}"
    assistant = messages[-1]
    content, reasoning = assistant.get("content") or "", assistant.get("reasoning_content")
    if reasoning is not None:
        if THINK_OPEN in content or THINK_CLOSE in content:
            return "think tag in the content of a reasoning_content record"
        if not reasoning.strip():
            return "empty reasoning_content"
        return None
    if not content.startswith(THINK_OPEN) or content.count(THINK_OPEN) != 1 or content.count(THINK_CLOSE) != 1 \
            or content.index(THINK_CLOSE) < content.index(THINK_OPEN):
        return "think tags not intact (one <think>...</think> block at the start of the answer)"
    return None


def _survived(messages: list[dict], rendered: str) -> str | None:
    """The template must not drop or rewrite the reasoning (some strip it from past turns)."""
    assistant = messages[-1]
    kept = assistant.get("reasoning_content") or assistant["content"].split(THINK_CLOSE)[0]
    if kept.strip() and kept.strip() not in rendered:
        return "the chat template dropped the reasoning"
    return None
