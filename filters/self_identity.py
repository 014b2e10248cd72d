"""Self-identification and refusal phrases: "as an AI language model", "I am ChatGPT/Claude/
DeepSeek", "I can't help with that" do not belong in reasoning training data."""

from __future__ import annotations

from filters.base import PatternFilter
from filters.registry import register

_MODELS = r"(?:chatgpt|gpt-?[345o]\S*|claude|deepseek|qwen|llama|gemini|bard|mistral|copilot|smollm|grok|kimi|minimax|ernie|doubao)"
SELF_ID = "|".join([
    r"\bas an ai\b", r"\bas an? (?:ai )?(?:large )?language model\b", r"\bi(?:'m| am) an ai\b",
    rf"\bi(?:'m| am) {_MODELS}\b", rf"\bmy name is {_MODELS}\b", r"\b(?:trained|developed|created) by (?:openai|anthropic|google|deepseek|alibaba|meta|mistral|hugging ?face)\b",
    "作为一个人工智能", "作为一个ai", "我是一个人工智能", r"我是(?:chatgpt|claude|deepseek|通义千问|文心一言)",
])
REFUSAL = "|".join([
    r"\bi(?:'m| am) (?:sorry|afraid),? (?:but )?i (?:can(?:'|no)t|won't|am unable to)\b",
    r"\bi (?:can(?:'|no)t|won't) (?:help|assist|provide|comply) with\b", r"\bi(?:'m| am) (?:not able|unable) to (?:help|assist)\b",
    "我不能帮助", "抱歉，我无法",
])


@register
class SelfIdentityFilter(PatternFilter):
    name = "self_identity"
    version = 1
    patterns = [(SELF_ID, "self-identification: '{}'"), (REFUSAL, "refusal: {}")]
