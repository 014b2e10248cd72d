"""Engine construction (orchestration only: the loader is a stand-in, no model is loaded)."""

from __future__ import annotations

from pipeline.engines.factory import LazyEngine
from schemas.chat import ChatRequest, ChatResult, Completion


class FakeEngineForOrchestrationTest:
    model_name = "fake"

    def __init__(self):
        self.calls = 0

    def chat(self, requests, on_progress=None):
        self.calls += 1
        return [ChatResult(completions=[Completion("ok", "stop", 1)]) for _ in requests]


def test_lazy_engine_loads_only_when_there_is_work():
    loads = []

    def load():
        loads.append(1)
        return FakeEngineForOrchestrationTest()

    engine = LazyEngine("some-model", load)
    assert engine.model_name == "some-model" and not engine.loaded
    assert engine.chat([]) == []
    assert loads == []  # nothing to send: nothing loaded (a resumed run skips the model)
    [result] = engine.chat([ChatRequest([{"role": "user", "content": "hi"}])])
    assert result.completions[0].text == "ok"
    engine.chat([ChatRequest([{"role": "user", "content": "again"}])])
    assert loads == [1] and engine.loaded


def test_auto_dtype_is_bfloat16_only_where_the_cpu_has_bf16_instructions():
    from pipeline.engines.vllm_local import cpu_dtype

    assert cpu_dtype("flags\t: fpu avx avx2 fma f16c") == "float32"  # AVX2 only: float32 is 3-4x faster
    assert cpu_dtype("flags\t: avx2 avx512f avx512_bf16") == "bfloat16"
    assert cpu_dtype("flags\t: avx2 amx_bf16 amx_tile") == "bfloat16"
