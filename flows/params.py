"""Flow parameters as pydantic models: Prefect validates them when a run starts (from Python, the
CLI, a deployment or the UI's form) and a bad value fails naming the field, e.g.
"params.limit: Input should be greater than 0"."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator


class StageParams(BaseModel):
    """What every stage flow takes: the run config and the DuckDB store."""

    model_config = ConfigDict(extra="forbid")  # a misspelled parameter is an error

    config_path: str | None = Field(None, description="Run config YAML; default configs/default.yaml.")
    db: str = Field("curate.duckdb", min_length=1, description="DuckDB file holding every sample and verdict.")
    model: str | None = Field(None, min_length=1, description="Override engine.model: a shipped alias "
                              "(qwen2.5-coder-1.5b-instruct, smollm2-135m-instruct) or an HF model folder.")

    @field_validator("config_path")
    @classmethod
    def _config_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"no config file at {value} (working directory {Path.cwd()})")
        return value

    @field_validator("db")
    @classmethod
    def _db_is_a_file(cls, value: str) -> str:
        if Path(value).is_dir():
            raise ValueError(f"{value} is a directory; give the DuckDB file's path")
        return value


class SynthesizeParams(StageParams):
    """Which questions a run reads (the config's pools unless given) and how many it takes."""

    questions: list[str] | None = Field(None, description="Question pool files; default: the config's pools.")
    limit: PositiveInt | None = Field(None, description="Questions for this run, spread over domains.")


class ScoreParams(StageParams):
    question_ids: list[str] | None = Field(
        None, description="Questions to score; default: the run's questions, or every question with samples.")


class ExportParams(StageParams):
    out: str = Field("out", min_length=1, description="Folder for exported shard sets.")
    skip_unchanged: bool = Field(
        False, description="Write no new shard set when the selection equals the newest export's.")


class CurateParams(SynthesizeParams, ExportParams):
    """The full flow: every stage's parameters."""
