"""The stage contract: every stage is `run(ctx: StageContext) -> StageReport`.

    ctx.store          the DuckDB store (pipeline/store.py), open for this stage
    ctx.run            the run's state, shared by its stages (RunState): id, config, the
                       questions selected for it, the executor of verdict passes, and what is
                       built once per run (the engine, the benchmark index)
    ctx.engine         the run's synthesis/judge engine, made on first use (it loads its model
                       only when a request is sent)
    ctx.progress       live progress (a no-op outside the CLI)

A stage writes its rows itself (resumable per row) and returns its counts (JSON values, stored
in `runs.counts` under the stage's key) and notes for the run log. Wiring (which engine, which
rules, which index) is the context's, not the stage's. Stages never import Prefect:
flows/tasks.py wraps any stage in one Prefect task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.progress import NoProgress, Progress
from pipeline.store import Store
from pipeline.verdict_loop import INLINE, Executor, RuleCount, run_verdicts
from schemas.config import CurateConfig


def _quiet(message: str) -> None:
    pass


@dataclass
class StageReport:
    counts: dict = field(default_factory=dict)  # JSON values, recorded under the stage's key
    notes: list[str] = field(default_factory=list)  # messages for the run log and the terminal


@dataclass
class RunState:
    """One run as its stages share it."""
    run_id: str
    config: CurateConfig
    question_ids: list[str] | None = None  # the run's questions (None: every question in the store)
    executor: Executor = INLINE  # where verdict passes check their chunks
    say: Callable[[str], None] = _quiet  # live messages (engine loading, ...)
    built: dict[str, Any] = field(default_factory=dict)  # made once per run: engines, the benchmark index

    def provide_engine(self, engine, engine_config=None) -> None:
        """Use `engine` wherever the run asks for `engine_config` (default: the run's engine)."""
        self.built[_engine_key(engine_config or self.config.engine)] = engine


def _engine_key(engine_config) -> str:
    return f"engine:{engine_config.model_dump_json()}"


@dataclass
class StageContext:
    store: Store
    run: RunState
    progress: Progress = field(default_factory=NoProgress)
    options: dict[str, Any] = field(default_factory=dict)  # this call's stage options (e.g. the export's out dir)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def config(self) -> CurateConfig:
        return self.run.config

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """What the run builds once and its stages share."""
        if key not in self.run.built:
            self.run.built[key] = make()
        return self.run.built[key]

    @property
    def engine(self):
        return self.engine_for(self.config.engine)

    def engine_for(self, engine_config):
        """An engine per engine config (a judge rule may name its own), shared by the run."""
        from pipeline.engines.factory import make_engine

        return self.once(_engine_key(engine_config), lambda: make_engine(engine_config, announce=self.run.say))

    @property
    def benchmark_index(self):
        """The benchmarks' n-gram index, built once per run (screening and answer checks share it)."""
        from pipeline.benchmarks import index_for

        return self.once("benchmark_index", lambda: index_for(self.config))

    def judge_rule(self, name: str):
        from judges.loader import load_rule

        return load_rule(name, self.config.judges.rules_dir)

    def question_ids(self) -> list[str]:
        """The run's questions, or every question with samples when the stage runs on its own."""
        if self.run.question_ids is not None:
            return self.run.question_ids
        return self.store.frame("SELECT DISTINCT question_id FROM samples ORDER BY 1")["question_id"].to_list()

    def verdict_pass(self, stage: str) -> list[RuleCount]:
        """One verdict pass (filter, decontam, verify) with the run's rules and executor."""
        from pipeline.rules import pass_rules

        index = self.benchmark_index if stage == "decontam" and self.config.decontamination.check_answers else None
        rules = pass_rules(self.config, stage, index)
        return run_verdicts(self.store, rules, self.run_id, stage, self.run.executor,
                            chunk_rows=self.config.scaleout.chunk_rows, progress=self.progress)
