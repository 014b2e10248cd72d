"""The run configuration (YAML), validated by pydantic.

Every section has working defaults, so an empty config runs the embedded default: the
Qwen2.5-Coder-1.5B-Instruct model on the in-process vLLM CPU engine.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.difficulty import DifficultyConfig
from schemas.domains import DomainConfig
from schemas.formats import FORMATS, AnswerFormat, get_format
from schemas.perturbation import PerturbationConfig
from schemas.scaleout import ScaleoutConfig


class _Strict(BaseModel):
    # A misspelled key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class FieldMap(_Strict):
    """Where a pool's records keep each part of a question (dotted paths allowed)."""

    question: str = "question"
    answer: str | None = "answer"
    tests: str | None = None
    domain: str | None = "domain"  # per-record domain, used when present
    subdomain: str | None = None
    level: str | None = None  # the source's difficulty (e.g. MATH level 1-5), see PoolConfig.level_max


class PoolConfig(_Strict):
    path: str
    source: str | None = None  # defaults to the file name
    domain: str | None = None  # the pool's domain when records do not carry one
    fields: FieldMap = FieldMap()
    # A Jinja template over the raw record, for questions that need several fields
    # (e.g. MBPP: "{{ prompt }}\nYour code should pass this test:\n{{ test_list[0] }}").
    # With records_key, the file's top-level scalar fields are available as pool_meta.
    question_template: str | None = None
    records_key: str | None = None  # JSON object files: the key holding the list of records
    # Per-record domain values mapped to ours (e.g. TheoremQA field "Physics" -> "science").
    domain_map: dict[str, str] | None = None
    answer_extract: Literal["plain", "gsm8k", "bigbench"] = "plain"
    answer_type: Literal["math", "numeric", "choice", "text", "code"] | None = None
    level_max: float | None = None  # fields.level / level_max = level in [0, 1]
    split: str | None = None  # HF datasets folders with several splits
    # This pool's share of its domain's questions when a run takes `limit` of them: when any pool
    # of a domain sets a weight, each takes weight / (the domain's total; unset = 1) of the picks;
    # otherwise picks are uniform over the domain's questions. 0: read and screened (its questions
    # still count for dedup and decontamination) but never drawn for synthesis.
    weight: float | None = Field(default=None, ge=0)
    # Longer questions are quarantined (field: the question's): they would not fit the model's
    # context with a reply (engine.max_model_len 4096 tokens), and one 5 MB row must not stall a
    # run. The longest shipped question has about 5,200 characters.
    max_question_chars: int = Field(default=20_000, gt=0)


class EngineConfig(_Strict):
    kind: Literal["vllm", "openai"] = "vllm"
    # A shipped model's alias (pipeline/models: "qwen2.5-coder-1.5b-instruct", the embedded default, or
    # "smollm2-135m-instruct"; converted once from their PyPI packages), an HF model folder (vllm) or
    # the served model name (openai).
    model: str = "qwen2.5-coder-1.5b-instruct"
    # vllm: passed to vllm.LLM (e.g. tensor_parallel_size, gpu_memory_utilization).
    # auto: bfloat16 where the CPU has bf16 instructions (AVX512-BF16, AMX), else float32, which is
    # 3-4x faster on AVX2-only CPUs (pipeline/engines/vllm_local.py); on a GPU, vLLM's own choice.
    dtype: str = "auto"
    max_model_len: int = 4096
    enforce_eager: bool = True
    seed: int = 0
    vllm_args: dict = Field(default_factory=dict)
    # openai: any OpenAI-compatible server (vLLM, SGLang, TGI, a hosted API), or several replicas
    # of one model (base_urls): each request goes to the least busy one, a failing one is skipped.
    base_url: str | None = None
    base_urls: list[str] = Field(default_factory=list)
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 16  # requests in flight per server
    timeout_s: float = 120.0
    max_retries: int = 4
    # Unreachable or overloaded server: keep retrying (with backoff) until it has failed this long,
    # then fail the run (a resume redoes what is missing). 120 s covers a server restart.
    retry_wait_s: float = Field(default=120.0, ge=0)
    # vLLM servers accept continue_final_message (needed by think_mode: forced); others do not.
    server_supports_prefill: bool = True

    @model_validator(mode="after")
    def _one_way_to_name_servers(self) -> "EngineConfig":
        if self.base_url and self.base_urls:
            raise ValueError("set base_url (one server) or base_urls (several), not both")
        if len(set(self.base_urls)) != len(self.base_urls):
            raise ValueError("base_urls lists a server twice")
        return self

    @property
    def servers(self) -> list[str]:
        return list(self.base_urls) or ([self.base_url] if self.base_url else [])


class CustomFormat(_Strict):
    """An answer style defined in config, besides the built-in catalog (schemas/formats.py)."""

    name: str
    instruction: str
    pattern: str  # regex (multiline) an answer in this style contains: its detector
    fixed_layout: bool = False  # true: no placement / length band is asked for

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return value


class FormatExclusion(_Strict):
    """Styles never asked for where domain and answer type match (None: any)."""

    styles: list[str]
    domains: list[str] | None = None
    answer_types: list[str] | None = None


# Code answers must carry a code block for the tests; a choice answer gains nothing from a table.
DEFAULT_EXCLUSIONS = [
    {"styles": ["code_first"], "answer_types": ["math", "numeric", "choice", "text"]},
    {"styles": ["prose", "boxed", "table", "json_object", "terse_final"], "answer_types": ["code"]},
    {"styles": ["table"], "answer_types": ["choice"]},
]


class FormatMix(_Strict):
    """How the sampler spreads styles (pipeline/synthesis/format_sampler.py): balanced per domain."""

    # domain -> style -> relative weight; styles not listed weigh 1 (0 removes a style there).
    weights: dict[str, dict[str, float]] = {}
    exclusions: list[FormatExclusion] = Field(default_factory=lambda: [FormatExclusion(**e) for e in DEFAULT_EXCLUSIONS])
    placements: dict[Literal["last", "first"], float] = {"last": 3.0, "first": 1.0}
    length_bands: dict[Literal["any", "short", "long"], float] = {"any": 2.0, "short": 1.0, "long": 1.0}
    # How the exported record carries the reasoning: <think> tags inside the assistant content, or
    # a separate reasoning_content field (the template perturbation of the chat record).
    reasoning_containers: dict[Literal["think_tags", "reasoning_field"], float] = {
        "think_tags": 3.0, "reasoning_field": 1.0}
    # The overfit alarm: fires when one realized style holds more than this share of a domain's
    # samples (with at least alarm_min_samples samples).
    alarm_share: float = Field(default=0.5, gt=0, le=1)
    alarm_min_samples: int = Field(default=20, ge=1)

    @field_validator("placements", "length_bands", "reasoning_containers")
    @classmethod
    def _positive(cls, value: dict) -> dict:
        if not value or any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("needs at least one non-negative weight, and a positive total")
        return value


class PromptedLayout(_Strict):
    """think_mode: prompted. The prompt asks a non-reasoning instruct model to reason under one label
    and answer under another; the reply is split at the answer label (pipeline/stages/synthesize.py)."""

    # {format}: the requested style's instruction again, for the answer part (the 1.5B default model
    # followed the style in 15 of 24 samples with it, 9-11 of 24 without: bench notes in the README).
    instruction: str = ("First write 'Reasoning:' and think step by step. Then write 'Answer:' on a line of its "
                        "own; below it, {format}")
    reasoning_label: str = "Reasoning:"  # the assistant turn is started with it
    # A line starting with this word (markdown emphasis or a heading allowed) and then ':' or the line's end.
    answer_label: str = "Answer"


class SynthesisConfig(_Strict):
    n: int = Field(default=2, ge=1, le=64)
    temperature: float = 0.7
    # 1.0: vLLM CPU sorts the whole vocabulary per sequence per step for top_p < 1; 0.95 made
    # decoding 1.43x slower (bench/sampling_cost.py), and temperature 0.7 keeps the tail small.
    top_p: float = 1.0
    seed: int = 0
    custom_formats: list[CustomFormat] = []  # (before formats: its validator reads them)
    formats: list[str] = Field(default_factory=lambda: list(FORMATS))  # styles in the mix
    mix: FormatMix = FormatMix()
    perturbation: PerturbationConfig = PerturbationConfig()
    # The base system prompt (perturbation may swap it for a variant or none; see schemas/perturbation.py).
    # (The reasoning container is the think mode's business: forced and native use <think> tags,
    # prompted its layout instruction.)
    system_prompt: str = "You are a careful reasoner. Think step by step before you answer."
    # How reasoning is elicited (bench/elicitation.py measures them side by side):
    # prompted: for non-reasoning instruct models (the default model): the prompt asks for a
    #   "Reasoning:" part, then an "Answer:" part (prompted_layout); one generation, split at the
    #   answer label; when the model writes none, the answer label is forced and the model answers.
    # native: the model writes <think>...</think> (or the server returns a reasoning field).
    # forced: the pipeline opens <think>, stops at </think>, EOS or the reasoning budget, then
    #   closes it and lets the model write the answer (s1-style budget forcing; SmolLM2 never
    #   closes </think> on its own).
    think_mode: Literal["prompted", "native", "forced"] = "prompted"
    prompted_layout: PromptedLayout = PromptedLayout()
    reasoning_max_tokens: int = 384
    answer_max_tokens: int = 256
    batch_questions: int = 32  # questions per engine call and per store transaction

    def catalog(self) -> dict[str, AnswerFormat]:
        """Built-in styles plus the config's own."""
        return _catalog(self.custom_formats)

    def custom_patterns(self) -> dict[str, str]:
        """Config-defined styles -> their detecting regex (for filters.text.format_detect.StyleDetector)."""
        return {c.name: c.pattern for c in self.custom_formats}

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str], info) -> list[str]:
        if not value:
            raise ValueError("at least one answer format is needed")
        catalog = _catalog(info.data.get("custom_formats", []))
        for name in value:
            get_format(name, catalog)
        return value

    @model_validator(mode="after")
    def _known_mix_formats(self) -> "SynthesisConfig":
        catalog = self.catalog()
        named = {"mix.exclusions": [s for e in self.mix.exclusions for s in e.styles],
                 "mix.weights": [s for w in self.mix.weights.values() for s in w]}
        for where, names in named.items():
            unknown = sorted(set(names) - set(catalog))
            if unknown:
                raise ValueError(f"{where}: unknown answer format(s) {unknown}; known: {sorted(catalog)}")
        return self


def _catalog(custom: list[CustomFormat]) -> dict[str, AnswerFormat]:
    return FORMATS | {c.name: AnswerFormat(**c.model_dump()) for c in custom}


class DatatroveFilter(_Strict):
    """A datatrove filter run as one of our rules (filters/datatrove_adapter.py)."""

    cls: str  # a class in datatrove.pipeline.filters, e.g. GopherRepetitionFilter
    args: dict = Field(default_factory=dict)
    text: Literal["raw_text", "reasoning", "answer"] = "raw_text"
    name: str | None = None  # rule name in verdicts; default datatrove_<cls in snake case>
    version: int = 1

    def rule_name(self) -> str:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", self.cls.removesuffix("Filter")).lower()
        return self.name or f"datatrove_{snake}"


class FilterConfig(_Strict):
    """The rules of the filter, decontam and verify passes. Every other key is a rule's name
    with its parameters, e.g. `repetition: {max_dup_line_frac: 0.2}`, `code_tests: {timeout_s: 5}`;
    each rule declares them once, as its Params model (filters/base.py); the config loader
    checks them against it (pipeline/rules.py)."""

    model_config = ConfigDict(extra="allow")

    disabled: list[str] = []  # names of rules not to run
    datatrove: list[DatatroveFilter] = []
    # Modules with more rules (@register'd SampleFilter classes), imported before the rules
    # are built; the rules in filters/ are found without being listed.
    modules: list[str] = []

    def params_for(self, rule: str) -> dict | None:
        """The config's parameters of one rule (None: not set, the rule's defaults)."""
        return (self.model_extra or {}).get(rule)


class BenchmarkFileConfig(_Strict):
    """A benchmark to decontaminate against, besides the shipped ones (data/benchmarks)."""

    path: str  # .jsonl, .jsonl.gz, .json (a list, or records_key), .json.gz, .parquet
    text_field: str = "question"  # the benchmark question / prompt (dotted paths allowed)
    name: str | None = None  # benchmark name in verdicts; default: the file name without suffixes
    solution_field: str | None = None  # reference solution text, checked against generated answers
    id_field: str | None = None  # item id; default: the record number (1-based)
    records_key: str | None = None  # JSON object files: the key holding the list of records


class DecontaminationConfig(_Strict):
    # The shipped benchmarks (math500, aime24, amc23, gsm8k_test, humaneval): all, none, or some.
    shipped: bool | list[str] = True
    benchmarks: list[BenchmarkFileConfig] = []  # paths relative to the config file
    check_answers: bool = True  # also check generated answers (rule decontam_answer)


class DedupConfig(_Strict):
    enabled: bool = True
    near: bool = True  # MinHash near duplicates besides exact ones
    # Sources whose questions are templated minimal pairs (one word changed is another question):
    # exact dedup only. fnmatch patterns on the pool's source name.
    exact_only_sources: list[str] = ["bigbench-*"]


class JudgeConfig(_Strict):
    rules: list[str] = ["logical_completeness"]  # names of YAML rules, or paths to YAML files
    rules_dir: str | None = None  # extra folder of rule YAMLs (besides the built-in ones)
    max_parse_retries: int = 2
    batch_size: int = 64
    # Prompt + completion tokens all judge rules of one run may spend; None: no limit. When it
    # runs out, judging stops between batches and the rest is listed in the judge_pending view.
    token_budget: int | None = Field(default=None, ge=1)


DifficultyBand = Literal["easy", "medium", "hard"]


class RebalanceConfig(_Strict):
    targets: dict[str, float] = {"math": 0.4, "code": 0.2, "science": 0.2, "logic": 0.2}
    # best_effort: fill each domain up to its share of max_samples and report shortfalls.
    # strict: shrink the total until every domain meets its exact share.
    mode: Literal["best_effort", "strict"] = "best_effort"
    max_samples: int = 10000
    max_per_question: int = 2
    seed: int = 0
    # Which kept samples a domain takes first (difficulty 0 easy .. 1 hard):
    # hardest: by difficulty, hardest first. power_law: seeded draw weighted by
    # (difficulty rank)^-power_law_alpha, so hard questions dominate but easier ones still appear.
    # pass_rate_band: questions whose pass rate lies in pass_rate_band first (difficulty
    # 1 - pass rate), then the rest by distance to the band.
    prefer: Literal["hardest", "power_law", "pass_rate_band"] = "hardest"
    power_law_alpha: float = Field(default=1.0, gt=0)
    pass_rate_band: tuple[float, float] = (0.1, 0.6)
    # Optional mixes inside each domain's quota (fractions summing to 1): by difficulty band
    # (edges on difficulty: easy < band_edges[0] <= medium < band_edges[1] <= hard) and by the
    # requested answer style. Filled greedily in preference order; unmet parts fall back to the
    # next preferred samples and are reported in the selection reasons.
    difficulty_targets: dict[DifficultyBand, float] | None = None
    band_edges: tuple[float, float] = (1 / 3, 2 / 3)
    style_targets: dict[str, float] | None = None

    @model_validator(mode="after")
    def _fractions(self) -> "RebalanceConfig":
        for name, mix in (("targets", self.targets), ("difficulty_targets", self.difficulty_targets),
                          ("style_targets", self.style_targets)):
            if mix is None:
                continue
            total = sum(mix.values())
            if any(v < 0 for v in mix.values()) or abs(total - 1.0) > 1e-6:
                raise ValueError(f"rebalance.{name} must be non-negative and sum to 1 (got {total:g})")
        lo, hi = self.pass_rate_band
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"rebalance.pass_rate_band must be 0 <= low <= high <= 1 (got {lo}, {hi})")
        if not 0 < self.band_edges[0] < self.band_edges[1] < 1:
            raise ValueError(f"rebalance.band_edges must be increasing inside (0, 1) (got {self.band_edges})")
        return self


class ExportConfig(_Strict):
    shard_rows: int = Field(default=5000, ge=1)
    file_format: Literal["parquet", "jsonl"] = "parquet"
    # The target model's tokenizer and chat template the records are checked against: "synthesis"
    # (the synthesis model's own: engine.model, a shipped alias or an HF folder), another HF
    # folder or shipped alias; None skips the checks.
    tokenizer: str | None = "synthesis"
    max_seq_len: int = Field(default=4096, ge=16)
    # Where the reasoning goes: each sample's own container, or one for the whole export.
    reasoning: Literal["per_sample", "think_tags", "reasoning_field"] = "per_sample"


class AgenticExportConfig(_Strict):
    """How kept trajectories become training records (pipeline/export/traces.py): the history
    policy and where the reasoning goes (pipeline/agentic/export.py chat_record), the render-time
    renaming rate, and the rebalance per environment (best effort, as for samples)."""

    # interleaved: every assistant turn keeps its thinking; drop_before_last_user: turns before the
    # last user turn lose it (as some chat templates do).
    history: Literal["interleaved", "drop_before_last_user"] = "interleaved"
    # fields: `reasoning_content` and `reasoning` keys (servers renamed it, so both); think_tags:
    # <think>...</think> before the content; both.
    reasoning_in: Literal["fields", "think_tags", "both"] = "fields"
    rename_rate: float = Field(default=0.5, ge=0, le=1)  # trajectories whose tools are renamed at export
    # Target share per environment (name@version -> fraction, summing to 1); None: even over the
    # environments that have trajectories.
    environment_targets: dict[str, float] | None = None
    max_traces: int = Field(default=10000, ge=0)
    max_per_task: int = Field(default=2, ge=1)         # of a task's k rollouts, at most this many exported

    @field_validator("environment_targets")
    @classmethod
    def _targets(cls, targets: dict[str, float] | None) -> dict[str, float] | None:
        if targets is None:
            return None
        bad = sorted(e for e in targets if not re.match(r"^[a-z][a-z0-9_]*@[0-9]+$", e))
        if bad:
            raise ValueError(f"environment_targets: keys are name@version (e.g. shop_db@1), got {bad}")
        total = sum(targets.values())
        if any(v < 0 for v in targets.values()) or abs(total - 1.0) > 1e-6:
            raise ValueError(f"environment_targets must be non-negative and sum to 1 (got {total:g})")
        return targets


class AgenticConfig(_Strict):
    """Agentic traces (issue 16; pipeline/stages/agentic.py): tasks in tool environments, rolled out
    on the run's engine, verified by outcome, checked by the trace rules. Off unless enabled."""

    enabled: bool = False
    db_questions: int = Field(default=8, ge=0)      # generated shop_db questions (shop_db@1)
    math_questions: int = Field(default=8, ge=0)    # the run's math questions, with the calculator
    code_questions: int = Field(default=8, ge=0)    # the run's code questions with plain asserts, with Python
    math_tools: list[Literal["evaluate", "simplify", "solve"]] = Field(  # calculator tools a math task may call
        default=["evaluate", "simplify", "solve"], min_length=1)
    rollouts_per_task: int = Field(default=1, ge=1, le=16)  # k rollouts of a task: its pass@k
    seed: int = 0
    max_steps: int = Field(default=6, ge=1)         # tool calls per rollout
    max_tokens: int = Field(default=384, ge=16)     # per turn
    temperature: float = 0.7
    stop: list[str] = ["<tool_response>"]           # a small model writes the tool's answer itself
    think_prefill: str | None = "<think>\n"         # every turn starts thinking; null: the model chooses
    # How tools reach the model: the chat template's own `tools` (Qwen2.5: Hermes <tool_call>), or
    # documented in the system prompt (a template without tools, SmolLM2's); auto: probe the template.
    prompt_mode: Literal["auto", "chat_template", "system_prompt"] = "auto"
    call_syntaxes: list[Literal["openai_json", "hermes", "xml_invoke", "pythonic"]] = ["hermes"]  # system_prompt
    tool_docs: list[Literal["json_schema", "python", "xml"]] = ["json_schema", "python", "xml"]    # system_prompt
    transient_error_rate: float = Field(default=0.3, ge=0, le=1)  # rollouts whose one tool call fails once
    max_in_flight: int = Field(default=32, ge=1)    # rollouts open at once
    tool_workers: int = Field(default=4, ge=1)      # threads running tool calls
    store_every: int = Field(default=16, ge=1)      # finished rollouts per store transaction
    disabled_rules: list[str] = []                   # trace rules not to run
    # The perturbation overfit alarm per axis (pipeline/agentic/coverage.py), as synthesis.mix's for styles:
    # one value's share above alarm_share (and above what the config's own draw explains) over at
    # least alarm_min_samples trajectories.
    alarm_share: float = Field(default=0.5, gt=0, le=1)
    alarm_min_samples: int = Field(default=20, ge=1)
    export: AgenticExportConfig = AgenticExportConfig()  # the rebalance-export stage's trace shards


class CurateConfig(_Strict):
    pools: list[PoolConfig] = Field(default_factory=list)
    limit: int | None = None  # questions per run, spread evenly over domains
    selection_seed: int = 0
    engine: EngineConfig = EngineConfig()
    domains: DomainConfig = DomainConfig()
    synthesis: SynthesisConfig = SynthesisConfig()
    decontamination: DecontaminationConfig = DecontaminationConfig()
    dedup: DedupConfig = DedupConfig()
    filters: FilterConfig = FilterConfig()
    judges: JudgeConfig = JudgeConfig()
    difficulty: DifficultyConfig = DifficultyConfig()
    rebalance: RebalanceConfig = RebalanceConfig()
    export: ExportConfig = ExportConfig()
    scaleout: ScaleoutConfig = ScaleoutConfig()
    agentic: AgenticConfig = AgenticConfig()

    @model_validator(mode="after")
    def _tokenizer_known(self) -> "CurateConfig":
        if self.export.tokenizer == "synthesis" and self.engine.kind == "openai":
            raise ValueError(f"export.tokenizer: 'synthesis' (the synthesis model's tokenizer) needs the model on "
                             f"this machine, but engine.model {self.engine.model!r} is served over HTTP; name "
                             "its HF tokenizer folder, or null to skip the chat-template checks")
        return self

    @model_validator(mode="after")
    def _style_targets_known(self) -> "CurateConfig":
        unknown = sorted(set(self.rebalance.style_targets or {}) - set(self.synthesis.catalog()))
        if unknown:
            raise ValueError(f"rebalance.style_targets: unknown answer format(s) {unknown}")
        return self

    def export_tokenizer(self) -> str | None:
        """The tokenizer the export checks records against: export.tokenizer, with "synthesis"
        resolved to the synthesis model (a shipped alias or an HF folder; see _tokenizer_known)."""
        return self.engine.model if self.export.tokenizer == "synthesis" else self.export.tokenizer

    def config_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
