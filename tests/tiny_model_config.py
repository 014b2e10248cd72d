"""Config pieces that let the 135M model's text reach the judge and the shards in end-to-end
tests (tests/flows/test_e2e.py, tests/kill_harness.py): it follows none of the built-in answer styles
reliably and its reasoning is short and repetitive, so the shipped limits would drop everything."""

from __future__ import annotations

from pipeline.models import SMALL_MODEL

# Two config-defined styles whose detectors its answers pass.
CUSTOM_FORMATS = [
    {"name": "free_text", "instruction": "After the reasoning, write the answer.", "pattern": r"\w"},
    {"name": "one_paragraph", "instruction": "After the reasoning, answer in one paragraph.", "pattern": r"\w"},
]


def lenient_filters() -> dict:
    """Every cheap rule runs and writes its verdict, with limits the 135M model's text passes."""
    return {
        "length": {"default": {"min_reasoning_chars": 1}},
        "repetition": {k: 1.0 for k in ("max_dup_line_frac", "max_dup_para_frac", "max_top_2gram_frac",
                                         "max_top_3gram_frac", "max_top_4gram_frac", "max_dup_10gram_frac")}
        | {"max_repeated_span_words": 100000},
        "redundancy": {"min_markers": 100000, "max_repeated_openings": 1.0, "max_after_answer_share": 1.0},
        "completeness": {"min_chars_at_level_0": 0, "min_chars_at_level_1": 0},
        "language": {"max_second_script_share": 1.0, "min_chars": 100000},
    }


def use_custom_formats(synthesis: dict) -> None:
    synthesis["custom_formats"] = [dict(f) for f in CUSTOM_FORMATS]
    synthesis["formats"] = [f["name"] for f in CUSTOM_FORMATS]


def use_small_model(config: dict, engine: dict | None = None) -> None:
    """The shipped default config on the 135M model: its engine (or `engine`, e.g. an OpenAI server
    serving it), forced thinking (it never closes </think> itself), its tokenizer for the export."""
    config["engine"] = engine or {"kind": "vllm", "model": SMALL_MODEL}
    config["synthesis"]["think_mode"] = "forced"
    config["export"] = {**config.get("export", {}), "tokenizer": SMALL_MODEL}
