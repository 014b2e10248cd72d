"""Where the CPU-heavy stages run: in this process, or as tasks on a Ray cluster."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ScaleoutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # local: in the flow's process. ray: Prefect tasks on Ray (prefect-ray's RayTaskRunner);
    # workers write Parquet parts, the run's process ingests them into DuckDB (one writer).
    runner: Literal["local", "ray"] = "local"
    # None starts a local Ray cluster for the run; "auto" or "ray://host:10001" joins one.
    address: str | None = None
    num_workers: int = Field(2, ge=1)  # CPUs of the local cluster (ignored when joining one)
    chunk_rows: int = Field(20_000, ge=1)  # samples per task
