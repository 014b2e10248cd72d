"""How stages report progress without knowing who draws it (rich in the CLI, nothing in tests)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def add_total(self, n: int) -> None: ...  # more work found on the way (e.g. forced answers)
    def done(self) -> None: ...


class NoProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def add_total(self, n: int) -> None:
        pass

    def done(self) -> None:
        pass
