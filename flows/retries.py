"""Task retries for engine errors only.

A model server that drops connections, times out or restarts is worth another attempt (the stages
resume at row level, so a retry redoes only what is missing). A config error, a bad rule or a
locked database fails the same way every time: no retry, the run fails at once and says why."""

from __future__ import annotations

# Matched by name (importing the engines here would cost seconds in every process): the vLLM
# engine core died or could not generate; the OpenAI-compatible server kept failing past the
# engine's own retries (pipeline/engines/openai_http.py).
_ENGINE_ERROR_NAMES = {"EngineDeadError", "EngineGenerateError", "EngineUnavailableError"}


def _engine_error_types() -> tuple[type[BaseException], ...]:
    import httpx
    import openai

    # ConnectionError and TimeoutError cover sockets and any engine error raised as one of them.
    return (ConnectionError, TimeoutError, httpx.TransportError, openai.APIConnectionError,
            openai.InternalServerError, openai.RateLimitError)


def is_engine_error(exc: BaseException | None) -> bool:
    """True when `exc`, or an exception it was raised from, comes from the model backend."""
    types = _engine_error_types()
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, types) or type(exc).__name__ in _ENGINE_ERROR_NAMES:
            return True
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return False


def retry_on_engine_errors(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry a failed task run only for engine errors."""
    if isinstance(state.data, BaseException):  # the engine puts the task's exception here
        return is_engine_error(state.data)
    try:
        state.result()
    except Exception as exc:
        return is_engine_error(exc)
    return False


# Options for tasks that call a model: two more attempts, after 10 s and 60 s.
ENGINE_RETRIES = dict(retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_on_engine_errors)
