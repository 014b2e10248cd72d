"""One interface for every model backend: a batch of chat requests in, results out."""

from __future__ import annotations

from abc import ABC, abstractmethod

from schemas.chat import ChatBackend, ChatRequest, ChatResult, Completion, ProgressFn, Sampling

__all__ = ["ChatRequest", "ChatResult", "Completion", "Engine", "ProgressFn", "Sampling"]


class Engine(ChatBackend, ABC):
    """`chat` returns one ChatResult per request, in order; one failed request sets its
    `error` and never costs the rest of the batch."""

    model_name: str

    @abstractmethod
    def chat(self, requests: list[ChatRequest], on_progress: ProgressFn | None = None) -> list[ChatResult]:
        ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
